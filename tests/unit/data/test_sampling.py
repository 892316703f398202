"""PairSampler: every training pair once per epoch, negatives outside the history, and the
bounded number of steps that keeps an epoch linear in the edges."""

import numpy as np
import pytest
import scipy.sparse as sp

from kgrec.data.sampling import PairSampler


def _train(users: int = 50, items: int = 40, density: float = 0.2, seed: int = 0) -> sp.csr_matrix:
    m = sp.random(users, items, density=density, random_state=seed, format="csr")
    m.data[:] = 1.0
    return m


def test_epoch_covers_every_pair_once_with_true_negatives():
    train = _train()
    s = PairSampler(train, batch_size=64, n_neg=3)
    users, pos, neg = (np.concatenate(x) for x in zip(*s.epoch(np.random.default_rng(0))))
    got = sorted(zip(users.tolist(), pos.tolist()))
    coo = train.tocoo()
    assert got == sorted(zip(coo.row.tolist(), coo.col.tolist()))
    dense = train.toarray()
    assert neg.shape == (len(users), 3)
    assert not dense[users[:, None], neg].any()


@pytest.mark.parametrize("max_steps, batch, steps", [(None, 64, 7), (100, 64, 7), (4, 100, 4), (1, 400, 1)])
def test_max_steps_bounds_the_batches_per_epoch(max_steps, batch, steps):
    train = _train(users=40, items=50, density=0.2)  # 400 pairs
    assert train.nnz == 400
    s = PairSampler(train, batch_size=64, max_steps=max_steps)
    batches = list(s.epoch(np.random.default_rng(1)))
    assert s.batch_size == batch and len(s) == len(batches) == steps
    assert sum(len(b[0]) for b in batches) == 400

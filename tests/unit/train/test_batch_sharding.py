"""Sharding a global batch across ranks: the union of the shards is the one-rank batch."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from kgrec.data.sampling import PairSampler, shard_bounds


def _train(n_users: int = 40, n_items: int = 30, nnz: int = 300, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, size=nnz, replace=False)
    return sp.csr_matrix((np.ones(nnz), (keys // n_items, keys % n_items)), shape=(n_users, n_items))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 64, 2048, 2049])
@pytest.mark.parametrize("world", [1, 2, 3, 4, 8])
def test_shard_bounds_partition_the_batch(n: int, world: int) -> None:
    bounds = [shard_bounds(n, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))          # contiguous, in rank order
    sizes = [stop - start for start, stop in bounds]
    assert min(sizes) >= 0 and max(sizes) - min(sizes) <= 1               # balanced
    with pytest.raises(ValueError):
        shard_bounds(n, world, world)


@pytest.mark.parametrize("world", [1, 2, 3, 5])
@pytest.mark.parametrize("batch_size", [1, 4, 64, 1000])
def test_union_of_shards_is_the_one_rank_batch(world: int, batch_size: int) -> None:
    """Every rank, seeded alike, draws the same permutation and negatives; concatenating the
    ranks' shards of each batch, in rank order, gives the single-process batch exactly, and
    the generator ends in the same state (so the next epoch agrees too)."""
    sampler = PairSampler(_train(), batch_size=batch_size, n_neg=3)
    for epoch_seed in (0, 1):
        rng_one = np.random.default_rng(epoch_seed)
        one = list(sampler.epoch(rng_one))
        rngs = [np.random.default_rng(epoch_seed) for _ in range(world)]
        shards = [list(sampler.shards(rngs[r], r, world)) for r in range(world)]
        assert all(len(s) == len(one) for s in shards)
        for b, (users, pos, neg) in enumerate(one):
            parts = [shards[r][b] for r in range(world)]
            assert all(p[3] == len(users) for p in parts)                  # the global batch size
            assert np.array_equal(np.concatenate([p[0] for p in parts]), users)
            assert np.array_equal(np.concatenate([p[1] for p in parts]), pos)
            assert np.array_equal(np.concatenate([p[2] for p in parts]), neg)
        state = rng_one.bit_generator.state
        assert all(r.bit_generator.state == state for r in rngs)


def test_every_interaction_once_per_epoch_over_all_ranks() -> None:
    train = _train()
    sampler = PairSampler(train, batch_size=37, n_neg=1)
    seen = []
    for r in range(3):
        for users, pos, _, _ in sampler.shards(np.random.default_rng(4), r, 3):
            seen += list(users * train.shape[1] + pos)
    coo = train.tocoo()
    assert sorted(seen) == sorted((coo.row * train.shape[1] + coo.col).tolist())

"""ELSA, the low-rank item-item model: unit rows, determinism, learning, early stopping, and
scores that are inner products for items outside the history."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.models.lowrank import elsa_scores, fit_elsa


def _blocks(n_users: int = 60, n_items: int = 30, seed: int = 0) -> sp.csr_matrix:
    """Two user groups that each consume one half of the items (with some noise)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n_users, n_items), dtype=np.float32)
    half = n_items // 2
    for u in range(n_users):
        items = rng.choice(half, size=6, replace=False) + (0 if u < n_users // 2 else half)
        x[u, items] = 1.0
    return sp.csr_matrix(x)


def test_unit_rows_and_determinism() -> None:
    x = _blocks()
    a1, h1 = fit_elsa(x, 4, epochs=5, seed=3)
    a2, _ = fit_elsa(x, 4, epochs=5, seed=3)
    a3, _ = fit_elsa(x, 4, epochs=5, seed=4)
    assert a1.shape == (30, 4)
    torch.testing.assert_close(a1.norm(dim=1), torch.ones(30))
    assert torch.equal(a1, a2) and not torch.equal(a1, a3)
    assert len(h1) == 5


def test_learns_the_block_structure() -> None:
    x = _blocks()
    a, hist = fit_elsa(x, 4, epochs=60, lr=0.05, batch_size=16, seed=0)
    assert hist[-1]["loss"] < hist[0]["loss"]
    user = torch.from_numpy(x[:1].toarray())  # a user of the first half
    scores = elsa_scores(user, a)[0].numpy()
    unseen = np.setdiff1d(np.arange(30), x[0].indices)
    first, second = unseen[unseen < 15], unseen[unseen >= 15]
    assert scores[first].mean() > scores[second].mean()


def test_scores_of_unseen_items_are_inner_products() -> None:
    x = _blocks()
    a, _ = fit_elsa(x, 5, epochs=2, seed=1)
    rows = torch.from_numpy(x.toarray())
    full = elsa_scores(rows, a)
    inner = (rows @ a) @ a.T
    unseen = rows == 0
    torch.testing.assert_close(full[unseen], inner[unseen])


def test_early_stopping_returns_the_best_factors() -> None:
    x = _blocks()
    calls: list[torch.Tensor] = []
    marks = iter([0.1, 0.5, 0.3, 0.2, 0.9])

    def validate(a: torch.Tensor) -> float:
        calls.append(a.clone())
        return next(marks)

    a, hist = fit_elsa(x, 4, epochs=5, seed=0, patience=2, validate=validate)
    assert len(hist) == 4  # stopped after two epochs without improvement
    assert torch.equal(a, calls[1])  # the factors of the best validation epoch

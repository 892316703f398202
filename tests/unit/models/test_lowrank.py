"""ELSA, the low-rank item-item model: the sparse loss equals the dense formula (values and
gradients), unit rows, determinism, learning, early stopping, scores that are inner
products for items outside the history, and no [B, I] buffer (many items fit quickly)."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from kgrec.models.lowrank import elsa_loss, elsa_scores, fit_elsa, sparse_rows


def _blocks(n_users: int = 60, n_items: int = 30, seed: int = 0) -> sp.csr_matrix:
    """Two user groups that each consume one half of the items (with some noise)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n_users, n_items), dtype=np.float32)
    half = n_items // 2
    for u in range(n_users):
        items = rng.choice(half, size=6, replace=False) + (0 if u < n_users // 2 else half)
        x[u, items] = 1.0
    return sp.csr_matrix(x)


def _dense_loss(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The reference: the [B, I] reconstruction, normalised."""
    return (F.normalize(x @ a @ a.T - x, dim=-1) - F.normalize(x, dim=-1)).pow(2).sum(-1)


def _random_rows(seed: int, n_rows: int = 40, n_items: int = 50) -> sp.csr_matrix:
    x = sp.random(n_rows, n_items, density=0.15, random_state=seed, format="csr", dtype=np.float64)
    x.data = 0.5 + x.data  # weighted rows
    return x[np.diff(x.indptr) > 0]


def test_sparse_loss_equals_the_dense_formula_values_and_gradients() -> None:
    for seed in range(3):
        x = _random_rows(seed)
        dense = torch.from_numpy(x.toarray())
        for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
            w = torch.randn(50, 7, dtype=dtype, generator=torch.Generator().manual_seed(seed), requires_grad=True)
            a = F.normalize(w, dim=-1)
            ours = elsa_loss(sparse_rows(x, dtype), a)
            ref = _dense_loss(dense.to(dtype), a)
            torch.testing.assert_close(ours, ref, atol=tol, rtol=0)
            g_ours, = torch.autograd.grad(ours.mean(), w, retain_graph=True)
            g_ref, = torch.autograd.grad(ref.mean(), w)
            torch.testing.assert_close(g_ours, g_ref, atol=tol, rtol=0)
            torch.testing.assert_close(elsa_loss(dense.to(dtype), a), ref, atol=tol, rtol=0)  # dense input


def test_sparse_rows_sums_duplicates_and_keeps_the_input() -> None:
    x = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([2, 2, 0]), np.array([0, 2, 3])), shape=(2, 4))
    t = sparse_rows(x, torch.float64)
    torch.testing.assert_close(t.to_dense(), torch.tensor([[0, 0, 3.0, 0], [3.0, 0, 0, 0]], dtype=torch.float64))
    assert x.nnz == 3  # the caller's duplicates are left alone
    a = F.normalize(torch.randn(4, 2, dtype=torch.float64), dim=-1)
    torch.testing.assert_close(elsa_loss(t, a), _dense_loss(t.to_dense(), a))


def test_vanishing_reconstruction_is_finite() -> None:
    # x = e_0 with A = [[1], [0]]: x A Aᵀ − x = 0 exactly; the dense loss is ‖0 − x‖² = 1
    a = torch.tensor([[1.0], [0.0]], requires_grad=True)
    x = sparse_rows(sp.csr_matrix(np.array([[1.0, 0.0]], dtype=np.float32)))
    loss = elsa_loss(x, a)
    loss.sum().backward()
    torch.testing.assert_close(loss, torch.ones(1))
    assert torch.isfinite(a.grad).all()


def test_unit_rows_and_determinism() -> None:
    x = _blocks()
    a1, h1 = fit_elsa(x, 4, epochs=5, seed=3)
    a2, _ = fit_elsa(x, 4, epochs=5, seed=3)
    a3, _ = fit_elsa(x, 4, epochs=5, seed=4)
    assert a1.shape == (30, 4)
    torch.testing.assert_close(a1.norm(dim=1), torch.ones(30))
    assert torch.equal(a1, a2) and not torch.equal(a1, a3)
    assert len(h1) == 5


def test_fit_leaves_the_input_matrix_alone() -> None:
    x = _blocks()
    x.data[:3] = 0.0  # explicit zeros, dropped from the loss on a copy only
    before = (x.data.copy(), x.indices.copy(), x.indptr.copy())
    fit_elsa(x, 4, epochs=1, seed=0)
    for got, want in zip((x.data, x.indices, x.indptr), before):
        np.testing.assert_array_equal(got, want)


def test_learns_the_block_structure() -> None:
    x = _blocks()
    a, hist = fit_elsa(x, 4, epochs=60, lr=0.05, batch_size=16, seed=0)
    assert hist[-1]["loss"] < hist[0]["loss"]
    user = torch.from_numpy(x[:1].toarray())  # a user of the first half
    scores = elsa_scores(user, a)[0].numpy()
    unseen = np.setdiff1d(np.arange(30), x[0].indices)
    first, second = unseen[unseen < 15], unseen[unseen >= 15]
    assert scores[first].mean() > scores[second].mean()


def test_epoch_loss_is_the_dense_loss_of_the_first_step() -> None:
    # one batch holding every row: the recorded loss is the dense loss at the initial A
    x = _blocks()
    gen = torch.Generator().manual_seed(5)
    w = torch.empty(30, 4)
    torch.nn.init.xavier_uniform_(w, generator=gen)
    expected = _dense_loss(torch.from_numpy(x.toarray()), F.normalize(w, dim=-1)).mean().item()
    _, hist = fit_elsa(x, 4, epochs=1, batch_size=len(x.indptr), seed=5)
    assert abs(hist[0]["loss"] - expected) < 1e-5


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


def test_many_items_need_no_dense_batch() -> None:
    # 2,000 users × 200,000 items, ~20k non-zeros: one dense [512, 200000] float32 batch and its
    # reconstruction would be ~0.8 GB (the whole [U, I] 1.6 GB); the sparse loss needs O(nnz·d + I·d)
    n_users, n_items, dim = 2000, 200_000, 8
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, n_users, 20_000), rng.integers(0, n_items, 20_000)
    x = sp.csr_matrix((np.ones(20_000, np.float32), (rows, cols)), shape=(n_users, n_items))
    fit_elsa(_blocks(), dim, epochs=1)  # first use imports torch's optimiser machinery: not timed
    tracemalloc.start()
    t0 = time.perf_counter()
    a, hist = fit_elsa(x, dim, epochs=1, batch_size=512, seed=0)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert a.shape == (n_items, dim) and np.isfinite(hist[0]["loss"])
    assert seconds < 10.0
    assert peak < 100 * 2**20  # numpy-side buffers (the batches) stay small
    assert n_items * 512 * 4 > 300 * 2**20  # what one dense batch would have taken

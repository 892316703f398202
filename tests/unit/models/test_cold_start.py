"""The cold-item pathway of kgrec: k-nearest-neighbour regression from content, its
leave-one-out map (self excluded), its calibration, and memory linear in the warm items."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.models.cold_start import ContentRegression


def _similarity(blocks: list) -> np.ndarray:
    """The reference: the dense sum over blocks of cosine similarities."""
    out = 0.0
    for f in blocks:
        f = f.toarray() if sp.issparse(f) else np.asarray(f, dtype=np.float64)
        f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        out = out + f @ f.T
    return out


def _naive_map(sim: np.ndarray, rows: np.ndarray, w: np.ndarray, k: int, reg: float,
               exclude_self: bool) -> np.ndarray:
    """Row by row: sort the warm items by similarity, take the first k (not the row itself),
    solve the ridge system on them."""
    out = np.zeros((len(rows), len(w)))
    for r, item in enumerate(rows):
        cand = [j for j in range(len(w)) if not (exclude_self and w[j] == item)]
        best = sorted(cand, key=lambda j: -sim[item, w[j]])[:k]
        ids = w[best]
        out[r, best] = np.linalg.solve(sim[np.ix_(ids, ids)] + reg * np.eye(len(ids)), sim[ids, item])
    return out


def _content(n: int = 40, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(n, 6))
    kg = sp.random(n, 15, density=0.3, random_state=seed, format="csr") + sp.eye(n, 15, format="csr")
    return [text, kg]


def test_cold_map_agrees_with_a_naive_loop() -> None:
    content = _content()
    warm = np.ones(40, bool)
    warm[[3, 7, 20, 33]] = False
    for k, chunk in ((5, 3), (12, 256), (100, 2)):  # k > W takes every warm item
        reg = ContentRegression.fit(content, warm, reg=0.5, k=k, chunk=chunk)
        w, c = np.flatnonzero(warm), np.flatnonzero(~warm)
        assert isinstance(reg.cold_map, sp.csr_matrix) and reg.cold_map.shape == (4, 36)
        assert (np.diff(reg.cold_map.indptr) <= k).all()
        expected = _naive_map(_similarity(content), c, w, k, 0.5, exclude_self=False)
        np.testing.assert_allclose(reg.cold_map.toarray(), expected, atol=1e-12)


def test_loo_map_excludes_the_item_itself() -> None:
    content = _content(seed=1)
    warm = np.ones(40, bool)
    warm[0] = False
    reg = ContentRegression.fit(content, warm, reg=0.3, sample=10, k=4)
    w = np.flatnonzero(warm)
    loo = reg.loo_map.toarray()
    assert loo.shape == (10, 39) and len(np.unique(reg.loo_rows)) == 10
    assert (loo[np.arange(10), reg.loo_rows] == 0).all()
    assert (np.diff(reg.loo_map.indptr) == 4).all()  # still k neighbours, all of them others
    expected = _naive_map(_similarity(content), w[reg.loo_rows], w, 4, 0.3, exclude_self=True)
    np.testing.assert_allclose(loo, expected, atol=1e-12)
    # a duplicate of a sampled item (same content) is its nearest other neighbour
    dup = [np.vstack([f.toarray() if sp.issparse(f) else f, (f.toarray() if sp.issparse(f) else f)[w[reg.loo_rows[0]]]])
           for f in content]
    reg2 = ContentRegression.fit(dup, np.append(warm, True), reg=0.3, sample=1000, k=1)
    row = int(np.flatnonzero(reg2.loo_rows == reg.loo_rows[0])[0])
    assert reg2.loo_map[row].indices.tolist() == [39]


def test_all_neighbours_give_the_global_kernel_ridge() -> None:
    # k ≥ W: the cold map is K_cw (K_ww + λI)⁻¹ and the LOO rows are the ridge refitted
    # without each sampled item, as in the kernel ridge this replaced
    content = _content(30, seed=2)
    warm = np.ones(30, bool)
    warm[[3, 7, 20]] = False
    reg = ContentRegression.fit(content, warm, reg=0.5, sample=6, k=1000)
    k = _similarity(content)
    w, c = np.flatnonzero(warm), np.flatnonzero(~warm)
    expected = k[np.ix_(c, w)] @ np.linalg.inv(k[np.ix_(w, w)] + 0.5 * np.eye(len(w)))
    np.testing.assert_allclose(reg.cold_map.toarray(), expected, atol=1e-9)
    y = np.random.default_rng(3).normal(size=(len(w), 3))
    for row, pred in zip(reg.loo_rows, reg.loo_map @ y):
        keep = np.arange(len(w)) != row
        naive = k[w[row], w[keep]] @ np.linalg.solve(k[np.ix_(w[keep], w[keep])] + 0.5 * np.eye(keep.sum()), y[keep])
        np.testing.assert_allclose(pred, naive, atol=1e-9)


def test_calibration_recovers_a_planted_scale() -> None:
    # warm vectors linear in the content, clustered so that neighbours are close: the
    # regression is nearly exact and c ≈ 1
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 8))
    text = np.repeat(centres, 30, axis=0) + 0.01 * rng.normal(size=(600, 8))
    unit = text / np.linalg.norm(text, axis=1, keepdims=True)
    warm = np.ones(600, bool)
    warm[::50] = False
    proj = rng.normal(size=(8, 5))
    y = torch.from_numpy(unit[warm] @ proj)
    users = torch.from_numpy(rng.normal(size=(50, 5)))
    reg = ContentRegression.fit([text], warm, reg=1e-3, sample=200, k=10)
    c = reg.calibration(users, y)
    assert abs(c - 1.0) < 0.02
    assert abs(reg.calibration(users, y, method="rms") - 1.0) < 0.02
    np.testing.assert_allclose(reg.cold_map @ y.numpy(), unit[~warm] @ proj, atol=0.05)  # the cold vectors too
    # by hand: c = <T, P> / ‖P‖², c_rms = ‖T‖ / ‖P‖ with T = U Y_Sᵀ, P = U Ŷ_Sᵀ, Ŷ_S = loo_map @ Y
    t = users.numpy() @ y.numpy()[reg.loo_rows].T
    p = users.numpy() @ (reg.loo_map @ y.numpy()).T
    assert abs(c - (t * p).sum() / (p * p).sum()) < 1e-9
    assert abs(reg.calibration(users, y, method="rms") - np.linalg.norm(t) / np.linalg.norm(p)) < 1e-9
    # a strong ridge halves the weights (10 near-equal neighbours, λ = 10): c scales them back
    shrunk = ContentRegression.fit([text], warm, reg=10.0, sample=200, k=10)
    assert abs(shrunk.calibration(users, y) - 2.0) < 0.1
    # noisy content: the least-squares scale shrinks, the rms one keeps the spread (c_rms ≥ c_ls)
    noisy = ContentRegression.fit([text + rng.normal(size=text.shape)], warm, reg=1e-3, sample=200, k=10)
    c_ls, c_rms = noisy.calibration(users, y), noisy.calibration(users, y, method="rms")
    assert c_ls < 0.9 and c_rms > c_ls
    with pytest.raises(ValueError, match="calibration method"):
        reg.calibration(users, y, method="mean")


def test_empty_cases_give_empty_maps() -> None:
    for content, warm, lam in (([np.eye(4)], np.ones(4, bool), 1.0),  # no cold item
                               ([], np.array([True, True, False]), 1.0),  # no content
                               ([np.eye(3)], np.array([True, True, False]), 0.0)):  # disabled
        reg = ContentRegression.fit(content, warm, reg=lam)
        assert reg.cold_map.shape == (0, int(warm.sum())) and reg.loo_map.shape[0] == 0
        assert reg.calibration(torch.ones(2, 3), torch.ones(int(warm.sum()), 3)) == 1.0
    reg = ContentRegression.fit([np.eye(3)], np.zeros(3, bool), reg=1.0)  # no warm item
    assert reg.cold_map.shape == (0, 0)


def test_cold_map_tensor_gives_the_same_vectors() -> None:
    content = _content()
    warm = np.ones(40, bool)
    warm[[1, 2]] = False
    reg = ContentRegression.fit(content, warm, reg=0.5, k=6)
    y = torch.randn(38, 3, requires_grad=True)
    out = torch.sparse.mm(reg.cold_map_tensor(), y)
    torch.testing.assert_close(out, torch.from_numpy(reg.cold_map @ y.detach().numpy()).float())
    out.sum().backward()
    assert y.grad is not None and y.grad.shape == (38, 3)


def test_many_warm_items_without_a_quadratic_buffer() -> None:
    # 60,000 warm and 500 cold items, 32-dim dense content: a [W, W] float64 kernel would be
    # 28.8 GB, the [C + W, W] one of the old kernel ridge more; the kNN map holds chunk × W
    n_warm, n_cold, k, chunk = 60_000, 500, 50, 128
    rng = np.random.default_rng(0)
    text = rng.normal(size=(n_warm + n_cold, 32)).astype(np.float32)
    warm = np.ones(n_warm + n_cold, bool)
    warm[rng.choice(n_warm + n_cold, n_cold, replace=False)] = False
    tracemalloc.start()
    t0 = time.perf_counter()
    reg = ContentRegression.fit([text], warm, reg=1.0, sample=300, k=k, chunk=chunk)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert reg.cold_map.shape == (n_cold, n_warm) and reg.cold_map.nnz <= n_cold * k
    assert reg.loo_map.shape == (300, n_warm)
    assert peak < 4 * chunk * n_warm * 8 + 64 * 2**20  # a few [chunk, W] float64 buffers and the content
    assert peak < n_warm * n_warm * 8 / 100
    assert seconds < 20.0

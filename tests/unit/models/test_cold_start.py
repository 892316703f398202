"""The cold-item pathway of kgrec: kernel ridge from content, and its LOO calibration."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.models.cold_start import ContentRegression


def _kernel(f: np.ndarray) -> np.ndarray:
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    return f @ f.T


def test_cold_map_equals_kernel_ridge_formula():
    rng = np.random.default_rng(0)
    text = rng.normal(size=(30, 5))
    kg = sp.random(30, 12, density=0.3, random_state=1, format="csr") + sp.eye(30, 12, format="csr")
    warm = np.ones(30, bool)
    warm[[3, 7, 20]] = False
    reg = ContentRegression.fit([text, kg], warm, reg=0.5)
    k = _kernel(text) + _kernel(kg.toarray())
    w, c = np.flatnonzero(warm), np.flatnonzero(~warm)
    expected = k[np.ix_(c, w)] @ np.linalg.inv(k[np.ix_(w, w)] + 0.5 * np.eye(len(w)))
    np.testing.assert_allclose(reg.cold_map, expected, atol=1e-9)


def test_loo_predictions_match_refitting_without_each_item():
    rng = np.random.default_rng(1)
    text = rng.normal(size=(25, 4))
    warm = np.ones(25, bool)
    warm[0] = False
    reg = ContentRegression.fit([text], warm, reg=0.3, sample=6)
    w = np.flatnonzero(warm)
    y = rng.normal(size=(len(w), 3))
    k = _kernel(text)[np.ix_(w, w)]
    p = np.linalg.inv(k + 0.3 * np.eye(len(w)))
    closed = y[reg.loo_rows] - (p @ y)[reg.loo_rows] / np.diag(p)[reg.loo_rows, None]
    for row, pred in zip(reg.loo_rows, closed):
        keep = np.arange(len(w)) != row
        naive = k[row, keep] @ np.linalg.solve(k[np.ix_(keep, keep)] + 0.3 * np.eye(keep.sum()), y[keep])
        np.testing.assert_allclose(pred, naive, atol=1e-8)
    users = torch.from_numpy(rng.normal(size=(7, 3)))
    true_s = users.numpy() @ y[reg.loo_rows].T
    pred_s = users.numpy() @ closed.T
    expected = (true_s * pred_s).sum() / (pred_s ** 2).sum()
    assert abs(reg.calibration(users, torch.from_numpy(y)) - expected) < 1e-9


def test_no_cold_items_gives_an_empty_map():
    reg = ContentRegression.fit([np.eye(4)], np.ones(4, bool), reg=1.0)
    assert reg.cold_map.shape == (0, 4)

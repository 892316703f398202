"""Cold-start items: kernel ridge regression from item content (text and KG rows) to the
warm items' final vectors, with a leave-one-out calibration of its scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch
from torch import Tensor


@dataclass
class ContentRegression:
    """Kernel ridge regression from item content to the warm items' final vectors.

    ``cold_map`` [C, W] is ``K_cw (K_ww + λI)⁻¹`` (``K``: the sum over content blocks of
    cosine kernels), so the cold items' vectors are ``cold_map @ Y_w``. ``loo_rows`` [S] (a
    sample of warm positions), ``loo_cols = P[:, S]`` and ``loo_diag = P_SS`` with
    ``P = (K_ww + λI)⁻¹`` give the leave-one-out predictions ``ŷ_i = y_i − (P Y)_i / P_ii``
    used to calibrate the scale of the regressed vectors."""

    cold_map: np.ndarray
    loo_rows: np.ndarray
    loo_cols: np.ndarray
    loo_diag: np.ndarray

    @classmethod
    def fit(cls, content: list[np.ndarray | sp.spmatrix], warm: np.ndarray, reg: float,
            sample: int = 1000, seed: int = 0) -> ContentRegression:
        cold, warm_idx = np.flatnonzero(~warm), np.flatnonzero(warm)
        if not len(cold) or not len(warm_idx) or not content or reg <= 0:
            return cls(np.zeros((0, len(warm_idx))), np.zeros(0, np.int64), np.zeros((len(warm_idx), 0)), np.zeros(0))
        rows = np.concatenate([warm_idx, cold])
        kernel = np.zeros((len(rows), len(warm_idx)))
        for f in content:
            f = sp.csr_matrix(f, dtype=np.float64)
            f = sp.csr_matrix(sp.diags(1.0 / np.maximum(sp.linalg.norm(f, axis=1), 1e-12)) @ f)
            kernel += np.asarray((f[rows] @ f[warm_idx].T).todense())
        k_ww, k_cw = kernel[: len(warm_idx)], kernel[len(warm_idx):]
        k_ww[np.diag_indices_from(k_ww)] += reg
        factor = scipy.linalg.cho_factor(k_ww, overwrite_a=True)
        loo_rows = np.sort(np.random.default_rng(seed).permutation(len(warm_idx))[:sample])
        unit = np.zeros((len(warm_idx), len(loo_rows)))
        unit[loo_rows, np.arange(len(loo_rows))] = 1.0
        loo_cols = scipy.linalg.cho_solve(factor, unit)
        cold_map = scipy.linalg.cho_solve(factor, k_cw.T).T  # K_ww is symmetric
        return cls(cold_map, loo_rows, loo_cols, loo_cols[loo_rows, np.arange(len(loo_rows))])

    def calibration(self, users: Tensor, warm_items: Tensor) -> float:
        """Least-squares scale ``c`` of true on leave-one-out predicted scores, ``s ≈ c ŝ``
        over the sampled warm items and the given user vectors (so ``c · cold_map @ Y_w``
        estimates a cold item's expected score)."""
        y = warm_items.double()
        cols = torch.from_numpy(self.loo_cols)
        rows = torch.from_numpy(self.loo_rows)
        pred = y[rows] - (cols.T @ y) / torch.from_numpy(self.loo_diag).unsqueeze(1)
        true_s, pred_s = users.double() @ y[rows].T, users.double() @ pred.T
        return float((true_s * pred_s).sum() / (pred_s * pred_s).sum().clamp_min(1e-12))

"""Hypothesis properties of explanations (issue 5, property 8): Integrated Gradients is
complete and gives a dummy mask column zero; masked propagation equals propagation over the
reweighted adjacency."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kgrec.audit.explain import MaskedScore, integrated_gradients
from kgrec.data.view import bipartite_adjacency
from kgrec.models.masks import masked_propagate
from kgrec.models.propagation import propagate, to_torch_csr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from strategies import binary_matrices


@settings(max_examples=30)
@given(m=st.integers(2, 8), seed=st.integers(0, 2**16), nonlinear=st.booleans(), data=st.data())
def test_integrated_gradients_complete_and_dummy_column_zero(m, seed, nonlinear, data) -> None:
    """f(mask) = mᵀAm + b·m + c (+ v·tanh(Wm)); column ``dead`` is absent from A, b, W."""
    dead = data.draw(st.integers(0, m - 1))
    g = torch.Generator().manual_seed(seed)
    a, b, w = torch.randn(m, m, generator=g), torch.randn(m, generator=g), torch.randn(m, 4, generator=g)
    v, c = torch.randn(4, generator=g), float(torch.randn(1, generator=g))
    a[dead, :], a[:, dead], b[dead], w[dead, :] = 0.0, 0.0, 0.0, 0.0

    def f(x: torch.Tensor) -> torch.Tensor:
        out = ((x @ a) * x).sum(-1) + x @ b + c
        return out + torch.tanh(x @ w) @ v if nonlinear else out

    ms = MaskedScore(f, [("history", str(j)) for j in range(m)], np.arange(m))
    attr, full, base, delta, _steps = integrated_gradients(ms, n_steps=16, max_delta=1e-3)
    assert full == pytest.approx(float(f(torch.ones(1, m))[0]), abs=1e-6)
    assert base == pytest.approx(c, abs=1e-6)
    assert attr.shape == (m,)
    assert attr[dead] == 0.0
    gap = full - base
    # completeness: captum's delta is Σ a − (f(1) − f(0)); Gauss-Legendre is exact on the
    # (linear) integrand of a quadratic
    assert float(attr.sum()) - gap == pytest.approx(delta, abs=1e-4 * (1 + abs(gap)))
    tol = 1e-3 * abs(gap) if nonlinear else 0.0  # the doubling rule's target otherwise
    assert abs(float(attr.sum()) - gap) <= tol + 1e-4 * (1 + abs(gap))


@given(train=binary_matrices(min_rows=1, max_rows=6, min_cols=1, max_cols=6), layers=st.integers(1, 3),
       data=st.data())
def test_masked_propagate_matches_reweighted_adjacency(train, layers, data) -> None:
    """Edge masks on user u's history equal propagation over Â with Â[u, h] = Â[h, u] scaled
    by m_h (the trained normalisation kept); all ones is plain propagation."""
    n_users, n_items = train.shape
    u = data.draw(st.integers(0, n_users - 1))
    hist = np.flatnonzero(train[u])
    assume(len(hist))
    mask = np.asarray(data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(hist), max_size=len(hist))))
    adj = bipartite_adjacency(sp.csr_matrix(train))
    cols = n_users + hist
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(n_users + n_items, 3)).astype(np.float32))
    weights = torch.from_numpy(adj[u, cols].toarray().ravel().astype(np.float32))

    def masked(m: np.ndarray) -> torch.Tensor:
        return masked_propagate(to_torch_csr(adj), x, layers, u, torch.from_numpy(cols), weights,
                                torch.from_numpy(m.astype(np.float32)))

    scaled = adj.tolil()
    for h, mh in zip(cols, mask):
        scaled[u, h] = scaled[h, u] = adj[u, h] * mh
    torch.testing.assert_close(masked(mask), propagate(to_torch_csr(scaled.tocsr()), x, layers), atol=1e-5,
                               rtol=1e-5)
    torch.testing.assert_close(masked(np.ones(len(hist))), propagate(to_torch_csr(adj), x, layers), atol=1e-6,
                               rtol=1e-6)

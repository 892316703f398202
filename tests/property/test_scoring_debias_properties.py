"""Hypothesis properties of the debiasing weights (issue 5, property 6): IPS weights are
positive, clipped and self-normalised; popularity shares are positive and at most 1."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from kgrec.models.debias import ips_weights, popularity_share


@given(counts=st.lists(st.integers(0, 5000), min_size=1, max_size=40).filter(lambda c: max(c) > 0),
       gamma=st.floats(0.0, 3.0), clip=st.floats(1e-4, 1.0))
def test_ips_weights_positive_clipped_self_normalised(counts, gamma, clip) -> None:
    n = np.asarray(counts, dtype=np.float64)
    w = ips_weights(n, gamma=gamma, clip=clip)
    assert np.isfinite(w).all() and (w > 0).all()
    np.testing.assert_allclose(np.sum(w * n), n.sum(), rtol=1e-9)  # sums to the sample size
    smallest = w[np.argmax(n)]  # the most popular item has propensity 1
    np.testing.assert_allclose(w.min(), smallest, rtol=1e-12)
    assert w.max() <= smallest / clip * (1 + 1e-9)  # every propensity clipped at `clip`
    np.testing.assert_allclose(w[n == 0], smallest / clip, rtol=1e-9)  # unseen: the clipped maximum
    order = np.argsort(n, kind="stable")
    assert (np.diff(w[order]) <= 1e-12 * w.max()).all()  # rarer never weighs less
    share = popularity_share(n)
    assert (share > 0).all() and (share <= 1).all()
    seen = n > 0
    np.testing.assert_allclose(share[seen], n[seen] / n.sum())
    np.testing.assert_allclose(share[~seen], (n[seen] / n.sum()).min())


def test_ips_weights_all_zero_counts_are_ones() -> None:
    assert ips_weights(np.zeros(3)).tolist() == [1.0, 1.0, 1.0]

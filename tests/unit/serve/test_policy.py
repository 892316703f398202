"""The logging policies' propensities are the probabilities they draw with."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kgrec.serve.policy import PolicyConfig, draw, marginal


def test_deterministic_shows_the_top_with_propensity_one():
    slate = draw(PolicyConfig("deterministic"), 30, 5, np.random.default_rng(0))
    assert slate.order.tolist() == [0, 1, 2, 3, 4] and slate.pscore.tolist() == [1.0] * 5 and not slate.explored


def test_epsilon_empirical_frequencies_match_the_logged_propensities():
    cfg, m, k, n = PolicyConfig("epsilon", epsilon=0.3, candidates=8), 8, 3, 40_000
    rng = np.random.default_rng(1)
    counts = np.zeros((m, k))
    for _ in range(n):
        slate = draw(cfg, m, k, rng)
        counts[slate.order, np.arange(k)] += 1
        # the logged propensity of each shown item is its marginal at that position
        assert np.allclose(slate.pscore, marginal(cfg, m, k)[slate.order, np.arange(k)])
    expected = marginal(cfg, m, k)
    se = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(counts / n - expected) < 5 * se + 1e-9)
    assert abs(counts[0, 0] / n - (0.7 + 0.3 / 8)) < 0.01


@given(eps=st.floats(0.01, 1.0), m=st.integers(1, 60), k=st.integers(1, 20))
def test_marginals_are_distributions_with_full_support(eps, m, k):
    p = marginal(PolicyConfig("epsilon", epsilon=eps, candidates=m), m, k)
    assert p.shape == (m, min(k, m))
    assert np.allclose(p.sum(0), 1.0)  # each position shows exactly one candidate
    assert np.all(p.sum(1) <= 1.0 + 1e-12)  # a candidate is shown at most once
    assert np.all(p > 0)


def test_short_pool_shows_what_there_is():
    slate = draw(PolicyConfig("epsilon", epsilon=1.0), 2, 10, np.random.default_rng(0))
    assert sorted(slate.order.tolist()) == [0, 1] and np.allclose(slate.pscore, 0.5)


@pytest.mark.parametrize("kwargs,field", [({"name": "softmax"}, "policy"), ({"epsilon": 0.0}, "epsilon"),
                                          ({"epsilon": 1.5}, "epsilon"), ({"candidates": 0}, "candidates"),
                                          ({"candidates": True}, "candidates")])
def test_config_is_validated(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PolicyConfig(**kwargs)


def test_pool_size():
    assert PolicyConfig("epsilon", candidates=50).pool(10) == 50
    assert PolicyConfig("epsilon", candidates=5).pool(10) == 10
    assert PolicyConfig("deterministic").pool(10) == 10

"""Unit tests of kgrec.metrics.stats."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as st

from kgrec.metrics.stats import bootstrap_ci, mean_ci, paired_test

X = np.array([0.2, 0.5, 0.1, 0.9, 0.4])


def test_mean_ci_golden():
    # mean 0.42; squared deviations .0484 + .0064 + .1024 + .2304 + .0004 = .388; s = sqrt(.388 / 4) = 0.311448
    # sem = s / sqrt 5 = 0.139284; t(0.975, 4) = 2.776445; half-width 0.386714
    mean, low, high = mean_ci(X)
    assert (mean, low, high) == pytest.approx((0.42, 0.0332859454, 0.8067140546), abs=1e-9)
    assert (low, high) == pytest.approx(st.t.interval(0.95, 4, loc=X.mean(), scale=st.sem(X)), rel=1e-12)
    assert mean_ci(X, 0.90)[1:] == pytest.approx(st.t.interval(0.90, 4, loc=X.mean(), scale=st.sem(X)), rel=1e-12)
    assert mean_ci(X, 0.90)[2] < high  # narrower at lower confidence


def test_mean_ci_degenerate():
    m, lo, hi = mean_ci([0.7])
    assert m == 0.7 and math.isnan(lo) and math.isnan(hi)
    assert mean_ci([0.3, 0.3, 0.3]) == pytest.approx((0.3, 0.3, 0.3))
    for bad in ([], [1.0, float("nan")], [[1.0, 2.0]]):
        with pytest.raises(ValueError):
            mean_ci(bad)
    with pytest.raises(ValueError):
        mean_ci(X, confidence=1.0)


def test_bootstrap_ci():
    rng = np.random.default_rng(1)
    values = rng.random(300)
    mean, low, high = bootstrap_ci(values, n_boot=2000, seed=7)
    assert mean == pytest.approx(values.mean())
    assert low < mean < high
    assert bootstrap_ci(values, n_boot=2000, seed=7) == (mean, low, high)  # deterministic for a seed
    assert bootstrap_ci(values, n_boot=2000, seed=8) != (mean, low, high)
    # close to the t interval for a mean of 300 uniform values (sd/sqrt(n) = 0.0167)
    _, tlo, thi = mean_ci(values)
    assert low == pytest.approx(tlo, abs=0.006) and high == pytest.approx(thi, abs=0.006)
    assert bootstrap_ci(values, confidence=0.5, seed=7)[2] - bootstrap_ci(values, confidence=0.5, seed=7)[1] < high - low
    m, lo, hi = bootstrap_ci([0.4])
    assert m == 0.4 and math.isnan(lo) and math.isnan(hi)
    assert bootstrap_ci([0.2, 0.2, 0.2]) == pytest.approx((0.2, 0.2, 0.2))
    with pytest.raises(ValueError):
        bootstrap_ci(values, n_boot=0)


def test_paired_test_identical_inputs():
    a = np.random.default_rng(2).random(50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = paired_test(a, a.copy())
    assert out == {"n": 50, "mean_diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "t_pvalue": 1.0, "wilcoxon_pvalue": 1.0}


def test_paired_test_constant_shift_without_warnings():
    a = np.random.default_rng(3).random(30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = paired_test(a + 0.1, a)  # differences all ~0.1 (rounding aside): zero variance
    assert out["mean_diff"] == pytest.approx(0.1)
    assert out["t_pvalue"] == 0.0 and out["wilcoxon_pvalue"] < 1e-6


def test_paired_test_golden_and_shifted():
    a = np.array([0.3, 0.5, 0.2, 0.8, 0.6, 0.1, 0.7, 0.4])
    d = np.array([0.05, 0.1, -0.02, 0.08, 0.04, 0.06, 0.03, 0.07])
    out = paired_test(a, a - d)
    assert out["n"] == 8 and out["mean_diff"] == pytest.approx(d.mean())
    assert out["t_pvalue"] == pytest.approx(st.ttest_rel(a, a - d).pvalue, rel=1e-10)
    assert out["t_pvalue"] == pytest.approx(0.0053266744, rel=1e-6)
    # Wilcoxon exact: one negative difference, the smallest (rank 1), so W = 1; P(W <= 1) = 2 / 2^8, two-sided 4/256
    assert out["wilcoxon_pvalue"] == pytest.approx(4 / 256)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx(mean_ci(d)[1:])
    rng = np.random.default_rng(4)
    base = rng.random(200)
    shifted = paired_test(base + 0.05 + rng.normal(0, 0.02, 200), base)
    assert shifted["t_pvalue"] < 1e-10 and shifted["wilcoxon_pvalue"] < 1e-10
    assert shifted["ci_low"] > 0
    noise = paired_test(base + rng.normal(0, 0.02, 200), base)
    assert noise["t_pvalue"] > 0.001


def test_paired_test_rejects_unpaired():
    with pytest.raises(ValueError):
        paired_test([1.0, 2.0], [1.0])
    out = paired_test([1.0], [0.5])
    assert out["mean_diff"] == 0.5 and math.isnan(out["t_pvalue"])

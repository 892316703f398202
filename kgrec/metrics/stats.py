r"""Uncertainty of per-user metric averages: t and bootstrap intervals, paired tests.

Inputs are 1-D arrays of per-user values (e.g. :func:`kgrec.metrics.ranking.per_user`); users are
the sampling unit. Everything is numpy/scipy only.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats as _st

__all__ = ["mean_ci", "bootstrap_ci", "paired_test"]


def _values(values, name: str = "values") -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    r"""Mean and its Student-t confidence interval: ``(mean, low, high)``.

    .. math::
        \bar x \pm t_{(1+c)/2,\; n-1}\, \frac{s}{\sqrt n}, \qquad s = \mathrm{std}(x, \mathrm{ddof}=1)

    ``values`` float [n]. ``n = 1`` gives ``(x, nan, nan)``; identical values give a zero-width
    interval. Equals :func:`scipy.stats.t.interval` with ``loc = mean``, ``scale = s/sqrt(n)``.
    """
    x = _values(values)
    _check_confidence(confidence)
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    sem = float(x.std(ddof=1)) / np.sqrt(x.size)
    half = float(_st.t.ppf((1 + confidence) / 2, x.size - 1)) * sem
    return mean, mean - half, mean + half


def bootstrap_ci(per_user_values, *, n_boot: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    r"""Mean and its percentile-bootstrap interval over users: ``(mean, low, high)``.

    Draws ``n_boot`` resamples of the ``n`` users with replacement (one
    :func:`numpy.random.default_rng` ``(seed)``, so a seed fixes the result), takes each
    resample's mean and returns the ``(1-c)/2`` and ``(1+c)/2`` quantiles of those means.
    Vectorised in chunks of resamples. ``n = 1`` gives ``(x, nan, nan)``.
    """
    x = _values(per_user_values, "per_user_values")
    _check_confidence(confidence)
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot}")
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(int(n_boot))
    step = max(1, 4_000_000 // x.size)
    for s in range(0, int(n_boot), step):
        m = min(step, int(n_boot) - s)
        means[s: s + m] = x[rng.integers(0, x.size, size=(m, x.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return mean, float(low), float(high)


def paired_test(a, b, confidence: float = 0.95) -> dict[str, float]:
    r"""Compare two systems on the same users: ``d = a - b``.

    Returns ``{"n", "mean_diff", "ci_low", "ci_high", "t_pvalue", "wilcoxon_pvalue"}``:
    the mean difference with its t interval (:func:`mean_ci`), the two-sided paired t-test
    p-value (:func:`scipy.stats.ttest_rel`, computed directly so no precision warnings) and the
    two-sided Wilcoxon signed-rank p-value (:func:`scipy.stats.wilcoxon`, zero differences
    dropped).

    Degenerate cases, without warnings: all differences zero gives both p-values 1.0; a
    constant non-zero difference (zero variance) gives ``t_pvalue = 0.0``, the limit as the
    variance vanishes; ``n = 1`` gives NaN p-values and interval.
    """
    x, y = _values(a, "a"), _values(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b must pair up, got {x.shape} and {y.shape}")
    d = x - y
    n = d.size
    mean, low, high = mean_ci(d, confidence)
    out = {"n": n, "mean_diff": mean, "ci_low": low, "ci_high": high}
    if n < 2:
        return {**out, "t_pvalue": float("nan"), "wilcoxon_pvalue": float("nan")}
    if not d.any():
        return {**out, "t_pvalue": 1.0, "wilcoxon_pvalue": 1.0}
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(abs(mean), np.finfo(float).tiny):
        t_p = 0.0
    else:
        t = mean / (sd / np.sqrt(n))
        t_p = float(2 * _st.t.sf(abs(t), n - 1))
    with warnings.catch_warnings():  # small samples with ties: scipy notes its approximation
        warnings.simplefilter("ignore")
        w_p = float(_st.wilcoxon(d).pvalue)
    return {**out, "t_pvalue": t_p, "wilcoxon_pvalue": w_p}

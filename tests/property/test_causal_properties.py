"""Hypothesis properties of kgrec.audit.causal.estimate_effect on random linear SCMs.

SCM: W ~ N(0,1), T = a W + e_T (or 1[a W + e_T > 0]), Y = beta T + c W + sigma e_Y; the graph is
built with ``causal_graph`` (W -> T, W -> Y, T -> Y). Each example runs DoWhy many times, so
``max_examples`` is fixed small here (it overrides the profile) and there is no deadline."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from kgrec.audit.causal import causal_graph, estimate_effect

EXAMPLES = settings(max_examples=10, deadline=None)
coef = st.floats(-2.0, 2.0, allow_nan=False).map(lambda x: round(x, 2))
seeds = st.integers(0, 2**31 - 1)


def scm(n: int, *, beta: float, a: float, c: float, sigma: float = 1.0, seed: int,
        binary: bool = False) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    w = r.normal(size=n)
    t = a * w + r.normal(size=n)
    if binary:
        t = (t > 0).astype(np.int64)
    return pd.DataFrame({"W": w, "T": t, "Y": beta * t + c * w + sigma * r.normal(size=n)})


def fit(df: pd.DataFrame, **kw):
    graph = causal_graph(treatment="T", outcome="Y", confounders=["W"])
    return estimate_effect(df, question="q", treatment="T", outcome="Y", graph=graph, **kw)


@EXAMPLES
@given(seed=seeds, n=st.integers(100, 1500), a=coef, c=coef,
       sigma=st.floats(0.1, 5.0).map(lambda x: round(x, 2)))
def test_ci_covers_a_zero_effect_in_most_replicates(seed, n, a, c, sigma) -> None:
    """With beta = 0, the 95% CI covers 0 in >= 33 of 40 independent replicates.

    The OLS t-interval is exact under this Gaussian SCM, so the coverage count is Binomial(40, 0.95)
    and P(count <= 32) = 7e-4: a correct estimator fails an example about once in 1,400, while a
    biased one (e.g. a graph that loses the confounder) covers 0 in almost none."""
    covered = 0
    for k in range(40):
        est = fit(scm(n, beta=0.0, a=a, c=c, sigma=sigma, seed=seed + k), refuters=(),
                  sensitivity=False)
        covered += est.ci_low <= 0.0 <= est.ci_high
    assert covered >= 33, f"CI covered 0 in only {covered}/40 replicates"


@EXAMPLES
@given(seed=seeds, n=st.integers(300, 1500), beta=st.floats(-3.0, 3.0).map(lambda x: round(x, 2)),
       a=coef, c=coef, binary=st.booleans())
def test_placebo_effect_is_about_zero(seed, n, beta, a, c, binary) -> None:
    """The mean placebo effect over 20 permutations is within 5 of its standard errors of 0.

    A permuted T' is independent of (W, Y), so its coefficient has standard deviation at most
    about s = sd(Y) / (sd(T) sqrt(n)) (for 0/1 T, sd(Y) sqrt(1/(n p) + 1/(n (1 - p))), the same
    expression), and the mean of 20 such runs sd <= s / sqrt(20). Binary examples use inverse
    propensity weighting, whose refits must re-estimate propensities for the placebo."""
    df = scm(n, beta=beta, a=a, c=c, seed=seed, binary=binary)
    method = "backdoor.propensity_score_weighting" if binary else "backdoor.linear_regression"
    est = fit(df, method=method, refuters=("placebo_treatment_refuter",), sensitivity=False,
              n_simulations=20, n_bootstrap=20, seed=seed)
    placebo = est.refutations[0]
    scale = df["Y"].std() / (df["T"].std() * np.sqrt(n))
    assert abs(placebo.new_effect) <= 5 * scale / np.sqrt(20), (placebo, scale)
    assert placebo.passed, placebo.detail


@EXAMPLES
@given(seed=seeds, beta=st.floats(-3.0, 3.0).map(lambda x: round(x, 2)), a=coef, c=coef)
def test_estimate_converges_as_n_grows(seed, beta, a, c) -> None:
    """Going from n = 500 to n = 20000 (x40): the CI half-width shrinks by about sqrt(40) = 6.3,
    and the mean absolute error over 8 replicates is smaller (failure chance ~1e-5 when correct)."""
    err = {500: [], 20000: []}
    half = {500: [], 20000: []}
    for k in range(8):
        for n, errors in err.items():
            est = fit(scm(n, beta=beta, a=a, c=c, seed=seed + 1000 * k + n), refuters=(),
                      sensitivity=False)
            errors.append(abs(est.estimate - beta))
            half[n].append((est.ci_high - est.ci_low) / 2)
    assert np.mean(err[20000]) < np.mean(err[500]), err
    ratio = np.mean(half[500]) / np.mean(half[20000])
    assert 0.75 * np.sqrt(40) <= ratio <= 1.33 * np.sqrt(40), ratio

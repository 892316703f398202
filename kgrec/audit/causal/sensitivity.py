"""Unobserved-confounder sensitivity of one estimate (reported, never judged).

For ``backdoor.linear_regression`` without effect modifiers: DoWhy's
``add_unobserved_common_cause(simulation_method="linear-partial-R2")`` (Cinelli & Hazlett 2020).
``robustness_value`` = the partial R^2 that a hidden confounder would need with both ``T`` and
``Y`` (given ``Z``) to bring the estimate to 0: with ``f = |t| / sqrt(dof)``,
``RV = (sqrt(f^4 + 4 f^2) - f^2) / 2``; ``robustness_value_alpha`` the same to make it
insignificant at ``1 - ci_level``. ``benchmarks`` gives the bias-adjusted estimate for a hidden
confounder ``k`` times as strong as each observed confounder (``k`` in ``BENCHMARK_FRACTIONS``).
Other estimators: DoWhy's direct simulation, one hidden ``U ~ N(0, 1)`` added with strength ``s``
in ``SIMULATION_STRENGTHS`` (``T += s * sd(T) * U`` and ``Y -= s * sd(Y) * U``; for a 0/1 treatment
``T`` is flipped with probability about ``s``), and the effect re-estimated at each ``s``.
Errors are recorded in ``sensitivity["error"]`` (or per benchmark row), never raised.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

BENCHMARK_FRACTIONS = (1.0, 2.0)
SIMULATION_STRENGTHS = (0.1, 0.25, 0.5)


def sensitivity(model: Any, estimand: Any, est: Any, df: pd.DataFrame, treatment: str, outcome: str,
                ci_level: float) -> dict:
    """The sensitivity analysis that fits DoWhy's estimator (see the module docstring); errors
    are recorded in the result, never raised."""
    from dowhy.causal_estimators.linear_regression_estimator import (
        LinearRegressionEstimator,
    )

    linear = isinstance(est.estimator, LinearRegressionEstimator) \
        and not est.estimator._effect_modifier_names
    name = "linear-partial-R2" if linear else "direct-simulation"
    try:
        if linear:
            with np.errstate(divide="ignore", invalid="ignore"):
                return _partial_r2(model, estimand, est, ci_level)
        return _direct_simulation(model, estimand, est, df, treatment, outcome)
    except Exception as err:  # noqa: BLE001 - sensitivity must never crash the audit
        return {"method": name, "error": f"{type(err).__name__}: {err}"}


def _partial_r2(model, estimand, est, ci_level: float) -> dict:
    """Cinelli-Hazlett robustness values, plus one benchmark row per (confounder, fraction)."""
    common: dict[str, Any] = {"method_name": "add_unobserved_common_cause",
                              "simulation_method": "linear-partial-R2",
                              "significance_level": 1.0 - ci_level, "plot_estimate": False}
    adjust = list(estimand.get_adjustment_set() or [])
    if not adjust:
        raise ValueError("linear-partial-R2 needs at least one observed confounder "
                         "(DoWhy benchmarks the hidden confounder against one)")
    # Robustness values do not depend on the benchmark; a 0x-strength benchmark cannot be
    # infeasible, so this call always yields them.
    base = model.refute_estimate(estimand, est, benchmark_common_causes=[adjust[0]],
                                 effect_fraction_on_treatment=[0.0],
                                 effect_fraction_on_outcome=[0.0], **common)
    s = base.stats  # (np.errstate below: DoWhy divides by 1 - r2yu_tw, which it clamps to 1)
    out: dict[str, Any] = {
        "method": "linear-partial-R2",
        "robustness_value": float(s["robustness_value"]),
        "robustness_value_alpha": float(s["robustness_value_alpha"]),
        "significance_level": 1.0 - ci_level,
        "partial_r2_treatment_outcome": float(s["r2yt_w"]),
        "t_statistic": float(s["t_statistic"]),
        "benchmarks": [],
    }
    for w in adjust:
        for k in BENCHMARK_FRACTIONS:
            row: dict[str, Any] = {"benchmark": str(w), "fraction": k}
            try:
                a = model.refute_estimate(estimand, est, benchmark_common_causes=[w],
                                          effect_fraction_on_treatment=[k],
                                          effect_fraction_on_outcome=[k], **common)
                b = a.benchmarking_results.iloc[0]
                row.update(r2tu_w=float(b["r2tu_w"]), r2yu_tw=float(b["r2yu_tw"]),
                           bias_adjusted_estimate=float(b["bias_adjusted_estimate"]),
                           bias_adjusted_ci=[float(b["bias_adjusted_lower_CI"]),
                                             float(b["bias_adjusted_upper_CI"])])
            except Exception as err:  # noqa: BLE001 - e.g. "r2tu_w can not be >= 1"
                row["error"] = f"{type(err).__name__}: {err}"
            out["benchmarks"].append(row)
    return out


def _direct_simulation(model, estimand, est, df: pd.DataFrame, treatment: str,
                       outcome: str) -> dict:
    t = df[treatment]
    binary = t.dtype == bool or set(pd.unique(t)) <= {0, 1}
    rows = []
    for s in SIMULATION_STRENGTHS:
        kt = s if binary else s * float(t.std())
        ky = s * float(df[outcome].std())
        r = model.refute_estimate(
            estimand, est, method_name="add_unobserved_common_cause",
            simulation_method="direct-simulation",
            confounders_effect_on_treatment="binary_flip" if binary else "linear",
            confounders_effect_on_outcome="linear", effect_strength_on_treatment=kt,
            effect_strength_on_outcome=ky)
        rows.append({"strength": s, "kappa_t": kt, "kappa_y": ky,
                     "new_effect": float(np.asarray(r.new_effect, dtype=float).ravel()[0])})
    return {"method": "direct-simulation", "rows": rows}

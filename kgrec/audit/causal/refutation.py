"""Refutation tests of one estimate, and their pass/fail rules.

Pass/fail rules (``h = (ci_high - ci_low) / 2``, the estimate's CI half-width)
------------------------------------------------------------------------------
* ``placebo_treatment_refuter`` (``placebo_type="permute"``: ``T`` is replaced by a row
  permutation of itself, which cuts every causal path from it, so the true placebo effect is 0).
  **Passes iff** ``|new_effect| <= h``, where ``new_effect`` is the mean placebo effect over
  ``n_simulations`` permutations. Under a correct pipeline the mean has standard error about
  ``se / sqrt(n_simulations)`` (``se`` the estimate's), so a pass is near-certain; a placebo that
  leaves an effect as large as the estimate's own uncertainty fails, whatever its spread.
  DoWhy's p-value (one-sided normal test of "0 lies in the placebo distribution") is reported
  but not used: it passes a large placebo effect if the placebo runs are noisy, and fails a
  negligible one if they are very tight.
* ``random_common_cause`` (an independent N(0, 1) column added to ``Z``) and
  ``data_subset_refuter`` (re-estimation on random ``subset_fraction`` subsets).
  **Pass iff** ``ci_low <= new_effect <= ci_high``: the mean re-estimate stays inside the
  estimate's confidence interval. With a correct, stable estimate the mean subset estimate
  moves by about ``se * sqrt((1/f - 1) / n_simulations)`` (0.11 se at f=0.8, 20 runs), far inside
  the CI. DoWhy's p-value (normal test of the original estimate against the runs' spread) is
  reported but not used: an effect carried by a few extreme rows gives a bimodal, wide spread of
  subset estimates, so it passes the p-value while the mean moves far out of the CI.
* :meth:`CausalEstimate.passed() <kgrec.audit.causal.estimate.CausalEstimate.passed>` is true
  iff every refutation passed. Sensitivity (:mod:`kgrec.audit.causal.sensitivity`) is reported,
  never judged (a robustness value is a statement about how strong a hidden confounder would
  have to be, not a test).

Each refuter runs ``n_simulations`` times with its own ``numpy.random.RandomState`` (an integer
``random_state`` would make every data-subset run draw the same subset); the placebo permutes
the treatment (DoWhy's default float placebo is a constant, std 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

REFUTERS = ("placebo_treatment_refuter", "random_common_cause", "data_subset_refuter")


@dataclass
class Refutation:
    """One refuter's outcome: the original ``estimate``, the mean ``new_effect`` over its runs,
    DoWhy's p-value (reported, not used), and ``passed`` by the rule in the module docstring."""

    name: str
    estimate: float
    new_effect: float
    p_value: float | None
    passed: bool
    detail: str


def judge_refutation(name: str, *, estimate: float, new_effect: float, ci_low: float,
                     ci_high: float) -> tuple[bool, str]:
    """Apply the module's pass/fail rule to one refuter's mean ``new_effect``: (passed, detail)."""
    half = (ci_high - ci_low) / 2.0
    if not math.isfinite(new_effect):
        return False, f"new effect is {new_effect}"
    if name == "placebo_treatment_refuter":
        ok = abs(new_effect) <= half
        return ok, (f"placebo effect {new_effect:.4g} {'within' if ok else 'outside'} "
                    f"+/-{half:.4g} (CI half-width) of 0")
    ok = ci_low <= new_effect <= ci_high
    rel = abs(new_effect - estimate) / abs(estimate) if estimate else float("inf")
    return ok, (f"new effect {new_effect:.4g} {'inside' if ok else 'outside'} CI "
                f"[{ci_low:.4g}, {ci_high:.4g}] (relative change {rel:.1%})")


def run_refuter(model: Any, estimand: Any, est: Any, name: str, value: float, ci_low: float, ci_high: float,
                n_simulations: int, subset_fraction: float, rs: np.random.RandomState,
                n_jobs: int) -> Refutation:
    """Run refuter ``name`` on DoWhy's ``model``/``estimand``/``est`` and judge its mean new effect."""
    kwargs: dict[str, Any] = {"num_simulations": n_simulations, "random_state": rs,
                              "n_jobs": n_jobs}
    if name == "placebo_treatment_refuter":
        kwargs["placebo_type"] = "permute"
    elif name == "data_subset_refuter":
        kwargs["subset_fraction"] = subset_fraction
    res = model.refute_estimate(estimand, est, method_name=name, **kwargs)
    new = float(np.asarray(res.new_effect, dtype=float).ravel()[0])
    p = None if res.refutation_result is None else res.refutation_result.get("p_value")
    ok, detail = judge_refutation(name, estimate=value, new_effect=new, ci_low=ci_low,
                                  ci_high=ci_high)
    return Refutation(name=name, estimate=value, new_effect=new,
                      p_value=None if p is None else float(p), passed=ok, detail=detail)

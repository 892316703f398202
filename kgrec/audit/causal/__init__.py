"""Causal effect of one treatment column on one outcome column, DoWhy's four steps.

:func:`estimate_effect` runs, on a pandas DataFrame and a causal DAG (``networkx.DiGraph``,
built by :func:`causal_graph`):

1. **model**     ``dowhy.CausalModel(data, treatment, outcome, graph)``;
2. **identify**  ``identify_effect(proceed_when_unidentifiable=True)``: the backdoor adjustment set
   ``Z`` read off the graph, estimand ``d/dT E[Y | T, Z]``;
3. **estimate**  ``estimate_effect(method)`` then ``get_confidence_intervals()``: for the default
   ``backdoor.linear_regression`` the OLS coefficient of ``T`` in ``Y ~ 1 + T + Z`` and its analytic
   t-interval; estimators without an analytic interval fall back to DoWhy's bootstrap
   (``n_bootstrap`` resamples);
4. **refute**    ``refute_estimate`` with bounded simulations, and optionally an
   unobserved-confounder sensitivity analysis.

One concept per module:

- :mod:`.graph`: the DAG (``W -> T``, ``W -> Y``, ``T -> Y``) and its acyclicity check;
- :mod:`.estimate`: :class:`CausalEstimate` and :func:`estimate_effect` (input checks, the
  four steps);
- :mod:`.refutation`: :class:`Refutation`, the refuters and their pass/fail rules
  (:func:`judge_refutation`);
- :mod:`.sensitivity`: the unobserved-confounder sensitivity analysis (reported, never judged);
- :mod:`.mediation`: :class:`MediationEstimate` and :func:`mediation_effects`: a treatment's effect
  split into natural direct and indirect effects (DoWhy's two-stage mediation regression, bootstrap
  CIs, refutations of both parts);
- :mod:`.dowhy_env`: how DoWhy is run (quiet logs, seeded global RNG, joblib backend) and the
  DoWhy pitfalls handled.
"""

from __future__ import annotations

from kgrec.audit.causal.estimate import CausalEstimate, estimate_effect
from kgrec.audit.causal.graph import causal_graph
from kgrec.audit.causal.mediation import Interval, MediationEstimate, mediation_effects, mediation_graph
from kgrec.audit.causal.refutation import REFUTERS, Refutation, judge_refutation
from kgrec.audit.causal.sensitivity import BENCHMARK_FRACTIONS, SIMULATION_STRENGTHS

__all__ = [
    "BENCHMARK_FRACTIONS",
    "REFUTERS",
    "SIMULATION_STRENGTHS",
    "CausalEstimate",
    "Interval",
    "MediationEstimate",
    "Refutation",
    "causal_graph",
    "estimate_effect",
    "judge_refutation",
    "mediation_effects",
    "mediation_graph",
]

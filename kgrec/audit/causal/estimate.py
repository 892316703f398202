"""One causal question answered: :func:`estimate_effect` and its :class:`CausalEstimate`.

The four steps (model, identify, estimate, refute) are described in :mod:`kgrec.audit.causal`;
the refuters' pass/fail rules in :mod:`.refutation`, the sensitivity analysis in
:mod:`.sensitivity`.

DoWhy pitfalls handled here: its default float placebo is a constant (std 0), so
``placebo_type="permute"`` is used; an integer ``random_state`` makes every data-subset run draw
the same subset, so each refuter gets its own ``numpy.random.RandomState``; propensity-score
estimators write a ``propensity_score`` column into the model's frame and later fits reuse it
instead of refitting (the placebo then inherits the real treatment's propensities and shows a
large spurious effect), so columns DoWhy adds during estimation are deleted before refuting;
a bool treatment is cast to 0/1 integers (DoWhy's binary flip fails on bool under pandas 3);
with ``n_jobs != 1`` joblib's process backend would copy that RandomState into every task
(identical runs), so the threading backend is used. The global NumPy RNG (used by DoWhy's
bootstrap and direct simulation) is seeded with ``seed`` during the call and restored afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from kgrec.audit.causal.dowhy_env import joblib_backend, quiet_dowhy, seeded_numpy
from kgrec.audit.causal.graph import check_acyclic
from kgrec.audit.causal.refutation import REFUTERS, Refutation, run_refuter
from kgrec.audit.causal.sensitivity import sensitivity as sensitivity_analysis
from kgrec.errors import DataError, SchemaError


@dataclass
class CausalEstimate:
    """The answer to one causal question. ``confounders`` is the adjustment set DoWhy used;
    ``[ci_low, ci_high]`` the ``ci_level`` interval (``ci_method`` "analytic" or "bootstrap")."""

    question: str
    treatment: str
    outcome: str
    confounders: list[str]
    method: str
    n: int
    estimate: float
    ci_low: float
    ci_high: float
    ci_level: float
    refutations: list[Refutation]
    sensitivity: dict | None
    identified_estimand: str
    seconds: float
    ci_method: str = "analytic"
    extra: dict[str, Any] = field(default_factory=dict)

    def passed(self) -> bool:
        """True iff every refutation passed (vacuously true with none)."""
        return all(r.passed for r in self.refutations)

    def to_dict(self) -> dict:
        """JSON-ready dict (plain floats, lists), with ``passed`` added."""
        d = asdict(self)
        d["passed"] = self.passed()
        return plain_json(d)


def estimate_effect(data: pd.DataFrame, *, question: str, treatment: str, outcome: str,
                    graph: nx.DiGraph, method: str = "backdoor.linear_regression",
                    ci_level: float = 0.95, refuters: Sequence[str] = REFUTERS,
                    sensitivity: bool = True, n_simulations: int = 20,
                    subset_fraction: float = 0.8, seed: int = 0, n_jobs: int = 1,
                    n_bootstrap: int = 200) -> CausalEstimate:
    """Model, identify, estimate and refute the average effect of ``treatment`` on ``outcome``.

    ``data``: one row per unit; the treatment, the outcome and the graph's observed nodes as
    columns (graph nodes absent from ``data`` are unobserved to DoWhy). The effect is per unit of
    ``treatment`` (control 0 -> treated 1). Each refuter runs ``n_simulations`` times; see
    :mod:`kgrec.audit.causal.refutation` for the rules. Deterministic for a fixed ``seed``.
    """
    t0 = time.perf_counter()
    _validate(data, treatment=treatment, outcome=outcome, graph=graph, ci_level=ci_level,
              refuters=refuters, n_simulations=n_simulations, subset_fraction=subset_fraction)
    from dowhy import CausalModel

    cols = [c for c in data.columns if c in graph.nodes]
    df = data[cols].reset_index(drop=True)  # a copy: DoWhy writes into the frame it is given
    if pd.api.types.is_bool_dtype(df[treatment]):
        # DoWhy's binary flip fails on a bool column under pandas 3
        df[treatment] = df[treatment].astype(np.int64)
    with quiet_dowhy(), seeded_numpy(seed), joblib_backend(n_jobs):
        model = CausalModel(data=df, treatment=treatment, outcome=outcome, graph=nx.DiGraph(graph))
        estimand = model.identify_effect(proceed_when_unidentifiable=True)
        # CIs are requested below, after cleaning the frame (the bootstrap refits on it too).
        est = model.estimate_effect(
            estimand, method_name=method, confidence_intervals=False,
            method_params={"confidence_level": ci_level, "num_simulations": n_bootstrap})
        if est.value is None:
            latent = sorted(str(v) for v in graph.nodes if v not in data.columns)
            raise SchemaError(f"DoWhy could not identify the effect of '{treatment}' on "
                              f"'{outcome}' with {method!r} from this graph"
                              + (f" (unobserved, not in the data: {latent})" if latent else ""),
                              field="graph")
        for extra in [c for c in df.columns if c not in cols]:
            del df[extra]  # e.g. propensity scores of the real treatment, which refits would reuse
        value = float(np.asarray(est.value).ravel()[0])
        # analytic where the estimator has one (OLS t-interval), else DoWhy's bootstrap
        ci = np.asarray(est.get_confidence_intervals(confidence_level=ci_level), dtype=float)
        ci = ci.ravel()
        ci_method = "analytic" if est.estimator._bootstrap_estimates is None else "bootstrap"
        ci_low, ci_high = float(min(ci[0], ci[1])), float(max(ci[0], ci[1]))
        seeds = np.random.SeedSequence(seed).spawn(len(refuters))
        results = [run_refuter(model, estimand, est, name, value, ci_low, ci_high, n_simulations,
                               subset_fraction, np.random.RandomState(ss.generate_state(1)[0]), n_jobs)
                   for name, ss in zip(refuters, seeds)]
        sens = sensitivity_analysis(model, estimand, est, df, treatment, outcome, ci_level) \
            if sensitivity else None
    try:
        estimand_text = estimand.__str__(only_target_estimand=True)
    except TypeError:  # pragma: no cover - older DoWhy
        estimand_text = str(estimand)
    return CausalEstimate(
        question=question, treatment=treatment, outcome=outcome,
        confounders=sorted(str(c) for c in (estimand.get_adjustment_set() or [])), method=method,
        n=len(df), estimate=value, ci_low=ci_low, ci_high=ci_high, ci_level=ci_level,
        refutations=results, sensitivity=sens, identified_estimand=estimand_text.strip(),
        seconds=time.perf_counter() - t0, ci_method=ci_method)


def _validate(data: pd.DataFrame, *, treatment: str, outcome: str, graph: nx.DiGraph,
              ci_level: float, refuters: Sequence[str], n_simulations: int,
              subset_fraction: float) -> None:
    if not isinstance(graph, nx.DiGraph):
        raise SchemaError(f"graph must be a networkx.DiGraph, got {type(graph).__name__}",
                          field="graph")
    check_acyclic(graph)
    for role, col in (("treatment", treatment), ("outcome", outcome)):
        if col not in graph.nodes:
            raise SchemaError(f"{role} '{col}' is not a node of the causal graph", field="graph")
        if col not in data.columns:
            raise DataError(f"{role} column '{col}' is missing from the data", field=col)
        if not (pd.api.types.is_numeric_dtype(data[col]) or pd.api.types.is_bool_dtype(data[col])):
            raise DataError(f"{role} column '{col}' is not numeric ({data[col].dtype})", field=col)
    if treatment == outcome:
        raise SchemaError("treatment and outcome are the same column", field="treatment")
    if not nx.has_path(graph, treatment, outcome):
        raise SchemaError(f"the graph has no directed path {treatment} -> {outcome}; "
                          "its effect is 0 by assumption", field="graph")
    observed = [c for c in data.columns if c in graph.nodes]
    bad = [c for c in observed if data[c].isna().any()]
    if bad:
        raise DataError(f"missing values in column(s) {bad}; drop or impute them first",
                        field=bad[0])
    if len(data) < len(observed) + 3:
        raise DataError(f"{len(data)} rows are too few for {len(observed)} variables",
                        field=treatment)
    if data[treatment].nunique() < 2:
        raise DataError(f"treatment '{treatment}' is constant", field=treatment)
    if not 0.0 < ci_level < 1.0:
        raise SchemaError(f"ci_level must be in (0, 1), got {ci_level}", field="ci_level")
    if not 0.0 < subset_fraction < 1.0:
        raise SchemaError(f"subset_fraction must be in (0, 1), got {subset_fraction}",
                          field="subset_fraction")
    if n_simulations < 2:
        raise SchemaError(f"n_simulations must be >= 2, got {n_simulations}",
                          field="n_simulations")
    unknown = [r for r in refuters if r not in REFUTERS]
    if unknown:
        raise SchemaError(f"unknown refuter(s) {unknown}; known: {list(REFUTERS)}",
                          field="refuters")


def plain_json(x: Any) -> Any:
    """Plain JSON data: dict keys as strings, tuples as lists, numpy scalars as Python numbers."""
    if isinstance(x, dict):
        return {str(k): plain_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain_json(v) for v in x]
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    return x

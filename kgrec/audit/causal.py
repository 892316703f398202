"""Causal effect of one treatment column on one outcome column, DoWhy's four steps.

``estimate_effect`` runs, on a pandas DataFrame and a causal DAG (``networkx.DiGraph``):

1. **model**     ``dowhy.CausalModel(data, treatment, outcome, graph)``;
2. **identify**  ``identify_effect(proceed_when_unidentifiable=True)``: the backdoor adjustment set
   ``Z`` read off the graph, estimand ``d/dT E[Y | T, Z]``;
3. **estimate**  ``estimate_effect(method)`` then ``get_confidence_intervals()``: for the default
   ``backdoor.linear_regression`` the OLS coefficient of ``T`` in ``Y ~ 1 + T + Z`` and its analytic
   t-interval; estimators without an analytic interval fall back to DoWhy's bootstrap
   (``n_bootstrap`` resamples);
4. **refute**    ``refute_estimate`` with bounded simulations, and optionally an
   unobserved-confounder sensitivity analysis.

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
* ``CausalEstimate.passed()`` is true iff every refutation passed. Sensitivity is reported,
  never judged (a robustness value is a statement about how strong a hidden confounder would
  have to be, not a test).

Unobserved-confounder sensitivity
---------------------------------
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

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from kgrec.errors import DataError, SchemaError

REFUTERS = ("placebo_treatment_refuter", "random_common_cause", "data_subset_refuter")
BENCHMARK_FRACTIONS = (1.0, 2.0)
SIMULATION_STRENGTHS = (0.1, 0.25, 0.5)


def causal_graph(*, treatment: str, outcome: str, confounders: Sequence[str],
                 extra_edges: Sequence[tuple[str, str]] = ()) -> nx.DiGraph:
    """The DAG ``W -> T``, ``W -> Y`` for each confounder ``W``, ``T -> Y``, plus ``extra_edges``.

    Raises ``SchemaError(field="graph")`` naming the cycle if the result is not acyclic.
    """
    g = nx.DiGraph()
    g.add_nodes_from([treatment, outcome, *confounders])
    g.add_edge(treatment, outcome)
    for w in confounders:
        if w in (treatment, outcome):
            raise SchemaError(f"confounder '{w}' is the treatment or the outcome",
                              field="confounders")
        g.add_edge(w, treatment)
        g.add_edge(w, outcome)
    g.add_edges_from(extra_edges)
    _check_acyclic(g)
    return g


def _check_acyclic(g: nx.DiGraph) -> None:
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return
    path = " -> ".join([str(u) for u, _ in cycle] + [str(cycle[0][0])])
    raise SchemaError(f"causal graph has a cycle: {path}", field="graph")


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
        return _jsonable(d)


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


def estimate_effect(data: pd.DataFrame, *, question: str, treatment: str, outcome: str,
                    graph: nx.DiGraph, method: str = "backdoor.linear_regression",
                    ci_level: float = 0.95, refuters: Sequence[str] = REFUTERS,
                    sensitivity: bool = True, n_simulations: int = 20,
                    subset_fraction: float = 0.8, seed: int = 0, n_jobs: int = 1,
                    n_bootstrap: int = 200) -> CausalEstimate:
    """Model, identify, estimate and refute the average effect of ``treatment`` on ``outcome``.

    ``data``: one row per unit; the treatment, the outcome and the graph's observed nodes as
    columns (graph nodes absent from ``data`` are unobserved to DoWhy). The effect is per unit of
    ``treatment`` (control 0 -> treated 1). Each refuter runs ``n_simulations`` times; see the
    module docstring for the rules. Deterministic for a fixed ``seed``.
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
    with _quiet_dowhy(), _seeded_numpy(seed), _joblib_backend(n_jobs):
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
        results = [_refute(model, estimand, est, name, value, ci_low, ci_high, n_simulations,
                           subset_fraction, np.random.RandomState(ss.generate_state(1)[0]), n_jobs)
                   for name, ss in zip(refuters, seeds)]
        sens = _sensitivity(model, estimand, est, df, treatment, outcome, ci_level) \
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


def _refute(model, estimand, est, name: str, value: float, ci_low: float, ci_high: float,
            n_simulations: int, subset_fraction: float, rs: np.random.RandomState,
            n_jobs: int) -> Refutation:
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


def _sensitivity(model, estimand, est, df: pd.DataFrame, treatment: str, outcome: str,
                 ci_level: float) -> dict:
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


def _validate(data: pd.DataFrame, *, treatment: str, outcome: str, graph: nx.DiGraph,
              ci_level: float, refuters: Sequence[str], n_simulations: int,
              subset_fraction: float) -> None:
    if not isinstance(graph, nx.DiGraph):
        raise SchemaError(f"graph must be a networkx.DiGraph, got {type(graph).__name__}",
                          field="graph")
    _check_acyclic(graph)
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


class _DropNormalTestNotice(logging.Filter):
    """DoWhy warns on every refutation with < 100 runs that its p-value assumes normality;
    the p-value is reported, not judged, so the notice is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "We assume a Normal Distribution" not in record.getMessage()


@contextlib.contextmanager
def _quiet_dowhy() -> Iterator[None]:
    root, refuter = logging.getLogger("dowhy"), logging.getLogger("dowhy.causal_refuter")
    level, flt = root.level, _DropNormalTestNotice()
    root.setLevel(logging.WARNING)
    refuter.addFilter(flt)
    try:
        with warnings.catch_warnings():
            # CausalModel warns (UserWarning) about graph nodes that are not data columns;
            # they are unobserved by design, and identification reports what that implies.
            warnings.filterwarnings("ignore", message=".*not in the data.*", module="dowhy")
            yield
    finally:
        refuter.removeFilter(flt)
        root.setLevel(level)


@contextlib.contextmanager
def _seeded_numpy(seed: int) -> Iterator[None]:
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextlib.contextmanager
def _joblib_backend(n_jobs: int) -> Iterator[None]:
    if n_jobs == 1:
        yield
        return
    from joblib import parallel_config

    with parallel_config(backend="threading"):
        yield


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    return x

r"""How much of a treatment's effect runs through mediators: DoWhy's mediation analysis.

:func:`mediation_effects` splits the total effect of a binary treatment ``T`` (0 -> 1) on an
outcome ``Y`` into a **natural indirect effect** (NIE, the part that runs through the mediators
``M_1..M_k``) and a **natural direct effect** (NDE, the rest), adjusting for confounders ``W``.
The causal graph (``networkx.DiGraph``) is ``T -> M_j -> Y``, ``T -> Y`` and ``W -> {T, M_j, Y}``.

The linear model behind DoWhy's ``mediation.two_stage_regression`` (no T x M interaction)::

    M_j = a_j0 + a_j T + A_j W + u_j             (first stage, one per mediator; the u_j may correlate)
    Y   = b_0 + delta T + sum_j b_j M_j + B W + e (second stage)

    NIE = sum_j a_j b_j,   NDE = delta,   total effect TE = NDE + NIE,   share mediated = NIE / TE

(in the sample, the OLS coefficient of ``T`` in ``Y ~ 1 + T + W`` equals ``delta_hat + sum_j
a_j_hat b_j_hat`` exactly, so the decomposition adds up).

DoWhy's steps (DoWhy 0.14): ``CausalModel(...).identify_effect(estimand_type=NONPARAMETRIC_NIE)``
(and ``NONPARAMETRIC_NDE``) with minimal backdoor adjustment, then ``estimate_effect(...,
method_name="mediation.two_stage_regression", method_params={"first_stage_model":
LinearRegressionEstimator, "second_stage_model": LinearRegressionEstimator})``; the total effect
is DoWhy's ``backdoor.linear_regression`` of the same model. DoWhy 0.14 estimates mediation
through **one** mediator at a time (its two-stage regressor raises for more), so each mediator's
NIE_j = a_j b_j is estimated on the graph in which the other mediators enter the outcome stage as
adjustment variables (edges ``M_other -> M_j``, ``M_other -> Y``); its identified sets are then
``W`` for the first stage and ``{T} + W + other mediators`` for the second, the model's. The joint
NDE is DoWhy's NDE for the first mediator (``TE - NIE_1``) minus the other mediators' NIEs.
Effect modifiers are switched off (``effect_modifiers=[]``): DoWhy would otherwise read the other
mediators as modifiers and add ``T x M`` terms.

Confidence intervals: a percentile bootstrap over rows (units), ``n_boot`` resamples, all
effects and the share from the **same** resamples (DoWhy's own bootstrap resamples each estimate
separately, which cannot give an interval for NIE / TE). Each replicate refits the regressions
DoWhy identified, in closed form with numpy (two least-squares fits, ~0.5 ms for 1,000 rows;
DoWhy's pandas path costs ~25 ms per two-stage estimate); on the full sample the closed form must
reproduce DoWhy's NDE, NIEs and total to 1e-8 (relative to their size), or the call raises
(``dowhy_agreement`` in the result; a unit test also checks a bootstrap replicate against DoWhy
refitted on the same resample).

Refutations of the NDE and of the NIE, each judged by the rules of
:mod:`kgrec.audit.causal.refutation` against its own CI (``n_simulations`` runs each):
``placebo_treatment_refuter`` (``T`` permuted: both effects must vanish),
``random_common_cause`` (an independent N(0, 1) column added to ``W``) and ``data_subset_refuter``
(``subset_fraction`` of the rows). DoWhy's ``refute_estimate`` does not reach its mediation
estimator in 0.14 (it reads the estimand's default backdoor set, which a mediation estimand leaves
unset, and raises; with that set patched, the placebo and random-common-cause refutations re-use
the stage models' original treatment and adjustment columns and return the estimate unchanged),
so the three designs are run here on the same closed-form refits.

Assumptions, in plain words (none can be checked from the data):

1. no unmeasured common cause of the treatment and the outcome, nor of the treatment and a
   mediator, other than ``W``;
2. no unmeasured common cause of a mediator and the outcome (e.g. a user's taste that drives both
   how much they interact and how well they are served): if there is one, the split between
   NDE and NIE is biased, even when the treatment is randomised; this is the assumption a
   mediation analysis most often fails (sequential ignorability is 1 and 2 together);
3. nothing the treatment causes confounds the mediators and the outcome (no mediator-outcome
   confounder affected by the treatment);
4. the effects are linear and the same at every mediator level (no T x M interaction);
5. the treatment is binary and both groups occur.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from kgrec.audit.causal.dowhy_env import quiet_dowhy, seeded_numpy
from kgrec.audit.causal.estimate import plain_json
from kgrec.audit.causal.graph import check_acyclic
from kgrec.audit.causal.refutation import REFUTERS, Refutation, judge_refutation
from kgrec.errors import DataError, SchemaError

METHOD = "mediation.two_stage_regression"
BACKDOOR_METHOD = "minimal-adjustment"
AGREEMENT_TOL = 1e-8
EFFECTS = ("total_effect", "natural_direct_effect", "natural_indirect_effect")


@dataclass
class Interval:
    """A point estimate and its ``[ci_low, ci_high]`` interval (NaN when undefined)."""

    estimate: float
    ci_low: float
    ci_high: float

    def covers(self, value: float) -> bool:
        return bool(self.ci_low <= value <= self.ci_high)

    def to_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high}


@dataclass
class MediationEstimate:
    """The mediation analysis of one treatment (module docstring). Effects are in outcome units
    per unit of treatment (control 0 -> treated 1); ``share_mediated`` = NIE / TE (NaN when the
    total is 0); ``indirect_by_mediator`` the NIE_j = a_j b_j with ``first_stage`` a_j (effect of T
    on M_j) and ``second_stage`` b_j (effect of M_j on Y given T, the other mediators and W).
    ``refutations`` maps ``natural_direct_effect`` / ``natural_indirect_effect`` to their tests."""

    treatment: str
    mediators: list[str]
    outcome: str
    confounders: list[str]
    n: int
    n_treated: int
    ci_level: float
    n_boot: int
    total_effect: Interval
    natural_direct_effect: Interval
    natural_indirect_effect: Interval
    share_mediated: Interval
    indirect_by_mediator: dict[str, Interval]
    first_stage: dict[str, float]
    second_stage: dict[str, float]
    refutations: dict[str, list[Refutation]]
    adjustment_sets: dict[str, list[str]]
    identified_estimands: dict[str, str]
    dowhy_agreement: float
    seconds: float
    method: str = METHOD
    ci_method: str = "percentile bootstrap over rows"

    def passed(self) -> bool:
        """True iff every refutation of the NDE and the NIE passed."""
        return all(r.passed for rs in self.refutations.values() for r in rs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (plain floats; NaN stays NaN for the report's writer), with ``passed``."""
        d = asdict(self)
        d["passed"] = self.passed()
        return plain_json(d)


def mediation_effects(df: pd.DataFrame, *, treatment: str, mediators: Sequence[str], outcome: str,
                      confounders: Sequence[str] = (), n_boot: int = 200, n_simulations: int = 20,
                      seed: int = 0, ci_level: float = 0.95, subset_fraction: float = 0.8) -> MediationEstimate:
    """NDE, NIE (joint and per mediator), total effect and share mediated of ``treatment`` on
    ``outcome`` through ``mediators``, adjusted for ``confounders`` (module docstring).

    ``df``: one row per unit, numeric columns; ``treatment`` 0/1 (or bool) with both values
    present. ``n_boot`` bootstrap resamples (>= 10) give the ``ci_level`` percentile intervals;
    each refuter runs ``n_simulations`` (>= 2) times. Deterministic for a fixed ``seed``.
    Raises DataError (field: the column) for missing, non-numeric, NaN or constant columns and a
    non-binary treatment; SchemaError for bad arguments.
    """
    t0 = time.perf_counter()
    ms, ws = list(mediators), list(confounders)
    _validate(df, treatment=treatment, mediators=ms, outcome=outcome, confounders=ws, n_boot=n_boot,
              n_simulations=n_simulations, ci_level=ci_level, subset_fraction=subset_fraction)
    data = df[[treatment, *ms, outcome, *ws]].reset_index(drop=True).astype(np.float64)
    data[treatment] = data[treatment].astype(np.int64)
    t, m, y = data[treatment].to_numpy(np.float64), data[ms].to_numpy(), data[outcome].to_numpy()
    w = data[ws].to_numpy() if ws else np.empty((len(data), 0))
    with quiet_dowhy(), seeded_numpy(seed):
        dw = _dowhy_point(data, treatment, ms, outcome, ws)
    point, a, b = _effects(t, m, y, w, with_stages=True)
    want = np.array([dw["total"], dw["nde"], *(dw["nie"][j] for j in ms)])
    agreement = float(np.max(np.abs(point - want)))
    if agreement > AGREEMENT_TOL * (1.0 + float(np.max(np.abs(want)))):
        raise RuntimeError(f"closed-form refit disagrees with DoWhy by {agreement:.3g} (DoWhy {want.tolist()}, "
                           f"refit {point.tolist()}); adjustment sets {dw['sets']}")
    boot_rng, *ref_rngs = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(1 + len(REFUTERS)))
    draws = np.array([_effects(t[i], m[i], y[i], w[i]) for i in _resamples(boot_rng, t, n_boot)])
    alpha = (1.0 - ci_level) / 2.0
    lo, hi = np.quantile(draws, [alpha, 1.0 - alpha], axis=0)
    nie_draws = draws[:, 2:].sum(axis=1)
    nie = float(point[2:].sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        share_draws = nie_draws / draws[:, 0]
    share_draws = share_draws[np.isfinite(share_draws)]
    share = Interval(nie / float(point[0]) if point[0] != 0 else float("nan"),
                     *(np.quantile(share_draws, [alpha, 1.0 - alpha]).tolist() if len(share_draws) else
                       [float("nan")] * 2))
    nie_ci = np.quantile(nie_draws, [alpha, 1.0 - alpha])
    effects = {"total_effect": Interval(float(point[0]), float(lo[0]), float(hi[0])),
               "natural_direct_effect": Interval(float(point[1]), float(lo[1]), float(hi[1])),
               "natural_indirect_effect": Interval(nie, float(nie_ci[0]), float(nie_ci[1]))}
    refutations = _refute(t, m, y, w, effects, n_simulations, subset_fraction, ref_rngs)
    return MediationEstimate(
        treatment=treatment, mediators=ms, outcome=outcome, confounders=ws, n=len(t), n_treated=int(t.sum()),
        ci_level=ci_level, n_boot=n_boot, **effects, share_mediated=share,
        indirect_by_mediator={j: Interval(float(point[2 + k]), float(lo[2 + k]), float(hi[2 + k]))
                              for k, j in enumerate(ms)},
        first_stage={j: float(a[k]) for k, j in enumerate(ms)},
        second_stage={j: float(b[k]) for k, j in enumerate(ms)},
        refutations=refutations, adjustment_sets=dw["sets"], identified_estimands=dw["estimands"],
        dowhy_agreement=agreement, seconds=time.perf_counter() - t0)


def mediation_graph(*, treatment: str, mediator: str, outcome: str, other_mediators: Sequence[str] = (),
                    confounders: Sequence[str] = ()) -> nx.DiGraph:
    """The DAG DoWhy is given for one mediator: ``T -> M -> Y``, ``T -> Y``, ``W -> {T, M, Y, M_other}``
    and, for each other mediator, ``M_other -> M`` and ``M_other -> Y`` (so DoWhy adjusts the
    outcome stage for them; module docstring)."""
    g = nx.DiGraph()
    g.add_nodes_from([treatment, mediator, outcome, *other_mediators, *confounders])
    g.add_edges_from([(treatment, mediator), (mediator, outcome), (treatment, outcome)])
    for o in other_mediators:
        g.add_edges_from([(o, mediator), (o, outcome)])
    for c in confounders:
        g.add_edges_from([(c, treatment), (c, mediator), (c, outcome), *((c, o) for o in other_mediators)])
    check_acyclic(g)
    return g


def _dowhy_point(data: pd.DataFrame, t: str, ms: list[str], y: str, ws: list[str]) -> dict[str, Any]:
    """DoWhy's NIE per mediator, NDE (joint) and total effect, with the adjustment sets and estimands."""
    from dowhy import CausalModel
    from dowhy.causal_estimators.linear_regression_estimator import LinearRegressionEstimator
    from dowhy.causal_identifier import EstimandType

    params = {"first_stage_model": LinearRegressionEstimator, "second_stage_model": LinearRegressionEstimator}
    out: dict[str, Any] = {"nie": {}, "sets": {}, "estimands": {}}
    nde_first = float("nan")
    for k, j in enumerate(ms):
        others = [o for o in ms if o != j]
        graph = mediation_graph(treatment=t, mediator=j, outcome=y, other_mediators=others, confounders=ws)
        model = CausalModel(data=data, treatment=t, outcome=y, graph=graph)
        kinds = [EstimandType.NONPARAMETRIC_NIE] + ([EstimandType.NONPARAMETRIC_NDE] if k == 0 else [])
        for kind in kinds:
            estimand = model.identify_effect(estimand_type=kind, method_name=BACKDOOR_METHOD)
            if list(estimand.mediator_variables or []) != [j]:
                raise RuntimeError(f"DoWhy identified mediator(s) {estimand.mediator_variables}, expected ['{j}']")
            first = sorted(estimand.mediation_first_stage_confounders["backdoor"])
            second = sorted(estimand.mediation_second_stage_confounders["backdoor"])
            if first != sorted(ws) or second != sorted([t, *others, *ws]):
                raise RuntimeError(f"DoWhy identified adjustment sets {first} (first stage) and {second} "
                                   f"(second stage) for mediator '{j}'; expected {sorted(ws)} and "
                                   f"{sorted([t, *others, *ws])}")
            est = model.estimate_effect(estimand, method_name=METHOD, method_params=params,
                                        effect_modifiers=[], confidence_intervals=False)
            if kind == EstimandType.NONPARAMETRIC_NIE:
                out["nie"][j] = float(est.value)
                out["sets"][f"first_stage:{j}"], out["sets"][f"second_stage:{j}"] = first, second
                out["estimands"][f"nie:{j}"] = str(estimand.estimands["mediation"]["estimand"])
            else:
                nde_first = float(est.value)
                out["estimands"][f"nde:{j}"] = str(estimand.estimands["mediation"]["estimand"])
        if k == 0:
            ate = model.identify_effect(method_name=BACKDOOR_METHOD)
            out["sets"]["total"] = sorted(ate.get_backdoor_variables())
            if out["sets"]["total"] != sorted(ws):
                raise RuntimeError(f"DoWhy identified {out['sets']['total']} for the total effect; "
                                   f"expected {sorted(ws)}")
            out["total"] = float(model.estimate_effect(ate, method_name="backdoor.linear_regression",
                                                       effect_modifiers=[], confidence_intervals=False).value)
            out["estimands"]["total"] = str(ate.estimands["backdoor"]["estimand"])
    out["nde"] = nde_first - sum(out["nie"][j] for j in ms[1:])
    return out


def _effects(t: np.ndarray, m: np.ndarray, y: np.ndarray, w: np.ndarray, *, with_stages: bool = False):
    """[TE, NDE, NIE_1..NIE_k] from the two regressions of the module docstring (OLS by lstsq):
    ``[Y, M] ~ 1 + T + W`` (total effect and first stages) and ``Y ~ 1 + T + M + W`` (second
    stage); NDE = TE - sum NIE_j. With ``with_stages`` also (a [k], b [k])."""
    ones = np.ones((len(t), 1))
    x1 = np.column_stack([ones, t, w])
    c1 = np.linalg.lstsq(x1, np.column_stack([y, m]), rcond=None)[0]
    c2 = np.linalg.lstsq(np.column_stack([ones, t, m, w]), y, rcond=None)[0]
    te, a, b = c1[1, 0], c1[1, 1:], c2[2:2 + m.shape[1]]
    nie = a * b
    out = np.concatenate([[te, te - nie.sum()], nie])
    return (out, a, b) if with_stages else out


def _resamples(rng: np.random.Generator, t: np.ndarray, n_boot: int, tries: int = 100):
    """``n_boot`` bootstrap index arrays, each with both treatment groups (redrawn otherwise)."""
    n = len(t)
    for _ in range(n_boot):
        for _ in range(tries):
            idx = rng.integers(0, n, n)
            k = t[idx].sum()
            if 0 < k < n:
                break
        else:  # pragma: no cover - only with a vanishing group, which _validate rejects
            raise DataError("bootstrap resamples keep losing one treatment group; it is too small", field="treatment")
        yield idx


def _refute(t, m, y, w, effects: dict[str, Interval], n_sim: int, fraction: float,
            rngs: list[np.random.Generator]) -> dict[str, list[Refutation]]:
    """The three refutation designs (module docstring) on closed-form refits, judged per effect."""
    n = len(t)
    out: dict[str, list[Refutation]] = {"natural_direct_effect": [], "natural_indirect_effect": []}
    for name, rng in zip(REFUTERS, rngs):
        runs = []
        for _ in range(n_sim):
            if name == "placebo_treatment_refuter":
                runs.append(_effects(t[rng.permutation(n)], m, y, w))
            elif name == "random_common_cause":
                runs.append(_effects(t, m, y, np.column_stack([w, rng.standard_normal(n)])))
            else:
                size = max(int(round(fraction * n)), 2)
                for _ in range(100):
                    idx = np.sort(rng.choice(n, size, replace=False))
                    if 0 < t[idx].sum() < size:
                        break
                runs.append(_effects(t[idx], m[idx], y[idx], w[idx]))
        runs_a = np.array(runs)
        new = {"natural_direct_effect": float(runs_a[:, 1].mean()),
               "natural_indirect_effect": float(runs_a[:, 2:].sum(axis=1).mean())}
        for key, value in new.items():
            e = effects[key]
            ok, detail = judge_refutation(name, estimate=e.estimate, new_effect=value, ci_low=e.ci_low,
                                          ci_high=e.ci_high)
            out[key].append(Refutation(name=name, estimate=e.estimate, new_effect=value, p_value=None, passed=ok,
                                       detail=detail))
    return out


def _validate(df: pd.DataFrame, *, treatment: str, mediators: list[str], outcome: str, confounders: list[str],
              n_boot: int, n_simulations: int, ci_level: float, subset_fraction: float) -> None:
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"data must be a pandas DataFrame, got {type(df).__name__}", field="data")
    if not mediators:
        raise SchemaError("at least one mediator is needed", field="mediators")
    roles = [("treatment", treatment), ("outcome", outcome), *(("mediator", c) for c in mediators),
             *(("confounder", c) for c in confounders)]
    names = [c for _, c in roles]
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise SchemaError(f"column(s) {dup} given in more than one role (treatment, outcome, mediators, "
                          f"confounders)", field="mediators" if dup[0] in mediators else "confounders")
    for role, col in roles:
        if col not in df.columns:
            raise DataError(f"{role} column '{col}' is missing from the data", field=col)
        s = df[col]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            raise DataError(f"{role} column '{col}' is not numeric ({s.dtype})", field=col)
        if s.isna().any():
            raise DataError(f"{role} column '{col}' has {int(s.isna().sum())} missing value(s); drop or impute "
                            f"them first", field=col)
        if s.nunique() < 2:
            raise DataError(f"{role} column '{col}' is constant", field=col)
    values = set(pd.unique(df[treatment].astype(np.float64)))
    if not values <= {0.0, 1.0}:
        raise DataError(f"treatment '{treatment}' must be 0/1 (a group against the rest), got values "
                        f"{sorted(values)[:5]}", field=treatment)
    n_min = min(int(df[treatment].astype(np.float64).sum()), int(len(df) - df[treatment].astype(np.float64).sum()))
    if n_min < 2 or len(df) < len(names) + 3:
        raise DataError(f"{len(df)} rows ({n_min} in the smaller treatment group) are too few for "
                        f"{len(names)} variables", field=treatment)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 10:
        raise SchemaError(f"n_boot must be an integer >= 10, got {n_boot!r}", field="n_boot")
    if isinstance(n_simulations, bool) or not isinstance(n_simulations, int) or n_simulations < 2:
        raise SchemaError(f"n_simulations must be an integer >= 2, got {n_simulations!r}", field="n_simulations")
    if not 0.0 < ci_level < 1.0:
        raise SchemaError(f"ci_level must be in (0, 1), got {ci_level}", field="ci_level")
    if not 0.0 < subset_fraction < 1.0:
        raise SchemaError(f"subset_fraction must be in (0, 1), got {subset_fraction}", field="subset_fraction")



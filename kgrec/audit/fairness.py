r"""Fairness audit: user-side disparities (Fairlearn), item-side exposure, and pass/fail gates.

**User side** (:func:`user_disparities`). Inputs are per-user metric values (``values``:
name → float [U], e.g. the ``per_user`` lists of :func:`kgrec.eval.evaluator.evaluate`) and
per-user attributes (``attributes``: name → [U] labels or codes). For every attribute, and
with ``intersections`` for every pair of attributes, one :class:`fairlearn.metrics.MetricFrame`
disaggregates the mean of each metric over the groups:

* metric ``m`` is passed to Fairlearn as the sample parameter ``value`` of the metric function
  :func:`mean_value` (``mean(value)``); ``y_true``/``y_pred`` carry nothing (zeros), because the
  thing aggregated is a per-user score, not a prediction. All metrics share one MetricFrame,
  so their bootstrap resamples are the same rows;
* group value :math:`\bar v_g` = mean over the users of group ``g``; several sensitive columns
  give the intersectional groups (``"gender=F & age=18-25"``); empty intersections are no group;
* difference = :math:`\max_g \bar v_g - \min_g \bar v_g` and ratio = :math:`\min_g \bar v_g /
  \max_g \bar v_g \in [0, 1]` (``MetricFrame.difference()``/``.ratio()``, ``between_groups``),
  over the groups with at least ``min_group_size`` users. Smaller groups are reported with
  ``small=True`` and listed in ``flagged_small`` but take no part in the difference/ratio;
  with fewer than two such groups both are NaN (nothing to compare). The ratio is defined
  as 1.0 when every compared group is at 0 (Fairlearn gives 0/0 = NaN);
* confidence intervals: Fairlearn's nonparametric bootstrap (``n_boot`` resamples of the users
  with replacement, ``random_state=seed``), percentile interval at ``ci_level``, for the group
  values (a MetricFrame over all known users) and for the difference/ratio (a MetricFrame over
  the users of the compared groups only). A group absent from every resample gets a NaN
  interval; a ratio interval is NaN if some resample has every compared group at 0.
  ``n_boot=0`` skips the bootstrap (all intervals NaN);
* missing attribute values (``None``, NaN, or the code ``-1``) form no group: those users are
  left out of that attribute's (or pair's) MetricFrame and counted in ``n_missing``.

Values must be finite and non-negative (ranking metrics are), or the ratio is meaningless.

**Item side** (:func:`exposure_fairness`). ``topk`` int [U, K] (best first) and ``relevant``
CSR [U, I] (held-out interactions, rows aligned with ``topk``). The exposure of item ``i`` is
:math:`e_i = \sum_u \sum_{j} w_j [\mathrm{topk}_{u,j} = i]` with position weight
:math:`w_j = 1/\log_2(j + 1)` for rank ``j = 1..K`` (``"log"``) or 1 (``"uniform"``); its
relevance :math:`r_i` is the number of users with ``i`` held out. For a group ``G`` of items,
exposure share :math:`E_G = \sum_{i \in G} e_i / \sum_i e_i`, relevance share
:math:`R_G = \sum_{i \in G} r_i / \sum_i r_i` (totals over *all* items, so items with a
missing group code keep their part, reported as ``missing_*_share``) and ratio
:math:`E_G / R_G` (1 = exposure proportional to relevance; ``inf`` when ``R_G = 0 < E_G``,
NaN when both are 0; ``min_ratio`` is the smallest non-NaN ratio). Groupings: ``popularity``
(``head`` = the ``round(head_share · I)`` items with the most training interactions, ties
broken by lower item id, clamped to ``[1, I-1]``; ``tail`` = the rest) and one per entry of
``item_groups`` (codes per item, ``-1``/NaN/None = missing). ``gini`` is
:func:`kgrec.metrics.beyond.gini_exposure` of the (unweighted) recommendation counts and
``long_tail_coverage`` the share of tail items recommended at least once; both are global
and repeated in every result.

**Gates** (:func:`gate`): the audit's one gate type (:mod:`kgrec.audit.gates`), ``value op
threshold`` with ``op`` in ``>=``/``<=``; a NaN value fails.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgrec.audit.gates import BOUNDS, Gate, GateSpec
from kgrec.audit.groups import group_order, labels_of, ordered
from kgrec.errors import DataError, SchemaError
from kgrec.metrics.beyond import gini_exposure, head_items
from kgrec.metrics.inputs import canonical_relevant, check_topk

POSITION_WEIGHTINGS = ("log", "uniform")
GATE_OPS = tuple(BOUNDS.values())  # the operators a plan can state: (">=", "<=")
NAN = float("nan")


# ----------------------------------------------------------------------------- user side
@dataclass
class GroupStat:
    """One group's mean metric value, its size and bootstrap CI; ``small``: n < min_group_size."""

    group: str
    n: int
    value: float
    ci_low: float
    ci_high: float
    small: bool


@dataclass
class DisparityResult:
    """One metric disaggregated by one attribute (or an intersection ``"a × b"``).

    ``difference``/``ratio`` and their CIs are over the non-small groups (NaN with fewer than
    two); ``overall`` is the mean over the users whose attribute value(s) are known;
    ``n_missing`` counts the users left out because a value is missing.
    """

    metric: str
    attribute: str
    groups: list[GroupStat]
    difference: float
    difference_ci: tuple[float, float]
    ratio: float
    ratio_ci: tuple[float, float]
    overall: float
    min_group_size: int
    flagged_small: list[str]
    n_missing: int = 0
    ci_level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["difference_ci"] = list(self.difference_ci)
        out["ratio_ci"] = list(self.ratio_ci)
        return out


def mean_value(y_true: np.ndarray, y_pred: np.ndarray, *, value: np.ndarray) -> float:
    """Fairlearn metric: the mean of the per-user sample parameter ``value`` (y_* unused)."""
    return float(np.mean(value))


def _missing(codes: np.ndarray) -> np.ndarray:
    """bool [n]: None, NaN or the code -1."""
    if codes.dtype.kind in "iu":
        return codes == -1
    if codes.dtype.kind == "f":
        return np.isnan(codes) | (codes == -1)
    if codes.dtype.kind == "O":
        return np.array([x is None or (isinstance(x, (int, float, np.number)) and not isinstance(x, bool)
                                       and (bool(np.isnan(x)) or x == -1)) for x in codes], dtype=bool)
    return np.zeros(codes.shape, dtype=bool)


def _check_values(values: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], int]:
    if not values:
        raise DataError("no per-user metric values given", field="values")
    out: dict[str, np.ndarray] = {}
    for name, v in values.items():
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("per-user values must be numbers", field=str(name)) from None
        if arr.ndim != 1 or arr.size == 0:
            raise DataError(f"per-user values must be a non-empty 1-D array, got shape {arr.shape}", field=str(name))
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise DataError("per-user values must be finite and non-negative", field=str(name))
        out[str(name)] = arr
    sizes = {a.size for a in out.values()}
    if len(sizes) > 1:
        raise DataError(f"per-user value arrays differ in length: {sorted(sizes)}", field="values")
    return out, sizes.pop()


def _frame(vals: dict[str, np.ndarray], sf: pd.DataFrame, n_boot: int, quantiles: list[float], seed: int):
    from fairlearn.metrics import MetricFrame

    n = len(sf)
    boot = {"n_boot": n_boot, "ci_quantiles": quantiles, "random_state": seed} if n_boot > 0 else {}
    with warnings.catch_warnings():  # empty intersection cells are NaN in every resample
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        return MetricFrame(metrics={m: mean_value for m in vals}, y_true=np.zeros(n), y_pred=np.zeros(n),
                           sensitive_features=sf, sample_params={m: {"value": v} for m, v in vals.items()}, **boot)


def _ci(mf, attr: str, metric: str, key: Any = None) -> tuple[float, float]:
    """(low, high) of a bootstrapped quantity: ``attr`` = by_group_ci / difference_ci / ratio_ci."""
    if mf is None or mf.n_boot is None:
        return NAN, NAN
    if attr == "by_group_ci":
        ends = [f.loc[key, metric] if key in f.index else NAN for f in mf.by_group_ci]
    else:
        ends = [s[metric] for s in getattr(mf, attr)("between_groups")]
    return float(ends[0]), float(ends[1])


def _disparities_for(cols: tuple[str, ...], vals: dict[str, np.ndarray], attrs: dict[str, np.ndarray],
                     min_group_size: int, n_boot: int, ci_level: float, seed: int) -> list[DisparityResult]:
    known = ~np.logical_or.reduce([_missing(attrs[c]) for c in cols])
    n_missing = int((~known).sum())
    attribute = " × ".join(cols)

    def empty(metric: str, groups: list[GroupStat], overall: float) -> DisparityResult:
        return DisparityResult(metric, attribute, groups, NAN, (NAN, NAN), NAN, (NAN, NAN), overall,
                               min_group_size, [g.group for g in groups if g.small], n_missing, ci_level)

    if not known.any():
        return [empty(m, [], NAN) for m in vals]
    sf = pd.DataFrame({c: ordered(labels_of(attrs[c][known])) for c in cols})
    kv = {m: v[known] for m, v in vals.items()}
    q = [(1 - ci_level) / 2, (1 + ci_level) / 2]
    full = _frame(kv, sf, n_boot, q, seed)
    sizes = sf.groupby(list(cols), sort=True, observed=True).size()
    large = sizes[sizes >= min_group_size]
    compare = None
    if len(large) >= 2:
        if len(large) == len(sizes):
            compare = full
        else:
            rows = sf.groupby(list(cols), observed=True)[cols[0]].transform("size").to_numpy() >= min_group_size
            compare = _frame({m: v[rows] for m, v in kv.items()}, sf[rows].reset_index(drop=True), n_boot, q, seed)

    out = []
    for m in vals:
        groups = []
        for key, n in sizes.items():
            parts = key if isinstance(key, tuple) else (key,)
            name = " & ".join(f"{c}={p}" for c, p in zip(cols, parts))
            lo, hi = _ci(full, "by_group_ci", m, key)
            groups.append(GroupStat(name, int(n), float(full.by_group.loc[key, m]), lo, hi, bool(n < min_group_size)))
        overall = float(full.overall[m])
        if compare is None:
            out.append(empty(m, groups, overall))
            continue
        if float(compare.group_max()[m]) == 0.0:  # every compared user at 0: equal, by definition
            ratio, ratio_ci = 1.0, (1.0, 1.0)
        else:
            ratio, ratio_ci = float(compare.ratio(method="between_groups")[m]), _ci(compare, "ratio_ci", m)
        out.append(DisparityResult(m, attribute, groups, float(compare.difference(method="between_groups")[m]),
                                   _ci(compare, "difference_ci", m), ratio, ratio_ci, overall, min_group_size,
                                   [g.group for g in groups if g.small], n_missing, ci_level))
    return out


def user_disparities(*, values: Mapping[str, np.ndarray], attributes: Mapping[str, np.ndarray],
                     intersections: bool = True, min_group_size: int = 30, n_boot: int = 200,
                     ci_level: float = 0.95, seed: int = 0) -> list[DisparityResult]:
    """Group disparities of per-user metrics (see the module docstring for the definitions).

    ``values``: metric name → float [U] (finite, ≥ 0); ``attributes``: attribute name → [U]
    labels or codes (None/NaN/-1 = missing). Returns one :class:`DisparityResult` per
    (attribute set, metric): each attribute alone in the given order, then (``intersections``)
    each pair ``"a × b"``; metrics in the order of ``values`` within each set.
    """
    vals, n = _check_values(values)
    if not attributes:
        raise DataError("no user attributes given", field="attributes")
    attrs: dict[str, np.ndarray] = {}
    for name, a in attributes.items():
        arr = np.asarray(a)
        if arr.shape != (n,):
            raise DataError(f"attribute has shape {arr.shape}, the values have {n} users", field=str(name))
        attrs[str(name)] = arr
    if int(min_group_size) != min_group_size or min_group_size < 1:
        raise SchemaError(f"min_group_size must be a positive integer, got {min_group_size!r}", field="min_group_size")
    if int(n_boot) != n_boot or n_boot < 0:
        raise SchemaError(f"n_boot must be a non-negative integer, got {n_boot!r}", field="n_boot")
    if not 0 < ci_level < 1:
        raise SchemaError(f"ci_level must lie in (0, 1), got {ci_level!r}", field="ci_level")
    sets: list[tuple[str, ...]] = [(a,) for a in attrs]
    if intersections:
        sets += list(itertools.combinations(attrs, 2))
    return [r for cols in sets for r in _disparities_for(cols, vals, attrs, int(min_group_size), int(n_boot),
                                                         float(ci_level), int(seed))]


# ----------------------------------------------------------------------------- item side
@dataclass
class ExposureGroup:
    """An item group's share of the exposure and of the held-out relevance, and their ratio."""

    group: str
    n_items: int
    exposure_share: float
    relevance_share: float
    ratio: float


@dataclass
class ExposureResult:
    """Exposure fairness of one item grouping (``"popularity"`` or an item attribute)."""

    grouping: str
    groups: list[ExposureGroup]
    gini: float
    long_tail_coverage: float
    min_ratio: float
    n_missing_items: int = 0
    missing_exposure_share: float = 0.0
    missing_relevance_share: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _share(part: float, total: float) -> float:
    return part / total if total > 0 else NAN


def _exposure_result(grouping: str, names: list[str], masks: list[np.ndarray], missing: np.ndarray,
                     exposure: np.ndarray, relevance: np.ndarray, gini: float, ltc: float) -> ExposureResult:
    te, tr = exposure.sum(), relevance.sum()
    groups = []
    for name, mask in zip(names, masks):
        es, rs = _share(exposure[mask].sum(), te), _share(relevance[mask].sum(), tr)
        ratio = es / rs if rs > 0 else (math.inf if es > 0 else NAN)
        groups.append(ExposureGroup(name, int(mask.sum()), es, rs, float(ratio)))
    ratios = [g.ratio for g in groups if not math.isnan(g.ratio)]
    return ExposureResult(grouping, groups, gini, ltc, min(ratios) if ratios else NAN, int(missing.sum()),
                          _share(exposure[missing].sum(), te), _share(relevance[missing].sum(), tr))


def exposure_fairness(*, topk: np.ndarray, relevant: sp.csr_matrix, item_counts: np.ndarray,
                      item_groups: Mapping[str, np.ndarray] | None = None, head_share: float = 0.2,
                      position_weighting: str = "log") -> list[ExposureResult]:
    """Exposure vs relevance shares of item groups (see the module docstring for the math).

    ``topk`` int [U, K]; ``relevant`` sparse [U, I] with the same rows; ``item_counts`` [I]
    training interactions per item; ``item_groups`` attribute name → codes [I]. Returns the
    ``popularity`` result first, then one per ``item_groups`` entry in its order.
    """
    if position_weighting not in POSITION_WEIGHTINGS:
        raise SchemaError(f"position_weighting must be one of {POSITION_WEIGHTINGS}, got {position_weighting!r}",
                          field="position_weighting")
    if not 0 < head_share < 1:
        raise SchemaError(f"head_share must lie in (0, 1), got {head_share!r}", field="head_share")
    if not sp.issparse(relevant):
        raise DataError("relevant must be a scipy.sparse matrix [users, items]", field="relevant")
    rel = canonical_relevant(relevant)
    n_items = rel.shape[1]
    counts = np.asarray(item_counts, dtype=np.float64)
    if counts.shape != (n_items,) or not np.isfinite(counts).all() or (counts < 0).any():
        raise DataError(f"item_counts must be {n_items} finite non-negative counts, got shape {counts.shape}",
                        field="item_counts")
    if n_items < 2:
        raise DataError("exposure fairness needs at least 2 items", field="relevant")
    try:
        top = check_topk(topk, n_items)
    except ValueError as e:
        raise DataError(str(e), field="topk") from None
    if top.shape[0] != rel.shape[0]:
        raise DataError(f"topk has {top.shape[0]} rows but relevant has {rel.shape[0]}", field="topk")

    k = top.shape[1]
    w = 1.0 / np.log2(np.arange(2, k + 2)) if position_weighting == "log" else np.ones(k)
    exposure = np.bincount(top.ravel(), weights=np.tile(w, top.shape[0]), minlength=n_items)
    relevance = np.bincount(rel.indices, minlength=n_items).astype(np.float64)
    recommended = np.bincount(top.ravel(), minlength=n_items) > 0

    head = head_items(counts, head_share)
    gini = gini_exposure(top, k, n_items)
    ltc = float(recommended[~head].mean())
    none = np.zeros(n_items, dtype=bool)
    out = [_exposure_result("popularity", ["head", "tail"], [head, ~head], none, exposure, relevance, gini, ltc)]
    for attr, codes in (item_groups or {}).items():
        arr = np.asarray(codes)
        if arr.shape != (n_items,):
            raise DataError(f"item group codes have shape {arr.shape}, expected ({n_items},)", field=str(attr))
        missing = _missing(arr)
        labels = np.empty(n_items, dtype=object)
        labels[~missing] = labels_of(arr[~missing])
        keys = sorted(set(labels[~missing].tolist()), key=group_order)
        masks = [~missing & (labels == key) for key in keys]
        out.append(_exposure_result(str(attr), [f"{attr}={key}" for key in keys], masks, missing,
                                    exposure, relevance, gini, ltc))
    return out


# ----------------------------------------------------------------------------- gates
def gate(name: str, value: float, *, threshold: float, op: str, detail: str = "") -> Gate:
    """The audit's :class:`~kgrec.audit.gates.Gate` with ``passed = value >= threshold``
    (``op=">="``) or ``value <= threshold`` (``op="<="``), boundary included, evaluated by
    its :class:`~kgrec.audit.gates.GateSpec`. A NaN value fails, with the reason appended to
    ``detail``; another operator or a NaN threshold is a :class:`SchemaError`."""
    if op not in GATE_OPS:
        raise SchemaError(f"gate op must be one of {GATE_OPS}, got {op!r}", field="op")
    try:
        spec = GateSpec(op, threshold)
    except ValueError as err:
        raise SchemaError(str(err), field="threshold") from None
    if math.isnan(float(value)):
        why = "value is NaN (not computable, e.g. fewer than two groups large enough to compare)"
        detail = f"{detail}; {why}" if detail else why
    return spec.evaluate(name=name, value=value, detail=detail)

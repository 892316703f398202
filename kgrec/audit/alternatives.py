"""Other rankings of the same test users, measured as the audited model is: the mitigation
sweep's re-ranking strengths (:mod:`kgrec.audit.mitigation`) and the non-profiling rankings
(:mod:`kgrec.audit.nonprofiling`).

For each ranking (its top-K lists of ``ctx.users``) :func:`measure` computes the headline
metrics (mean per-user NDCG@K, Recall@K) and every fairness gate value under the same names,
functions and plan as the fairness section, with 95% CIs:

* user-group ratios: Fairlearn's bootstrap (``MetricFrame(n_boot=...)``, as in the fairness
  section);
* NDCG@K, Recall@K and each item grouping's weakest exposure ratio: a percentile bootstrap
  over users, one resample of the users measuring every ranking, so the difference to the
  reference (the first ranking) is a *paired* CI as well;
* exposure Gini and long-tail coverage get no CI (:data:`NO_CI`): they count the distinct items
  in all lists, and a resample with repeated users holds fewer distinct lists, so their
  bootstrap distribution sits below the full-sample value (on MovieLens-100k the whole
  percentile interval of long-tail coverage lay under it). Their values and gates are exact
  for the audited users.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgrec.audit.context import AuditContext

CI_LEVEL = 0.95
ITEM_SIDE = ("exposure_ratio", "gini", "long_tail_coverage")
NO_CI = ("gini", "long_tail_coverage")  # set statistics: biased under resampling (module docstring)
NAN = float("nan")


@dataclass
class Measured:
    """One ranking's values, CIs, paired differences to the reference ranking (NaN where not
    bootstrapped) and gates. ``keys``: gate name → plan threshold key; ``passed``: gate name →
    whether the plan's threshold holds (None: the plan sets none)."""

    label: str
    values: dict[str, float]
    ci: dict[str, tuple[float, float]]
    diff: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    passed: dict[str, bool | None] = field(default_factory=dict)

    def item_side_passed(self) -> bool:
        """Every item-side gate the plan sets holds (exposure ratios, Gini, long-tail coverage)."""
        return all(p for n, p in self.passed.items() if p is not None and self.keys.get(n) in ITEM_SIDE)

    def names(self, side: str) -> list[str]:
        """Gate names of one side, ``"item"`` or ``"user"``, in the fairness section's order."""
        return [n for n, k in self.keys.items() if (k in ITEM_SIDE) == (side == "item")]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "values": self.values, "ci": {k: list(v) for k, v in self.ci.items()},
                "diff": {k: list(v) for k, v in self.diff.items()}, "passed": self.passed,
                "item_side_passed": self.item_side_passed()}


def ranked_context(ctx: AuditContext, topk: np.ndarray) -> AuditContext:
    """``ctx`` with another ranking of its users: ``topk`` [len(ctx.users), K] and its per-user metrics."""
    from kgrec.metrics.ranking import per_user

    k = ctx.plan.k
    per = {f"{m}@{k}": per_user(m, k, topk=topk, relevant=ctx.relevant) for m in ("ndcg", "recall")}
    return dataclasses.replace(ctx, topk=np.asarray(topk[:, :k], dtype=np.int64), per_user=per, timings={})


def _cheap(ctx: AuditContext, rows: np.ndarray) -> dict[str, float]:
    """The bootstrapped quantities of one ranking on the users ``rows``: headline metrics and item side."""
    from kgrec.audit.fairness_check import exposure_of
    from kgrec.audit.sections import fairness_gate_values

    k = ctx.plan.k
    out = {f"NDCG@{k}": float(ctx.per_user[f"ndcg@{k}"][rows].mean()),
           f"Recall@{k}": float(ctx.per_user[f"recall@{k}"][rows].mean())}
    out.update(fairness_gate_values([], exposure_of(ctx, rows)))
    return out


def _interval(samples: np.ndarray) -> tuple[float, float]:
    s = samples[np.isfinite(samples)]
    if s.size < 10:
        return NAN, NAN
    lo, hi = np.quantile(s, [(1 - CI_LEVEL) / 2, (1 + CI_LEVEL) / 2])
    return float(lo), float(hi)


def measure(ctx: AuditContext, rankings: Sequence[tuple[str, np.ndarray]], *, n_boot: int, seed: int,
            progress: Callable[[int], None] | None = None) -> list[Measured]:
    """Every ranking of ``rankings`` (``(label, topk)``, the reference first) measured on
    ``ctx``'s users (module docstring); ``progress(i)`` after each of the ``len(rankings) +
    n_boot`` steps."""
    from kgrec.audit.fairness_check import fairness_of, user_attributes
    from kgrec.audit.sections import fairness_gate_keys, fairness_gate_values

    attrs = user_attributes(ctx)
    ctxs = [ranked_context(ctx, topk) for _, topk in rankings]
    out: list[Measured] = []
    for step, ((label, _), c) in enumerate(zip(rankings, ctxs), 1):
        users, exposure = fairness_of(c, attrs, n_boot=n_boot)
        values = _cheap(c, np.arange(len(c.users)))
        values.update(fairness_gate_values(users, exposure))
        keys = fairness_gate_keys(users, exposure)
        ci = {name: (float(d.ratio_ci[0]), float(d.ratio_ci[1])) for name, d in
              zip([n for n, key in keys.items() if key == "user_ratio"], users)}
        passed = {}
        for name, key in keys.items():
            spec = ctx.plan.thresholds.get(key)
            passed[name] = None if spec is None else bool(spec.check(values[name]))
        out.append(Measured(label, values, ci, keys=keys, passed=passed))
        if progress is not None:
            progress(step)
    rng = np.random.default_rng(seed)
    n = len(ctx.users)
    samples: list[dict[str, list[float]]] = [{} for _ in ctxs]
    for b in range(n_boot):
        rows = rng.integers(0, n, n)
        for store, c in zip(samples, ctxs):
            for name, v in _cheap(c, rows).items():
                store.setdefault(name, []).append(v)
        if progress is not None:
            progress(len(ctxs) + b + 1)
    if n_boot == 0:
        for m in out:
            m.ci.update({name: (NAN, NAN) for name in m.values if name not in m.ci})
        return out
    ref = {name: np.asarray(v) for name, v in samples[0].items()}
    for m, store in zip(out, samples):
        for name, v in store.items():
            if m.keys.get(name) in NO_CI:
                m.ci[name], m.diff[name] = (NAN, NAN), (m.values[name] - out[0].values[name], NAN, NAN)
                continue
            arr = np.asarray(v)
            m.ci[name] = _interval(arr)
            d = m.values[name] - out[0].values[name]
            m.diff[name] = (d, *_interval(arr - ref[name])) if math.isfinite(d) else (NAN, NAN, NAN)
    return out


def fmt(x: float) -> str:
    """A value for a report cell: 4 decimals, "–" when missing or not finite."""
    return "–" if x is None or not math.isfinite(x) else f"{x:.4f}"


def cell(m: Measured, name: str, *, gate: bool = True) -> str:
    """``value [low, high]`` (no interval where none was computed), then PASS/FAIL when the
    plan gates ``name`` and ``gate``."""
    lo, hi = m.ci.get(name, (NAN, NAN))
    ci = f" [{fmt(lo)}, {fmt(hi)}]" if math.isfinite(lo) else ""
    p = m.passed.get(name) if gate else None
    return f"{fmt(m.values.get(name, NAN))}{ci}" + ("" if p is None else (" PASS" if p else " FAIL"))


"""``kgrec audit RUN --baseline OTHER``: the candidate run beside a baseline run, gate by gate and
metric by metric, with the difference and its 95% bootstrap CI.

Pairing. When both runs hold the same test users with the same held-out items (same data,
same split), every user-level quantity is compared *paired*: one bootstrap resample of the
users is drawn and both runs are measured on it, so the CI of the difference is that of a
paired design (much narrower than two independent CIs). Otherwise each run is resampled on
its own and the comparison says that it is unpaired.

What is bootstrapped. The headline metrics (mean per-user NDCG@K and Recall@K) and the
fairness gates that are averages over users: the 0.8-rule ratios (recomputed with Fairlearn on
the resample) and the weakest item group's exposure ratio. Exposure Gini and long-tail coverage
count distinct items over all lists, and a resample with repeated users holds fewer distinct
lists, so their resampled differences are biased (on MovieLens-100k the percentile interval of
the long-tail coverage difference barely reached the full-sample difference); like the causal
and explanation gates (model-level estimates with their own CIs in their sections), they are
compared by value and by pass/fail only.

A *regression* is a gate the baseline passes and the candidate fails, or a difference whose CI
lies wholly on the worse side of 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kgrec.audit.alternatives import NO_CI
from kgrec.audit.context import AuditContext
from kgrec.audit.gates import Gate
from kgrec.audit.report.model import Section, Table

CI_LEVEL = 0.95


@dataclass(frozen=True)
class Row:
    """One compared quantity; ``better`` is ``"higher"`` or ``"lower"``."""

    name: str
    kind: str  # "metric" | "gate"
    candidate: float
    baseline: float
    difference: float
    ci_low: float
    ci_high: float
    better: str
    candidate_passed: bool | None = None
    baseline_passed: bool | None = None

    @property
    def regression(self) -> bool:
        if self.baseline_passed and self.candidate_passed is False:
            return True
        return self.worse_significant

    @property
    def worse_significant(self) -> bool:
        if math.isnan(self.ci_low):
            return False
        return self.ci_high < 0 if self.better == "higher" else self.ci_low > 0

    @property
    def improved(self) -> bool:
        """Better with a CI clear of 0, or a gate the baseline fails and the candidate passes."""
        return self.better_significant or bool(self.candidate_passed and self.baseline_passed is False)

    @property
    def better_significant(self) -> bool:
        if math.isnan(self.ci_low):
            return False
        return self.ci_low > 0 if self.better == "higher" else self.ci_high < 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "regression": self.regression, "improved": self.improved}


def paired(a: AuditContext, b: AuditContext) -> bool:
    """Whether the two runs can be compared user by user: same test users (raw ids), same held-out items."""
    ua = a.run.dataset.nodes[a.run.dataset.schema.user_type].ids[a.users]
    ub = b.run.dataset.nodes[b.run.dataset.schema.user_type].ids[b.users]
    if len(ua) != len(ub) or not np.array_equal(ua.astype(str), ub.astype(str)):
        return False
    ia = a.run.dataset.nodes[a.run.dataset.schema.item_type].ids
    ib = b.run.dataset.nodes[b.run.dataset.schema.item_type].ids
    if len(ia) != len(ib) or not np.array_equal(ia.astype(str), ib.astype(str)):
        return False
    return a.relevant.shape == b.relevant.shape and (a.relevant != b.relevant).nnz == 0


def user_quantities(ctx: AuditContext, attrs: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, float]:
    """Every bootstrapped quantity of ``ctx`` on the users ``rows`` (indices into ``ctx.users``,
    repeats allowed): the headline metrics and the fairness gate values, named as in the report.
    ``attrs``: :func:`~kgrec.audit.fairness_check.user_attributes` of ``ctx``, computed once."""
    from kgrec.audit.fairness_check import fairness_of
    from kgrec.audit.sections import fairness_gate_values

    k = ctx.plan.k
    out = {f"NDCG@{k}": float(ctx.per_user[f"ndcg@{k}"][rows].mean()),
           f"Recall@{k}": float(ctx.per_user[f"recall@{k}"][rows].mean())}
    out.update(fairness_gate_values(*fairness_of(ctx, attrs, rows, n_boot=0)))
    return out


def _bootstrap(fn_a: Callable[[np.ndarray], dict[str, float]], n_a: int,
               fn_b: Callable[[np.ndarray], dict[str, float]], n_b: int, *, is_paired: bool, n_boot: int,
               seed: int, progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Differences candidate − baseline of every quantity over ``n_boot`` resamples."""
    rng = np.random.default_rng(seed)
    diffs: dict[str, list[float]] = {}
    for i in range(n_boot):
        ra = rng.integers(0, n_a, n_a)
        rb = ra if is_paired else rng.integers(0, n_b, n_b)
        qa, qb = fn_a(ra), fn_b(rb)
        for name in qa.keys() & qb.keys():
            diffs.setdefault(name, []).append(qa[name] - qb[name])
        if progress is not None:
            progress(i + 1)
    return {name: np.asarray(v, dtype=np.float64) for name, v in diffs.items()}


def compare(cand: AuditContext, base: AuditContext, cand_gates: list[Gate], base_gates: list[Gate], *,
            n_boot: int = 200, seed: int = 0,
            progress: Callable[[int], None] | None = None) -> tuple[list[Row], bool]:
    """Rows for the headline metrics and every gate of the candidate (the baseline's value NaN
    where its audit did not evaluate that gate); and whether the comparison is paired."""
    from kgrec.audit.fairness_check import user_attributes

    is_paired = paired(cand, base)
    attrs_a, attrs_b = user_attributes(cand), user_attributes(base)
    diffs = _bootstrap(lambda r: user_quantities(cand, attrs_a, r), len(cand.users),
                       lambda r: user_quantities(base, attrs_b, r), len(base.users), is_paired=is_paired,
                       n_boot=n_boot, seed=seed, progress=progress)
    q = [(1 - CI_LEVEL) / 2, (1 + CI_LEVEL) / 2]

    def ci(name: str) -> tuple[float, float]:
        d = diffs.get(name)
        d = d[np.isfinite(d)] if d is not None else None
        if d is None or d.size < max(10, n_boot // 2):
            return math.nan, math.nan
        lo, hi = np.quantile(d, q)
        return float(lo), float(hi)

    rows = []
    k = cand.plan.k
    for name, key in ((f"NDCG@{k}", f"ndcg@{k}"), (f"Recall@{k}", f"recall@{k}")):
        a, b = float(cand.per_user[key].mean()), float(base.per_user[key].mean())
        rows.append(Row(name, "metric", a, b, a - b, *ci(name), "higher"))
    by_name = {g.name: g for g in base_gates}
    for g in cand_gates:
        b = by_name.get(g.name)  # None: the baseline's audit could not evaluate it (e.g. no explanations)
        resampled = g.name in diffs and b is not None and g.key not in NO_CI
        lo, hi = ci(g.name) if resampled else (math.nan, math.nan)
        b_value = math.nan if b is None else b.value
        rows.append(Row(g.name, "gate", g.value, b_value, g.value - b_value, lo, hi,
                        "higher" if g.op == ">=" else "lower", g.passed, None if b is None else b.passed))
    return rows, is_paired


def comparison_section(cand: AuditContext, base: AuditContext, rows: list[Row], is_paired: bool,
                       n_boot: int) -> Section:
    """The report's side-by-side section (no gates of its own: regressions are flagged, not gated)."""
    def f(x: float) -> str:
        return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"

    def state(p: bool | None) -> str:
        return "–" if p is None else ("PASS" if p else "FAIL")

    table = [[r.name, f(r.candidate), state(r.candidate_passed), f(r.baseline), state(r.baseline_passed),
              "–" if math.isnan(r.difference) else f"{r.difference:+.4f}",
              "–" if math.isnan(r.ci_low) else f"[{f(r.ci_low)}, {f(r.ci_high)}]", r.better,
              "REGRESSION" if r.regression else ("better" if r.improved else "")]
             for r in sorted(rows, key=lambda r: (not r.regression, not r.improved))]
    worse = [r.name for r in rows if r.regression]
    better = [r.name for r in rows if r.improved]
    how = ("paired: both runs hold the same test users and held-out items, so one bootstrap resample of users "
           "measures both" if is_paired else
           "NOT paired: the runs' test users or held-out items differ (another split or data), so each run is "
           "resampled on its own and the intervals are wider")
    paragraphs = [
        f"Candidate {cand.run.path.name} ('{cand.run.config.model.name}') against baseline {base.run.path.name} "
        f"('{base.run.config.model.name}'). Differences are candidate − baseline with 95% bootstrap CIs over "
        f"{n_boot} resamples of users; the comparison is {how}.",
        "Better: " + (", ".join(better) if better else "nothing with a CI clear of 0") + ".",
        "Worse (regressions): " + (", ".join(worse) if worse else "none") + ".",
        "Causal and explanation gates, exposure Gini and long-tail coverage are compared by value only (the first "
        "two have their own CIs in their sections; the last two count distinct items, which resampling users "
        "biases); a gate "
        "the baseline's audit could not evaluate (e.g. explanations of a model without the explanation protocol) "
        "shows – for the baseline."]
    data = {"baseline_run": str(base.run.path), "paired": is_paired, "n_boot": n_boot,
            "rows": [r.to_dict() for r in rows], "better": better, "regressions": worse}
    return Section("comparison", f"Comparison with the baseline {base.run.path.name}", paragraphs,
                   [Table(["quantity", "candidate", "", "baseline", "", "difference", "95% CI", "better when",
                           "flag"], table, "Candidate vs baseline, regressions first")], [], [], data)

"""The non-profiling option (EU Digital Services Act, Art. 38) audited beside the model.

The rankings of :mod:`kgrec.models.nonprofiling` (``popular``; ``recent`` when the data set
has timestamps) are fitted on the run's training data, rank the same test users under the
same protocol (each user's training items masked), and are measured as the model is
(:mod:`kgrec.audit.alternatives`): accuracy, item exposure and user-group ratios with 95% CIs,
and the paired difference to the personalised model. ``kgrec evaluate RUN --ranking popular``
and ``"ranking": "popular"`` in a ``kgrec serve`` request use the same order; the evaluation
masks each user's training items (the protocol), the served list uses nothing about the user.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kgrec.audit.alternatives import Measured, cell, fmt, measure
from kgrec.audit.context import AuditContext
from kgrec.audit.report.model import Section, Table
from kgrec.errors import SchemaError


@dataclass
class NonProfilingResults:
    """The personalised model first, then each non-profiling ranking."""

    rankings: list[Measured]
    skipped: list[str] = field(default_factory=list)
    n_boot: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"rankings": [m.to_dict() for m in self.rankings], "skipped": self.skipped, "n_boot": self.n_boot}


def run_nonprofiling(ctx: AuditContext, progress: Callable[[int], None] | None = None) -> NonProfilingResults:
    from kgrec.models.nonprofiling import NON_PROFILING, non_profiling_model
    from kgrec.models.ranking import rank

    t0 = time.perf_counter()
    run, plan = ctx.run, ctx.plan
    exclude = run.heldout.exclusion(run.view, "test")
    rankings = [(f"personalised ({run.config.model.name})", ctx.topk)]
    skipped = []
    for kind in NON_PROFILING:
        try:
            model = non_profiling_model(kind, run.ctx)
        except SchemaError as err:  # e.g. "recent" on a data set without timestamps
            skipped.append(f"{kind}: {err.message}")
            continue
        rankings.append((f"non-profiling: {kind}", rank(model, ctx.users, plan.k, exclude)))
    n_boot = plan.mitigation.n_boot
    res = NonProfilingResults(measure(ctx, rankings, n_boot=n_boot, seed=plan.seeds[0], progress=progress),
                              skipped, n_boot)
    ctx.timings["nonprofiling"] = time.perf_counter() - t0
    return res


def nonprofiling_section(ctx: AuditContext, res: NonProfilingResults) -> Section:
    k = ctx.plan.k
    ndcg, recall = f"NDCG@{k}", f"Recall@{k}"
    ref = res.rankings[0]
    tables = []
    for names, caption in (([ndcg, recall, *ref.names("item")], "Accuracy and item exposure"),
                           (ref.names("user"), "User-group ratios (the 0.8 rule)")):
        if names:
            tables.append(Table(["ranking", *names], [[m.label, *[cell(m, n) for n in names]] for m in res.rankings],
                                f"{caption}: the personalised model and the non-profiling rankings "
                                "(value [95% CI], gate result)"))
    diffs = []
    for m in res.rankings[1:]:
        d = m.diff.get(ndcg, (math.nan,) * 3)
        diffs.append(f"'{m.label}' {d[0]:+.4f} {ndcg} [95% CI {fmt(d[1])}, {fmt(d[2])}]")
    paragraphs = [
        "Rankings not based on profiling (DSA Art. 38) use no one's history: items by training popularity "
        "('popular') or by popularity decayed with a 30-day half-life ('recent'), the same list for every user. "
        "They are offered per request in kgrec serve (\"ranking\": \"popular\"; the served list uses nothing about "
        "the user, not even to drop what they have seen) and per run in kgrec evaluate (--ranking popular). Measured "
        "here under the same protocol as the model (each user's training items masked), with 95% CIs from "
        f"{res.n_boot} bootstrap resamples of the test users (the difference to the model paired over them).",
        ("Against the personalised model: " + "; ".join(diffs) + ".") if diffs else "No non-profiling ranking ran.",
        *[f"Not run: {s}." for s in res.skipped]]
    return Section("nonprofiling", "Non-profiling option (DSA Art. 38)", paragraphs, tables, [], [], res.to_dict())

"""The mitigation sweep: the calibrated re-ranker (:mod:`kgrec.models.rerank`) at each strength
of the plan's ``mitigation.strengths``, measured as the model is (:mod:`kgrec.audit.alternatives`),
and the weakest setting that passes the plan's item-side gates, with its cost in accuracy.

The re-ranker calibrates each list's mix of item groups (popularity head/tail and the plan's
``item_groups``) to the user's own training history, on the model's top ``mitigation.pool``
candidates. Strength 0 is the model alone. The setting found here is what ``--set
rerank.method=calibrated --set rerank.strength=S`` switches on in ``kgrec evaluate`` and
``kgrec serve`` (and in a run's config, for ``kgrec audit``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kgrec.audit.alternatives import NO_CI, Measured, cell, fmt, measure
from kgrec.audit.context import AuditContext
from kgrec.audit.report.model import Figure, Section, Table


@dataclass
class Sweep:
    """One :class:`~kgrec.audit.alternatives.Measured` per strength (ascending, 0 first)."""

    strengths: list[float]
    settings: list[Measured]
    groupings: list[str]
    pool: int
    n_boot: int
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def weakest_passing(self) -> tuple[float, Measured] | None:
        """The smallest strength whose lists pass every item-side gate of the plan (None: none does)."""
        for s, m in zip(self.strengths, self.settings):
            if m.item_side_passed():
                return s, m
        return None

    def at(self, strength: float) -> Measured:
        return self.settings[self.strengths.index(strength)]

    def to_dict(self) -> dict[str, Any]:
        best = self.weakest_passing
        return {"strengths": self.strengths, "groupings": self.groupings, "pool": self.pool, "n_boot": self.n_boot,
                "settings": [m.to_dict() for m in self.settings],
                "weakest_passing": None if best is None else best[0], "seconds": self.seconds, "notes": self.notes}


def run_mitigation(ctx: AuditContext, progress: Callable[[int], None] | None = None) -> Sweep | None:
    """The sweep (module docstring); None when the plan sweeps nothing beyond strength 0
    (``mitigation.n_boot`` 0 still sweeps, without CIs)."""
    from kgrec.models.ranking import rank_reranked
    from kgrec.models.rerank import reranker_for

    t0 = time.perf_counter()
    plan, run = ctx.plan, ctx.run
    mit = plan.mitigation
    if len(mit.strengths) < 2:
        return None
    groupings = ["popularity", *plan.item_groups]
    base = reranker_for(run.dataset, run.ctx.item_counts, groupings=groupings, strength=0.0, pool=mit.pool,
                        head_share=plan.head_share)
    exclude = run.heldout.exclusion(run.view, "test")
    rankings = [(f"strength {s:g}", rank_reranked(run.model, ctx.users, plan.k, exclude, base.with_strength(s),
                                                  run.ctx.train)) for s in mit.strengths]
    settings = measure(ctx, rankings, n_boot=mit.n_boot, seed=plan.seeds[0], progress=progress)
    sweep = Sweep(list(mit.strengths), settings, groupings, mit.pool, mit.n_boot)
    if run.config.rerank.active:
        sweep.notes.append(f"The run is configured with re-ranking {run.config.rerank.label()}; the sweep starts from "
                           "the model alone (strength 0), so its first row differs from the audited lists.")
    sweep.seconds = time.perf_counter() - t0
    ctx.timings["mitigation"] = sweep.seconds
    return sweep


def mitigation_section(ctx: AuditContext, sweep: Sweep) -> Section:
    """Trade-off table and plot; names the weakest setting that passes and what it costs."""
    from kgrec.audit.report.plots import tradeoff_plot

    k = ctx.plan.k
    ndcg = f"NDCG@{k}"
    ref = sweep.settings[0]
    item_names, user_names = ref.names("item"), ref.names("user")
    rows = []
    for s, m in zip(sweep.strengths, sweep.settings):
        d = m.diff.get(ndcg, (math.nan, math.nan, math.nan))
        rows.append([f"{s:g}", cell(m, ndcg), f"{d[0]:+.4f} [{fmt(d[1])}, {fmt(d[2])}]" if s else "–",
                     *[cell(m, n) for n in item_names], "yes" if m.item_side_passed() else "no"])
    item_table = Table(["strength", f"{ndcg} [95% CI]", f"{ndcg} vs the model [95% CI]",
                        *[n if ref.keys.get(n) in NO_CI else f"{n} [95% CI]" for n in item_names],
                        "item-side gates pass"], rows,
                       "Accuracy and item-side exposure at each re-ranking strength (strength 0 = the model alone)")
    user_table = Table(["strength", *[f"{n} [95% CI]" for n in user_names]],
                       [[f"{s:g}", *[cell(m, n) for n in user_names]]
                        for s, m in zip(sweep.strengths, sweep.settings)],
                       "User-group ratios (the 0.8 rule) at each strength")
    best = sweep.weakest_passing
    weakest = [n for n in item_names if n.startswith("exposure/relevance ratio")][0]
    spec = ctx.plan.thresholds.get("exposure_ratio")
    points = [(f"{s:g}", m.values[weakest], *m.ci[weakest], m.values[ndcg], *m.ci[ndcg])
              for s, m in zip(sweep.strengths, sweep.settings)]
    fig = Figure(f"Trade-off: {ndcg} against the {weakest}",
                 tradeoff_plot(points, f"{ndcg} against exposure fairness, by re-ranking strength",
                               xlabel=weakest, ylabel=ndcg, xref=None if spec is None else spec.threshold,
                               highlight=None if best is None else f"{best[0]:g}"),
                 f"{ndcg} (y) against the {weakest} (x) at strengths {', '.join(f'{s:g}' for s in sweep.strengths)}, "
                 "with each setting's own 95% CIs; the paired cost against the model alone, much narrower, is in the table")
    paragraphs = [
        f"Mitigation tried: calibrated re-ranking (Steck 2018) of each user's top {sweep.pool} candidates, so that "
        f"each list's mix of item groups ({', '.join(sweep.groupings)}) moves towards the mix of the user's own "
        f"history. Strength 0 is the model alone, 1 ignores the model's scores. CIs: {sweep.n_boot} bootstrap "
        "resamples of the test users (paired for the difference to the model; Fairlearn's bootstrap for the "
        "user-group ratios). Exposure Gini and long-tail coverage have no CI: they count distinct items over all "
        "lists, and a resample with repeated users holds fewer distinct lists, which biases them.",
        _verdict(sweep, ndcg), *sweep.notes]
    return Section("mitigation", "Mitigation: exposure-aware re-ranking and its cost", paragraphs,
                   [item_table, user_table], [fig], [], sweep.to_dict())


def _verdict(sweep: Sweep, ndcg: str) -> str:
    best = sweep.weakest_passing
    if best is None:
        return (f"No strength tried (up to {max(sweep.strengths):g}) passes every item-side gate; a larger candidate "
                "pool or another mitigation is needed.")
    s, m = best
    if s == 0:
        return "The model alone already passes every item-side gate; no re-ranking is needed for them."
    d = m.diff[ndcg]
    return (f"The weakest setting that passes every item-side gate is strength {s:g} "
            f"(--set rerank.method=calibrated --set rerank.strength={s:g} --set rerank.pool={sweep.pool}). "
            f"It costs {d[0]:+.4f} {ndcg} [95% CI {fmt(d[1])}, {fmt(d[2])}] against the model alone "
            f"({fmt(sweep.settings[0].values[ndcg])} → {fmt(m.values[ndcg])}).")

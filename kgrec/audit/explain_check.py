"""The explanations section: Integrated Gradients, KG paths, faithfulness and robustness
(Captum's infidelity and max-sensitivity, :mod:`kgrec.audit.explain_robustness`) for a
sample of top-1 recommendations, and the relative importance of each signal (the "main
parameters" of the ranking, EU DSA Art. 27)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from kgrec.audit.context import AuditContext

if TYPE_CHECKING:
    from kgrec.models.base import KGRelation


@dataclass
class ExplainResults:
    """What the explanations found. ``supported`` is False (with a ``note``) for a model that
    does not declare the explanation protocol; ``relations`` are its KG relation paths with
    their learned weights (the transparency section's table)."""

    supported: bool
    explanations: list[Any] = field(default_factory=list)  # kgrec.audit.explain.Explanation
    relations: list[KGRelation] = field(default_factory=list)
    importance: dict[str, float] = field(default_factory=dict)  # share of Σ|attribution| by kind
    kind_words: dict[str, str] = field(default_factory=dict)  # what each scalar channel is, from the model
    max_relative_delta: float = float("nan")
    faithfulness_rate: float = float("nan")
    faithfulness_n: int = 0
    #: mean, median, max and n over the explanations (kgrec.audit.explain_robustness.summary)
    infidelity: dict[str, float | int] = field(default_factory=dict)
    max_sensitivity: dict[str, float | int] = field(default_factory=dict)
    robustness_settings: dict[str, Any] = field(default_factory=dict)  # RobustnessSettings.to_dict()
    note: str = ""


def run_explanations(ctx: AuditContext, *, progress: bool = True) -> ExplainResults:
    from tqdm.auto import tqdm

    from kgrec.audit.explain import (
        Explanation,
        faithfulness,
        integrated_gradients,
        kg_graph,
        masked_score,
        path_sentences,
        summarize,
    )
    from kgrec.audit.explain_robustness import RobustnessSettings, robustness, summary
    from kgrec.models.base import Explainable

    model, plan = ctx.run.model, ctx.plan.explanations
    if not isinstance(model, Explainable):
        return ExplainResults(False, note=f"model '{ctx.run.config.model.name}' exposes no edge masks; "
                                          "explanations need a model that declares the explanation "
                                          "protocol (kgrec.models.base.Explainable), such as kgrec")
    t0 = time.perf_counter()
    rng = np.random.default_rng(ctx.plan.seeds[0])
    robust = RobustnessSettings(infidelity_samples=plan.robustness_samples, removal=plan.infidelity_removal,
                                sensitivity_samples=plan.sensitivity_samples, radius=plan.sensitivity_radius,
                                seed=int(ctx.plan.seeds[0]))
    eligible = np.flatnonzero([len(model.history_items(int(u))) > plan.faithfulness_k for u in ctx.users])
    rows = np.sort(rng.choice(eligible, size=min(plan.sample, len(eligible)), replace=False))
    graph = kg_graph(ctx.run.dataset)
    item_type = ctx.run.dataset.schema.item_type
    user_ids = ctx.run.dataset.nodes[ctx.run.dataset.schema.user_type].ids
    item_ids = ctx.run.dataset.nodes[item_type].ids
    out: list[Explanation] = []
    for row in tqdm(rows, desc="explanations", unit="rec", file=sys.stderr, disable=not progress):
        user, item = int(ctx.users[row]), int(ctx.topk[row, 0])
        ms = masked_score(model, user, item, ctx.name)
        attr, full, base, delta, steps = integrated_gradients(ms, n_steps=plan.n_steps, max_delta=plan.max_delta,
                                                              max_steps=plan.max_steps)
        top, rand = faithfulness(ms, attr, k=plan.faithfulness_k, rng=rng)
        infd, sens = robustness(forward=ms.forward, attributions=attr, gap=full - base, n_steps=steps,
                                settings=robust)
        attributions, by_kind = summarize(attr, ms.labels)
        gap = abs(full - base)
        out.append(Explanation(
            user=str(user_ids[user]), item=str(item_ids[item]), item_label=ctx.name(item_type, item), rank=1,
            score=full, baseline_score=base, delta=delta, relative_delta=abs(delta) / gap if gap > 0 else 0.0,
            n_steps=steps, attributions=attributions, by_kind=by_kind,
            paths=path_sentences(graph, model.history_items(user), item, item_type, ctx.name),
            top_drop=top, random_drop=rand, infidelity=infd, max_sensitivity=sens))
    res = ExplainResults(True, out, relations=model.kg_relations(),
                         kind_words={c.name: c.description for c in model.scalar_channels()},
                         infidelity=summary([e.infidelity for e in out]),
                         max_sensitivity=summary([e.max_sensitivity for e in out]),
                         robustness_settings=robust.to_dict())
    if out:
        totals: dict[str, float] = {}
        for e in out:
            for kind, value in e.by_kind.items():
                totals[kind] = totals.get(kind, 0.0) + abs(value)
        norm = sum(totals.values()) or 1.0
        res.importance = {k: v / norm for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
        res.max_relative_delta = max(e.relative_delta for e in out)
        judged = [e.faithful for e in out if e.faithful is not None]
        res.faithfulness_n = len(judged)
        res.faithfulness_rate = float(np.mean(judged)) if judged else float("nan")
    ctx.timings["explanations"] = time.perf_counter() - t0
    return res

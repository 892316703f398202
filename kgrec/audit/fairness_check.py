"""The fairness section: per-user accuracy by sensitive group (Fairlearn MetricFrame, with
bootstrap CIs and a minimum group size) and item/provider exposure against relevance."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgrec.audit.context import AuditContext


@dataclass
class FairnessResults:
    users: list[Any] = field(default_factory=list)  # kgrec.audit.fairness.DisparityResult
    exposure: list[Any] = field(default_factory=list)  # kgrec.audit.fairness.ExposureResult
    note: str = ""


def user_labels(dataset: Any, attribute: str, users: np.ndarray) -> np.ndarray:
    """Group label per user (object array; None when missing), bins for numeric attributes."""
    user_type = dataset.schema.user_type
    spec = dataset.schema.nodes[user_type].features[attribute]
    node = dataset.nodes[user_type]
    values = node.features[attribute][users]
    out = np.empty(len(users), dtype=object)
    if spec.type == "categorical":
        vocab = node.vocab[attribute]
        for j, v in enumerate(values):
            out[j] = vocab[v] if v >= 0 else None
    elif spec.type == "numeric" and spec.bins:
        bins = list(spec.bins)
        labels = [f"<{bins[0]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(bins, bins[1:])] + [f">={bins[-1]:g}"]
        idx = np.digitize(values, bins)
        for j, (v, b) in enumerate(zip(values, idx)):
            out[j] = None if np.isnan(v) else labels[b]
    else:
        raise ValueError(f"attribute '{attribute}' is neither categorical nor binned numeric")
    return out


def run_fairness(ctx: AuditContext) -> FairnessResults:
    from kgrec.audit.fairness import exposure_fairness, user_disparities

    t0 = time.perf_counter()
    run, plan = ctx.run, ctx.plan
    res = FairnessResults()
    k = plan.k
    values = {f"ndcg@{k}": ctx.per_user[f"ndcg@{k}"], f"recall@{k}": ctx.per_user[f"recall@{k}"]}
    if plan.sensitive:
        attrs = {a: user_labels(run.dataset, a, ctx.users) for a in plan.sensitive}
        res.users = user_disparities(values=values, attributes=attrs, intersections=plan.intersections,
                                     min_group_size=plan.min_group_size, n_boot=plan.n_boot, seed=plan.seeds[0])
    else:
        res.note = "the plan names no sensitive user attributes (the data set has none)"
    item_type = run.dataset.schema.item_type
    groups = {g: run.dataset.nodes[item_type].features[g] for g in plan.item_groups}
    res.exposure = exposure_fairness(topk=ctx.topk, relevant=ctx.relevant, item_counts=run.ctx.item_counts,
                                     item_groups=groups or None, head_share=plan.head_share)
    ctx.timings["fairness"] = time.perf_counter() - t0
    return res

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


def user_attributes(ctx: AuditContext) -> dict[str, np.ndarray]:
    """The group label of every test user (``ctx.users``) for each of the plan's sensitive attributes."""
    return {a: user_labels(ctx.run.dataset, a, ctx.users) for a in ctx.plan.sensitive}


def fairness_of(ctx: AuditContext, attrs: dict[str, np.ndarray], rows: np.ndarray | None = None, *,
                n_boot: int) -> tuple[list[Any], list[Any]]:
    """(user disparities, item exposure results) of the test users ``rows`` (indices into
    ``ctx.users``, repeats allowed, as in a bootstrap resample; None: all of them)."""
    from kgrec.audit.fairness import user_disparities

    plan, k = ctx.plan, ctx.plan.k
    pick = slice(None) if rows is None else rows
    users: list[Any] = []
    if attrs:
        values = {f"ndcg@{k}": ctx.per_user[f"ndcg@{k}"][pick], f"recall@{k}": ctx.per_user[f"recall@{k}"][pick]}
        users = user_disparities(values=values, attributes={a: v[pick] for a, v in attrs.items()},
                                 intersections=plan.intersections, min_group_size=plan.min_group_size,
                                 n_boot=n_boot, seed=plan.seeds[0])
    return users, exposure_of(ctx, rows)


def exposure_of(ctx: AuditContext, rows: np.ndarray | None = None) -> list[Any]:
    """Item exposure results (popularity, then the plan's item groups) of the test users ``rows``."""
    from kgrec.audit.fairness import exposure_fairness

    run, plan = ctx.run, ctx.plan
    pick = slice(None) if rows is None else rows
    item_type = run.dataset.schema.item_type
    groups = {g: run.dataset.nodes[item_type].features[g] for g in plan.item_groups}
    return exposure_fairness(topk=ctx.topk[pick], relevant=ctx.relevant[pick], item_counts=run.ctx.item_counts,
                             item_groups=groups or None, head_share=plan.head_share)


def run_fairness(ctx: AuditContext) -> FairnessResults:
    t0 = time.perf_counter()
    res = FairnessResults()
    res.users, res.exposure = fairness_of(ctx, user_attributes(ctx), n_boot=ctx.plan.n_boot)
    if not ctx.plan.sensitive:
        res.note = "the plan names no sensitive user attributes (the data set has none)"
    ctx.timings["fairness"] = time.perf_counter() - t0
    return res

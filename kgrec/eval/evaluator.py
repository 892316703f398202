"""Full-ranking evaluation of any :class:`~kgrec.models.base.Recommender` on a split.

Protocol (RecBole's): rank all items by inner product; mask the user's training items, and
the validation items too when evaluating on test; evaluate users with at least one
held-out item. Metrics come from :mod:`kgrec.eval.metrics` (pure functions); this module
only builds their inputs and the slices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.eval.ranking import topk_from_vectors
from kgrec.models.base import ModelContext, Recommender

ACCURACY = ("recall", "ndcg", "mrr", "hit", "precision", "map")
BEYOND = ("coverage", "gini", "novelty", "diversity", "avg_popularity")
DEBIASED = ("ips_recall", "ips_ndcg")


def part_matrix(ctx: ModelContext, part: str) -> sp.csr_matrix:
    """Binary [U, I] matrix of one split part's interactions."""
    table = ctx.split.part(ctx.dataset, part)
    m = sp.csr_matrix((np.ones(len(table), dtype=np.float32), (table.src, table.dst)),
                      shape=(ctx.num_users, ctx.num_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def exclusion_matrix(ctx: ModelContext, part: str) -> sp.csr_matrix:
    """Items never to recommend when evaluating ``part``: train, plus valid for test."""
    return ctx.train if part != "test" else sp.csr_matrix(ctx.train + part_matrix(ctx, "valid"))


def item_feature_matrix(ctx: ModelContext) -> sp.csr_matrix | None:
    """Binary [I, F] item features for intra-list diversity: every KG/link neighbour of an
    item plus its categorical, multicategorical and binned features (schema-driven)."""
    from kgrec.models.side import attribute_matrix

    ds = ctx.dataset
    item_type = ds.schema.item_type
    blocks: list[sp.spmatrix] = []
    for et in ds.edge_types():
        if ds.origin[et].role in ("kg", "link") and et[0] == item_type:
            e = ds.edges[et]
            blocks.append(sp.csr_matrix((np.ones(len(e)), (e.src, e.dst)), shape=(ctx.num_items, ds.nodes[et[2]].num)))
    attrs = attribute_matrix(ds, item_type, include_sensitive=True)
    if attrs is not None:
        blocks.append(attrs)
    if not blocks:
        return None
    m = sp.hstack(blocks, format="csr")
    m.data[:] = 1.0
    return m


@torch.no_grad()
def rank(model: Recommender, users: np.ndarray, k: int, exclude: sp.csr_matrix | None,
         candidates: np.ndarray | None = None) -> np.ndarray:
    """Top-``k`` item ids per user over all items, or over ``candidates`` only."""
    model.eval()
    user_vectors, item_vectors = model.embed()
    if candidates is None:
        return topk_from_vectors(user_vectors, item_vectors, users, k, exclude)
    sub = None if exclude is None else sp.csr_matrix(exclude[:, candidates])
    return candidates[topk_from_vectors(user_vectors, item_vectors[torch.from_numpy(candidates)], users, k, sub)]


def validation_score(model: Recommender, ctx: ModelContext, metric: str = "ndcg@10") -> float:
    """One accuracy metric on the validation part (the early-stopping signal)."""
    from kgrec.eval.metrics import compute

    name, k = metric.split("@")
    relevant = part_matrix(ctx, "valid")
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    topk = rank(model, users, int(k), exclusion_matrix(ctx, "valid"))
    return compute([name], [int(k)], topk=topk, relevant=relevant[users], n_items=ctx.num_items)[metric]


def _slices(ctx: ModelContext, users: np.ndarray, relevant: sp.csr_matrix) -> dict[str, np.ndarray]:
    """Boolean masks over ``users`` (the evaluated ones) for each slice."""
    out: dict[str, np.ndarray] = {}
    activity = np.diff(ctx.train.indptr)[users]
    edges = np.quantile(activity, [0.25, 0.5, 0.75])
    quart = np.searchsorted(edges, activity, side="right")
    for q in range(4):
        out[f"activity_q{q + 1}"] = quart == q
    if len(ctx.split.cold_users):
        out["cold_users"] = np.isin(users, ctx.split.cold_users)
    ds = ctx.dataset
    user_type = ds.schema.user_type
    node = ds.nodes[user_type]
    for attr in ds.schema.nodes[user_type].sensitive:
        spec = ds.schema.nodes[user_type].features[attr]
        values = node.features[attr][users]
        if spec.type == "categorical":
            for code, label in enumerate(node.vocab[attr]):
                out[f"{attr}={label}"] = values == code
        elif spec.type == "numeric" and spec.bins:
            bins = list(spec.bins)
            idx = np.digitize(values, bins)
            labels = [f"<{bins[0]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(bins, bins[1:])] + [f">={bins[-1]:g}"]
            for b, label in enumerate(labels):
                out[f"{attr}={label}"] = (idx == b) & ~np.isnan(values)
    return out


def evaluate(model: Recommender, ctx: ModelContext, part: str = "test", ks: tuple[int, ...] = (10, 20),
             with_slices: bool = True) -> dict[str, Any]:
    """All metrics at each k on ``part``, plus per-slice accuracy and per-user NDCG/Recall.

    Returns ``{"metrics": {...}, "slices": {name: {"users": n, "metrics": {...}}},
    "per_user": {"users": [...], "ndcg@10": [...], ...}}``.
    """
    from kgrec.eval.metrics import compute, per_user, popularity_propensity

    relevant_all = part_matrix(ctx, part)
    users = np.flatnonzero(np.diff(relevant_all.indptr) > 0)
    relevant = relevant_all[users]
    kmax = max(ks)
    topk = rank(model, users, kmax, exclusion_matrix(ctx, part))
    counts = ctx.item_counts
    inputs = dict(topk=topk, relevant=relevant, item_counts=counts, n_items=ctx.num_items, n_users=ctx.num_users,
                  item_weights=1.0 / popularity_propensity(counts), item_features=item_feature_matrix(ctx))
    names = list(ACCURACY) + list(DEBIASED) + list(BEYOND)
    if inputs["item_features"] is None:
        names.remove("diversity")
    result: dict[str, Any] = {"users": int(len(users)), "metrics": compute(names, list(ks), **inputs)}
    result["per_user"] = {"users": users.tolist()}
    for name in ("ndcg", "recall"):
        for k in ks:
            result["per_user"][f"{name}@{k}"] = per_user(name, k, topk=topk, relevant=relevant).tolist()
    if not with_slices:
        return result
    slices: dict[str, Any] = {}
    acc = list(ACCURACY)
    for sname, mask in _slices(ctx, users, relevant).items():
        if mask.any():
            slices[sname] = {"users": int(mask.sum()),
                             "metrics": compute(acc, list(ks), topk=topk[mask], relevant=relevant[mask],
                                                n_items=ctx.num_items)}
    if len(ctx.split.cold_items):
        cold = np.zeros(ctx.num_items, dtype=bool)
        cold[ctx.split.cold_items] = True
        rel_cold = sp.csr_matrix(relevant.multiply(cold[None, :]))
        rel_cold.eliminate_zeros()
        has = np.diff(rel_cold.indptr) > 0
        if has.any():
            slices["cold_items"] = {"users": int(has.sum()),
                                    "metrics": compute(acc, list(ks), topk=topk[has], relevant=rel_cold[has],
                                                       n_items=ctx.num_items)}
            # the item cold-start protocol of DropoutNet/CLCRec: rank the cold items only
            cold_top = rank(model, users[has], kmax, exclusion_matrix(ctx, part), np.flatnonzero(cold))
            slices["cold_items_only"] = {"users": int(has.sum()),
                                         "metrics": compute(acc, list(ks), topk=cold_top, relevant=rel_cold[has],
                                                            n_items=ctx.num_items)}
    result["slices"] = slices
    return result

"""Full-ranking evaluation of any :class:`~kgrec.models.base.Recommender` on a split.

Protocol (RecBole's): rank all items by inner product; mask the user's training items, and
the validation items too when evaluating on test; evaluate users with at least one
held-out item. Metrics come from :mod:`kgrec.metrics.ranking` (pure functions); this module
only builds their inputs and the slices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from kgrec.data.features import item_feature_matrix
from kgrec.data.view import HeldOut
from kgrec.models.base import ModelContext, Recommender
from kgrec.models.ranking import rank, rank_reranked

ACCURACY = ("recall", "ndcg", "mrr", "hit", "precision", "map")
BEYOND = ("coverage", "gini", "novelty", "diversity", "avg_popularity")
DEBIASED = ("ips_recall", "ips_ndcg")


def _slices(ctx: ModelContext, heldout: HeldOut, users: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks over ``users`` (the evaluated ones) for each slice."""
    out: dict[str, np.ndarray] = {}
    activity = np.diff(ctx.train.indptr)[users]
    edges = np.quantile(activity, [0.25, 0.5, 0.75])
    quart = np.searchsorted(edges, activity, side="right")
    for q in range(4):
        out[f"activity_q{q + 1}"] = quart == q
    if len(heldout.cold_users):
        out["cold_users"] = np.isin(users, heldout.cold_users)
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


def evaluate(model: Recommender, ctx: ModelContext, heldout: HeldOut, part: str = "test",
             ks: tuple[int, ...] = (10, 20), with_slices: bool = True, reranker: Any = None) -> dict[str, Any]:
    """All metrics at each k on ``part``, plus per-slice accuracy and per-user NDCG/Recall.

    Returns ``{"metrics": {...}, "slices": {name: {"users": n, "metrics": {...}}},
    "per_user": {"users": [...], "ndcg@10": [...], ...}, "topk": int64 [n, max(ks)]}``
    (``topk`` best first, for callers that reuse the ranking, such as the audit).
    ``reranker`` (:class:`kgrec.models.rerank.CalibratedReranker`) re-ranks each user's top
    ``reranker.pool`` with their training items as profile; the cold-items-only slice ranks
    the cold items by the model alone.
    """
    from kgrec.metrics.ranking import compute, per_user, popularity_propensity

    relevant_all = heldout.part(part)
    users = np.flatnonzero(np.diff(relevant_all.indptr) > 0)
    relevant = relevant_all[users]
    kmax = max(ks)
    exclude = heldout.exclusion(ctx.view, part)
    if reranker is None:
        topk = rank(model, users, kmax, exclude)
    else:
        topk = rank_reranked(model, users, kmax, exclude, reranker, ctx.train)
    counts = ctx.item_counts
    inputs = dict(topk=topk, relevant=relevant, item_counts=counts, n_items=ctx.num_items, n_users=ctx.num_users,
                  item_weights=1.0 / popularity_propensity(counts), item_features=item_feature_matrix(ctx.dataset))
    names = list(ACCURACY) + list(DEBIASED) + list(BEYOND)
    if inputs["item_features"] is None:
        names.remove("diversity")
    result: dict[str, Any] = {"users": int(len(users)), "metrics": compute(names, list(ks), **inputs)}
    result["topk"] = topk
    result["per_user"] = {"users": users.tolist()}
    for name in ("ndcg", "recall"):
        for k in ks:
            result["per_user"][f"{name}@{k}"] = per_user(name, k, topk=topk, relevant=relevant).tolist()
    if not with_slices:
        return result
    slices: dict[str, Any] = {}
    acc = list(ACCURACY)
    for sname, mask in _slices(ctx, heldout, users).items():
        if mask.any():
            slices[sname] = {"users": int(mask.sum()),
                             "metrics": compute(acc, list(ks), topk=topk[mask], relevant=relevant[mask],
                                                n_items=ctx.num_items)}
    if len(heldout.cold_items):
        cold = np.zeros(ctx.num_items, dtype=bool)
        cold[heldout.cold_items] = True
        rel_cold = sp.csr_matrix(relevant.multiply(cold[None, :]))
        rel_cold.eliminate_zeros()
        has = np.diff(rel_cold.indptr) > 0
        if has.any():
            slices["cold_items"] = {"users": int(has.sum()),
                                    "metrics": compute(acc, list(ks), topk=topk[has], relevant=rel_cold[has],
                                                       n_items=ctx.num_items)}
            # the item cold-start protocol of DropoutNet/CLCRec: rank the cold items only
            cold_top = rank(model, users[has], kmax, exclude, np.flatnonzero(cold))
            slices["cold_items_only"] = {"users": int(has.sum()),
                                         "metrics": compute(acc, list(ks), topk=cold_top, relevant=rel_cold[has],
                                                            n_items=ctx.num_items)}
    result["slices"] = slices
    return result

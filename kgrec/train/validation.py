"""The early-stopping signal: one accuracy metric on the validation part."""

from __future__ import annotations

import numpy as np

from kgrec.data.view import HeldOut
from kgrec.models.base import ModelContext, Recommender
from kgrec.models.ranking import rank


def validation_users(heldout: HeldOut, max_users: int | None = None, seed: int = 0) -> np.ndarray:
    """The users with validation items, ascending; at most ``max_users`` of them, a uniform
    sample fixed by ``seed`` (the same users every epoch, so epochs compare like with like,
    and full ranking costs O(max_users · I · d) per validation instead of O(U · I · d))."""
    users = np.flatnonzero(np.diff(heldout.valid.indptr) > 0)
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    return users


def validation_score(model: Recommender, ctx: ModelContext, heldout: HeldOut, metric: str = "ndcg@10", *,
                     max_users: int | None = None, seed: int = 0) -> float:
    """``metric`` (``NAME@K``) over the validation users (:func:`validation_users`), training
    items masked."""
    from kgrec.metrics.ranking import compute

    name, k = metric.split("@")
    relevant = heldout.valid
    users = validation_users(heldout, max_users, seed)
    topk = rank(model, users, int(k), heldout.exclusion(ctx.view, "valid"))
    return compute([name], [int(k)], topk=topk, relevant=relevant[users], n_items=ctx.num_items)[metric]

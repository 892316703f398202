"""The early-stopping signal: one accuracy metric on the validation part."""

from __future__ import annotations

import numpy as np

from kgrec.data.view import HeldOut
from kgrec.models.base import ModelContext, Recommender
from kgrec.models.ranking import rank


def validation_score(model: Recommender, ctx: ModelContext, heldout: HeldOut, metric: str = "ndcg@10") -> float:
    """``metric`` (``NAME@K``) over the users with validation items, training items masked."""
    from kgrec.metrics.ranking import compute

    name, k = metric.split("@")
    relevant = heldout.valid
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    topk = rank(model, users, int(k), heldout.exclusion(ctx.view, "valid"))
    return compute([name], [int(k)], topk=topk, relevant=relevant[users], n_items=ctx.num_items)[metric]

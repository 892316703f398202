"""Ranking for test masks the training and the validation items (RecBole's protocol), so a
model that scores validation items highest cannot put them in a test top-K list."""

from __future__ import annotations

import numpy as np
import torch

from kgrec.data import SplitConfig, make_split
from kgrec.data.view import views
from kgrec.eval.evaluator import evaluate
from kgrec.models.base import ModelContext, Recommender


class SeenFirst(Recommender):
    """Scores every user's training and validation items far above everything else: the
    worst case for masking (any unmasked seen item lands in the top-K)."""

    trainable = False

    def __init__(self, ctx: ModelContext, seen) -> None:
        super().__init__(ctx)
        self.u = torch.from_numpy(seen.toarray().astype(np.float32))
        self.i = torch.eye(ctx.num_items)

    def embed(self):
        return self.u * 100.0, self.i


def test_test_ranking_masks_train_and_valid_items(movielens) -> None:
    split = make_split(movielens, SplitConfig(seed=3))
    view, heldout = views(movielens, split)
    ctx = ModelContext(view)
    seen = view.train + heldout.valid
    model = SeenFirst(ctx, seen).eval()
    result = evaluate(model, ctx, heldout, "test", ks=(10,), with_slices=False)
    users = np.asarray(result["per_user"]["users"])
    topk = result["topk"]
    assert len(users) > 900
    train, valid = view.train.tocsr(), heldout.valid.tocsr()
    for row, u in zip(topk, users):
        assert not set(row.tolist()) & set(train.indices[train.indptr[u]: train.indptr[u + 1]].tolist())
        assert not set(row.tolist()) & set(valid.indices[valid.indptr[u]: valid.indptr[u + 1]].tolist())
    # validation ranking masks the training items only (its targets are the validation items)
    vres = evaluate(model, ctx, heldout, "valid", ks=(10,), with_slices=False)
    n_valid = np.diff(valid.indptr)[np.asarray(vres["per_user"]["users"])]
    assert vres["metrics"]["recall@10"] == np.mean(np.minimum(n_valid, 10) / n_valid)

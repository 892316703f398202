"""Full ranking: top-K over all items by inner product, with seen items masked.

Part of the model contract: every :class:`~kgrec.models.base.Recommender` ranks through
:func:`rank`, so evaluation, training's early stopping, the audit and serving rank alike."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


@torch.no_grad()
def topk_from_vectors(user_vectors: torch.Tensor, item_vectors: torch.Tensor, users: np.ndarray, k: int,
                      exclude: sp.csr_matrix | None = None, chunk: int = 1024) -> np.ndarray:
    """Top-``k`` items [len(users), min(k, I)] for each user, best first.

    Scores are ``user_vectors[u] @ item_vectors.T``; items in row ``u`` of ``exclude`` get
    ``-inf`` (and rank last). Ties break by the lower item index (as a stable descending
    sort would), so results do not depend on batch composition. Cost per chunk: one
    ``torch.topk`` of ``k + 1`` (O(I) per user) and a sort of the ``k`` found; only rows whose
    ``k``-th score ties with the ``(k + 1)``-th are fully sorted.
    """
    n_items = item_vectors.shape[0]
    k = min(k, n_items)
    out = np.empty((len(users), k), dtype=np.int64)
    for start in range(0, len(users), chunk):
        rows = users[start: start + chunk]
        scores = user_vectors[torch.from_numpy(rows)] @ item_vectors.T
        if exclude is not None:
            sub = exclude[rows].tocoo()
            scores[torch.from_numpy(sub.row.astype(np.int64)), torch.from_numpy(sub.col.astype(np.int64))] = -torch.inf
        out[start: start + len(rows)] = _stable_topk(scores, k).numpy()
    return out


def _stable_topk(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The first ``k`` indices of a stable descending sort of each row of ``scores``."""
    n = scores.shape[1]
    top = torch.topk(scores, min(k + 1, n), dim=1, sorted=True)  # one past k shows a tie at the boundary
    vals, idx = top.values[:, :k], top.indices[:, :k]
    # order the k found by (score descending, index ascending)
    by_index = torch.sort(idx, dim=1).indices
    idx, vals = idx.gather(1, by_index), vals.gather(1, by_index)
    result = idx.gather(1, torch.sort(vals, dim=1, descending=True, stable=True).indices)
    # rows whose k-th score ties with an item left out (or with NaN): a full stable sort
    kth = top.values[:, k - 1]
    redo = torch.isnan(kth)
    if k < n:
        redo |= top.values[:, k] == kth
    rows = torch.nonzero(redo).flatten()
    if len(rows):
        result[rows] = torch.sort(scores[rows], dim=1, descending=True, stable=True).indices[:, :k]
    return result


@torch.no_grad()
def rank(model, users: np.ndarray, k: int, exclude: sp.csr_matrix | None,
         candidates: np.ndarray | None = None) -> np.ndarray:
    """Top-``k`` item ids per user of a :class:`~kgrec.models.base.Recommender` over all
    items, or over ``candidates`` only (``exclude`` [U, I] masks items per user)."""
    model.eval()
    user_vectors, item_vectors = model.embed()
    if candidates is None:
        return topk_from_vectors(user_vectors, item_vectors, users, k, exclude)
    sub = None if exclude is None else sp.csr_matrix(exclude[:, candidates])
    return candidates[topk_from_vectors(user_vectors, item_vectors[torch.from_numpy(candidates)], users, k, sub)]


@torch.no_grad()
def rank_reranked(model, users: np.ndarray, k: int, exclude: sp.csr_matrix | None, reranker,
                  histories: sp.csr_matrix) -> np.ndarray:
    """Top-``k`` per user after a re-ranking stage (:class:`kgrec.models.rerank.CalibratedReranker`):
    the model's top ``reranker.pool`` (at least ``k``) by :func:`rank`, their inner-product
    scores, and the re-ranker's order; ``histories`` CSR [U, I] are the users' profiles
    (its calibration targets), row ``u`` for user ``u``."""
    pool = rank(model, users, max(k, reranker.pool), exclude)
    model.eval()
    user_vectors, item_vectors = model.embed()
    scores = np.empty(pool.shape, dtype=np.float64)
    valid = np.ones(pool.shape, dtype=bool)
    for start in range(0, len(users), 1024):
        rows = torch.from_numpy(users[start: start + 1024])
        cand = torch.from_numpy(pool[start: start + 1024])
        scores[start: start + 1024] = (user_vectors[rows][:, None, :] * item_vectors[cand]).sum(-1).double().numpy()
        if exclude is not None:  # rank() puts masked items last once the pool outgrows the unmasked ones
            chunk = pool[start: start + 1024]
            sub = sp.csr_matrix(exclude[users[start: start + 1024]])  # sparse: no dense [users, items] row block
            valid[start: start + 1024] = sub[np.arange(len(chunk))[:, None], chunk].toarray() == 0
    return reranker.rerank(pool, scores, histories[users], k, valid=valid)


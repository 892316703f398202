"""Inputs of the ranking metrics: validation of top-k lists and cutoffs, the hits matrix.

``topk`` int64 [U, K] (best first), ``relevant`` CSR [U, n_items] (stored non-zeros count as
relevant). Shared by :mod:`kgrec.metrics.ranking` and :mod:`kgrec.metrics.beyond`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

def canonical_relevant(relevant) -> sp.csr_matrix:
    """CSR with sorted indices, no duplicates and no explicit zeros (copied only if needed)."""
    if not sp.issparse(relevant):
        raise TypeError(f"relevant must be a scipy.sparse matrix, got {type(relevant).__name__}")
    rel = sp.csr_matrix(relevant)
    if not rel.has_canonical_format or (rel.data == 0).any():
        rel = rel.copy()
        rel.sum_duplicates()
        rel.eliminate_zeros()
    return rel


def check_topk(topk, n_items: int) -> np.ndarray:
    topk = np.asarray(topk)
    if topk.ndim != 2 or topk.shape[0] == 0 or topk.shape[1] == 0 or topk.dtype.kind not in "iu":
        raise ValueError(f"topk must be a non-empty integer array [U, K], got {topk.dtype} {topk.shape}")
    topk = topk.astype(np.int64, copy=False)
    if topk.min() < 0 or topk.max() >= n_items:
        raise ValueError(f"topk holds item indices outside [0, {n_items})")
    if topk.shape[1] > 1 and (np.diff(np.sort(topk, axis=1), axis=1) == 0).any():
        raise ValueError("topk lists an item twice for some user")
    return topk


def check_k(k: int) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"cutoff k must be a positive integer, got {k!r}")
    return int(k)


def n_relevant(relevant) -> np.ndarray:
    """Number of relevant (stored non-zero) items per row: int64 [U]."""
    return np.diff(canonical_relevant(relevant).indptr).astype(np.int64)


def hits_matrix(topk, relevant) -> np.ndarray:
    """``hits[u, j]`` = the ``j``-th recommended item of user ``u`` is relevant: bool [U, K].

    Vectorised: the (row, item) pairs of ``relevant`` become sorted keys ``row * n_items + item``
    and every top-k entry is looked up with one :func:`numpy.searchsorted`.
    """
    rel = canonical_relevant(relevant)
    n_users, n_items = rel.shape
    topk = check_topk(topk, n_items)
    if topk.shape[0] != n_users:
        raise ValueError(f"topk has {topk.shape[0]} rows but relevant has {n_users}")
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(rel.indptr))
    keys = rows * n_items + rel.indices.astype(np.int64)  # sorted: canonical CSR
    if keys.size == 0:
        return np.zeros(topk.shape, dtype=bool)
    query = np.arange(n_users, dtype=np.int64)[:, None] * n_items + topk
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return keys[pos] == query

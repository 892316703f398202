"""Beyond-accuracy metrics over the whole set of top-k lists (pure numpy/scipy).

``topk`` int64 [U, K] as in :mod:`kgrec.metrics.ranking`; each function returns one float:
coverage, exposure Gini, novelty and average popularity (RecBole 1.2.1 semantics), and
intra-list diversity by item features.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kgrec.metrics.inputs import check_k, check_topk

def _cut(topk, k: int, n_items: int) -> np.ndarray:
    return check_topk(topk, int(n_items))[:, : check_k(k)]


def head_items(item_counts, head_share: float) -> np.ndarray:
    """bool [I]: the "head", the ``round(head_share · I)`` items with the most training
    interactions (ties broken by the lower item index), clamped to ``[1, I - 1]`` so that head
    and tail are both non-empty; the rest is the "tail". ``head_share`` in (0, 1)."""
    counts = np.asarray(item_counts, dtype=np.float64)
    n_items = counts.shape[0]
    if n_items < 2 or not 0 < head_share < 1:
        raise ValueError(f"head/tail needs at least 2 items and head_share in (0, 1), got {n_items}, {head_share!r}")
    n_head = min(max(round(head_share * n_items), 1), n_items - 1)
    head = np.zeros(n_items, dtype=bool)
    head[np.argsort(-counts, kind="stable")[:n_head]] = True
    return head


def item_coverage(topk, k: int, n_items: int) -> float:
    r"""Item coverage@k = |distinct items in all top-k lists| / n_items, in [0, 1]; higher is better."""
    return np.unique(_cut(topk, k, n_items)).size / n_items


def gini_exposure(topk, k: int, n_items: int) -> float:
    r"""Gini coefficient of the top-k recommendation counts over *all* ``n_items`` items.

    With counts sorted ascending, :math:`c_{(1)} \le \dots \le c_{(n)}` (unrecommended items
    count 0), :math:`G = \sum_{i=1}^{n} (2i - n - 1)\, c_{(i)} / (n \sum_i c_i)`, as RecBole's
    ``GiniIndex``. 0 = uniform exposure, :math:`(n-1)/n` = one item only; lower is better.
    """
    c = np.sort(np.bincount(_cut(topk, k, n_items).ravel(), minlength=n_items)).astype(np.float64)
    i = np.arange(1, n_items + 1)
    return float(((2 * i - n_items - 1) * c).sum() / (n_items * c.sum()))


def _counts(item_counts, n_items: int) -> np.ndarray:
    c = np.asarray(item_counts, dtype=np.float64)
    if c.shape != (n_items,) or not np.isfinite(c).all() or (c < 0).any():
        raise ValueError(f"item_counts must be finite non-negative counts of shape ({n_items},), got shape "
                         f"{c.shape}" + ("" if c.shape != (n_items,) else " with negative or non-finite values"))
    return c


def novelty(topk, k: int, item_counts, n_users: int) -> float:
    r"""Mean self-information of the recommended items (Zhou et al., PNAS 2010), in bits.

    :math:`\frac{1}{U k} \sum_u \sum_{i \in \mathrm{top}_k(u)} -\log_2(\max(n_i, 1) / N)` with
    ``n_i`` = ``item_counts[i]`` (training users of item ``i``; 0 is taken as 1) and ``N`` =
    ``n_users`` (training users). Higher is better (less popular items).
    """
    c = _counts(item_counts, len(item_counts))
    if n_users < 1 or c.max(initial=0) > n_users:
        raise ValueError(f"n_users ({n_users}) must be >= 1 and >= every item count")
    items = _cut(topk, k, c.size)
    return float(np.mean(-np.log2(np.maximum(c[items], 1.0) / n_users)))


def average_popularity(topk, k: int, item_counts) -> float:
    r"""Mean training count of the recommended items (RecBole ``AveragePopularity``); lower is better."""
    c = _counts(item_counts, len(item_counts))
    return float(c[_cut(topk, k, c.size)].mean())


def intra_list_diversity(topk, k: int, item_features) -> float:
    r"""Mean over users of the mean pairwise Jaccard distance within each top-k list.

    ``item_features`` is a binary CSR [n_items, F] (genres, KG neighbours); any non-zero counts
    as 1. For items ``a``, ``b`` with feature sets ``A``, ``B``:
    :math:`d(a, b) = 1 - |A \cap B| / |A \cup B|`. Following :func:`scipy.spatial.distance.jaccard`,
    two featureless items have ``d = 0``; a featureless and a featured item have ``d = 1``.
    Needs ``k >= 2`` (and at least two columns in ``topk``). Computed in chunks of users with
    one sparse elementwise product per chunk; higher is better.
    """
    if not sp.issparse(item_features):
        raise TypeError("item_features must be a scipy.sparse matrix [n_items, F]")
    feats = sp.csr_matrix(item_features, dtype=np.float64, copy=True)
    feats.eliminate_zeros()
    feats.data[:] = 1.0
    items = _cut(topk, k, feats.shape[0])
    k = items.shape[1]
    if k < 2:
        raise ValueError("intra_list_diversity needs lists of at least 2 items")
    size = np.diff(feats.indptr).astype(np.float64)
    iu, ju = np.triu_indices(k, 1)
    per_user = np.empty(items.shape[0])
    step = max(1, 500_000 // iu.size)
    for s in range(0, items.shape[0], step):
        a, b = items[s: s + step, iu].ravel(), items[s: s + step, ju].ravel()
        inter = np.asarray(feats[a].multiply(feats[b]).sum(axis=1)).ravel()
        union = size[a] + size[b] - inter
        dist = np.where(union > 0, 1.0 - inter / np.maximum(union, 1.0), 0.0)
        per_user[s: s + step] = dist.reshape(-1, iu.size).mean(axis=1)
    return float(per_user.mean())



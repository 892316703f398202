r"""Pure full-ranking metrics over numpy/scipy inputs (no torch).

Inputs: ``topk`` int64 [U, K], the item indices ranked best-first for each evaluated user;
``relevant`` CSR [U, n_items], the held-out items of each user (every stored non-zero counts
as relevant, whatever its value). Accuracy metrics take ``hits = hits_matrix(topk, relevant)``
and ``n_rel = n_relevant(relevant)`` and return float64 [U]; callers average them. They follow
RecBole 1.2.1 (``recbole/evaluator/metrics.py``). A cutoff ``k`` larger than ``K`` treats the
missing slots as misses (a catalogue with fewer than ``k`` items); :func:`compute` allows that
only when ``K >= n_items``. Users without relevant items must be dropped by the caller.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np

from kgrec.metrics.beyond import average_popularity, gini_exposure, intra_list_diversity, item_coverage, novelty
from kgrec.metrics.inputs import canonical_relevant, check_k, hits_matrix, n_relevant

# ``map`` is left out of ``__all__`` so ``import *`` keeps the builtin ``map``.
__all__ = ["hits_matrix", "n_relevant", "recall", "precision", "hit", "ndcg", "mrr",
           "ips_recall", "ips_ndcg", "popularity_propensity", "item_coverage", "gini_exposure",
           "novelty", "average_popularity", "intra_list_diversity", "Metric", "METRICS",
           "compute", "per_user"]


# ---------------------------------------------------------------- accuracy (per user)
def _prep(hits, n_rel, k):
    hits = np.asarray(hits, dtype=bool)
    n_rel = np.asarray(n_rel, dtype=np.int64)
    if hits.ndim != 2 or n_rel.shape != (hits.shape[0],):
        raise ValueError(f"hits must be [U, K] and n_rel [U], got {hits.shape} and {n_rel.shape}")
    if (n_rel <= 0).any():
        raise ValueError(f"{int((n_rel <= 0).sum())} users have no relevant items; drop them before evaluating")
    k = check_k(k)
    return hits[:, :k], n_rel, k


def _discount(k: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def recall(hits, n_rel, k: int) -> np.ndarray:
    r"""Recall@k = |hits in the top k| / n_rel, float64 [U] in [0, 1]; higher is better."""
    h, n_rel, k = _prep(hits, n_rel, k)
    return h.sum(axis=1) / n_rel


def precision(hits, n_rel, k: int) -> np.ndarray:
    r"""Precision@k = |hits in the top k| / k, float64 [U] in [0, 1]; higher is better.

    RecBole divides by ``k`` even when ``n_rel < k``, so the maximum is ``min(n_rel, k) / k``.
    """
    h, _, k = _prep(hits, n_rel, k)
    return h.sum(axis=1) / k


def hit(hits, n_rel, k: int) -> np.ndarray:
    r"""Hit@k (HR) = 1 if any of the top k is relevant, else 0: float64 [U]; higher is better."""
    h, _, _ = _prep(hits, n_rel, k)
    return h.any(axis=1).astype(np.float64)


def mrr(hits, n_rel, k: int) -> np.ndarray:
    r"""MRR@k = 1 / rank of the first hit within the top k (0 if none): float64 [U]."""
    h, _, _ = _prep(hits, n_rel, k)
    first = h.argmax(axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1), 0.0)


def ndcg(hits, n_rel, k: int) -> np.ndarray:
    r"""NDCG@k with binary gains, float64 [U] in [0, 1]; higher is better.

    .. math::
        \mathrm{DCG@k} = \sum_{j=1}^{k} \frac{\mathrm{hit}_j}{\log_2(j+1)}, \qquad
        \mathrm{IDCG@k} = \sum_{j=1}^{\min(n_{rel}, k)} \frac{1}{\log_2(j+1)}
    """
    h, n_rel, k = _prep(hits, n_rel, k)
    disc = _discount(k)
    dcg = h @ disc[: h.shape[1]]
    idcg = np.cumsum(disc)[np.minimum(n_rel, k) - 1]
    return dcg / idcg


def map(hits, n_rel, k: int) -> np.ndarray:  # noqa: A001 - RecBole's metric name
    r"""MAP@k (average precision) exactly as RecBole 1.2.1 computes it: float64 [U] in [0, 1].

    .. math::
        \mathrm{AP@k} = \frac{1}{\min(n_{rel}, k)} \sum_{j=1}^{k} \mathrm{hit}_j\,\mathrm{Precision@}j

    RecBole 1.2.1, ``recbole/evaluator/metrics.py``, ``MAP.metric_info`` (lines 126-136)::

        pre = pos_index.cumsum(axis=1) / np.arange(1, pos_index.shape[1] + 1)
        sum_pre = np.cumsum(pre * pos_index.astype(np.float), axis=1)
        len_rank = np.full_like(pos_len, pos_index.shape[1])
        actual_len = np.where(pos_len > len_rank, len_rank, pos_len)
        ...
            ranges = np.arange(1, pos_index.shape[1] + 1)
            ranges[lens:] = ranges[lens - 1]
            result[row] = sum_pre[row] / ranges

    Column ``k - 1`` of ``result`` divides the cumulative sum up to ``k`` by
    ``ranges[k-1] = min(k, n_rel)`` (``pos_len`` is the number of relevant items; the class
    docstring's :math:`|\hat R(u)|` is misleading). Higher is better.
    """
    h, n_rel, k = _prep(hits, n_rel, k)
    prec = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    return (prec * h).sum(axis=1) / np.minimum(n_rel, k)


# ---------------------------------------------------------------- IPS-weighted accuracy
def popularity_propensity(item_counts, gamma: float = 0.5, clip: float = 1e-3) -> np.ndarray:
    r"""Popularity-based observation propensities, float64 [n_items] in [clip, 1].

    Yang et al., "Unbiased offline recommender evaluation for missing-not-at-random implicit
    feedback" (RecSys 2018), Eq. 11: :math:`p_i \propto (n_i)^{(\gamma+1)/2}` with ``n_i`` the
    training count of item ``i``. Here :math:`p_i = (n_i / \max_j n_j)^{(\gamma+1)/2}`
    (so the most popular item has ``p = 1``), clipped below at ``clip`` (default ``1e-3``;
    items never seen get ``clip``). All-zero counts give ``p = 1`` everywhere. Use
    ``1 / p`` as ``item_weights``.
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    if counts.ndim != 1 or not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError("item_counts must be a 1-D array of finite non-negative counts")
    if not 0 < clip <= 1:
        raise ValueError(f"clip must lie in (0, 1], got {clip}")
    top = counts.max(initial=0.0)
    if top == 0:
        return np.ones_like(counts)
    return np.clip((counts / top) ** ((gamma + 1) / 2), clip, 1.0)


def _weights(item_weights, n_items: int) -> np.ndarray:
    w = np.asarray(item_weights, dtype=np.float64)
    if w.shape != (n_items,) or not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError(f"item_weights must be finite and positive, shape ({n_items},), got {w.shape}")
    return w


def _ips_parts(topk, relevant, k, item_weights, hits):
    rel = canonical_relevant(relevant)
    w = _weights(item_weights, rel.shape[1])
    if hits is None:
        hits = hits_matrix(topk, rel)
    h, n_rel, k = _prep(hits, np.diff(rel.indptr), k)
    hit_w = np.where(h, w[np.asarray(topk)[:, : h.shape[1]]], 0.0)
    return rel, w, hit_w, n_rel, k


def ips_recall(topk, relevant, k: int, item_weights, *, hits=None) -> np.ndarray:
    r"""IPS-weighted Recall@k (Yang et al. 2018), float64 [U] in [0, 1]; higher is better.

    .. math::
        \mathrm{Recall}_{w}\mathrm{@k} = \frac{\sum_{i \in \mathrm{hits@k}} w_i}{\sum_{i \in R(u)} w_i},
        \qquad w_i = 1 / p_i

    ``item_weights`` float [n_items]; ``hits`` may pass a precomputed :func:`hits_matrix`.
    """
    rel, w, hit_w, _, _ = _ips_parts(topk, relevant, k, item_weights, hits)
    rows = np.repeat(np.arange(rel.shape[0]), np.diff(rel.indptr))
    total = np.bincount(rows, weights=w[rel.indices], minlength=rel.shape[0])
    return hit_w.sum(axis=1) / total


def ips_ndcg(topk, relevant, k: int, item_weights, *, hits=None) -> np.ndarray:
    r"""IPS-weighted NDCG@k (Yang et al. 2018), float64 [U] in [0, 1]; higher is better.

    Gains are the weights :math:`w_i` of the hits; the ideal DCG places the user's
    ``min(n_rel, k)`` largest relevant weights, in descending order, at the top:

    .. math::
        \mathrm{DCG}_w = \sum_{j=1}^{k} \frac{\mathrm{hit}_j\, w_{i_j}}{\log_2(j+1)}, \qquad
        \mathrm{IDCG}_w = \sum_{j=1}^{\min(n_{rel},k)} \frac{w_{(j)}}{\log_2(j+1)}
    """
    rel, w, hit_w, _, k = _ips_parts(topk, relevant, k, item_weights, hits)
    disc = _discount(k)
    dcg = hit_w @ disc[: hit_w.shape[1]]
    rows = np.repeat(np.arange(rel.shape[0]), np.diff(rel.indptr))
    rw = w[rel.indices]
    order = np.lexsort((-rw, rows))  # by row, then weight descending
    rank = np.arange(rows.size) - rel.indptr[rows]  # rows are already sorted
    keep = rank < k
    idcg = np.bincount(rows[keep], weights=rw[order][keep] * disc[rank[keep]], minlength=rel.shape[0])
    return dcg / idcg


# ---------------------------------------------------------------- registry
@dataclass(frozen=True)
class Metric:
    """A metric: its function, direction and the inputs it needs.

    ``needs`` names :func:`compute` inputs; ``"hits"`` stands for ``topk`` + ``relevant``.
    Metrics that need ``"hits"`` are per-user (return float64 [U]); the others return a float
    over the whole set of lists.
    """

    name: str
    fn: Callable
    higher_is_better: bool
    needs: frozenset[str]

    @property
    def is_per_user(self) -> bool:
        return "hits" in self.needs


def _m(name, fn, higher, *needs) -> Metric:
    return Metric(name, fn, higher, frozenset(needs))


METRICS: dict[str, Metric] = {m.name: m for m in (
    _m("recall", recall, True, "hits"),
    _m("precision", precision, True, "hits"),
    _m("hit", hit, True, "hits"),
    _m("ndcg", ndcg, True, "hits"),
    _m("mrr", mrr, True, "hits"),
    _m("map", map, True, "hits"),
    _m("ips_recall", ips_recall, True, "hits", "item_weights"),
    _m("ips_ndcg", ips_ndcg, True, "hits", "item_weights"),
    _m("coverage", item_coverage, True, "topk", "n_items"),
    _m("gini", gini_exposure, False, "topk", "n_items"),
    _m("novelty", novelty, True, "topk", "item_counts", "n_users"),
    _m("avg_popularity", average_popularity, False, "topk", "item_counts"),
    _m("diversity", intra_list_diversity, True, "topk", "item_features"),
)}


def _call(metric: Metric, k: int, ctx: dict) -> np.ndarray | float:
    params = inspect.signature(metric.fn).parameters
    return metric.fn(**{p: ctx[p] for p in params if p != "k" and p in ctx}, k=k)


def _context(names, ks, topk, relevant, n_items, **optional) -> dict:
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    given = {"topk": topk, "relevant": relevant, "n_items": n_items, **optional}
    for n in names:
        needs = METRICS[n].needs | ({"topk", "relevant"} if METRICS[n].is_per_user else set())
        missing = sorted(x for x in needs - {"hits"} if given.get(x) is None)
        if missing:
            raise ValueError(f"metric {n!r} needs {', '.join(missing)}")
    ctx = {key: v for key, v in given.items() if v is not None}
    width = np.shape(topk)[1] if np.ndim(topk) == 2 else 0
    if n_items is None and relevant is not None:
        n_items = relevant.shape[1]
    for k in ks:
        check_k(k)
        if k > width and n_items is not None and width < n_items:
            raise ValueError(f"cutoff {k} exceeds the {width} ranked items (and the catalogue has {n_items})")
    if any(METRICS[n].is_per_user for n in names):
        ctx["relevant"] = canonical_relevant(relevant)
        if n_items is not None and ctx["relevant"].shape[1] != n_items:
            raise ValueError(f"relevant has {ctx['relevant'].shape[1]} columns, n_items is {n_items}")
        ctx["hits"] = hits_matrix(topk, ctx["relevant"])
        ctx["n_rel"] = np.diff(ctx["relevant"].indptr)
    return ctx


def compute(names: list[str], ks: list[int], *, topk, relevant=None, n_items: int, item_counts=None,
            item_weights=None, item_features=None, n_users: int | None = None) -> dict[str, float]:
    """Every metric in ``names`` at every cutoff in ``ks``, averaged over users.

    Returns ``{"ndcg@10": ..., "coverage@10": ...}`` (metric-major order). Raises
    :class:`ValueError` for an unknown name or when a metric's input (see ``METRICS[name].needs``)
    is missing, e.g. ``novelty`` without ``n_users`` (the number of training users).
    """
    ctx = _context(names, ks, topk, relevant, n_items, item_counts=item_counts, item_weights=item_weights,
                   item_features=item_features, n_users=n_users)
    out: dict[str, float] = {}
    for n in names:
        for k in ks:
            value = _call(METRICS[n], k, ctx)
            out[f"{n}@{k}"] = float(np.mean(value)) if METRICS[n].is_per_user else float(value)
    return out


def per_user(name: str, k: int, *, topk, relevant, item_weights=None, n_items: int | None = None) -> np.ndarray:
    """One per-user (accuracy) metric at cutoff ``k``: float64 [U], for CIs and paired tests."""
    if name in METRICS and not METRICS[name].is_per_user:
        raise ValueError(f"{name!r} is not a per-user metric")
    ctx = _context([name], [k], topk, relevant, n_items, item_weights=item_weights)
    return _call(METRICS[name], k, ctx)

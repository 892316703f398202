r"""Calibrated re-ranking of a model's candidates over item groups (Steck, RecSys 2018).

The mitigation stage of exposure bias: it runs after retrieval, on the model's top ``M``
candidates of each user (seen items excluded), in evaluation, the audit and serving alike.
For item groupings :math:`g = 1..G` (``popularity``: head/tail; any categorical item feature
such as a provider or genre) the list :math:`S` of :math:`K` items is built greedily, one
position at a time:

.. math::
    S \leftarrow S \cup \arg\max_{i \in C \setminus S}\;
        (1 - \lambda)\,\hat s_{ui} - \lambda \sum_g \mathrm{KL}\big(p^g_u \,\|\, \tilde q^g(S \cup \{i\})\big)

* :math:`\hat s_{ui}`: the model's inner-product score, min-max scaled to [0, 1] within the
  user's pool (so :math:`\lambda` means the same for every model and user);
* :math:`p^g_u`: the calibration target, the distribution of the user's training items over
  grouping :math:`g`'s groups (Steck's "calibrated" list reflects the user's own mix); users
  without training items get the catalogue-wide training distribution;
* :math:`q^g(S)`: the distribution of the list's items over the groups, and
  :math:`\tilde q = (1 - \alpha) q + \alpha p` with :math:`\alpha = 0.01`, which keeps KL finite;
* ``strength`` :math:`\lambda \in [0, 1]`: 0 is the model's own order (the re-ranker is then
  skipped), 1 ignores the scores. Ties in the gain keep the model's order.

A model that over-exposes popular items shows a user whose history is 40% long-tail a list
that is 5% long-tail; the calibrated list moves it towards 40%, which raises the tail's share
of exposure towards its share of relevance (the audit's exposure-ratio gate). Cost: one
``[U, M, G]`` array per position, :math:`O(K \cdot M \cdot \sum_g G_g)` per user.

Items whose group code is missing (``-1``) form one extra group of their grouping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from kgrec.metrics.beyond import head_items

RERANKERS = ("none", "calibrated")
ALPHA = 0.01  # Steck's smoothing of the list's distribution towards the target
CHUNK = 1024  # users per vectorised block


@dataclass(frozen=True)
class Grouping:
    """One item grouping: ``codes`` int64 [I] in ``0..n_groups-1`` and its group ``names``."""

    name: str
    codes: np.ndarray
    names: tuple[str, ...]

    @property
    def n_groups(self) -> int:
        return len(self.names)


def popularity_grouping(item_counts: np.ndarray, head_share: float) -> Grouping:
    """Head (0) and tail (1) by training popularity, as the audit's exposure check defines them."""
    return Grouping("popularity", (~head_items(item_counts, head_share)).astype(np.int64), ("head", "tail"))


def feature_grouping(name: str, codes: np.ndarray, vocab: Sequence[str] | None = None) -> Grouping:
    """A categorical item feature (codes [I], ``-1`` missing) as a grouping; missing codes
    become one extra group ``"missing"``."""
    c = np.asarray(codes, dtype=np.int64)
    n = int(c.max()) + 1 if c.size and c.max() >= 0 else 0
    names = list(vocab) if vocab is not None else [str(k) for k in range(n)]
    names = names[: max(n, len(names))]
    if (c < 0).any():
        c = np.where(c < 0, len(names), c)
        names.append("missing")
    return Grouping(name, c, tuple(f"{name}={x}" for x in names))


def targets(grouping: Grouping, histories: sp.csr_matrix, fallback: np.ndarray | None = None) -> np.ndarray:
    """float64 [n, G]: each row's distribution of history items over the groups; rows without
    history get ``fallback`` (float [G]), by default the distribution of all history items together."""
    onehot = sp.csr_matrix((np.ones(len(grouping.codes)), (np.arange(len(grouping.codes)), grouping.codes)),
                           shape=(len(grouping.codes), grouping.n_groups))
    counts = np.asarray((sp.csr_matrix(histories, dtype=np.float64) @ onehot).todense())
    total = counts.sum(axis=1, keepdims=True)
    overall = counts.sum(axis=0)
    if fallback is None:
        fallback = overall / overall.sum() if overall.sum() > 0 else np.full(grouping.n_groups, 1.0 / grouping.n_groups)
    return np.where(total > 0, counts / np.maximum(total, 1.0), np.asarray(fallback, dtype=np.float64)[None, :])


def catalogue_mix(grouping: Grouping, item_counts: np.ndarray) -> np.ndarray:
    """float64 [G]: the training interactions' distribution over the groups (uniform if none)."""
    mix = np.bincount(grouping.codes, weights=np.asarray(item_counts, dtype=np.float64), minlength=grouping.n_groups)
    return mix / mix.sum() if mix.sum() > 0 else np.full(grouping.n_groups, 1.0 / grouping.n_groups)


def _scaled(scores: np.ndarray) -> np.ndarray:
    """Min-max scaling of each row to [0, 1] (a constant row is all 1; -inf/NaN entries are 0)."""
    s = np.where(np.isfinite(scores), scores, np.nan)
    lo, hi = np.nanmin(s, axis=1, keepdims=True), np.nanmax(s, axis=1, keepdims=True)
    span = hi - lo
    out = np.where(span > 0, (s - lo) / np.where(span > 0, span, 1.0), 1.0)
    return np.nan_to_num(out, nan=0.0)


def calibrated_order(scores: np.ndarray, groups: Sequence[np.ndarray], target: Sequence[np.ndarray], k: int,
                     strength: float, *, valid: np.ndarray | None = None) -> np.ndarray:
    """Greedy calibrated selection (module docstring) of ``k`` positions per row.

    ``scores`` float [n, M] (the pool, best first); ``groups[g]`` int [n, M] the group of each
    candidate in grouping ``g``; ``target[g]`` float [n, G_g]; ``valid`` bool [n, M] (False:
    a padding slot that is never chosen while a valid one is left). Returns int64 [n, k'] column
    indices into the pool, ``k' = min(k, M)``, in list order.
    """
    n, m = scores.shape
    k = min(int(k), m)
    gain_score = (1.0 - strength) * _scaled(scores)
    taken = np.zeros((n, m), dtype=bool)
    blocked = taken if valid is None else ~np.asarray(valid, dtype=bool)
    counts = [np.zeros((n, t.shape[1])) for t in target]
    eye = [np.eye(t.shape[1]) for t in target]
    rows = np.arange(n)
    out = np.empty((n, k), dtype=np.int64)
    for step in range(k):
        kl = np.zeros((n, m))
        for c, gm, p, e in zip(counts, groups, target, eye):
            q = (c[:, None, :] + e[gm]) / (step + 1)  # [n, M, G]: the list's mix with each candidate added
            q = (1 - ALPHA) * q + ALPHA * p[:, None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                terms = np.where(p[:, None, :] > 0, p[:, None, :] * np.log(p[:, None, :] / q), 0.0)
            kl += terms.sum(axis=2)
        gain = gain_score - strength * kl
        gain[taken | blocked] = -np.inf
        pick = np.argmax(gain, axis=1)  # the first maximum: the model's order breaks ties
        if valid is not None:  # every valid slot is taken: fall back to padding, in pool order
            exhausted = ~np.isfinite(gain[rows, pick])
            if exhausted.any():
                pick[exhausted] = np.argmin(taken[exhausted], axis=1)  # the first untaken (padding) slot
        out[:, step] = pick
        taken[rows, pick] = True
        for c, gm in zip(counts, groups):
            c[rows, gm[rows, pick]] += 1
    return out


class CalibratedReranker:
    """The calibrated re-ranking stage over fixed ``groupings``, at ``strength`` λ on a pool
    of ``pool`` candidates. :meth:`rerank` takes candidates, their scores and the users'
    histories (the calibration targets), so serving can call it on one folded-in user."""

    def __init__(self, groupings: Sequence[Grouping], *, strength: float, pool: int,
                 priors: Sequence[np.ndarray] | None = None) -> None:
        if not 0.0 <= float(strength) <= 1.0:
            raise ValueError(f"rerank strength must be in [0, 1], got {strength!r}")
        if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
            raise ValueError(f"rerank pool must be an integer >= 1, got {pool!r}")
        if not groupings:
            raise ValueError("the calibrated re-ranker needs at least one item grouping")
        self.groupings, self.strength, self.pool = list(groupings), float(strength), pool
        self.priors = None if priors is None else [np.asarray(p, dtype=np.float64) for p in priors]

    def with_strength(self, strength: float) -> CalibratedReranker:
        return CalibratedReranker(self.groupings, strength=strength, pool=self.pool, priors=self.priors)

    def rerank(self, candidates: np.ndarray, scores: np.ndarray, histories: sp.csr_matrix, k: int,
               valid: np.ndarray | None = None) -> np.ndarray:
        """int64 [n, min(k, M)] item ids in list order. ``candidates`` int [n, M] (best first;
        ``-1`` pads a short pool), ``scores`` [n, M], ``histories`` CSR [n, I]."""
        cand = np.asarray(candidates, dtype=np.int64)
        if self.strength == 0.0:
            return cand[:, : min(k, cand.shape[1])]
        out = np.empty((cand.shape[0], min(k, cand.shape[1])), dtype=np.int64)
        for a in range(0, cand.shape[0], CHUNK):
            c, s = cand[a: a + CHUNK], np.asarray(scores[a: a + CHUNK], dtype=np.float64)
            ok = c >= 0 if valid is None else (c >= 0) & np.asarray(valid[a: a + CHUNK], dtype=bool)
            safe = np.where(c >= 0, c, 0)
            groups = [g.codes[safe] for g in self.groupings]
            tgt = [targets(g, histories[a: a + CHUNK], None if self.priors is None else self.priors[j])
                   for j, g in enumerate(self.groupings)]
            pos = calibrated_order(np.where(ok, s, -np.inf), groups, tgt, k, self.strength, valid=ok)
            out[a: a + CHUNK] = np.take_along_axis(c, pos, axis=1)
        return out


def reranker_for(dataset, item_counts: np.ndarray, *, groupings: Sequence[str], strength: float, pool: int,
                 head_share: float) -> CalibratedReranker:
    """The re-ranker over named groupings of ``dataset``'s items: ``"popularity"`` (head/tail
    at ``head_share`` by ``item_counts``) or a categorical item feature of the schema."""
    from kgrec.errors import SchemaError

    item_type = dataset.schema.item_type
    node, spec = dataset.nodes[item_type], dataset.schema.nodes[item_type].features
    out = []
    for name in groupings:
        if name == "popularity":
            out.append(popularity_grouping(item_counts, head_share))
        elif name in spec and spec[name].type == "categorical":
            out.append(feature_grouping(name, node.features[name], node.vocab.get(name)))
        else:
            known = ["popularity"] + [f for f, s in spec.items() if s.type == "categorical"]
            raise SchemaError(f"unknown re-ranking grouping '{name}'; this data set's: {', '.join(known)}",
                              field="rerank.groupings")
    return CalibratedReranker(out, strength=strength, pool=pool, priors=[catalogue_mix(g, item_counts) for g in out])

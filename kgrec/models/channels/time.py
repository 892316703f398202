"""The time channel: recency of the user's history and of the item's interactions.

From the training interactions' timestamps (the channel is absent without them):

- recency-weighted history: the ``k``-th most recent training interaction of user ``u``
  (``k = 0`` the latest; ties broken by the table's order) weighs ``r_{u,i} = δ^k``
  (``δ = time_decay``, default 0.9). The user ego gains ``h_u ← h_u + (R̃ E)_u`` with
  ``R̃`` the row-normalised ``R`` and ``E`` [I, d] the channel's own item embeddings, a
  recency-weighted FISM/SVD++ term (scalar mask ``user_time``). ``R`` also re-weights the
  item-item term's input rows (:meth:`TimeChannel.history_weights`; the weight ``κ`` of that
  is chosen on validation by the model).
- item recency and current demand: the time from the item's last training interaction to
  the end of the training period, in ``log₂``-day buckets (0: under a day, ..., 11: over
  three years; 12: never interacted), and the item's count among the latest 10% of the
  training interactions, in ``log₂(1 + n)`` buckets (0..11), each bucket a learned vector
  added to the item ego (scalar mask ``item_time``), so items in current demand can rise on
  a temporal split. The current demand is also an item prior score (:meth:`TimeChannel.item_prior`)
  that the model weighs on validation.

Fold-in (:mod:`kgrec.models.foldin`): a history outside training, oldest first, gets the
same ``r`` (entry ``e`` of ``H`` at position ``H − 1 − e``, times its multiplier) and so the
same user term; a new item is in bucket 12 (never interacted) with no current demand.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from kgrec.models.channels.base import Channel, ChannelSettings, NewItem
from kgrec.models.masks import EdgeMasks, ScalarChannel
from kgrec.models.propagation import SparseOperator
from kgrec.models.side import row_normalize

USER_TIME = ScalarChannel("user_time", "recent history", "the user's most recent interactions (recency-weighted)")
ITEM_TIME = ScalarChannel("item_time", "item recency", "how recently the item was last interacted with")
BUCKETS = 12  # log2-day buckets of item recency; one more for items never interacted with
DAY = 86400.0
RECENT = 0.1  # the share of the latest training interactions that measures current demand


def recency_weights(users: np.ndarray, items: np.ndarray, ts: np.ndarray, shape: tuple[int, int],
                    decay: float) -> sp.csr_matrix:
    """``R`` [U, I] with ``R_{u,i} = Σ decay^k`` over the user's interactions with ``i`` at
    recency positions ``k`` (0 = the user's latest)."""
    order = np.lexsort((-np.arange(len(ts)), -ts, users))  # by user, newest first, later rows first
    u = users[order]
    start = np.r_[0, np.flatnonzero(np.diff(u)) + 1]
    pos = np.arange(len(u)) - np.repeat(start, np.diff(np.r_[start, len(u)]))
    m = sp.csr_matrix((decay ** pos.astype(np.float64), (u, items[order])), shape=shape)
    m.sum_duplicates()
    m.sort_indices()
    return m


def recency_buckets(items: np.ndarray, ts: np.ndarray, n_items: int) -> np.ndarray:
    """Each item's bucket (module docstring), int64 [I]."""
    last = np.full(n_items, -np.inf)
    np.maximum.at(last, items, ts)
    age_days = (ts.max() - last) / DAY if len(ts) else np.full(n_items, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        bucket = np.floor(np.log2(np.maximum(age_days, 0.0) + 1.0))
    return np.where(np.isfinite(last), np.clip(bucket, 0, BUCKETS - 1), BUCKETS).astype(np.int64)


def demand_counts(items: np.ndarray, ts: np.ndarray, n_items: int, recent: float = RECENT) -> np.ndarray:
    """Each item's count among the latest ``recent`` share of the interactions (ties at the
    cut included), int64 [I]."""
    if not len(ts):
        return np.zeros(n_items, np.int64)
    return np.bincount(items[ts >= np.quantile(ts, 1.0 - recent)], minlength=n_items).astype(np.int64)


def count_buckets(counts: np.ndarray) -> np.ndarray:
    """``min(floor(log₂(1 + n)), BUCKETS - 1)``, int64."""
    return np.minimum(np.floor(np.log2(1.0 + counts)), BUCKETS - 1).astype(np.int64)


class TimeChannel(Channel):
    name = "time"

    def __init__(self, recency: sp.csr_matrix, buckets: np.ndarray, demand: np.ndarray,
                 settings: ChannelSettings) -> None:
        super().__init__()
        self.decay = settings.time_decay
        self.demand_counts = demand
        self.recency = recency
        self.op = SparseOperator(row_normalize(recency))
        self.item_recent = nn.Embedding(recency.shape[1], settings.dim)
        self.bucket_emb = nn.Embedding(BUCKETS + 1, settings.dim)
        self.demand_emb = nn.Embedding(BUCKETS, settings.dim)
        for emb in (self.item_recent, self.bucket_emb, self.demand_emb):
            nn.init.normal_(emb.weight, std=settings.init_std)
        self.register_buffer("bucket", torch.from_numpy(buckets), persistent=False)
        self.register_buffer("demand", torch.from_numpy(count_buckets(demand)), persistent=False)

    @classmethod
    def build(cls, ctx, settings: ChannelSettings) -> TimeChannel | None:
        inter = ctx.dataset.interactions
        if inter.timestamp is None or not len(inter):
            return None
        ts = np.asarray(inter.timestamp, np.float64)
        recency = recency_weights(inter.src.astype(np.int64), inter.dst.astype(np.int64), ts,
                                  (ctx.num_users, ctx.num_items), settings.time_decay)
        items = inter.dst.astype(np.int64)
        return cls(recency, recency_buckets(items, ts, ctx.num_items), demand_counts(items, ts, ctx.num_items),
                   settings)

    def user(self, h: Tensor, masks: EdgeMasks | None = None) -> Tensor:
        return h + self.masked(self.op(self.item_recent.weight), masks.user if masks else None, masks, USER_TIME.name)

    def item(self, h: Tensor, masks: EdgeMasks | None = None) -> Tensor:
        term = self.bucket_emb(self.bucket) + self.demand_emb(self.demand)
        return h + self.masked(term, masks.item if masks else None, masks, ITEM_TIME.name)

    def scalar_channels(self) -> tuple[ScalarChannel, ...]:
        return (USER_TIME, ITEM_TIME)

    def item_prior(self) -> tuple[np.ndarray, str]:
        """``log(1 + n_i) / log(1 + max n)``, ``n_i`` the item's count among the latest 10% of
        training interactions: current demand as a score, masked by ``item_time``."""
        counts = self.demand_counts.astype(np.float64)
        return np.log1p(counts) / max(np.log1p(counts.max()), 1e-12), ITEM_TIME.name

    def history_weights(self) -> sp.csr_matrix:
        return self.recency

    def fold_in_history_weights(self, items: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``r`` of a history given oldest first: (distinct items, ``Σ_e w_e δ^{pos_e}``), pos 0 the last entry."""
        distinct, inverse = np.unique(np.asarray(items, np.int64), return_inverse=True)
        pos = np.arange(len(items))[::-1].astype(np.float64)
        return distinct, np.bincount(inverse, np.asarray(weights, np.float64) * self.decay ** pos, len(distinct))

    def fold_in_user(self, h: Tensor, items: np.ndarray, weights: np.ndarray) -> Tensor:
        distinct, r = self.fold_in_history_weights(items, weights)
        total = r.sum()
        if not len(distinct) or total <= 0:
            return h
        share = torch.from_numpy((r / total).astype(np.float32))
        return h + share @ self.item_recent.weight[torch.from_numpy(distinct)]

    def fold_in_item(self, h: Tensor, item: NewItem) -> Tensor:
        return h + self.bucket_emb.weight[BUCKETS] + self.demand_emb.weight[int(count_buckets(np.zeros(1))[0])]

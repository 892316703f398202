"""Negative sampling for pairwise training (uniform over items a user has not interacted with),
and the sharding of its global batches across the ranks of a distributed run."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of rank ``rank``'s contiguous slice of an ``n``-row global batch:
    the slices of ranks ``0 .. world_size-1`` are in order, disjoint, differ in size by at
    most one row and together cover all ``n`` rows (a slice is empty when ``n < world_size``)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside a world of {world_size}")
    return n * rank // world_size, n * (rank + 1) // world_size


class PairSampler:
    """Yields ``(users, pos, neg)`` index arrays covering every training interaction once per
    epoch in random order; ``neg`` [B, n_neg] holds items outside the user's training set,
    drawn uniformly (collisions are redrawn; after ``max_tries`` rounds any remainder is kept,
    which only happens for users who interacted with nearly every item).

    ``max_steps`` bounds the batches per epoch: with ``E`` training interactions the batch is
    ``max(batch_size, ⌈E / max_steps⌉)``. A graph model that propagates over the whole graph
    in every step then costs O(max_steps · E · d · L) per epoch, linear in the edges, instead
    of O((E / batch_size) · E · d · L); small data sets (``E ≤ batch_size · max_steps``) keep
    ``batch_size`` exactly. ``None``: no bound.

    A mini-batch loader over sampled subgraphs can replace this class without touching the
    trainer: the trainer only iterates ``epoch(rng)``.
    """

    def __init__(self, train: sp.csr_matrix, batch_size: int = 2048, n_neg: int = 1, max_tries: int = 10,
                 max_steps: int | None = None) -> None:
        coo = train.tocoo()
        self.users = coo.row.astype(np.int64)
        self.items = coo.col.astype(np.int64)
        self.num_items = train.shape[1]
        self.keys = np.sort(self.users * self.num_items + self.items)
        if max_steps is not None:
            batch_size = max(batch_size, -(-len(self.users) // max_steps))
        self.batch_size, self.n_neg, self.max_tries = batch_size, n_neg, max_tries

    def __len__(self) -> int:
        return -(-len(self.users) // self.batch_size)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.num_items + items
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == keys

    def negatives(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        users = np.repeat(users[:, None], self.n_neg, axis=1)
        neg = rng.integers(0, self.num_items, size=users.shape)
        for _ in range(self.max_tries):
            bad = self.is_positive(users, neg)
            if not bad.any():
                break
            neg[bad] = rng.integers(0, self.num_items, size=int(bad.sum()))
        return neg

    def epoch(self, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        order = rng.permutation(len(self.users))
        for start in range(0, len(order), self.batch_size):
            idx = order[start: start + self.batch_size]
            users = self.users[idx]
            yield users, self.items[idx], self.negatives(users, rng)

    def shards(self, rng: np.random.Generator, rank: int, world_size: int
               ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
        """Rank ``rank``'s slice of each global batch of :meth:`epoch`, with the global batch's
        size: ``(users, pos, neg, n_global)``. Every rank draws the whole global batch (the
        permutation and all negatives) from its generator, so ranks seeded alike consume
        ``rng`` exactly as a single process does, and the union of the slices over the ranks,
        in rank order, is the single-process batch (:func:`shard_bounds`)."""
        for users, pos, neg in self.epoch(rng):
            start, stop = shard_bounds(len(users), rank, world_size)
            yield users[start:stop], pos[start:stop], neg[start:stop], len(users)

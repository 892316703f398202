"""Train/valid/test splits of the interaction edges, with no leakage.

A :class:`Split` holds index arrays into ``dataset.interactions``. What a model may see of
it is the training view (:mod:`kgrec.data.view`): the training interactions only, with the
message-passing graph built from them; social, KG and link edges are not interactions and
stay.

Methods (``SplitConfig.method``):

- ``random``: per user, a random ``ratios`` split (default 80/10/10), with RecBole's
  rounding (``RecBole.data.dataset.Dataset._calcu_split_ids``): test and valid get
  ``floor(r·n)`` rows, bumped to one when ``0 < r·n < 1`` and the user has rows to spare.
- ``temporal``: one global time cut at the ``ratios`` quantiles (needs timestamps).
- ``loo``: leave-one-out by time per user: the last row to test, the one before to valid
  (users with fewer than 3 rows stay in train).
- ``cold_items`` / ``cold_users``: a ``cold_fraction`` of the items (users) with
  interactions is held out entirely, half to valid and half to test; the other rows are
  split as ``random``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from kgrec.errors import DataError, SchemaError
from kgrec.graphs.dataset import EdgeTable, GraphDataset

SPLIT_METHODS = ("random", "temporal", "loo", "cold_items", "cold_users")


@dataclass(frozen=True)
class SplitConfig:
    method: str = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    cold_fraction: float = 0.1
    seed: int = 2020

    def __post_init__(self) -> None:
        if self.method not in SPLIT_METHODS:
            raise SchemaError(f"unknown split method '{self.method}' (expected one of {', '.join(SPLIT_METHODS)})",
                              field="split.method")
        if len(self.ratios) != 3 or min(self.ratios) < 0 or abs(sum(self.ratios) - 1.0) > 1e-6:
            raise SchemaError(f"split ratios must be three non-negative numbers summing to 1, got {self.ratios}",
                              field="split.ratios")
        if not 0.0 < self.cold_fraction < 1.0:
            raise SchemaError(f"cold_fraction must be in (0, 1), got {self.cold_fraction}", field="split.cold_fraction")


@dataclass
class Split:
    """Index arrays (into ``dataset.interactions``) for train, valid and test."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    config: SplitConfig = field(default_factory=SplitConfig)
    cold_items: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    cold_users: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def part(self, dataset: GraphDataset, name: str) -> EdgeTable:
        return dataset.interactions.subset(getattr(self, name))

    def updated(self, dataset: GraphDataset, moved: np.ndarray, appended: np.ndarray) -> Split:
        """The split of a continual update (``kgrec update``): the held-out rows ``moved``
        join train, as do the ``appended`` rows (new rows of ``dataset.interactions``, which
        already holds them); valid and test lose the moved rows. A cold-start user or item
        that now has training rows is no longer cold. The split settings stay the parent's."""
        moved = np.asarray(moved, dtype=np.int64)
        appended = np.asarray(appended, dtype=np.int64)
        train = np.union1d(np.union1d(self.train, moved), appended).astype(np.int64)
        inter = dataset.interactions
        cold_items = np.setdiff1d(self.cold_items, inter.dst[train]).astype(np.int64)
        cold_users = np.setdiff1d(self.cold_users, inter.src[train]).astype(np.int64)
        return Split(train, np.setdiff1d(self.valid, moved).astype(np.int64),
                     np.setdiff1d(self.test, moved).astype(np.int64), self.config, cold_items, cold_users)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, train=self.train, valid=self.valid, test=self.test, cold_items=self.cold_items,
                            cold_users=self.cold_users, config=np.array(json.dumps(asdict(self.config))))

    @classmethod
    def load(cls, path: str | Path) -> Split:
        with np.load(path) as z:
            raw = json.loads(str(z["config"]))
            config = SplitConfig(**{**raw, "ratios": tuple(raw["ratios"])})
            return cls(z["train"], z["valid"], z["test"], config, z["cold_items"], z["cold_users"])


def _ratio_counts(n: np.ndarray, ratios: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-group (train, train+valid) boundaries with RecBole's rounding."""
    cnt = [np.floor(r * n).astype(np.int64) for r in ratios]
    cnt[0] = n - cnt[1] - cnt[2]
    for i in (2, 1):  # RecBole walks ratios[-1] (test) then ratios[-2] (valid)
        bump = (cnt[0] > 1) & (ratios[i] * n > 0) & (ratios[i] * n < 1)
        cnt[i] = cnt[i] + bump
        cnt[0] = cnt[0] - bump
    return cnt[0], cnt[0] + cnt[1]


def _grouped_random(groups: np.ndarray, rows: np.ndarray, ratios: tuple[float, float, float],
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``rows`` per value of ``groups[rows]`` in random order."""
    rows = rows[rng.permutation(len(rows))]
    rows = rows[np.argsort(groups[rows], kind="stable")]
    return _cut_sorted(groups[rows], rows, ratios)


def _cut_sorted(keys: np.ndarray, rows: np.ndarray, ratios: tuple[float, float, float]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rows`` sorted by group ``keys`` (in split order within a group) → three parts."""
    if len(rows) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, len(rows)])
    rank = np.arange(len(rows)) - np.repeat(starts, sizes)
    b1, b2 = _ratio_counts(sizes, ratios)
    b1, b2 = np.repeat(b1, sizes), np.repeat(b2, sizes)
    return np.sort(rows[rank < b1]), np.sort(rows[(rank >= b1) & (rank < b2)]), np.sort(rows[rank >= b2])


def _need_time(dataset: GraphDataset, method: str) -> np.ndarray:
    ts = dataset.interactions.timestamp
    if ts is None:
        spec = dataset.schema.interaction
        raise DataError(f"split '{method}' needs timestamps, and edge '{spec.name}' declares no timestamp column",
                        file=str(dataset.schema.path), line=spec.line, field=f"edges.{spec.name}.columns.timestamp")
    return ts


def make_split(dataset: GraphDataset, config: SplitConfig | None = None) -> Split:
    """Split ``dataset.interactions`` by ``config`` (deterministic for a given seed)."""
    config = config or SplitConfig()
    inter = dataset.interactions
    rng = np.random.default_rng(config.seed)
    rows = np.arange(len(inter), dtype=np.int64)
    if config.method == "random":
        return Split(*_grouped_random(inter.src, rows, config.ratios, rng), config=config)
    if config.method == "temporal":
        ts = _need_time(dataset, "temporal")
        order = np.lexsort((rows, ts))
        return Split(*_cut_sorted(np.zeros(len(rows)), order, config.ratios), config=config)
    if config.method == "loo":
        ts = _need_time(dataset, "loo")
        order = np.lexsort((rows, ts, inter.src))
        keys = inter.src[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        sizes = np.diff(np.r_[starts, len(rows)])
        back = np.repeat(starts + sizes, sizes) - np.arange(len(rows))  # 1 for the last row of a user
        eligible = np.repeat(sizes >= 3, sizes)
        test, valid = order[eligible & (back == 1)], order[eligible & (back == 2)]
        train = order[~(eligible & (back <= 2))]
        return Split(np.sort(train), np.sort(valid), np.sort(test), config=config)
    by_item = config.method == "cold_items"
    owner = inter.dst if by_item else inter.src
    present = np.unique(owner)
    n_cold = max(2, int(round(config.cold_fraction * len(present))))
    cold = np.sort(rng.choice(present, size=min(n_cold, len(present) - 1), replace=False))
    halves = rng.permutation(cold)
    cold_valid, cold_test = np.sort(halves[: len(halves) // 2]), np.sort(halves[len(halves) // 2:])
    is_cold = np.isin(owner, cold)
    train, valid, test = _grouped_random(inter.src, rows[~is_cold], config.ratios, rng)
    valid = np.sort(np.r_[valid, rows[np.isin(owner, cold_valid)]])
    test = np.sort(np.r_[test, rows[np.isin(owner, cold_test)]])
    empty = np.empty(0, dtype=np.int64)
    return Split(train, valid, test, config=config, cold_items=cold if by_item else empty,
                 cold_users=empty if by_item else cold)

"""Splits: sizes, RecBole rounding and determinism (leakage: tests/unit/data/test_view.py)."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.data import SPLIT_METHODS, SplitConfig, make_split
from kgrec.data.splits import _ratio_counts
from kgrec.errors import DataError, SchemaError


def pairs(table) -> set[tuple[int, int]]:
    return set(zip(table.src.tolist(), table.dst.tolist()))


@pytest.mark.parametrize("method", SPLIT_METHODS)
def test_split_partitions_interactions(movielens, method: str) -> None:
    split = make_split(movielens, SplitConfig(method=method, seed=7))
    every = np.concatenate([split.train, split.valid, split.test])
    assert len(every) == len(np.unique(every)) == len(movielens.interactions)


def test_random_split_matches_recbole_rounding(movielens) -> None:
    split = make_split(movielens, SplitConfig(seed=2020))
    counts = np.bincount(movielens.interactions.src, minlength=movielens.num_users)
    n_valid = sum(int(np.floor(0.1 * n)) + (1 if 0 < 0.1 * n < 1 else 0) for n in counts)
    assert len(split.valid) == n_valid
    assert (len(split.train), len(split.valid), len(split.test)) == (80808, 9596, 9596)


def recbole_split_ids(tot: int, ratios: list[float]) -> list[int]:
    """RecBole 1.2.1 Dataset._calcu_split_ids, transcribed as the naive reference."""
    cnt = [int(ratios[i] * tot) for i in range(len(ratios))]
    cnt[0] = tot - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * tot < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return list(np.cumsum(cnt)[:-1])


@pytest.mark.parametrize(("n", "train_end", "valid_end"), [(1, 1, 1), (2, 1, 1), (3, 1, 2), (5, 3, 4),
                                                           (10, 8, 9), (19, 17, 18), (20, 16, 18)])
def test_ratio_counts_golden(n: int, train_end: int, valid_end: int) -> None:
    """Hand-computed values of RecBole's rounding for 0.8/0.1/0.1."""
    b1, b2 = _ratio_counts(np.array([n]), (0.8, 0.1, 0.1))
    assert (int(b1[0]), int(b2[0])) == (train_end, valid_end)


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.7, 0.2, 0.1), (0.6, 0.2, 0.2), (0.9, 0.05, 0.05)])
def test_ratio_counts_match_recbole_loop(ratios) -> None:
    n = np.arange(1, 400)
    b1, b2 = _ratio_counts(n, ratios)
    assert [[int(x), int(y)] for x, y in zip(b1, b2)] == [recbole_split_ids(int(t), list(ratios)) for t in n]


def test_split_is_deterministic(movielens) -> None:
    a = make_split(movielens, SplitConfig(seed=11))
    b = make_split(movielens, SplitConfig(seed=11))
    c = make_split(movielens, SplitConfig(seed=12))
    assert np.array_equal(a.test, b.test) and not np.array_equal(a.test, c.test)


def test_temporal_split_respects_time(movielens) -> None:
    split = make_split(movielens, SplitConfig(method="temporal"))
    ts = movielens.interactions.timestamp
    assert ts[split.train].max() <= ts[split.valid].min()
    assert ts[split.valid].max() <= ts[split.test].min()


def test_leave_one_out_takes_last_two(movielens) -> None:
    split = make_split(movielens, SplitConfig(method="loo"))
    inter = movielens.interactions
    assert len(split.test) == len(split.valid) == movielens.num_users  # every ML user has >= 20 ratings
    last_train = np.full(movielens.num_users, -np.inf)
    np.maximum.at(last_train, inter.src[split.train], inter.timestamp[split.train])
    assert np.all(inter.timestamp[split.test] >= last_train[inter.src[split.test]])


@pytest.mark.parametrize("method", ["cold_items", "cold_users"])
def test_cold_start_holdouts_are_entirely_held_out(movielens, method: str) -> None:
    split = make_split(movielens, SplitConfig(method=method, cold_fraction=0.2))
    inter = movielens.interactions
    owner = inter.dst if method == "cold_items" else inter.src
    cold = split.cold_items if method == "cold_items" else split.cold_users
    assert len(cold) == round(0.2 * len(np.unique(owner)))
    assert not np.isin(owner[split.train], cold).any()
    assert np.isin(owner[split.test], cold).any() and np.isin(owner[split.valid], cold).any()


def test_temporal_needs_timestamps(lastfm) -> None:
    with pytest.raises(DataError, match="needs timestamps"):
        make_split(lastfm, SplitConfig(method="temporal"))


def test_bad_config() -> None:
    with pytest.raises(SchemaError):
        SplitConfig(method="stratified")
    with pytest.raises(SchemaError):
        SplitConfig(ratios=(0.5, 0.1, 0.1))


def test_split_save_load(tmp_path, tiny) -> None:
    split = make_split(tiny, SplitConfig(method="cold_items", seed=1, cold_fraction=0.3))
    split.save(tmp_path / "split.npz")
    back = type(split).load(tmp_path / "split.npz")
    assert back.config == split.config
    for name in ("train", "valid", "test", "cold_items", "cold_users"):
        assert np.array_equal(getattr(back, name), getattr(split, name))

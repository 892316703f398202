"""Non-profiling rankings (kgrec.models.nonprofiling): time-decayed popularity and the
``popular``/``recent`` factory."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from kgrec.data.view import TrainingView, interaction_matrix
from kgrec.errors import SchemaError
from kgrec.graphs.dataset import EdgeTable
from kgrec.models import create_model
from kgrec.models.base import ModelContext
from kgrec.models.nonprofiling import DAY, RecentPop, non_profiling_model
from kgrec.models.ranking import rank

T0 = 1.7e9  # a timestamp in 2023 (seconds)


def context_with(base: ModelContext, src, dst, timestamp) -> ModelContext:
    """``base``'s data set with its training interactions replaced by the given table."""
    table = EdgeTable(np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64), None,
                      None if timestamp is None else np.asarray(timestamp, dtype=np.float64))
    ds = copy.copy(base.dataset)
    ds.edges = {**ds.edges, ds.interaction_type: table}
    return ModelContext(TrainingView(ds, interaction_matrix(table, ds.num_users, ds.num_items)))


def item_scores(model) -> np.ndarray:
    with torch.no_grad():
        users, items = model.embed()
        return (users[:1] @ items.T)[0].double().numpy()


def test_later_interactions_score_higher_at_equal_counts(small_world) -> None:
    # items 3 and 7: two interactions each; item 7's are a week later
    ctx = context_with(small_world, [0, 1, 2, 3], [3, 3, 7, 7],
                       [T0, T0 + DAY, T0 + 7 * DAY, T0 + 8 * DAY])
    s = item_scores(non_profiling_model("recent", ctx))
    assert s[7] > s[3] > 0
    assert (np.delete(s, [3, 7]) == 0).all()  # items without training interactions score 0
    top = rank(non_profiling_model("recent", ctx), np.arange(ctx.num_users), 2, None)
    assert (top == [7, 3]).all()
    # the plain count ties them, and the lower index wins
    assert (rank(non_profiling_model("popular", ctx), np.arange(3), 2, None) == [3, 7]).all()


@pytest.mark.parametrize("half_life", [30.0, 7.0, 0.5])
def test_one_half_life_older_weighs_one_half(small_world, half_life: float) -> None:
    latest = T0 + 100 * DAY
    ctx = context_with(small_world, [0, 1, 2, 3, 4], [0, 1, 2, 2, 5],
                       [latest, latest - half_life * DAY, latest - 2 * half_life * DAY,
                        latest - 3 * half_life * DAY, latest - 10 * half_life * DAY])
    model = create_model("recentpop", ctx, {"half_life_days": half_life})
    model.fit(ctx)
    s = item_scores(model)
    assert s[0] == 1.0 and s[1] == 0.5  # golden: 2^0 and 2^-1, exact
    assert s[2] == pytest.approx(0.25 + 0.125) and s[5] == pytest.approx(2.0 ** -10)
    # a long half-life tends to the plain count, a short one to the latest interactions only
    ctx_counts = context_with(small_world, [0, 1, 2, 3], [4, 4, 4, 9], [T0, T0, T0, T0 + 60 * DAY])
    long = create_model("recentpop", ctx_counts, {"half_life_days": 1e6})
    long.fit(ctx_counts)
    assert item_scores(long)[4] == pytest.approx(3.0, rel=1e-4) and item_scores(long)[4] > item_scores(long)[9]
    short = create_model("recentpop", ctx_counts, {"half_life_days": 1.0})
    short.fit(ctx_counts)
    assert item_scores(short)[9] > item_scores(short)[4]


def test_default_half_life_is_thirty_days(small_world) -> None:
    ctx = context_with(small_world, [0, 1], [0, 1], [T0 + 30 * DAY, T0])
    s = item_scores(non_profiling_model("recent", ctx))
    assert (s[0], s[1]) == (1.0, 0.5)
    assert item_scores(non_profiling_model("recent", ctx, half_life_days=15.0))[1] == 0.25


@pytest.mark.parametrize("kind", ["popular", "recent"])
def test_the_ranking_is_the_same_for_every_user(small_world, kind: str) -> None:
    model = non_profiling_model(kind, small_world)
    assert not model.training
    users = np.arange(small_world.num_users)
    with torch.no_grad():
        full = model.full_scores(torch.from_numpy(users))
    assert torch.equal(full, full[:1].expand_as(full))
    top = rank(model, users, 15, None)
    assert (top == top[0]).all()
    order = np.argsort(-item_scores(model), kind="stable")[:15]  # ties by the lower item index
    np.testing.assert_array_equal(top[0], order)


def test_recent_on_the_real_timestamps_is_the_decayed_count(small_world) -> None:
    table = small_world.dataset.interactions
    age = (table.timestamp.max() - table.timestamp) / DAY
    want = np.zeros(small_world.num_items)
    for item, a in zip(table.dst.tolist(), age.tolist()):  # the naive sum, one interaction at a time
        want[item] += 2.0 ** (-a / 30.0)
    np.testing.assert_allclose(item_scores(non_profiling_model("recent", small_world)), want, rtol=1e-6)


def test_no_timestamps_is_a_schema_error_naming_the_ranking(small_world) -> None:
    ctx = context_with(small_world, [0, 1], [0, 1], None)
    with pytest.raises(SchemaError, match="timestamps") as err:
        non_profiling_model("recent", ctx)
    assert err.value.field == "ranking" and "'popular'" in err.value.message
    assert non_profiling_model("popular", ctx) is not None  # the count needs no time


def test_popular_is_mostpop(small_world) -> None:
    model = non_profiling_model("popular", small_world)
    ref = create_model("mostpop", small_world)
    ref.fit(small_world)
    np.testing.assert_array_equal(item_scores(model), item_scores(ref))
    np.testing.assert_array_equal(item_scores(model), small_world.item_counts.astype(np.float64))
    users = np.arange(small_world.num_users)
    np.testing.assert_array_equal(rank(model, users, 10, small_world.train), rank(ref, users, 10, small_world.train))


@pytest.mark.parametrize("kind", ["trending", "model", "", "Popular"])
def test_unknown_kind_is_a_schema_error(small_world, kind: str) -> None:
    with pytest.raises(SchemaError, match="popular, recent") as err:
        non_profiling_model(kind, small_world)
    assert err.value.field == "ranking"


@pytest.mark.parametrize("half_life", [0.0, -1.0, float("nan")])
def test_half_life_must_be_positive(small_world, half_life: float) -> None:
    with pytest.raises(SchemaError, match="half_life_days"):
        RecentPop(small_world, half_life_days=half_life)

"""The channel contract: the time channel's math, and that a new channel is one class plus a
registry entry which the model composes and the explanations pick up with no other change."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.audit.explain import integrated_gradients, masked_score
from kgrec.errors import SchemaError
from kgrec.models import channels as channel_pkg
from kgrec.models import kgrec as kgrec_module
from kgrec.models.base import ModelContext, create_model
from kgrec.models.channels.base import Channel
from kgrec.models.channels.time import BUCKETS, DAY, count_buckets, demand_counts, recency_buckets, recency_weights
from kgrec.models.masks import ScalarChannel


def test_recency_weights_decay_by_position_newest_first():
    users = np.array([0, 0, 0, 1, 1])
    items = np.array([2, 0, 1, 0, 2])
    ts = np.array([10.0, 30.0, 20.0, 5.0, 5.0])  # user 1: a tie, the later row counts as newer
    r = recency_weights(users, items, ts, (2, 3), decay=0.5).toarray()
    np.testing.assert_allclose(r, [[1.0, 0.5, 0.25], [0.5, 0.0, 1.0]])


def test_recency_weights_sum_repeated_pairs():
    r = recency_weights(np.array([0, 0]), np.array([1, 1]), np.array([1.0, 2.0]), (1, 2), decay=0.5)
    assert r.nnz == 1 and r[0, 1] == pytest.approx(1.5)


def test_recency_buckets_boundaries_and_never_seen():
    end = 1000 * DAY
    items = np.array([0, 1, 2, 3, 0, 4])  # the training period ends at item 4's interaction
    ts = np.array([end - 0.5 * DAY, end - 1 * DAY, end - 3 * DAY, end - 10_000 * DAY, end - 50 * DAY, end])
    b = recency_buckets(items, ts, 6)
    # log2(age + 1): 0.58 -> 0, 1 -> 1, 2 -> 2, 13.3 -> capped at BUCKETS - 1, 0 -> 0; item 5 never seen
    assert b.tolist() == [0, 1, 2, BUCKETS - 1, 0, BUCKETS]


def test_demand_buckets_count_the_latest_share():
    ts = np.arange(20, dtype=float)  # the latest 10%: rows 18 and 19 (quantile cut at 17.1)
    items = np.array([0] * 17 + [1, 1, 2])
    b = count_buckets(demand_counts(items, ts, 4, recent=0.1))
    assert b.tolist() == [0, 1, 1, 0]  # item 1: row 18 (row 17 is before the cut); item 2: row 19; log2(2) = 1
    many = count_buckets(demand_counts(np.zeros(10_000, np.int64), np.arange(10_000.0), 1, recent=0.5))
    assert many.tolist() == [BUCKETS - 1]


@pytest.fixture(scope="module")
def ctx(small_world) -> ModelContext:
    return small_world


def test_time_channel_builds_from_timestamps_and_reweights_history(ctx):
    model = create_model("kgrec", ctx, {"dim": 8})
    assert "time" in model.channels
    recency = model.channels["time"].history_weights()
    assert (recency != 0).sum() == ctx.train.nnz and ((recency != 0) != (ctx.train != 0)).nnz == 0
    assert recency.max() == pytest.approx(1.0)  # each user's latest item


def test_unknown_channel_is_a_schema_error(ctx):
    with pytest.raises(SchemaError, match="no channel 'colour'"):
        create_model("kgrec", ctx, {"channels": ["colour"]})


class Popularity(Channel):
    """A toy side channel: a learned vector per item scaled by its training count."""

    name = "toy"
    MASK = ScalarChannel("item_toy", "toy signal", "a toy signal")

    def __init__(self, counts: np.ndarray, dim: int) -> None:
        super().__init__()
        self.register_buffer("counts", torch.from_numpy(np.log1p(counts).astype(np.float32)).unsqueeze(1))
        self.vec = torch.nn.Parameter(torch.full((dim,), 0.3))

    @classmethod
    def build(cls, ctx, settings):
        return cls(ctx.item_counts, settings.dim)

    def item(self, h, masks=None):
        return h + self.masked(self.counts * self.vec, masks.item if masks else None, masks, self.MASK.name)

    def scalar_channels(self):
        return (self.MASK,)


def test_a_new_channel_is_one_class_and_a_registry_entry(ctx, monkeypatch):
    torch.manual_seed(0)
    base = create_model("kgrec", ctx, {"dim": 8}).eval()
    monkeypatch.setattr(kgrec_module, "REGISTRY", (*channel_pkg.REGISTRY, Popularity))
    torch.manual_seed(0)
    model = create_model("kgrec", ctx, {"dim": 8}).eval()
    assert "toy" in model.channels and "item_toy" in model.mask_channels
    with torch.no_grad():
        assert not torch.allclose(model.embed()[1], base.embed()[1])  # the channel feeds the vectors
    user, item = 3, int(np.argmax(ctx.item_counts))
    ms = masked_score(model, user, item, lambda kind, i: f"{kind}#{i}")
    assert ("item_toy", "toy signal") in ms.labels
    attr, full, base_score, delta, _ = integrated_gradients(ms, n_steps=32)
    assert attr[ms.labels.index(("item_toy", "toy signal"))] != 0.0
    assert abs(attr.sum() - (full - base_score)) <= abs(delta) + 1e-5  # completeness
    with pytest.raises(SchemaError):  # the channel can be switched off by name like the others
        create_model("kgrec", ctx, {"channels": ["nope"]})
    off = create_model("kgrec", ctx, {"dim": 8, "channels": ["kg"]})
    assert "toy" not in off.channels

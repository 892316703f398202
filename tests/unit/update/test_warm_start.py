"""The warm start of an updated model (kgrec.update.continual.warm_start) and its batches
(replay_batches)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.data.splits import Split
from kgrec.data.view import views
from kgrec.graphs.dataset import EdgeTable
from kgrec.models.base import ModelContext, create_model
from kgrec.update.continual import replay_batches, row_layout, warm_start


def test_row_layout() -> None:
    assert row_layout(5, 6, (5, 8), (6, 8)) == "users"
    assert row_layout(8, 10, (5, 8), (6, 10)) == "items"
    assert row_layout(13, 16, (5, 8), (6, 10)) == "users+items"
    assert row_layout(4, 5, (5, 8), (6, 10)) is None
    assert row_layout(5, 7, (5, 8), (6, 10)) is None  # first dimension grew, but not as users did


def contexts(tiny):
    """(parent context, child context): the child has one new user and one new item, with rows."""
    n = len(tiny.interactions)
    parent_split = Split(np.arange(n - 3), np.arange(n - 3, n - 1), np.arange(n - 1, n))
    u0, i0 = tiny.num_users, tiny.num_items
    rows = EdgeTable(np.array([u0, u0, 0]), np.array([0, i0, i0]), np.array([4.0, 5.0, 3.0], np.float32),
                     np.array([300.0, 310.0, 320.0]))
    child = tiny.with_additions(["u9"], ["i9"], rows)
    child_split = parent_split.updated(child, np.empty(0, np.int64), np.arange(n, n + 3))
    return ModelContext(views(tiny, parent_split)[0]), ModelContext(views(child, child_split)[0])


@pytest.mark.parametrize("name", ["bprmf", "lightgcn"])
def test_parent_rows_copied_exactly_and_new_rows_fresh(tiny, name) -> None:
    pctx, cctx = contexts(tiny)
    torch.manual_seed(0)
    parent = create_model(name, pctx, {"dim": 8})
    with torch.no_grad():
        for p in parent.parameters():
            p.add_(torch.randn_like(p))  # "trained": unlike any fresh initialisation
    torch.manual_seed(1)
    child = create_model(name, cctx, {"dim": 8})
    fresh = {k: v.clone() for k, v in child.state_dict().items()}
    report = warm_start(child, parent.state_dict(), (pctx.num_users, pctx.num_items),
                        (cctx.num_users, cctx.num_items))
    u0, i0, u1 = pctx.num_users, pctx.num_items, cctx.num_users
    if name == "bprmf":
        assert report["rows"] == {"user_emb.weight": "users", "item_emb.weight": "items"}
        assert torch.equal(child.user_emb.weight[:u0], parent.user_emb.weight)
        assert torch.equal(child.item_emb.weight[:i0], parent.item_emb.weight)
        assert torch.equal(child.user_emb.weight[u0:], fresh["user_emb.weight"][u0:])
        assert torch.equal(child.item_emb.weight[i0:], fresh["item_emb.weight"][i0:])
    else:  # one table, users then items: the item block moves down by the new users
        assert report["rows"] == {"emb.weight": "users+items"}
        w, pw = child.emb.weight, parent.emb.weight
        assert torch.equal(w[:u0], pw[:u0]) and torch.equal(w[u1: u1 + i0], pw[u0:])
        assert torch.equal(w[u0:u1], fresh["emb.weight"][u0:u1])
        assert torch.equal(w[u1 + i0:], fresh["emb.weight"][u1 + i0:])
    assert not report["fresh"] and not report["copied"]


def test_kgrec_tensors_copied_by_rows_or_whole(tiny) -> None:
    pctx, cctx = contexts(tiny)
    torch.manual_seed(0)
    parent = create_model("kgrec", pctx, {"dim": 8})
    parent.blend.fill_(3.5)
    parent.ii_proj.normal_()
    torch.manual_seed(1)
    child = create_model("kgrec", cctx, {"dim": 8})
    report = warm_start(child, parent.state_dict(), (pctx.num_users, pctx.num_items),
                        (cctx.num_users, cctx.num_items))
    assert report["rows"]["channels.ids.user_emb.weight"] == "users"
    assert report["rows"]["channels.ids.item_emb.weight"] == "items"
    assert "blend" in report["copied"] and float(child.blend) == 3.5
    # the ELSA factor [I, min(191, I)] grew in both dimensions with the items: the old block is copied,
    # the new item's row and the new latent column keep their initialisation (zeros: no item-item term)
    i0 = pctx.num_items
    assert report["rows"]["ii_proj"] == "items×items"
    assert torch.equal(child.ii_proj[:i0, :i0], parent.ii_proj)
    assert not child.ii_proj[i0:].any() and not child.ii_proj[:, i0:].any()
    assert not report["fresh"]
    kg = [k for k in report["copied"] if k.startswith("channels.kg.")]
    assert kg and all(torch.equal(child.state_dict()[k], parent.state_dict()[k]) for k in kg)


def test_only_copies_the_names_asked_for(tiny) -> None:
    pctx, cctx = contexts(tiny)
    parent = create_model("bprmf", pctx, {"dim": 8})
    child = create_model("bprmf", cctx, {"dim": 8})
    report = warm_start(child, parent.state_dict(), (pctx.num_users, pctx.num_items),
                        (cctx.num_users, cctx.num_items), only=["item_emb.weight"])
    assert list(report["rows"]) == ["item_emb.weight"] and "user_emb.weight" in report["fresh"]


def test_replay_batches_mix_new_and_all_rows() -> None:
    rng = np.random.default_rng(0)
    train = sp.random(50, 40, density=0.2, format="csr", random_state=0)
    train.data[:] = 1.0
    coo = train.tocoo()
    new = (coo.row[:5], coo.col[:5])
    batches, size, steps = replay_batches(train, new, batch_size=32, n_neg=2, max_steps=None, new_fraction=0.5,
                                          rng=rng)
    assert size == 32 and steps == -(-train.nnz // 32)
    new_keys = set(zip(new[0].tolist(), new[1].tolist()))
    for _ in range(5):
        users, pos, neg = next(batches)
        assert len(users) == 32 and neg.shape == (32, 2)
        assert sum((u, i) in new_keys for u, i in zip(users.tolist(), pos.tolist())) >= 16
        assert all(train[u, i] == 1 for u, i in zip(users.tolist(), pos.tolist()))
        assert not any(train[u, n] for u, row in zip(users.tolist(), neg.tolist()) for n in row)
    uniform, _, _ = replay_batches(train, new, batch_size=32, n_neg=1, max_steps=None, new_fraction=0.0, rng=rng)
    seen = np.concatenate([next(uniform)[0] for _ in range(steps)])
    assert len(seen) == steps * 32  # cycles through every row in random order

"""The serving core without HTTP: the deterministic list is the model's exact top-K without
the user's training items; propensities are the policy's; new items are retrievable."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def service(run, **policy):
    from kgrec.serve.index import IndexConfig
    from kgrec.serve.policy import PolicyConfig
    from kgrec.serve.service import ServeConfig, Service

    return Service(run, ServeConfig(policy=PolicyConfig(**policy), index=IndexConfig(kind="flat")))


def test_deterministic_list_is_the_exact_top_k_without_training_items(run):
    svc = service(run, name="deterministic")
    with torch.no_grad():
        users, items = run.model.embed()
    scores = (users @ items.T).numpy()
    train = run.view.train.tocsr()
    for u in range(0, run.view.num_users, 17):
        shown = svc.recommend(user_id=svc.user_ids[u], k=7)
        seen = set(train.indices[train.indptr[u]: train.indptr[u + 1]])
        expected = [i for i in np.argsort(-scores[u], kind="stable") if i not in seen][:7]
        assert [svc.item_index[i] for i in shown.items] == expected
        assert shown.pscores == [1.0] * 7 and shown.positions == list(range(1, 8))


def test_epsilon_propensities_and_exploration(run):
    from kgrec.serve.policy import PolicyConfig, marginal

    svc = service(run, name="epsilon", epsilon=0.5, candidates=30)
    exact = service(run, name="deterministic")
    cfg = PolicyConfig("epsilon", epsilon=0.5, candidates=30)
    explored = 0
    for n in range(200):
        user = svc.user_ids[n % 50]
        shown = svc.recommend(user_id=user, k=5)
        top = exact.recommend(user_id=user, k=30).items
        ranks = [top.index(i) for i in shown.items]  # every shown item comes from the top M
        assert np.allclose(shown.pscores, marginal(cfg, 30, 5)[ranks, np.arange(5)])
        explored += shown.explored
    assert 70 < explored < 130  # about half of 200


def test_fold_in_of_a_training_history_excludes_it(run):
    svc = service(run, name="deterministic")
    train = run.view.train.tocsr()
    hist = [svc.item_ids[i] for i in train.indices[train.indptr[3]: train.indptr[4]]]
    shown = svc.recommend(history=hist, k=10)
    assert shown.folded_in and not set(hist) & set(shown.items) and len(shown.items) == 10


def test_errors_name_the_field(run):
    from kgrec.serve.service import Conflict, Invalid, NotFound

    svc = service(run, name="deterministic")
    with pytest.raises(NotFound, match="unknown user"):
        svc.recommend(user_id="nobody")
    with pytest.raises(Invalid, match="2 unknown item id") as err:
        svc.recommend(history=["x1", svc.item_ids[0], "x2"])
    assert err.value.field == "history"
    for k in (0, 101, True, 2.5):
        with pytest.raises(Invalid, match="k must be"):
            svc.recommend(user_id=svc.user_ids[0], k=k)
    with pytest.raises(Conflict):
        svc.add_item(svc.item_ids[0], text="x")


def test_new_item_is_retrievable_and_scored_like_its_content(run):
    svc = service(run, name="deterministic")
    n = svc.index.ntotal
    index = svc.add_item("new-item", text=run.dataset.nodes[run.dataset.schema.item_type].text[5])
    assert index == n and svc.index.ntotal == n + 1 and svc.item_ids[-1] == "new-item"
    # retrievable at once: in a full ranking, with the exact inner-product score, and its vector is the
    # model's content path for that text (FoldIn.item_vector, tested against the model in test_foldin.py)
    user = svc.user_vectors[0]
    ids, scores = svc.index.search(user[None, :], n + 1)
    where = int(np.flatnonzero(ids[0] == n)[0])
    assert np.isclose(scores[0, where], float(user @ svc.index.vectors[n]), rtol=1e-5, atol=1e-6)
    text_vec = svc._encode(run.dataset.nodes[run.dataset.schema.item_type].text[5])
    assert np.allclose(svc.index.vectors[n], svc.fold_in.item_vector(text=text_vec, links={}), atol=1e-6)


def test_a_history_with_an_item_added_after_training_is_invalid(run):
    from kgrec.serve.service import Invalid

    svc = service(run, name="deterministic")
    svc.add_item("late-item", text="an item added while serving")
    with pytest.raises(Invalid, match="added after training") as err:
        svc.recommend(history=[svc.item_ids[0], "late-item"])
    assert err.value.field == "history"
    assert svc.recommend(user_id=svc.user_ids[0], k=3).items  # known users still get lists


def test_new_item_on_a_model_without_a_content_path_is_invalid(lightgcn_run):
    from kgrec.serve.service import Invalid

    svc = service(lightgcn_run, name="deterministic")
    assert svc.fold_in is not None  # lightgcn folds in users, but cannot place an item
    n = svc.index.ntotal
    with pytest.raises(Invalid, match="cannot place a new item") as err:
        svc.add_item("new-item", text="a new item")
    assert err.value.field == "text" and svc.index.ntotal == n and "new-item" not in svc.item_index

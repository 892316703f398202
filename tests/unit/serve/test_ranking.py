"""What orders the policy's pool (kgrec.serve.ranking): the non-profiling rankings are one
list for everyone (the popularity order, nothing excluded), the calibrated re-ranking stage
moves lists toward the tail and, when off, changes nothing; the log records both per request."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from kgrec.metrics.beyond import head_items


def service(run, policy: str = "deterministic", **kw):
    from kgrec.serve.index import IndexConfig
    from kgrec.serve.policy import PolicyConfig
    from kgrec.serve.service import ServeConfig, Service

    return Service(run, ServeConfig(policy=PolicyConfig(policy), index=IndexConfig(kind="flat"), **kw))


CALIBRATED = {"method": "calibrated", "strength": 1.0}


def exact_pool(run, u: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """The model's top ``depth`` items for user ``u`` without their training items, by brute force."""
    with torch.no_grad():
        users, items = run.model.embed()
    scores = (users[u] @ items.T).numpy().astype(np.float64)
    train = run.view.train.tocsr()
    seen = set(train.indices[train.indptr[u]: train.indptr[u + 1]].tolist())
    order = [i for i in np.argsort(-scores, kind="stable") if i not in seen][:depth]
    return np.asarray(order, dtype=np.int64), scores[order]


def test_popular_is_one_list_for_everyone_the_popularity_order_with_nothing_excluded(run):
    svc = service(run)
    expected = [svc.item_ids[i] for i in np.argsort(-run.ctx.item_counts, kind="stable")[:10]]
    lists = [svc.recommend(user_id=svc.user_ids[u], k=10, ranking="popular") for u in (0, 7)]
    lists.append(svc.recommend(k=10, ranking="popular"))  # no user at all
    lists.append(svc.recommend(user_id="nobody-known", history=["not-an-item"], k=10, ranking="popular"))
    assert all(s.items == expected and s.ranking == "popular" and not s.folded_in for s in lists)
    # seen items are not excluded: some user's own training items are in their popular list
    train = run.view.train.tocsr()
    seen_any = any(set(expected) & {svc.item_ids[i] for i in train.indices[train.indptr[u]: train.indptr[u + 1]]}
                   for u in range(run.view.num_users))
    assert seen_any
    personal = [svc.recommend(user_id=svc.user_ids[u], k=10).items for u in (0, 7)]
    assert personal[0] != personal[1] and expected not in personal


def test_recent_is_time_decayed_popularity(run):
    svc = service(run)
    table = run.dataset.interactions
    age = (table.timestamp.max() - table.timestamp) / 86400.0
    score = np.bincount(table.dst, weights=np.exp2(-age / 30.0), minlength=run.view.num_items)
    expected = [svc.item_ids[i] for i in np.argsort(-score, kind="stable")[:8]]
    assert svc.recommend(user_id=svc.user_ids[3], k=8, ranking="recent").items == expected
    assert svc.health()["rankings"] == ["personalised", "popular", "recent"]


def test_non_profiling_lists_are_not_re_ranked_and_keep_exact_propensities(run):
    from kgrec.serve.policy import PolicyConfig, marginal

    svc = service(run, "epsilon", rerank=CALIBRATED)
    order = [svc.item_ids[i] for i in np.argsort(-run.ctx.item_counts, kind="stable")[:50]]
    explored = 0
    for n in range(60):
        shown = svc.recommend(user_id=svc.user_ids[n], k=5, ranking="popular")
        assert shown.rerank == "none"
        ranks = [order.index(i) for i in shown.items]  # drawn from the popularity top M
        assert np.allclose(shown.pscores, marginal(PolicyConfig("epsilon"), 50, 5)[ranks, np.arange(5)])
        explored += shown.explored
        if not shown.explored:
            assert shown.items == order[:5]
    assert 0 < explored < 60


def test_rerank_off_reproduces_the_list_exactly(run):
    for svc in (service(run), service(run, rerank={"method": "calibrated", "strength": 0.0}),
                service(run, rerank={"method": "none", "strength": 0.7})):
        assert svc.reranker is None and svc.rerank_label == "none"
        for u in range(0, run.view.num_users, 23):
            shown = svc.recommend(user_id=svc.user_ids[u], k=7)
            assert [svc.item_index[i] for i in shown.items] == exact_pool(run, u, 7)[0].tolist()
            assert shown.rerank == "none"


def test_rerank_is_the_calibrated_order_of_the_model_pool(run):
    svc = service(run, rerank={"method": "calibrated", "strength": 0.3, "pool": 40})
    assert svc.rerank_label == "calibrated(strength=0.3, pool=40)" and svc.health()["rerank"] == svc.rerank_label
    train = run.view.train.tocsr()
    for u in range(0, run.view.num_users, 31):
        ids, scores = exact_pool(run, u, 40)
        expected = svc.reranker.rerank(ids[None, :], scores[None, :], train[u], 10)[0]
        shown = svc.recommend(user_id=svc.user_ids[u], k=10)
        assert [svc.item_index[i] for i in shown.items] == expected.tolist()
        assert shown.rerank == svc.rerank_label


def test_rerank_at_strength_one_brings_tail_items_into_all_head_lists(run):
    head = head_items(run.ctx.item_counts, 0.2)
    train = run.view.train.tocsr()
    off, on = service(run), service(run, rerank=CALIBRATED)
    cases = 0
    for u in range(run.view.num_users):
        profile = train.indices[train.indptr[u]: train.indptr[u + 1]]
        before = [off.item_index[i] for i in off.recommend(user_id=off.user_ids[u], k=10).items]
        if not head[before].all() or head[profile].all():
            continue  # a list with tail items already, or a user whose own mix is all head
        after = [on.item_index[i] for i in on.recommend(user_id=on.user_ids[u], k=10).items]
        assert not head[after].all(), u
        cases += 1
    assert cases >= 10  # the synthetic run's lists are mostly head


def test_rerank_of_a_fold_in_uses_its_history_and_covers_new_items(run):
    svc = service(run, rerank=CALIBRATED)
    train = run.view.train.tocsr()
    history = [svc.item_ids[i] for i in train.indices[train.indptr[5]: train.indptr[6]]]
    folded = svc.recommend(history=history, k=10)
    assert folded.folded_in and folded.rerank == svc.rerank_label and not set(history) & set(folded.items)
    by_provider = service(run, rerank={**CALIBRATED, "groupings": ["popularity", "provider"]})
    for s in (svc, by_provider):
        s.add_item("served-new", text="an item added while serving")
        assert len(s.recommend(user_id=s.user_ids[0], k=10).items) == 10  # the groupings grow with the index
        assert [len(g.codes) for g in s.reranker.groupings] == [s.index.ntotal] * len(s.reranker.groupings)
    popularity, provider = by_provider.reranker.groupings
    assert popularity.names[popularity.codes[-1]] == "tail"  # no training interactions
    assert provider.names[provider.codes[-1]] == "provider=missing"  # no feature values


def test_unknown_ranking_is_invalid(run):
    from kgrec.serve.service import Invalid

    svc = service(run)
    for bad in ("bogus", "Popular", 3, None):
        with pytest.raises(Invalid, match="ranking must be one of personalised, popular, recent") as err:
            svc.recommend(user_id=svc.user_ids[0], ranking=bad)
        assert err.value.field == "ranking"


def test_a_data_set_without_timestamps_serves_no_recent_ranking(run):
    from kgrec.serve.service import Invalid

    dataset = copy.copy(run.view.dataset)
    dataset.edges = {**dataset.edges,
                     dataset.interaction_type: dataclasses.replace(dataset.interactions, timestamp=None)}
    view = dataclasses.replace(run.view, dataset=dataset)
    svc = service(dataclasses.replace(run, view=view, ctx=dataclasses.replace(run.ctx, view=view)))
    health = svc.health()
    assert health["rankings"] == ["personalised", "popular"]
    assert "timestamps" in health["rankings_unavailable"]["recent"]
    with pytest.raises(Invalid, match="no 'recent' ranking.*timestamps") as err:
        svc.recommend(k=5, ranking="recent")
    assert err.value.field == "ranking"
    assert len(svc.recommend(k=5, ranking="popular").items) == 5


def test_the_log_records_ranking_and_rerank_of_every_request(run, tmp_path):
    svc = service(run, "epsilon", rerank={"method": "calibrated", "strength": 0.3}, log_dir=str(tmp_path / "log"))
    try:
        sent = [("personalised", {"user_id": svc.user_ids[0]}), ("popular", {"user_id": svc.user_ids[1]}),
                ("recent", {}), ("personalised", {"history": [svc.item_ids[2]]}), ("popular", {"history": ["x"]})]
        ids = [svc.recommend(k=4, ranking=r, **kw).request_id for r, kw in sent]
        requests = svc.log.requests().set_index("request_id").loc[ids]
        assert requests.ranking.tolist() == [r for r, _ in sent]
        label = svc.rerank_label
        assert requests.rerank.tolist() == [label, "none", "none", label, "none"]
        # a non-profiling request logs what it was sent (unused); a fold-in its history, no user
        assert requests.user_id.tolist()[:2] == [svc.user_ids[0], svc.user_ids[1]]
        assert requests.user_id.isna().tolist()[2:4] == [True, True]
        assert requests.history.tolist()[4] == '["x"]'
        bandit = svc.log.bandit_feedback()
        assert bandit.groupby("request_id").ranking.first().loc[ids].tolist() == [r for r, _ in sent]
        assert svc.log.get_request(ids[1]).ranking == "popular"
        assert svc.log.meta()["rerank"] == label
    finally:
        svc.close()


def test_recommend_over_http_takes_a_ranking(run, tmp_path):
    from fastapi.testclient import TestClient

    from kgrec.serve.app import create_app

    svc = service(run, log_dir=str(tmp_path / "log"))
    try:
        client = TestClient(create_app(svc))
        a = client.post("/recommend", json={"user_id": svc.user_ids[0], "k": 5, "ranking": "popular"}).json()
        b = client.post("/recommend", json={"user_id": svc.user_ids[9], "k": 5, "ranking": "popular"}).json()
        assert a["ranking"] == "popular" and a["rerank"] == "none"
        assert [i["item_id"] for i in a["items"]] == [i["item_id"] for i in b["items"]]
        default = client.post("/recommend", json={"user_id": svc.user_ids[0], "k": 5}).json()
        assert default["ranking"] == "personalised"
        for bad in ("bogus", 1):
            reply = client.post("/recommend", json={"user_id": svc.user_ids[0], "ranking": bad})
            assert (reply.status_code, reply.json()["error"], reply.json()["field"]) == (422, "invalid", "ranking")
            assert "'personalised', 'popular' or 'recent'" in reply.json()["message"]
    finally:
        svc.close()

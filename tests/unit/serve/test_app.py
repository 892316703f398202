"""The HTTP app in process (no sockets): concurrent POST /items, chunked bodies over the
limit, fold-in histories with served-time items, and the shutdown of the exposure log."""

from __future__ import annotations

import asyncio
import json

import httpx
from fastapi.testclient import TestClient


def app_of(run, tmp_path, **kw):
    from kgrec.serve.app import create_app
    from kgrec.serve.index import IndexConfig
    from kgrec.serve.policy import PolicyConfig
    from kgrec.serve.service import ServeConfig, Service

    svc = Service(run, ServeConfig(policy=PolicyConfig(name="deterministic"), index=IndexConfig(kind="flat"),
                                   log_dir=str(tmp_path / "log")))
    return svc, create_app(svc, **kw)


def post_rounds(app, *rounds):
    """Each round's POST /items bodies sent at once, the rounds one after another (one event
    loop, as a server has): per round, [(status, reply)]."""
    async def go():
        out = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            for bodies in rounds:
                replies = await asyncio.gather(*(client.post("/items", json=b) for b in bodies))
                out.append([(r.status_code, r.json()) for r in replies])
        return out

    return asyncio.run(go())


def test_concurrent_new_items(run, tmp_path):
    svc, app = app_of(run, tmp_path)
    try:
        n = svc.index.ntotal
        same, added = post_rounds(app, [{"item_id": "dup", "text": "one"}, {"item_id": "dup", "text": "two"}],
                                  [{"item_id": f"new-{j}", "text": f"item {j}"} for j in range(3)])
        assert sorted(s for s, _ in same) == [201, 409], same
        assert svc.item_ids.count("dup") == 1 and [r["index"] for s, r in same if s == 201] == [n]
        assert [s for s, _ in added] == [201] * 3, added
        index = {r["item_id"]: r["index"] for _, r in added}
        assert sorted(index.values()) == [n + 1, n + 2, n + 3]
        assert all(svc.item_index[i] == k for i, k in index.items())  # each reply names its own row
        assert svc.index.ntotal == n + 4
    finally:
        svc.close()


def test_history_with_an_item_added_while_serving(run, tmp_path):
    svc, app = app_of(run, tmp_path)
    try:
        client = TestClient(app)
        assert client.post("/items", json={"item_id": "late", "text": "a late item"}).status_code == 201
        reply = client.post("/recommend", json={"history": [svc.item_ids[0], "late"]})
        assert reply.status_code == 422 and reply.json()["field"] == "history", reply.text
        assert "added after training" in reply.json()["message"]
    finally:
        svc.close()


def test_new_item_without_a_content_path_is_422(lightgcn_run, tmp_path):
    svc, app = app_of(lightgcn_run, tmp_path)
    try:
        reply = TestClient(app).post("/items", json={"item_id": "new", "text": "a new item"})
        assert (reply.status_code, reply.json()["error"], reply.json()["field"]) == (422, "invalid", "text")
    finally:
        svc.close()


def test_chunked_bodies_are_held_to_the_limit(run, tmp_path):
    svc, app = app_of(run, tmp_path, max_body=2_000)
    try:
        client = TestClient(app)

        def chunks(body: bytes):
            for start in range(0, len(body), 100):
                yield body[start : start + 100]

        big = json.dumps({"history": ["x" * 100] * 30}).encode()
        reply = client.post("/recommend", content=chunks(big), headers={"content-type": "application/json"})
        assert reply.status_code == 413 and reply.json()["error"] == "too_large", reply.text
        small = json.dumps({"user_id": svc.user_ids[0], "k": 3}).encode()  # under the limit: replayed to the app
        reply = client.post("/recommend", content=chunks(small), headers={"content-type": "application/json"})
        assert reply.status_code == 200 and len(reply.json()["items"]) == 3, reply.text
    finally:
        svc.close()


def test_shutdown_closes_the_log(run, tmp_path):
    svc, app = app_of(run, tmp_path)
    with TestClient(app) as client:  # runs the lifespan
        assert client.get("/healthz").status_code == 200
        assert not svc.log.closed
    assert svc.log.closed

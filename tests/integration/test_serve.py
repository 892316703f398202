"""kgrec serve end to end on loopback: a kgrec run on the synthetic world, served by a real
uvicorn process; every endpoint, every bad-request case, the exposure log, its export, and
a SIGKILL under load; the re-ranking stage and the non-profiling rankings."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from kgrec.serve.launch import call, start
from cli import kgrec, trimmed_plan  # noqa: E402  (tests/integration/cli.py)
from serve_cases import BAD, concrete  # noqa: E402

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def idmaps(run_dir) -> dict[str, list]:
    return json.loads((run_dir / "idmaps.json").read_text())


@pytest.fixture(scope="module")
def server(run_dir, env, tmp_path_factory):
    work = tmp_path_factory.mktemp("serve")
    (work / "token").write_text(TOKEN + "\n")
    srv = start(run_dir, ["--log", str(work / "log"), "--token-file", str(work / "token"), "--epsilon", "0.5",
                          "--candidates", "20", "--max-body", "20000"], work=work, env=env)
    srv.log_dir = work / "log"
    yield srv
    srv.stop()


def auth() -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"}


def first_user(idmaps) -> str:
    return str(idmaps["user"][0])


def test_recommend_known_user(server, idmaps):
    status, body = call(server.url + "/recommend", {"user_id": idmaps["user"][0], "k": 5})
    assert status == 200, body
    items = body["items"]
    assert len(items) == 5 and len({i["item_id"] for i in items}) == 5
    assert [i["position"] for i in items] == [1, 2, 3, 4, 5]
    assert all(0 < i["propensity"] <= 1 for i in items)
    assert len(body["request_id"]) == 32 and body["folded_in"] is False


def test_recommend_fold_in_history(server, idmaps):
    history = [idmaps["item"][3], idmaps["item"][7], idmaps["item"][11]]
    status, body = call(server.url + "/recommend", {"history": history, "k": 10})
    assert status == 200, body
    assert body["folded_in"] is True and len(body["items"]) == 10
    assert not {str(h) for h in history} & {i["item_id"] for i in body["items"]}


def test_feedback_is_logged_and_exported(server, idmaps, env, tmp_path):
    status, body = call(server.url + "/recommend", {"user_id": first_user(idmaps), "k": 3})
    assert status == 200
    clicked = body["items"][1]["item_id"]
    status, fb = call(server.url + "/feedback", {"request_id": body["request_id"], "item_id": clicked}, headers=auth())
    assert status == 200, fb
    out = tmp_path / "export"
    proc = kgrec("log", "export", str(server.log_dir), "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    import pandas as pd

    bandit = pd.read_parquet(out / "bandit_feedback.parquet")
    rows = bandit[bandit.request_id == body["request_id"]].sort_values("position")
    assert rows.action.astype(str).tolist() == [i["item_id"] for i in body["items"]]
    assert rows.reward.tolist() == [0, 1, 0]
    assert rows.pscore.tolist() == pytest.approx([i["propensity"] for i in body["items"]])


def test_audit_estimates_the_run_on_its_served_log(server, idmaps, run_dir, env, tmp_path):
    for n in range(60):  # served lists with some clicks
        _, body = call(server.url + "/recommend", {"user_id": str(idmaps["user"][n]), "k": 5})
        if n % 3 == 0:
            call(server.url + "/feedback", {"request_id": body["request_id"], "item_id": body["items"][0]["item_id"]},
                 headers=auth())
    out = tmp_path / "report"
    proc = kgrec("audit", str(run_dir), "--plan", str(trimmed_plan(tmp_path)), "-o", str(out), "--no-browser",
                 "--no-progress", "--exposure-log", str(server.log_dir), env=env)
    assert proc.returncode in (0, 9), proc.stderr
    served = json.loads((out / "report.json").read_text())["causal"]["data"]["served_log"]
    assert [e["name"] for e in served["estimates"]] == ["ips", "snips", "dr"]
    assert served["requests"] >= 60 and 0 < served["logging_rate"] < 1
    assert "on the served traffic" in (out / "report.md").read_text()
    missing = kgrec("audit", str(run_dir), "-o", str(tmp_path / "r2"), "--exposure-log", str(tmp_path / "nolog"),
                    env=env)
    assert missing.returncode == 4 and "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_new_item_is_retrievable_at_once(server, idmaps):
    status, body = call(server.url + "/items", {"item_id": "brand-new-1", "text": "a new synthetic item"},
                        headers=auth())
    assert status == 201, body
    status, health = call(server.url + "/healthz")
    assert health["items"] == len(idmaps["item"]) + 1
    status, again = call(server.url + "/items", {"item_id": "brand-new-1", "text": "again"}, headers=auth())
    assert status == 409 and again["error"] == "conflict"


def test_metrics_are_prometheus_text(server):
    with __import__("urllib.request").request.urlopen(server.url + "/metrics") as r:
        text = r.read().decode()
    assert "kgrec_requests_total" in text and "kgrec_request_seconds_bucket" in text
    assert "kgrec_index_items" in text


def test_openapi_page(server):
    status, spec = call(server.url + "/openapi.json")
    assert status == 200 and {"/recommend", "/feedback", "/items", "/healthz"} <= set(spec["paths"])


@pytest.mark.parametrize("name,path,body,headers,status,code", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_4xx_json(server, idmaps, name, path, body, headers, status, code):
    body, headers = concrete(body, headers, user=first_user(idmaps), token=TOKEN)
    got, reply = call(server.url + path, body, headers=headers)
    assert (got, reply.get("error")) == (status, code), reply
    assert reply.get("message")


def test_feedback_for_an_item_not_shown(server, idmaps):
    _, body = call(server.url + "/recommend", {"user_id": first_user(idmaps), "k": 2})
    shown = {i["item_id"] for i in body["items"]}
    other = next(str(i) for i in idmaps["item"] if str(i) not in shown)
    status, reply = call(server.url + "/feedback", {"request_id": body["request_id"], "item_id": other},
                         headers=auth())
    assert (status, reply["error"], reply["field"]) == (422, "invalid", "item_id")


def test_rerank_by_set_and_non_profiling_rankings(run_dir, env, idmaps, tmp_path):
    """``--set rerank.*`` runs the re-ranking stage (said in /healthz, the response and the log);
    ``ranking: popular`` is one list for every user, not re-ranked; an unknown ranking is a 422."""
    srv = start(run_dir, ["--log", str(tmp_path / "log"), "--policy", "deterministic", "--set",
                          "rerank.method=calibrated", "--set", "rerank.strength=0.3"], work=tmp_path, env=env)
    try:
        _, health = call(srv.url + "/healthz")
        label = "calibrated(strength=0.3, pool=100)"
        assert health["rerank"] == label and health["rankings"] == ["personalised", "popular", "recent"]
        users = [str(u) for u in idmaps["user"][:2]]
        personal = [call(srv.url + "/recommend", {"user_id": u, "k": 5})[1] for u in users]
        assert all(b["ranking"] == "personalised" and b["rerank"] == label for b in personal)
        popular = [call(srv.url + "/recommend", {"user_id": u, "k": 5, "ranking": "popular"})[1] for u in users]
        lists = [[i["item_id"] for i in b["items"]] for b in popular]
        assert lists[0] == lists[1] and all(b["ranking"] == "popular" and b["rerank"] == "none" for b in popular)
        status, reply = call(srv.url + "/recommend", {"user_id": users[0], "ranking": "chronological"})
        assert (status, reply["error"], reply["field"]) == (422, "invalid", "ranking"), reply
    finally:
        srv.stop()
    from kgrec.serve.log import ExposureLog

    with ExposureLog.open(tmp_path / "log", create=False, readonly=True) as log:
        rows = log.requests().set_index("request_id")
    ids = [b["request_id"] for b in personal + popular]
    assert rows.loc[ids].ranking.tolist() == ["personalised"] * 2 + ["popular"] * 2
    assert rows.loc[ids].rerank.tolist() == [label] * 2 + ["none"] * 2


def test_a_bad_rerank_setting_is_one_line_and_exit_3(run_dir, env):
    proc = kgrec("serve", str(run_dir), "--no-log", "--set", "rerank.strength=2", env=env, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 3 and len(lines) == 1, proc.stderr
    assert "--set: field 'rerank.strength': must be a number in [0, 1], got 2" in lines[0]


def test_sigkill_under_load_loses_no_answered_request(run_dir, env, idmaps, tmp_path):
    """Kill the server three times while 8 clients send requests; every request that got a
    response is in the log when it is reopened (by a restarted server, then read-only)."""
    log = tmp_path / "log"
    answered: list[str] = []
    users = [str(u) for u in idmaps["user"][:50]]
    for round_ in range(3):
        srv = start(run_dir, ["--log", str(log), "--durable"], work=tmp_path, env=env)
        stop = threading.Event()

        def client(offset: int) -> None:
            n = 0
            while not stop.is_set() and n < 2000:  # bounded in count and (below) in time
                try:
                    status, body = call(srv.url + "/recommend",
                                        {"user_id": users[(offset + n) % len(users)], "k": 5}, timeout=5)
                except OSError:
                    return
                if status == 200:
                    answered.append(body["request_id"])
                n += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        target, deadline = len(answered) + 150, time.monotonic() + 30
        while len(answered) < target and time.monotonic() < deadline:
            time.sleep(0.02)
        srv.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(10)
        assert len(answered) >= target, srv.stderr()
    again = start(run_dir, ["--log", str(log)], work=tmp_path, env=env)
    try:
        status, _ = call(again.url + "/recommend", {"user_id": users[0], "k": 5})
        assert status == 200
    finally:
        again.stop()
    from kgrec.serve.log import ExposureLog

    with ExposureLog.open(log, create=False, readonly=True) as opened:
        logged = set(opened.requests().request_id)
    missing = set(answered) - logged
    assert not missing, f"{len(missing)} of {len(answered)} answered requests are not in the log"

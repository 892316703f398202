"""The exposure log of ``kgrec serve`` (kgrec.serve.log) and its export (kgrec.serve.export)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from kgrec.errors import DataError, KgrecInputError, LockedError, RunExistsError, UsageError
from kgrec.serve import log_schema as log_module  # the module whose docstring holds the schema table
from kgrec.serve.export import export_log
from kgrec.serve.log import (COLUMNS, DB_NAME, SCHEMA_VERSION, DuplicateRequest, Exposure, ExposureLog, Feedback,
                             LogClosedError, ServedRequest, UnknownRequest)

REPO = Path(__file__).resolve().parents[3]


def _request(rid: str, n: int = 3, *, user: str | None = "u1", ts: float | None = None, **kw) -> ServedRequest:
    items = [Exposure(p, f"i{p}", p, 1.0 - p / 10, 1.0 / (p + 1)) for p in range(n)]
    return ServedRequest(request_id=rid, ts=time.time() if ts is None else ts, user_id=user, policy="greedy",
                         items=items, **kw)


def test_round_trip(tmp_path: Path) -> None:
    a = _request("a", ts=100.0, context={"hour": 9, "device": "phone"}, policy_params={"epsilon": 0.1}, k=5,
                 run_id="run-1")
    b = ServedRequest(request_id="b", ts=101.0, user_id=None, history=["i7", "i8"], policy="epsilon-greedy",
                      items=[Exposure(1, "i9", None, None, 0.25), Exposure(0, "i2", 2, 3.5, 0.75)])
    with ExposureLog.open(tmp_path / "log") as log:
        log.set_meta("run_dir", "/runs/x")
        log.set_meta({"model": "kgrec"}, policy={"name": "greedy"})
        log.log_request(a)
        log.log_request(b)
        click_id = log.log_feedback(Feedback(request_id="a", item_id="i1", event="click", ts=102.0))
        log.log_feedback(Feedback(request_id="b", item_id="i9", event="purchase", value=19.5, ts=103.0))
        log.log_item("new-item", {"title": "Fresh", "genres": ["jazz"]}, ts=104.0)

        assert log.get_request("a") == a and log.get_request("b") == b and log.get_request("zz") is None
        assert [e.position for e in b.items] == [0, 1]  # kept by position
        meta = log.meta()
        assert meta["format"] == "kgrec-exposure-log" and meta["run_dir"] == "/runs/x"
        assert json.loads(meta["policy"]) == {"name": "greedy"}
        assert log.counts() == {"requests": 2, "exposures": 5, "feedback": 2, "items": 1}

        req = log.requests()
        assert list(req.columns) == [c[0] for c in COLUMNS["requests"]]
        assert list(req["request_id"]) == ["a", "b"]
        assert json.loads(req["context"][0]) == {"hour": 9, "device": "phone"}
        assert req["user_id"][0] == "u1" and pd.isna(req["user_id"][1])
        assert pd.isna(req["history"][0]) and json.loads(req["history"][1]) == ["i7", "i8"]
        assert list(req["k"]) == [5, 2] and req["run_id"][0] == "run-1"

        exp = log.exposures()
        assert list(exp.columns) == [c[0] for c in COLUMNS["exposures"]]
        assert list(zip(exp["request_id"], exp["position"], exp["item_id"])) == [
            ("a", 0, "i0"), ("a", 1, "i1"), ("a", 2, "i2"), ("b", 0, "i2"), ("b", 1, "i9")]
        assert pd.isna(exp["item_index"][4]) and pd.isna(exp["score"][4]) and exp["pscore"][4] == 0.25

        fb = log.feedback()
        assert list(fb["id"]) == [click_id, click_id + 1] and list(fb["event"]) == ["click", "purchase"]
        assert list(fb["value"]) == [1.0, 19.5]
        items = log.items()
        assert items["item_id"][0] == "new-item" and json.loads(items["payload"][0])["genres"] == ["jazz"]

        bf = log.bandit_feedback()
        assert list(bf.columns) == [c[0] for c in COLUMNS["bandit_feedback"]]
        assert list(zip(bf["request_id"], bf["action"], bf["reward"])) == [
            ("a", "i0", 0), ("a", "i1", 1), ("a", "i2", 0), ("b", "i2", 0), ("b", "i9", 0)]
        assert list(bf["pscore"]) == list(exp["pscore"]) and set(bf["policy"]) == {"greedy", "epsilon-greedy"}
        assert list(log.bandit_feedback(events=("purchase",))["reward"]) == [0, 0, 0, 0, 1]
        assert list(log.bandit_feedback(events=None)["reward"]) == [0, 1, 0, 0, 1]


def test_feedback_must_name_a_shown_item_of_a_logged_request(tmp_path: Path) -> None:
    with ExposureLog.open(tmp_path) as log:
        log.log_request(_request("a"))
        with pytest.raises(UnknownRequest) as unknown:
            log.log_feedback(Feedback(request_id="nope", item_id="i0", event="click"))
        assert unknown.value.field == "request_id" and "nope" in str(unknown.value)
        assert isinstance(unknown.value, UsageError)
        with pytest.raises(UnknownRequest) as unshown:
            log.log_feedback(Feedback(request_id="a", item_id="i99", event="click"))
        assert unshown.value.field == "item_id"
        with pytest.raises(DuplicateRequest):
            log.log_request(_request("a", n=1))
        assert log.counts() == {"requests": 1, "exposures": 3, "feedback": 0, "items": 0}
        assert list(log.bandit_feedback()["reward"]) == [0, 0, 0]


def test_records_are_validated() -> None:
    with pytest.raises(UsageError, match="pscore|probability"):
        Exposure(0, "i", None, None, 0.0)
    with pytest.raises(UsageError):
        Exposure(-1, "i", None, None, 0.5)
    with pytest.raises(UsageError, match="twice"):
        ServedRequest(request_id="r", policy="p", items=[Exposure(0, "i", 0, 1, 1), Exposure(1, "i", 0, 1, 1)])
    with pytest.raises(UsageError, match="position"):
        ServedRequest(request_id="r", policy="p", items=[Exposure(0, "i", 0, 1, 1), Exposure(0, "j", 1, 1, 1)])
    with pytest.raises(UsageError):
        ServedRequest(request_id="r", policy="p", k=1, items=[Exposure(0, "i", 0, 1, 1), Exposure(1, "j", 1, 1, 1)])
    bad_context = ServedRequest(request_id="r", policy="p", context={"x": object()}, items=[])
    with pytest.raises(UsageError) as exc:
        bad_context.rows()
    assert exc.value.field == "context"
    with pytest.raises(UsageError):
        Feedback(request_id="r", item_id="i", event="")


def test_a_failing_job_fails_alone_in_its_group_commit(tmp_path: Path) -> None:
    with ExposureLog.open(tmp_path) as log:
        log.log_request(_request("taken"))
        gate, entered = threading.Event(), threading.Event()

        def hold(conn: sqlite3.Connection) -> None:  # keeps the writer busy while the next jobs queue up
            entered.set()
            gate.wait(10)

        held = log.submit_fn(hold)
        assert entered.wait(10)
        commits = log.commits
        futures = [log.submit_request(_request("r1")), log.submit_request(_request("taken")),
                   log.submit_feedback(Feedback(request_id="r1", item_id="i0", event="click")),
                   log.submit_feedback(Feedback(request_id="ghost", item_id="i0", event="click")),
                   log.submit_request(_request("r2"))]
        gate.set()
        held.result(10)
        assert futures[0].result(10) is None and futures[4].result(10) is None
        assert isinstance(futures[2].result(10), int)  # sees r1, committed in the same transaction
        assert isinstance(futures[1].exception(10), DuplicateRequest)
        assert isinstance(futures[3].exception(10), UnknownRequest)
        assert log.commits == commits + 2  # the held job's, then one for the five queued jobs
        assert log.counts() == {"requests": 3, "exposures": 9, "feedback": 1, "items": 0}


def test_group_commit_under_concurrency(tmp_path: Path) -> None:
    threads, per_thread = 8, 200
    with ExposureLog.open(tmp_path, durable=True) as log:
        assert log.submit_fn(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]).result() == 2  # FULL
        assert log.submit_fn(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]).result() == "wal"
        errors: list[BaseException] = []
        seen: list[int] = []
        done = threading.Event()

        def write(t: int) -> None:
            try:
                for i in range(per_thread):
                    log.log_request(_request(f"t{t}-{i}", n=4))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        def read() -> None:  # a reader alongside the writers: never blocked, never sees a count go down
            while not done.is_set():
                seen.append(log.counts()["requests"])
                time.sleep(0.01)

        workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
        reader = threading.Thread(target=read)
        reader.start()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        done.set()
        reader.join()
        assert not errors
        n = threads * per_thread
        assert log.counts()["requests"] == n and log.counts()["exposures"] == 4 * n
        assert set(log.requests()["request_id"]) == {f"t{t}-{i}" for t in range(threads) for i in range(per_thread)}
        assert seen == sorted(seen) and seen
        assert log.jobs == n + 2
        assert log.commits <= n // 2, f"{log.commits} commits for {n} requests: no group commit"
    with ExposureLog.open(tmp_path) as log:
        assert log.submit_fn(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]).result() == 1  # NORMAL


def test_async_variants(tmp_path: Path) -> None:
    async def main(log: ExposureLog) -> int:
        await asyncio.gather(*(log.alog_request(_request(f"r{i}")) for i in range(20)))
        await log.alog_item("x", {"a": 1})
        return await log.alog_feedback(Feedback(request_id="r3", item_id="i2", event="click"))

    with ExposureLog.open(tmp_path) as log:
        assert isinstance(asyncio.run(main(log)), int)
        assert log.counts() == {"requests": 20, "exposures": 60, "feedback": 1, "items": 1}
        with pytest.raises(UnknownRequest):
            asyncio.run(log.alog_feedback(Feedback(request_id="r99", item_id="i2", event="click")))


_CHILD = """
import sys, threading
from kgrec.serve.log import ExposureLog, ServedRequest, Exposure
log = ExposureLog.open(sys.argv[1], durable=False)
lock = threading.Lock()
def work(t):
    i = 0
    while True:
        rid = f"c{t}-{i}"
        log.log_request(ServedRequest(request_id=rid, policy="greedy", user_id="u",
                                      items=[Exposure(p, f"i{p}", p, 1.0, 1.0) for p in range(5)]))
        with lock:
            print(rid, flush=True)
        i += 1
threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
for t in threads: t.start()
for t in threads: t.join()
"""


def test_sigkill_loses_no_acknowledged_request(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    printed = []
    try:
        assert child.stdout is not None
        while len(printed) < 300:
            line = child.stdout.readline()
            assert line, f"the child stopped: {child.stderr.read() if child.stderr else ''}"
            printed.append(line.strip())
        assert child.poll() is None  # still writing
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        printed += [line.strip() for line in child.stdout.read().splitlines() if line.strip()]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    names = {p.name for p in tmp_path.iterdir()}
    assert names <= {DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"}  # no lock file of our own left stale
    assert DB_NAME + "-wal" in names  # left behind by the killed writer: reopening must recover it

    reader = ExposureLog.open(tmp_path, readonly=True)  # what `kgrec serve export` does after a crash
    assert set(printed) <= set(reader.requests()["request_id"])
    with ExposureLog.open(tmp_path) as log:
        ids = set(log.requests()["request_id"])
        assert set(printed) <= ids and len(ids) >= len(printed)
        assert log.counts()["exposures"] == 5 * len(ids)  # whole transactions only
        log.log_request(_request("after-crash"))
    assert ExposureLog.open(tmp_path, readonly=True).counts()["requests"] == len(ids) + 1


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    ExposureLog.open(tmp_path).close()
    path = tmp_path / DB_NAME
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    for kw in ({}, {"readonly": True}, {"durable": True}):
        with pytest.raises(DataError) as exc:
            ExposureLog.open(tmp_path, **kw)
        assert exc.value.file == str(path) and exc.value.field == "user_version"
        assert str(path) in str(exc.value) and "newer" in str(exc.value)


def test_files_that_are_not_kgrec_logs_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / DB_NAME).write_bytes(os.urandom(4096))
    with pytest.raises(DataError) as exc:
        ExposureLog.open(junk)
    assert exc.value.file == str(junk / DB_NAME) and exc.value.field == "format"
    with pytest.raises(DataError):
        ExposureLog.open(junk, readonly=True)

    other = tmp_path / "other"
    other.mkdir()
    conn = sqlite3.connect(other / DB_NAME)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(DataError) as exc:
        ExposureLog.open(other)
    assert exc.value.field == "meta.format" and str(other / DB_NAME) in str(exc.value)
    conn = sqlite3.connect(other / DB_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # refused before anything was changed
    conn.close()

    with pytest.raises(DataError) as exc:
        ExposureLog.open(tmp_path / "missing", create=False)
    assert exc.value.field == "directory" and not (tmp_path / "missing").exists()
    with pytest.raises(DataError):
        ExposureLog.open(tmp_path / "missing2", readonly=True)


def test_a_locked_log_is_a_locked_error_and_then_recovers(tmp_path: Path) -> None:
    with ExposureLog.open(tmp_path, busy_timeout_s=0.2) as log:
        other = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        try:
            with pytest.raises(LockedError) as exc:
                log.log_request(_request("a"))
            assert exc.value.field == "lock" and exc.value.file == str(tmp_path / DB_NAME)
        finally:
            other.execute("ROLLBACK")
            other.close()
        log.log_request(_request("a"))
        assert log.counts()["requests"] == 1


def test_writes_after_close_or_on_a_readonly_log_are_refused(tmp_path: Path) -> None:
    log = ExposureLog.open(tmp_path)
    log.close()
    log.close()
    with pytest.raises(LogClosedError):
        log.log_request(_request("a"))
    with ExposureLog.open(tmp_path, readonly=True) as readonly, pytest.raises(LogClosedError):
        readonly.log_request(_request("a"))
    with ExposureLog.open(tmp_path) as writer, pytest.raises(UsageError):
        writer.set_meta(format="mine")


def test_the_docstring_and_the_database_agree_with_the_schema(tmp_path: Path) -> None:
    doc = log_module.__doc__ or ""
    table = doc[doc.index("=============  ====="):]
    for name, columns in COLUMNS.items():
        for column, sql_type, _meaning, obp in columns:
            if name != "bandit_feedback":
                assert f"\n{column} " in table, f"{name}.{column} is not in the docstring's schema table"
            assert column in doc and (not obp or obp in doc)
    ExposureLog.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    try:
        for name in log_module.TABLES:
            have = [(r[1], r[2]) for r in conn.execute(f"PRAGMA table_info({name})")]
            assert have == [(c[0], c[1]) for c in COLUMNS[name]]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    finally:
        conn.close()


@pytest.fixture()
def filled_log(tmp_path: Path) -> Path:
    directory = tmp_path / "log"
    with ExposureLog.open(directory) as log:
        for i in range(12):
            log.log_request(_request(f"r{i}", n=4, user=None if i % 3 == 0 else f"u{i}",
                                     history=["h1"] if i % 3 == 0 else None, context={"i": i}))
        for i in range(0, 12, 2):
            log.log_feedback(Feedback(request_id=f"r{i}", item_id="i1", event="click"))
        log.log_item("new", {"title": "x"})
    return directory


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export(filled_log: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"export-{fmt}"
    counts = export_log(filled_log, out, fmt=fmt)
    assert counts == {"requests": 12, "exposures": 48, "feedback": 6, "items": 1, "bandit_feedback": 48}
    schema = json.loads((out / "schema.json").read_text())
    assert schema["schema_version"] == SCHEMA_VERSION and schema["meta"]["format"] == "kgrec-exposure-log"
    assert sorted(p.name for p in out.iterdir()) == sorted(["schema.json"] + [f"{n}.{fmt}" for n in counts])
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    for name, rows in counts.items():
        frame = read(out / f"{name}.{fmt}")
        assert len(frame) == rows == schema["tables"][name]["rows"]
        assert list(frame.columns) == [c["name"] for c in schema["tables"][name]["columns"]]
    bandit = read(out / f"bandit_feedback.{fmt}")
    assert bandit["reward"].sum() == 6 and set(bandit[bandit["reward"] == 1]["action"]) == {"i1"}
    assert ((bandit["pscore"] > 0) & (bandit["pscore"] <= 1)).all()

    with pytest.raises(RunExistsError) as exc:
        export_log(filled_log, out, fmt=fmt)
    assert isinstance(exc.value, KgrecInputError) and exc.value.file == str(out)
    with ExposureLog.open(filled_log) as log:
        log.log_request(_request("late"))
    assert export_log(filled_log, out, fmt=fmt, overwrite=True)["requests"] == 13


def test_export_refuses_bad_arguments(filled_log: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as exc:
        export_log(filled_log, tmp_path / "x", fmt="xlsx")
    assert exc.value.field == "fmt" and not (tmp_path / "x").exists()
    for target in (filled_log, filled_log.parent):  # would replace the log itself
        with pytest.raises(UsageError):
            export_log(filled_log, target, overwrite=True)
    assert (filled_log / DB_NAME).exists()
    with pytest.raises(DataError):
        export_log(tmp_path / "no-log", tmp_path / "y")
    assert not (tmp_path / "y").exists() and not (tmp_path / "y.partial").exists()

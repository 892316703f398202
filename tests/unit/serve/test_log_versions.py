"""Exposure-log schema versions: a version-1 log (no ``ranking`` and ``rerank`` columns) is
read as it is by a read-only open and migrated to the current version by a writer."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from kgrec.serve.log import COLUMNS, DB_NAME, SCHEMA_VERSION, Exposure, ExposureLog, ServedRequest


def _request(rid: str, **kw) -> ServedRequest:
    return ServedRequest(request_id=rid, ts=time.time(), user_id="u1", policy="greedy",
                         items=[Exposure(0, "i0", 0, 1.0, 1.0)], **kw)


V1_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE requests (request_id TEXT PRIMARY KEY, ts REAL NOT NULL, user_id TEXT, history TEXT, context TEXT NOT NULL,
    policy TEXT NOT NULL, policy_params TEXT NOT NULL, k INTEGER NOT NULL, run_id TEXT);
CREATE TABLE exposures (request_id TEXT NOT NULL, position INTEGER NOT NULL CHECK (position >= 0),
    item_id TEXT NOT NULL, item_index INTEGER, score REAL, pscore REAL NOT NULL CHECK (pscore > 0 AND pscore <= 1),
    PRIMARY KEY (request_id, position)) WITHOUT ROWID;
CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, item_id TEXT NOT NULL,
    event TEXT NOT NULL, value REAL NOT NULL, ts REAL NOT NULL);
CREATE INDEX feedback_by_request ON feedback (request_id, item_id, event);
CREATE TABLE items (item_id TEXT PRIMARY KEY, ts REAL NOT NULL, payload TEXT NOT NULL);
INSERT INTO meta VALUES ('format', 'kgrec-exposure-log'), ('created_at', '2025-01-01T00:00:00Z'),
    ('created_by', 'kgrec 0');
INSERT INTO requests VALUES ('old', 1.0, 'u1', NULL, '{}', 'greedy', '{}', 2, NULL);
INSERT INTO exposures VALUES ('old', 0, 'i0', 0, 0.5, 1.0), ('old', 1, 'i1', 1, 0.4, 1.0);
PRAGMA user_version = 1;
"""


def test_a_version_1_log_is_read_as_it_is_and_migrated_by_a_writer(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.executescript(V1_DDL)
    conn.close()
    with ExposureLog.open(tmp_path, readonly=True) as old:  # read-only: nothing changes in the file
        req = old.requests()
        assert list(req.columns) == [c[0] for c in COLUMNS["requests"]]
        assert (req.ranking.tolist(), req.rerank.tolist()) == (["personalised"], ["none"])
        assert old.bandit_feedback().ranking.tolist() == ["personalised"] * 2
        assert old.get_request("old").ranking == "personalised"
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    with ExposureLog.open(tmp_path) as log:  # a writer migrates it
        log.log_request(_request("new", ranking="popular", rerank="none"))
        req = log.requests()
        assert req.set_index("request_id").ranking.to_dict() == {"old": "personalised", "new": "popular"}
        assert log.get_request("new").ranking == "popular"
    conn = sqlite3.connect(tmp_path / DB_NAME)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        have = [(r[1], r[2]) for r in conn.execute("PRAGMA table_info(requests)")]
        assert have == [(c[0], c[1]) for c in COLUMNS["requests"]]  # the same order as a new log's
    finally:
        conn.close()
    ExposureLog.open(tmp_path).close()  # a second open finds it migrated

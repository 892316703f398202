"""The schema of the exposure log (:mod:`kgrec.serve.log`), and opening an SQLite file as one.

Schema (``PRAGMA user_version`` = :data:`SCHEMA_VERSION` = 2)
============================================================

Times are Unix seconds (REAL). JSON columns hold compact JSON text with sorted keys.
Positions are 0-based, as in Open Bandit Pipeline (OBP). ``bandit_feedback`` is not a table:
it is the query :meth:`kgrec.serve.log.ExposureLog.bandit_feedback` (and the export's ``bandit_feedback``
file), one row per exposure in OBP's ``bandit_feedback`` vocabulary.

=============  ==================  =====================================================================  ==============
column         type                meaning                                                                OBP name
=============  ==================  =====================================================================  ==============
**meta**
key            TEXT PRIMARY KEY    ``format`` (= ``kgrec-exposure-log``), ``created_at``, ``created_by``,
                                   and what the server sets with :meth:`~ExposureLog.set_meta`
                                   (``run_dir``, ``model``, ``policy``, ...)
value          TEXT                its value
**requests**   one row per served list
request_id     TEXT PRIMARY KEY    the server's id of the response (the client quotes it in feedback)
ts             REAL                when the list was served                                               timestamp
user_id        TEXT NULL           raw user id; NULL for a fold-in (cold) user                            (context)
history        TEXT NULL           JSON list of raw item ids a fold-in user brought; NULL otherwise      (context)
context        TEXT                JSON object: the request's context features                           context
policy         TEXT                the logging policy's name (``greedy``, ``epsilon-greedy``, ...)        policy
policy_params  TEXT                JSON object: its parameters (epsilon, temperature, seed, ...)
k              INTEGER             list length asked for (at most this many exposures)                   len_list
run_id         TEXT NULL           the run (trained model) that scored the list
ranking        TEXT                what ordered the policy's pool: ``personalised`` (the model), or a
                                   non-profiling ranking, ``popular`` or ``recent`` (v2)
rerank         TEXT                the re-ranking stage that ran on the pool: ``none`` or e.g.
                                   ``calibrated(strength=0.3, pool=100)`` (v2)
**exposures**  one row per shown item; PRIMARY KEY (request_id, position), WITHOUT ROWID
request_id     TEXT                → requests.request_id                                                 (round)
position       INTEGER             0-based rank in the list                                               position
item_id        TEXT                raw item id (unique within a request)                                  action
item_index     INTEGER NULL        the model's item index (NULL if it has none)                           action (int)
score          REAL NULL           the model's score of the item (NULL if none)
pscore         REAL                the logging policy's marginal probability of showing this item at     pscore
                                   this position for this request, in (0, 1] (1 for a deterministic one)
**feedback**   one row per event; index (request_id, item_id, event)
id             INTEGER PRIMARY KEY AUTOINCREMENT, in arrival order
request_id     TEXT                → exposures.request_id
item_id        TEXT                → exposures.item_id (of that request)
event          TEXT                ``click``, ``purchase``, ``dismiss``, ...                              (reward)
value          REAL                the event's value (1.0 for a click; a rating, a dwell time, ...)
ts             REAL                when the event was received
**items**      items added while serving (``POST /items``); a second add replaces the payload
item_id        TEXT PRIMARY KEY    raw item id
ts             REAL                when it was (last) added
payload        TEXT                JSON object: what was posted (attributes, text)
=============  ==================  =====================================================================  ==============

``bandit_feedback`` columns: ``request_id, ts, user_id, context, action`` (item_id),
``item_index, position, reward`` (1 if an event in ``events`` was logged for that
request and item, else 0), ``pscore, policy, ranking`` (the arm the list came from).

Versions: 1 had no ``ranking`` and ``rerank`` columns. A writer that opens a version-1 log
adds them (``ALTER TABLE``; old rows get ``personalised`` and ``none``, what a version-1
server did) and sets ``user_version`` to 2; a read-only open of a version-1 log reads it as
it is, with those two values filled in by the queries. Added columns go last, so a
migrated table has the same column order as a new one.

Why the schema is this way (changes from the first design):

* ``exposures`` is a ``WITHOUT ROWID`` table clustered on ``(request_id, position)``: a
  request's exposures are one range of one B-tree, so writing a request touches two B-trees
  (requests' and this one) and the feedback check is one short range scan.
* Invariants are enforced by the writer, not by extra indexes or foreign keys: an item is
  shown at most once per list (:class:`~kgrec.serve.log_records.ServedRequest` checks it, so a feedback event names
  exactly one exposure and the ``reward`` join counts it once), exposures belong to a logged
  request (they are written in the same job) and feedback names a shown item (checked in the
  transaction). A ``UNIQUE(request_id, item_id)`` index plus foreign keys would add SQL work
  to every request for checks the writer already makes.
  ``CHECK`` constraints (pscore in (0, 1], position >= 0) stay: they are free.
* The feedback index is ``(request_id, item_id, event)`` rather than ``(request_id)`` alone:
  it serves the same lookups and makes each ``reward`` of the bandit-feedback query one probe.

Opening and checking
====================

Opening an existing log checks it is one: not SQLite, or SQLite without kgrec's ``meta``
format, or missing tables/columns → :class:`~kgrec.errors.DataError` naming the file; a
``user_version`` above :data:`SCHEMA_VERSION` (written by a newer kgrec) →
:class:`~kgrec.errors.DataError` with field ``user_version``; a database another connection
keeps locked past ``busy_timeout_s`` → :class:`~kgrec.errors.LockedError`; a corrupt one →
:class:`~kgrec.errors.DataError`.

:func:`_prepare` does that for the writer's connection, then sets the pragmas (WAL,
``synchronous``) and creates the schema in an empty file; :func:`_check` alone checks a
read-only connection (:func:`_connect_ro`); :func:`_translate` turns the sqlite3 errors about
the file into those kgrec errors, for every reader and writer.

:data:`COLUMNS` is the schema table above in code: the DDL, the writer's statements and the readers'
queries follow it, and the export's ``schema.json`` is written from it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kgrec.errors import DataError, LockedError

FORMAT = "kgrec-exposure-log"
SCHEMA_VERSION = 2
DB_NAME = "exposures.sqlite"
RESERVED_META = ("format", "created_at", "created_by")

#: (column, SQL type, meaning, OBP name) of every table, and of the ``bandit_feedback`` query.
#: The module docstring's table, the DDL below and the export's ``schema.json`` agree with it
#: (tests check the first two).
COLUMNS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "meta": (
        ("key", "TEXT", "format, created_at, created_by, and what the server sets", ""),
        ("value", "TEXT", "its value", ""),
    ),
    "requests": (
        ("request_id", "TEXT", "the server's id of the response", ""),
        ("ts", "REAL", "Unix seconds when the list was served", "timestamp"),
        ("user_id", "TEXT", "raw user id; null for a fold-in user", "context"),
        ("history", "TEXT", "JSON list of raw item ids of a fold-in user; null otherwise", "context"),
        ("context", "TEXT", "JSON object of the request's context features", "context"),
        ("policy", "TEXT", "the logging policy's name", "policy"),
        ("policy_params", "TEXT", "JSON object of the policy's parameters", ""),
        ("k", "INTEGER", "list length asked for", "len_list"),
        ("run_id", "TEXT", "the run that scored the list; may be null", ""),
        ("ranking", "TEXT", "what ordered the pool: personalised, popular or recent", ""),
        ("rerank", "TEXT", "the re-ranking stage that ran: none or calibrated(...)", ""),
    ),
    "exposures": (
        ("request_id", "TEXT", "the request that showed the item", ""),
        ("position", "INTEGER", "0-based rank in the list", "position"),
        ("item_id", "TEXT", "raw item id", "action"),
        ("item_index", "INTEGER", "the model's item index; may be null", "action"),
        ("score", "REAL", "the model's score; may be null", ""),
        ("pscore", "REAL", "logging policy's marginal probability of this item at this position", "pscore"),
    ),
    "feedback": (
        ("id", "INTEGER", "event id, in arrival order", ""),
        ("request_id", "TEXT", "the request whose list the event is about", ""),
        ("item_id", "TEXT", "the item (shown in that request)", ""),
        ("event", "TEXT", "event name: click, purchase, ...", "reward"),
        ("value", "REAL", "the event's value", ""),
        ("ts", "REAL", "Unix seconds when the event was received", ""),
    ),
    "items": (
        ("item_id", "TEXT", "raw id of an item added while serving", ""),
        ("ts", "REAL", "Unix seconds when it was (last) added", ""),
        ("payload", "TEXT", "JSON object that was posted", ""),
    ),
    "bandit_feedback": (
        ("request_id", "TEXT", "the request (one OBP round per list)", ""),
        ("ts", "REAL", "Unix seconds when the list was served", "timestamp"),
        ("user_id", "TEXT", "raw user id; null for a fold-in user", "context"),
        ("context", "TEXT", "JSON object of the request's context features", "context"),
        ("action", "TEXT", "raw item id shown", "action"),
        ("item_index", "INTEGER", "the model's item index; may be null", "action"),
        ("position", "INTEGER", "0-based rank in the list", "position"),
        ("reward", "INTEGER", "1 if a rewarded event was logged for this request and item, else 0", "reward"),
        ("pscore", "REAL", "logging policy's marginal probability of this item at this position", "pscore"),
        ("policy", "TEXT", "the logging policy's name", "policy"),
        ("ranking", "TEXT", "what ordered the pool: personalised, popular or recent (the arm)", ""),
    ),
}
#: columns added after version 1, with the value a version-1 row has (and the SQL that adds them)
ADDED_IN_V2: dict[str, dict[str, str]] = {"requests": {"ranking": "personalised", "rerank": "none"}}
_MIGRATE_V2 = [f"ALTER TABLE {table} ADD COLUMN {name} TEXT NOT NULL DEFAULT '{value}'"
               for table, added in ADDED_IN_V2.items() for name, value in added.items()]


def columns_of(table: str, version: int) -> list[str]:
    """The column names of ``table`` in a log of schema ``version``."""
    added = ADDED_IN_V2.get(table, {}) if version < 2 else {}
    return [c[0] for c in COLUMNS[table] if c[0] not in added]
TABLES = ("meta", "requests", "exposures", "feedback", "items")

_DDL = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE requests (
    request_id    TEXT PRIMARY KEY,
    ts            REAL NOT NULL,
    user_id       TEXT,
    history       TEXT,
    context       TEXT NOT NULL,
    policy        TEXT NOT NULL,
    policy_params TEXT NOT NULL,
    k             INTEGER NOT NULL,
    run_id        TEXT,
    ranking       TEXT NOT NULL DEFAULT 'personalised',
    rerank        TEXT NOT NULL DEFAULT 'none'
);
CREATE TABLE exposures (
    request_id TEXT NOT NULL,
    position   INTEGER NOT NULL CHECK (position >= 0),
    item_id    TEXT NOT NULL,
    item_index INTEGER,
    score      REAL,
    pscore     REAL NOT NULL CHECK (pscore > 0 AND pscore <= 1),
    PRIMARY KEY (request_id, position)
) WITHOUT ROWID;
CREATE TABLE feedback (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    event      TEXT NOT NULL,
    value      REAL NOT NULL,
    ts         REAL NOT NULL
);
CREATE INDEX feedback_by_request ON feedback (request_id, item_id, event);
CREATE TABLE items (
    item_id TEXT PRIMARY KEY,
    ts      REAL NOT NULL,
    payload TEXT NOT NULL
);
"""

_INSERT_REQUEST = ("INSERT INTO requests (request_id, ts, user_id, history, context, policy, policy_params, k, "
                   "run_id, ranking, rerank) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_EXPOSURE = ("INSERT INTO exposures (request_id, position, item_id, item_index, score, pscore) "
                    "VALUES (?, ?, ?, ?, ?, ?)")
_INSERT_FEEDBACK = "INSERT INTO feedback (request_id, item_id, event, value, ts) VALUES (?, ?, ?, ?, ?)"
_UPSERT_ITEM = ("INSERT INTO items (item_id, ts, payload) VALUES (?, ?, ?) "
                "ON CONFLICT (item_id) DO UPDATE SET ts = excluded.ts, payload = excluded.payload")
_UPSERT_META = ("INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value")


# -- opening and checking --------------------------------------------------------------------


def _translate(exc: BaseException, path: Path, busy_timeout_s: float) -> BaseException:
    """sqlite3 errors that are about the file (locked, corrupt, not a database) as kgrec errors."""
    if not isinstance(exc, sqlite3.Error):
        return exc
    name, msg = _error_name(exc), str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in msg:
        err: BaseException = LockedError(
            f"the exposure log stayed locked by another connection for over {busy_timeout_s:g} s ({msg})",
            file=str(path), field="lock")
    elif name.startswith("SQLITE_NOTADB") or "not a database" in msg:
        err = DataError(f"not an SQLite database, so not a kgrec exposure log ({msg})", file=str(path),
                        field="format")
    elif name.startswith("SQLITE_CORRUPT") or "malformed" in msg:
        err = DataError(f"the exposure log is corrupt ({msg}); restore it from a copy or start a new one",
                        file=str(path), field="format")
    else:
        return exc
    err.__cause__ = exc
    return err


def _error_name(exc: BaseException) -> str:
    return str(getattr(exc, "sqlite_errorname", "") or "")


def _connect_ro(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        return sqlite3.connect(uri, uri=True, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise _translate(exc, path, busy_timeout_s) from exc


def _prepare(conn: sqlite3.Connection, path: Path, *, durable: bool, create: bool, busy_timeout_s: float) -> None:
    """Check an existing log (before changing anything in the file), set the pragmas, create
    the schema in an empty file."""
    try:
        empty = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0  # NOTADB surfaces here
        if not empty or conn.execute("PRAGMA user_version").fetchone()[0] != 0:
            _check(conn, path, busy_timeout_s)
        elif not create:
            raise DataError("empty database, not a kgrec exposure log", file=str(path), field="format")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise DataError(f"SQLite could not put the exposure log in WAL mode (journal_mode is {mode}); "
                            f"is it on a network filesystem? Put the log on a local disk", file=str(path),
                            field="journal_mode")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        if not empty:
            _migrate(conn, path, busy_timeout_s)
            return
        with _immediate(conn):  # two processes creating the log at once: one creates, one checks
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                for statement in _DDL.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                 [("format", FORMAT), ("created_at", created), ("created_by", _kgrec_version())])
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        _check(conn, path, busy_timeout_s)
    except sqlite3.Error as exc:
        raise _translate(exc, path, busy_timeout_s) from exc


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` transaction (the write lock taken at once): committed when the
    block ends, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _migrate(conn: sqlite3.Connection, path: Path, busy_timeout_s: float) -> None:
    """A checked version-1 log to version 2 (module docstring), in one transaction; a log that
    another writer migrated first is left as it is."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    with _immediate(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] < 2:
            for statement in _MIGRATE_V2:
                conn.execute(statement)
            conn.execute("PRAGMA user_version = 2")
    _check(conn, path, busy_timeout_s)


def log_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open (checked) log."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _check(conn: sqlite3.Connection, path: Path, busy_timeout_s: float) -> None:
    """``path`` is a kgrec exposure log that this version can read (version 1 or 2)."""
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            raise DataError(f"SQLite database without a meta table: not a kgrec exposure log ({FORMAT})",
                            file=str(path), field="meta.format")
        row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if row is None or row[0] != FORMAT:
            raise DataError(f"meta format is {row and row[0]!r}, expected {FORMAT!r}: not a kgrec exposure log",
                            file=str(path), field="meta.format")
        if version < 1:
            raise DataError(f"user_version is {version}, expected 1..{SCHEMA_VERSION}", file=str(path),
                            field="user_version")
        for table in TABLES:
            if table not in tables:
                raise DataError(f"table {table!r} is missing", file=str(path), field=table)
            have = [(r[1], r[2].upper()) for r in conn.execute(f"PRAGMA table_info({table})")]
            names = columns_of(table, version)
            want = [(c[0], c[1]) for c in COLUMNS[table] if c[0] in names]
            if have != want:
                raise DataError(f"table {table!r} has columns {have}, expected {want}", file=str(path), field=table)
    except sqlite3.Error as exc:
        raise _translate(exc, path, busy_timeout_s) from exc


def _newer(path: Path, version: int) -> DataError:
    return DataError(f"schema version {version} was written by a newer kgrec; this one reads up to "
                     f"{SCHEMA_VERSION}: upgrade kgrec to read it", file=str(path), field="user_version")


def _kgrec_version() -> str:
    try:
        from kgrec import __version__
    except ImportError:  # pragma: no cover
        return "kgrec"
    return f"kgrec {__version__}"

"""The exposure log of ``kgrec serve``: every served list and every feedback event, in SQLite.

Where and how
=============

``DIR/exposures.sqlite`` (plus SQLite's own ``-wal`` and ``-shm`` files), in WAL mode. The
server calls :meth:`ExposureLog.log_request` (or ``await`` :meth:`ExposureLog.alog_request`)
and sends its response only after that returns, i.e. after the transaction holding the
request row and its exposure rows is committed. Guarantees:

* **process crash** (SIGKILL, OOM kill, a bug): nothing acknowledged is lost. In WAL mode with
  ``synchronous=NORMAL`` (the default) a commit has been written to the ``-wal`` file (the
  OS page cache) before it returns; the next open replays it. There is no lock file of our
  own that a killed process could leave stale: SQLite's locks are ``fcntl`` locks, released by
  the kernel when the process dies, and its ``-shm`` index is rebuilt when needed.
* **power loss / kernel panic**: with ``durable=True`` (``synchronous=FULL``) every commit is
  fsynced before it returns. Without it, the last transactions before the power loss may be
  lost (never corrupted: the database stays consistent either way).

Writes go through group commit (:mod:`kgrec.serve.log_writer`): one writer thread owns the
write connection and commits the queued jobs together, one transaction (one fsync in durable
mode) per batch, each job in its own ``SAVEPOINT`` so a failing job (a duplicate request id,
feedback for an unknown request) fails alone. :attr:`ExposureLog.commits` counts committed
transactions, :attr:`ExposureLog.jobs` the jobs they held.

Reads (:meth:`ExposureLog.requests`, :meth:`ExposureLog.bandit_feedback`, ...) use a fresh
read-only connection each, so they work from any thread and from other processes (``kgrec
log export``) while the server writes; WAL readers never block the writer nor are blocked by
it. :meth:`ExposureLog.snapshot` gives several reads from one consistent snapshot.

Feedback is checked against the log: :meth:`ExposureLog.log_feedback` raises
:class:`UnknownRequest` (a :class:`~kgrec.errors.UsageError`; the server answers 404/422) for a
request id that was never logged or an item that request did not show. The check is one
probe of the exposures' primary key (plus one of the requests', only when it fails) inside
the writer's transaction, so it also sees a request committed in the same batch, and it cannot
race with it. A second :meth:`ExposureLog.log_request` with the same
request id raises :class:`DuplicateRequest` (not reached by the server, whose request ids are
fresh uuid4s).

API
===

* ``ExposureLog.open(dir, durable=False, create=True, readonly=False)``; ``close()``; a
  context manager. ``readonly`` opens no writer (export, analysis, another process).
* Writes, each returning after its commit: ``log_request(ServedRequest)``,
  ``log_feedback(Feedback) -> id``, ``log_item(item_id, payload)``, ``set_meta(key, value)``;
  ``async`` twins ``alog_request``, ``alog_feedback``, ``alog_item``; non-blocking
  ``submit_request`` / ``submit_feedback`` / ``submit_item`` / ``submit(ops)`` /
  ``submit_fn(fn)`` returning a :class:`~concurrent.futures.Future`.
* Reads (pandas DataFrames): ``requests()``, ``exposures()``, ``feedback()``, ``items()``,
  ``bandit_feedback(events=("click",))``; ``counts()``, ``meta()``, ``get_request(id)``;
  ``snapshot()`` for several reads of one state.
* Errors: :class:`UnknownRequest`, :class:`DuplicateRequest` (both
  :class:`~kgrec.errors.UsageError`), :class:`~kgrec.errors.DataError` (not a log, newer
  schema, corrupt), :class:`~kgrec.errors.LockedError`, :class:`LogClosedError` (a
  ``RuntimeError``: a write after ``close()`` is a bug in the caller).

Modules
=======

The schema (every table and column with its SQL type, meaning and OBP name, and
:data:`SCHEMA_VERSION`) is documented in :mod:`kgrec.serve.log_schema`, with why it is that way.

* this one: :class:`ExposureLog`, opening a log and its typed writes and reads. It re-exports
  the public names of the others, so ``from kgrec.serve.log import ...`` is the one import a
  caller needs;
* :mod:`kgrec.serve.log_records`: the records a write takes, :class:`ServedRequest` (with its
  :class:`Exposure` rows) and :class:`Feedback`, validated on construction, and the errors;
* :mod:`kgrec.serve.log_schema`: the schema table, the SQL, and opening and checking a file
  as a log;
* :mod:`kgrec.serve.log_writer`: group commit (the writer thread, batches, savepoints);
* :mod:`kgrec.serve.log_read`: :class:`LogSnapshot`, the DataFrame readers.

Standard library for writing; pandas only for the DataFrame readers (imported on use).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgrec.errors import DataError, UsageError
from kgrec.serve.checks import is_int
from kgrec.serve.log_read import LogSnapshot
from kgrec.serve.log_records import (DuplicateRequest, Exposure, Feedback, LogClosedError, ServedRequest,
                                     UnknownRequest, _finite, _json, _text)
from kgrec.serve.log_schema import (COLUMNS, DB_NAME, FORMAT, RESERVED_META, SCHEMA_VERSION, TABLES,
                                    _INSERT_EXPOSURE, _INSERT_FEEDBACK, _INSERT_REQUEST, _UPSERT_ITEM,
                                    _UPSERT_META, _check, _connect_ro, _prepare, _translate)
from kgrec.serve.log_writer import GroupCommitWriter

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "DB_NAME", "FORMAT", "RESERVED_META", "SCHEMA_VERSION", "TABLES", "DuplicateRequest",
           "Exposure", "ExposureLog", "Feedback", "LogClosedError", "LogSnapshot", "ServedRequest",
           "UnknownRequest"]


class ExposureLog(GroupCommitWriter):
    """The exposure log in ``directory`` (see the module docstring). Use :meth:`open`.

    ``close()``, ``closed``, ``submit_fn(fn)``, ``commits`` and ``jobs`` are its writer's
    (:class:`~kgrec.serve.log_writer.GroupCommitWriter`); the typed writes below queue jobs on it.
    """

    def __init__(self, directory: Path, conn: sqlite3.Connection | None, *, durable: bool,
                 busy_timeout_s: float, max_batch: int, max_group_wait_s: float) -> None:
        self.directory = directory
        self.path = directory / DB_NAME
        self.durable = durable
        self.busy_timeout_s = busy_timeout_s
        super().__init__(conn, what=f"exposure log {self.path}", thread_name=f"kgrec-exposure-log:{directory.name}",
                         max_batch=max_batch, max_group_wait_s=max_group_wait_s)

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: str | Path, *, durable: bool = False, create: bool = True, readonly: bool = False,
             busy_timeout_s: float = 5.0, max_batch: int = 1024, max_group_wait_s: float = 0.002) -> ExposureLog:
        """Open (or, with ``create``, create) the log in ``directory``.

        ``durable``: ``synchronous=FULL`` (a commit survives power loss) instead of ``NORMAL``
        (survives a process crash). ``readonly``: no writer thread, nothing is created or
        changed (for export and analysis; works while a server writes). ``max_group_wait_s``:
        the longest the writer waits for company before a commit (see :mod:`kgrec.serve.log_writer`;
        0: never wait, batches are then only what queued up during the previous commit).
        """
        directory = Path(directory)
        path = directory / DB_NAME
        if not is_int(max_batch, 1):
            raise UsageError(f"must be an integer >= 1, got {max_batch!r}", field="max_batch")
        for name, value in (("busy_timeout_s", busy_timeout_s), ("max_group_wait_s", max_group_wait_s)):
            if _finite(value, name) < 0:
                raise UsageError(f"must be >= 0, got {value!r}", field=name)
        if readonly:
            create = False
        if path.is_dir():
            raise DataError("is a directory, expected an exposure log (SQLite file)", file=str(path), field="format")
        if not path.exists():
            if not create:
                raise DataError(f"no exposure log here (expected {DB_NAME})", file=str(path), field="directory")
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise DataError("exists and is not a directory", file=str(directory), field="directory") from None
        if readonly:
            conn = _connect_ro(path, busy_timeout_s)
            try:
                _check(conn, path, busy_timeout_s)
            finally:
                conn.close()
            return cls(directory, None, durable=durable, busy_timeout_s=busy_timeout_s, max_batch=max_batch,
                       max_group_wait_s=max_group_wait_s)
        conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        try:
            _prepare(conn, path, durable=durable, create=create, busy_timeout_s=busy_timeout_s)
        except BaseException:
            conn.close()
            raise
        return cls(directory, conn, durable=durable, busy_timeout_s=busy_timeout_s, max_batch=max_batch,
                   max_group_wait_s=max_group_wait_s)

    def __enter__(self) -> ExposureLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _translate(self, exc: BaseException) -> BaseException:
        """sqlite3 errors about the file (locked, corrupt, not a database) as kgrec errors."""
        return _translate(exc, self.path, self.busy_timeout_s)

    # -- writing -----------------------------------------------------------------------------

    def submit(self, ops: Sequence[tuple[str, Iterable[Sequence[Any]]]]) -> Future:
        """Queue ``[(sql, rows), ...]`` (each run with ``executemany``) as one job."""
        ops = [(sql, list(rows)) for sql, rows in ops]

        def run(conn: sqlite3.Connection) -> None:
            for sql, rows in ops:
                conn.executemany(sql, rows)

        return self.submit_fn(run)

    def submit_request(self, request: ServedRequest) -> Future:
        """Queue the request row and its exposure rows (one job); the future resolves after commit."""
        if not isinstance(request, ServedRequest):
            raise UsageError(f"expected a ServedRequest, got {type(request).__name__}", field="request")
        row, exposures = request.rows()
        path = str(self.path)

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(_INSERT_REQUEST, row)
            except sqlite3.IntegrityError:
                raise DuplicateRequest(f"request id {row[0]!r} is already in the log", file=path,
                                       field="request_id") from None
            conn.executemany(_INSERT_EXPOSURE, exposures)

        return self.submit_fn(run)

    def submit_feedback(self, feedback: Feedback) -> Future:
        """Queue a feedback event; the future gets its ``feedback.id``, or :class:`UnknownRequest`."""
        if not isinstance(feedback, Feedback):
            raise UsageError(f"expected a Feedback, got {type(feedback).__name__}", field="feedback")
        row = (feedback.request_id, feedback.item_id, feedback.event, float(feedback.value), float(feedback.ts))
        path = str(self.path)

        def run(conn: sqlite3.Connection) -> int:
            shown = conn.execute("SELECT 1 FROM exposures WHERE request_id = ? AND item_id = ?", row[:2]).fetchone()
            if shown is None:
                known = conn.execute("SELECT 1 FROM requests WHERE request_id = ?", row[:1]).fetchone()
                if known is None:
                    raise UnknownRequest(f"no request {row[0]!r} in the exposure log", file=path, field="request_id")
                raise UnknownRequest(f"request {row[0]!r} did not show item {row[1]!r}", file=path, field="item_id")
            return conn.execute(_INSERT_FEEDBACK, row).lastrowid

        return self.submit_fn(run)

    def submit_item(self, item_id: str, payload: Mapping[str, Any], *, ts: float | None = None) -> Future:
        _text(item_id, "item_id")
        if not isinstance(payload, Mapping):
            raise UsageError(f"must be a mapping, got {type(payload).__name__}", field="payload")
        row = (item_id, time.time() if ts is None else _finite(ts, "ts"), _json(dict(payload), "payload"))
        return self.submit([(_UPSERT_ITEM, [row])])

    def submit_meta(self, values: Mapping[str, Any]) -> Future:
        rows = []
        for key, value in values.items():
            _text(key, "meta key")
            if key in RESERVED_META:
                raise UsageError(f"meta key {key!r} is set by the log itself", field=key)
            rows.append((key, value if isinstance(value, str) else _json(value, key)))
        return self.submit([(_UPSERT_META, rows)])

    def log_request(self, request: ServedRequest, *, timeout: float | None = None) -> None:
        """Log a served list; returns once it is committed (send the response after this)."""
        self.submit_request(request).result(timeout)

    def log_feedback(self, feedback: Feedback, *, timeout: float | None = None) -> int:
        """Log a feedback event; returns its id once committed. :class:`UnknownRequest` if its
        request is not in the log or did not show its item."""
        return self.submit_feedback(feedback).result(timeout)

    def log_item(self, item_id: str, payload: Mapping[str, Any], *, ts: float | None = None,
                 timeout: float | None = None) -> None:
        """Log an item added while serving (a second add of the same id replaces it)."""
        self.submit_item(item_id, payload, ts=ts).result(timeout)

    def set_meta(self, *args: Any, **kw: Any) -> None:
        """Set meta keys (``run_dir``, ``model``, ``policy``, ...): ``set_meta("key", value)``,
        ``set_meta({"key": value})`` or ``set_meta(key=value)``; non-strings are stored as JSON."""
        if len(args) == 2 and isinstance(args[0], str):
            values: dict[str, Any] = {args[0]: args[1]}
        elif len(args) == 1 and isinstance(args[0], Mapping):
            values = dict(args[0])
        elif not args:
            values = {}
        else:
            raise UsageError("set_meta takes (key, value), a mapping, or keyword arguments", field="meta")
        self.submit_meta({**values, **kw}).result()

    async def alog_request(self, request: ServedRequest) -> None:
        await asyncio.wrap_future(self.submit_request(request))

    async def alog_feedback(self, feedback: Feedback) -> int:
        return await asyncio.wrap_future(self.submit_feedback(feedback))

    async def alog_item(self, item_id: str, payload: Mapping[str, Any], *, ts: float | None = None) -> None:
        await asyncio.wrap_future(self.submit_item(item_id, payload, ts=ts))

    # -- reading -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[LogSnapshot]:
        """Several reads from one consistent snapshot (one read transaction)."""
        conn = _connect_ro(self.path, self.busy_timeout_s)
        try:
            conn.execute("BEGIN")
            yield LogSnapshot(conn, self.path, self.busy_timeout_s)
        finally:
            conn.close()

    def meta(self) -> dict[str, str]:
        with self.snapshot() as s:
            return s.meta()

    def requests(self) -> pd.DataFrame:
        with self.snapshot() as s:
            return s.requests()

    def exposures(self) -> pd.DataFrame:
        with self.snapshot() as s:
            return s.exposures()

    def feedback(self) -> pd.DataFrame:
        with self.snapshot() as s:
            return s.feedback()

    def items(self) -> pd.DataFrame:
        with self.snapshot() as s:
            return s.items()

    def counts(self) -> dict[str, int]:
        with self.snapshot() as s:
            return s.counts()

    def bandit_feedback(self, events: Iterable[str] | None = ("click",)) -> pd.DataFrame:
        with self.snapshot() as s:
            return s.bandit_feedback(events)

    def get_request(self, request_id: str) -> ServedRequest | None:
        with self.snapshot() as s:
            return s.get_request(request_id)

"""Group commit for the exposure log (:mod:`kgrec.serve.log`): one writer thread owns the
write connection and commits the jobs queued for it in shared transactions.

Callers enqueue a job and get a :class:`concurrent.futures.Future`; the writer takes
everything queued (up to ``max_batch`` jobs), runs it in ONE transaction, commits (one fsync
in durable mode), then resolves all those futures. The grouping is adaptive: a lone client is committed at once
(no added latency); when the previous commit held several jobs (several clients write
concurrently), the writer waits after the first job until as many are queued again, at most
the previous commit's duration (and ``max_group_wait_s``, default 2 ms). Without that wait,
the clients a commit answers come back one by one, and the first one triggers a short commit
while the rest queue for the next, so with many writer threads each commit holds about half of
them; with the wait, about all of them (``tests/unit/serve/test_log.py`` checks that durable
commits are far fewer than requests). Each job of a batch
runs inside its own ``SAVEPOINT``: a job that fails (a duplicate request id, feedback for an
unknown request) is rolled back alone and its error goes to its own future only; the other
jobs of the batch still commit. A failure of the transaction itself (``COMMIT``: disk full, I/O
error, locked) goes to every future of the batch. :attr:`GroupCommitWriter.commits` counts
committed transactions, :attr:`GroupCommitWriter.jobs` the jobs they held.

Per-job savepoints (a change from the first design) keep one bad request from failing the
unrelated requests it happened to share a commit with. A lone job runs without one: its
failure rolls back the whole transaction instead.

:class:`GroupCommitWriter` knows nothing of the log's tables: a job is any
``fn(conn)``; :class:`~kgrec.serve.log.ExposureLog` builds on it, queuing its typed writes as
jobs and mapping sqlite3 errors to kgrec's (:meth:`GroupCommitWriter._translate`).
"""

from __future__ import annotations

import collections
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from kgrec.serve.log_records import LogClosedError


@dataclass
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    future: Future


class GroupCommitWriter:
    """The writer thread of ``conn``, committing queued jobs in groups of up to ``max_batch``.

    Without a connection (``conn`` None) it is read-only: no thread, every job refused.
    ``what`` names it in the :class:`~kgrec.serve.log_records.LogClosedError` of a refused job.
    """

    def __init__(self, conn: sqlite3.Connection | None, *, what: str, thread_name: str, max_batch: int,
                 max_group_wait_s: float) -> None:
        self.readonly = conn is None
        self.max_batch = max_batch
        self.max_group_wait_s = max_group_wait_s
        #: committed transactions, and the jobs they held (only the writer thread updates them)
        self.commits = 0
        self.jobs = 0
        self._what = what
        self._conn = conn
        self._pending: collections.deque[_Job] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._closed = conn is None
        self._thread: threading.Thread | None = None
        if conn is not None:
            self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Commit what is queued, stop the writer, close. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    @property
    def closed(self) -> bool:
        return self._closed

    def submit_fn(self, fn: Callable[[sqlite3.Connection], Any]) -> Future:
        """Queue ``fn(conn)`` to run in the writer's next transaction (in its own savepoint);
        the future gets its return value once committed, or its exception."""
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise LogClosedError(f"{self._what} is {'read-only' if self.readonly else 'closed'}")
            if self._thread is None or not self._thread.is_alive():
                raise LogClosedError(f"{self._what}: its writer thread is gone")
            self._pending.append(_Job(fn, future))
            self._cond.notify()
        return future

    def _translate(self, exc: BaseException) -> BaseException:
        """The exception a future gets for ``exc`` (raised by its job, or by the transaction);
        here ``exc`` itself."""
        return exc

    # -- the writer thread -------------------------------------------------------------------

    def _next_batch(self, expect: int, wait_s: float) -> list[_Job] | None:
        """The next jobs to commit together (None: closed and nothing left).

        Adaptive group commit: ``expect`` is how many jobs the previous batch held, a
        measure of how many clients write concurrently. A lone client (``expect`` 1) is
        committed at once. With several, the writer waits, after the first job, until
        ``expect`` jobs are queued, or ``wait_s`` passes (the previous commit's duration, at
        most ``max_group_wait_s``: waiting longer than a commit takes cannot pay for itself).
        Waiting for ``expect`` exactly means the clients just answered come back into the
        same commit instead of splitting into a short one and a long one.
        """
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if not self._pending:
                return None
            if expect > 1 and wait_s > 0 and not self._closed and len(self._pending) < expect:
                self._cond.wait_for(lambda: len(self._pending) >= expect or self._closed, timeout=wait_s)
            n = min(len(self._pending), self.max_batch)
            return [self._pending.popleft() for _ in range(n)]

    def _run(self) -> None:
        conn = self._conn
        assert conn is not None
        expect, wait_s = 1, 0.0
        try:
            while (batch := self._next_batch(expect, wait_s)) is not None:
                started = time.perf_counter()
                try:
                    self._commit(conn, batch)
                except BaseException as exc:  # a bug here must not leave callers waiting forever
                    with contextlib.suppress(sqlite3.Error):
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                    for job in batch:
                        if not job.future.done():
                            job.future.set_exception(exc)
                expect = len(batch)
                wait_s = min(self.max_group_wait_s, time.perf_counter() - started)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            for job in batch:
                if job.future.set_running_or_notify_cancel():
                    job.future.set_exception(self._translate(exc))
            return
        failed: BaseException | None = None
        savepoints = len(batch) > 1  # a lone job's failure rolls back the whole transaction instead
        for job in batch:
            if not job.future.set_running_or_notify_cancel():
                continue  # cancelled while queued
            if failed is not None:
                outcomes.append((job, False, failed))
                continue
            if savepoints:
                conn.execute("SAVEPOINT job")
            try:
                value = job.fn(conn)
            except Exception as exc:
                if not conn.in_transaction:  # SQLite rolled the whole transaction back (I/O error, full disk)
                    failed = exc
                    outcomes.append((job, False, exc))
                    continue
                if not savepoints:
                    conn.execute("ROLLBACK")
                    job.future.set_exception(self._translate(exc))
                    return
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((job, False, exc))
            else:
                if savepoints:
                    conn.execute("RELEASE job")
                outcomes.append((job, True, value))
        if failed is None:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                failed = exc
        if failed is not None:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job, ok, value in outcomes:
                job.future.set_exception(self._translate(failed if ok or value is failed else value))
            return
        self.commits += 1
        self.jobs += len(outcomes)
        for job, ok, value in outcomes:
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(self._translate(value))

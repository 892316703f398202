"""Reading the exposure log (:mod:`kgrec.serve.log`): pandas DataFrames of its tables, and the
``bandit_feedback`` query.

A :class:`LogSnapshot` runs its reads on one read-only connection inside one read transaction,
so they all see the same committed state while a server keeps writing (WAL readers never block
the writer nor are blocked by it). :meth:`kgrec.serve.log.ExposureLog.snapshot` opens one; the
log's own readers (:meth:`~kgrec.serve.log.ExposureLog.requests`, ...) open one per call.

Columns, their order and their meaning are those of the schema table in
:mod:`kgrec.serve.log_schema`; numeric columns get the dtypes of :data:`_DTYPES`
(``item_index`` is nullable ``Int64``), text columns stay pandas' default, JSON columns stay
JSON text.

pandas is imported on first use, so the writer never loads it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgrec.errors import UsageError
from kgrec.serve.log_records import Exposure, ServedRequest
from kgrec.serve.log_schema import ADDED_IN_V2, COLUMNS, TABLES, _translate, log_version

if TYPE_CHECKING:
    import pandas as pd

#: pandas dtypes of the numeric columns (text columns stay pandas' default string dtype).
_DTYPES = {"ts": "float64", "k": "int64", "position": "int64", "item_index": "Int64", "score": "float64",
           "pscore": "float64", "id": "int64", "value": "float64", "reward": "int64"}


class LogSnapshot:
    """Reads on one read-only connection inside one read transaction (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, busy_timeout_s: float) -> None:
        self._conn, self._path, self._busy = conn, path, busy_timeout_s
        try:
            self._version = log_version(conn)
        except sqlite3.Error as exc:
            raise _translate(exc, path, busy_timeout_s) from exc

    def _requests_cols(self, alias: str = "", only: Sequence[str] | None = None) -> str:
        """The ``requests`` columns (``only`` these, in that order) as a SELECT list; in a
        version-1 log the columns added later are their version-1 value (log_schema)."""
        added = ADDED_IN_V2["requests"] if self._version < 2 else {}
        names = only if only is not None else [c[0] for c in COLUMNS["requests"]]
        return ", ".join(f"'{added[n]}' AS {n}" if n in added else f"{alias}{n}" for n in names)

    def _frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        import pandas as pd

        try:
            cur = self._conn.execute(sql, params)
            rows = cur.fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc, self._path, self._busy) from exc
        names = [d[0] for d in cur.description]  # set by every SELECT, even one without rows
        frame = pd.DataFrame.from_records(rows, columns=names)
        for name in names:
            if name in _DTYPES:
                frame[name] = frame[name].astype(_DTYPES[name])
        return frame

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc, self._path, self._busy) from exc

    def meta(self) -> dict[str, str]:
        return dict(self._rows("SELECT key, value FROM meta ORDER BY key"))

    def requests(self) -> pd.DataFrame:
        return self._frame(f"SELECT {self._requests_cols()} FROM requests ORDER BY ts, rowid")

    def exposures(self) -> pd.DataFrame:
        return self._frame("SELECT e.request_id, e.position, e.item_id, e.item_index, e.score, e.pscore "
                           "FROM exposures e JOIN requests r USING (request_id) ORDER BY r.ts, r.rowid, e.position")

    def feedback(self) -> pd.DataFrame:
        return self._frame("SELECT id, request_id, item_id, event, value, ts FROM feedback ORDER BY id")

    def items(self) -> pd.DataFrame:
        return self._frame("SELECT item_id, ts, payload FROM items ORDER BY ts, item_id")

    def counts(self) -> dict[str, int]:
        return {t: self._rows(f"SELECT count(*) FROM {t}")[0][0] for t in TABLES if t != "meta"}

    def bandit_feedback(self, events: Iterable[str] | None = ("click",)) -> pd.DataFrame:
        """One row per exposure; ``reward`` is 1 if an event named in ``events`` (any event if
        None) was logged for that request and item, else 0."""
        if isinstance(events, str):
            events = (events,)
        params: list[Any] = []
        cond = ""
        if events is not None:
            events = list(events)
            if not events:
                raise UsageError("no reward events given", field="events")
            cond = f" AND f.event IN ({', '.join('?' * len(events))})"
            params = events
        ranking = self._requests_cols("r.", ["ranking"])
        sql = ("SELECT r.request_id, r.ts, r.user_id, r.context, e.item_id AS action, e.item_index, e.position, "
               "EXISTS (SELECT 1 FROM feedback f WHERE f.request_id = e.request_id AND f.item_id = e.item_id"
               f"{cond}) AS reward, e.pscore, r.policy, {ranking} "
               "FROM exposures e JOIN requests r USING (request_id) ORDER BY r.ts, r.rowid, e.position")
        return self._frame(sql, params)

    def get_request(self, request_id: str) -> ServedRequest | None:
        rows = self._rows(f"SELECT {self._requests_cols()} FROM requests WHERE request_id = ?", (request_id,))
        if not rows:
            return None
        row = rows[0]
        items = [Exposure(*e) for e in self._rows(
            "SELECT position, item_id, item_index, score, pscore FROM exposures WHERE request_id = ? "
            "ORDER BY position", (request_id,))]
        return ServedRequest(request_id=row[0], ts=row[1], user_id=row[2],
                             history=None if row[3] is None else tuple(json.loads(row[3])),
                             context=json.loads(row[4]), policy=row[5], policy_params=json.loads(row[6]), k=row[7],
                             run_id=row[8], ranking=row[9], rerank=row[10], items=tuple(items))

"""The records of the exposure log (:mod:`kgrec.serve.log`): what a write takes, and its errors.

* :class:`ServedRequest`: one served list, with its :class:`Exposure` rows (one per shown
  item); :meth:`ServedRequest.rows` gives the ``requests`` row and the ``exposures`` rows.
* :class:`Feedback`: one feedback event about an item of a served list.

All three are frozen dataclasses that validate on construction (:class:`~kgrec.errors.UsageError`
with the offending ``field``): ids are non-empty strings, numbers finite, ``pscore`` in (0, 1],
positions and item ids unique within a list, ``k`` at least the number of items. JSON fields
(``context``, ``policy_params``, ``history``) are checked when :meth:`ServedRequest.rows`
serialises them, before the write is queued. The column each field becomes is in the schema
table of :mod:`kgrec.serve.log_schema`.

Errors of a write: :class:`UnknownRequest` (feedback for a request or item that is not in the
log) and :class:`DuplicateRequest` (a request id logged twice), both
:class:`~kgrec.errors.UsageError`; :class:`LogClosedError` (a ``RuntimeError``: a write after
``close()``, a bug in the caller).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kgrec.errors import UsageError
from kgrec.serve.checks import is_int


class UnknownRequest(UsageError):
    """Feedback for a request id that is not in the log, or an item that request did not show."""

    kind = "unknown request"


class DuplicateRequest(UsageError):
    """A second :meth:`ExposureLog.log_request` with a request id already in the log."""

    kind = "duplicate request"


class LogClosedError(RuntimeError):
    """A write on a closed (or read-only) log: a bug in the caller, not a user error."""


# -- validation ------------------------------------------------------------------------------
# (the writer, kgrec.serve.log, checks item payloads, meta and its options with these too)


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"not JSON-serialisable: {exc}", field=what) from None


def _finite(x: Any, what: str, *, optional: bool = False) -> float | None:
    if x is None and optional:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise UsageError(f"must be a finite number, got {x!r}", field=what)
    return float(x)


def _text(x: Any, what: str, *, optional: bool = False) -> str | None:
    if x is None and optional:
        return None
    if not isinstance(x, str) or not x:
        raise UsageError(f"must be a non-empty string, got {x!r}", field=what)
    return x


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exposure:
    """One shown item: its 0-based ``position``, ids, the model's ``score`` and the logging
    policy's ``pscore`` (marginal probability of this item at this position, in (0, 1])."""

    position: int
    item_id: str
    item_index: int | None
    score: float | None
    pscore: float

    def __post_init__(self) -> None:
        if not is_int(self.position, 0):
            raise UsageError(f"must be an integer >= 0, got {self.position!r}", field="position")
        _text(self.item_id, "item_id")
        if self.item_index is not None and not is_int(self.item_index, 0):
            raise UsageError(f"must be an integer >= 0 or None, got {self.item_index!r}", field="item_index")
        _finite(self.score, "score", optional=True)
        pscore = _finite(self.pscore, "pscore")
        if not 0.0 < pscore <= 1.0:
            raise UsageError(f"must be in (0, 1] (a probability of an item that was shown), got {pscore!r}",
                             field="pscore")


@dataclass(frozen=True, kw_only=True)
class ServedRequest:
    """One served list. ``items`` are its exposures (given in any order, kept by position;
    positions and item ids unique within the list);
    ``k`` defaults to ``len(items)``; ``history`` (raw item ids) is for a fold-in user, whose
    ``user_id`` is None (a non-profiling request logs what it was sent, unused); ``ranking``
    names what ordered the policy's pool (``personalised``, ``popular``, ``recent``) and
    ``rerank`` the re-ranking stage that ran on it (``none`` or its label)."""

    request_id: str
    ts: float = field(default_factory=time.time)
    user_id: str | None = None
    history: tuple[str, ...] | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    policy: str
    policy_params: Mapping[str, Any] = field(default_factory=dict)
    k: int | None = None
    run_id: str | None = None
    ranking: str = "personalised"
    rerank: str = "none"
    items: tuple[Exposure, ...]

    def __post_init__(self) -> None:
        _text(self.request_id, "request_id")
        _finite(self.ts, "ts")
        _text(self.user_id, "user_id", optional=True)
        if self.history is not None:
            if isinstance(self.history, (str, bytes)) or not isinstance(self.history, Iterable):
                raise UsageError(f"must be a list of item ids, got {self.history!r}", field="history")
            object.__setattr__(self, "history", tuple(self.history))
            for item in self.history:
                _text(item, "history")
        if not isinstance(self.context, Mapping):
            raise UsageError(f"must be a mapping, got {type(self.context).__name__}", field="context")
        _text(self.policy, "policy")
        if not isinstance(self.policy_params, Mapping):
            raise UsageError(f"must be a mapping, got {type(self.policy_params).__name__}", field="policy_params")
        _text(self.run_id, "run_id", optional=True)
        _text(self.ranking, "ranking")
        _text(self.rerank, "rerank")
        items = tuple(self.items)
        if not all(isinstance(e, Exposure) for e in items):
            raise UsageError("must be a list of Exposure", field="items")
        items = tuple(sorted(items, key=lambda e: e.position))
        object.__setattr__(self, "items", items)
        if len({e.position for e in items}) != len(items):
            raise UsageError(f"request {self.request_id}: two items at one position", field="position")
        if len({e.item_id for e in items}) != len(items):
            raise UsageError(f"request {self.request_id}: an item is shown twice", field="item_id")
        if self.k is None:
            object.__setattr__(self, "k", len(items))
        elif not is_int(self.k, len(items)):
            raise UsageError(f"must be an integer >= the number of items ({len(items)}), got {self.k!r}", field="k")

    def rows(self) -> tuple[tuple, list[tuple]]:
        """The ``requests`` row and the ``exposures`` rows (by position)."""
        request = (self.request_id, float(self.ts), self.user_id,
                   None if self.history is None else _json(list(self.history), "history"),
                   _json(dict(self.context), "context"), self.policy,
                   _json(dict(self.policy_params), "policy_params"), self.k, self.run_id, self.ranking,
                   self.rerank)
        exposures = [(self.request_id, e.position, e.item_id, e.item_index,
                      None if e.score is None else float(e.score), float(e.pscore))
                     for e in self.items]
        return request, exposures


@dataclass(frozen=True, kw_only=True)
class Feedback:
    """One feedback event about item ``item_id`` of the list ``request_id``."""

    request_id: str
    item_id: str
    event: str
    value: float = 1.0
    ts: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        _text(self.request_id, "request_id")
        _text(self.item_id, "item_id")
        _text(self.event, "event")
        _finite(self.value, "value")
        _finite(self.ts, "ts")

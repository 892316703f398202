"""User-facing errors and their exit codes.

Every error caused by the user's input (a schema, a data file, a config, an option)
is a :class:`KgrecInputError` subclass that carries the file, line and field it is
about. The CLI turns it into one line of text and a documented exit code; anything
else is a bug and keeps its traceback.

Exit codes (also in the README):

====  =========================================================
code  meaning
====  =========================================================
0     success
1     internal error (a bug; rerun with ``--debug`` and report it)
2     usage error (bad command-line arguments)
3     schema error (YAML syntax, unknown key or type, bad value)
4     data error (missing/empty file, wrong header, bad encoding, unparsable value)
5     checksum mismatch
6     fetch error (no network and no cache, download failed)
7     run directory exists (pass ``--overwrite``)
8     strict mode: data would have been dropped (``--strict``)
9     ``kgrec audit``: at least one gate of the audit plan failed (the report is written)
10    the run or report directory is being written by another live process (its lock)
====  =========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_SCHEMA = 3
EXIT_DATA = 4
EXIT_CHECKSUM = 5
EXIT_FETCH = 6
EXIT_EXISTS = 7
EXIT_STRICT = 8
EXIT_GATE = 9
EXIT_LOCKED = 10


class KgrecInputError(Exception):
    """An error in the user's input, located by ``file:line`` and ``field``."""

    exit_code = EXIT_DATA
    kind = "input error"

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = None if file is None else str(file)
        self.line = line
        self.field = field

    def location(self) -> str:
        """``file:line`` (or what of it is known)."""
        if self.file is None:
            return ""
        return self.file if self.line is None else f"{self.file}:{self.line}"

    def __str__(self) -> str:
        parts = [p for p in (self.location(), f"field '{self.field}'" if self.field else "") if p]
        where = ": ".join(parts)
        return f"{self.kind}: {where}: {self.message}" if where else f"{self.kind}: {self.message}"


class UsageError(KgrecInputError):
    """Options that contradict each other or the run they act on (exit 2)."""

    exit_code = EXIT_USAGE
    kind = "usage error"


class SchemaError(KgrecInputError):
    exit_code = EXIT_SCHEMA
    kind = "schema error"


class DataError(KgrecInputError):
    exit_code = EXIT_DATA
    kind = "data error"


class ChecksumError(KgrecInputError):
    exit_code = EXIT_CHECKSUM
    kind = "checksum mismatch"


class FetchError(KgrecInputError):
    exit_code = EXIT_FETCH
    kind = "fetch error"


class RunExistsError(KgrecInputError):
    exit_code = EXIT_EXISTS
    kind = "run directory exists"


class LockedError(KgrecInputError):
    exit_code = EXIT_LOCKED
    kind = "locked"


class StrictModeError(KgrecInputError):
    exit_code = EXIT_STRICT
    kind = "strict mode"


@dataclass(frozen=True)
class LoadWarning:
    """Rows that loading dropped, merged or marked missing, counted, with the first location.

    Loading never loses data silently: every such row is counted in one of these, the CLI
    prints them, and ``--strict`` turns them into errors.
    """

    file: str
    line: int | None
    field: str
    reason: str
    count: int
    action: str = "dropped"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"warning: {where}: field '{self.field}': {self.action} {self.count:,} row(s): {self.reason}"

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.reason,
                "count": self.count, "action": self.action}


def report_warnings(warnings: list[LoadWarning], *, strict: bool) -> None:
    """Print each load warning on stderr (one line each); with ``strict``, any warning is a
    :class:`StrictModeError` (exit 8) naming the first one. Used by ``kgrec data`` and
    ``kgrec train`` alike."""
    import sys

    for warning in warnings:
        print(f"kgrec: {warning}", file=sys.stderr)
    if strict and warnings:
        first = warnings[0]
        raise StrictModeError(f"{len(warnings)} warning(s); first: {first.action} {first.count:,} row(s): "
                              f"{first.reason}", file=first.file, line=first.line, field=first.field)

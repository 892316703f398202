"""The machinery of the bad-input suite: a workspace with line-exact editors, cases, runs.

A :class:`Workspace` is a fresh copy of ``tests/fixtures/tiny.yaml`` and ``tests/fixtures/tiny/``
in a temporary directory. Each :class:`Case` has a ``make`` function that corrupts the copy and
returns a :class:`Prepared`: the CLI arguments and what the message must name (file, ``:LINE``,
field, the number of rows dropped, other substrings). Line numbers are computed from the edit
that was made, never typed in by hand. The fixtures themselves are never written.
:func:`run_case` runs one case through ``python -m kgrec`` in a subprocess.

The cases are registered by ``bad_inputs_data.py``, ``bad_inputs_schema.py`` and
``bad_inputs_bounds.py``; import ``bad_inputs`` to get them all.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Callable, Union

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
FIXTURE_SCHEMA = FIXTURES / "tiny.yaml"
FIXTURE_DATA = FIXTURES / "tiny"

# Exit codes, as documented in kgrec/errors.py and the README (the contract under test).
EXIT_OK, EXIT_INTERNAL, EXIT_SCHEMA, EXIT_DATA, EXIT_CHECKSUM, EXIT_FETCH, EXIT_STRICT = 0, 1, 3, 4, 5, 6, 8
ERROR_CLASS = {EXIT_SCHEMA: "SchemaError", EXIT_DATA: "DataError", EXIT_CHECKSUM: "ChecksumError",
               EXIT_FETCH: "FetchError"}

# Environment variables the CLI reads; each run starts from a clean slate of them.
KGREC_ENV = ("KGREC_CACHE_DIR", "KGREC_OFFLINE", "KGREC_GRAPHS_DIR", "KGREC_TINY_DIR", "KGREC_ALLOW_OUTSIDE_PATHS",
             "XDG_CACHE_HOME")

# Progress that `kgrec data fetch` prints to stderr before a download (not an error line).
PROGRESS_PREFIX = "kgrec: fetching "

UNREACHABLE_URL = "http://127.0.0.1:9/nothing.zip"  # the discard port: connection refused at once
BAD_SHA256 = "deadbeef" * 8  # 64 hex digits, with letters so YAML keeps it a string

Expect = Union[str, "re.Pattern[str]"]


# --------------------------------------------------------------------------- workspace
class Workspace:
    """A writable copy of the tiny schema and data under ``root``, with line-exact editors.

    Every editor returns the (1-based) line number it wrote, so cases can expect real lines.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.schema = self.root / "tiny.yaml"
        self.data = self.root / "data"
        self.cache = self.root / "cache"
        shutil.copy(FIXTURE_SCHEMA, self.schema)
        shutil.copytree(FIXTURE_DATA, self.data)

    # ---- paths and commands
    def path(self, name: str) -> Path:
        return self.schema if name == self.schema.name else self.data / name

    def validate(self, *extra: str, data_dir: bool = True) -> list[str]:
        return ["data", "validate", str(self.schema), *(["--data-dir", str(self.data)] if data_dir else []), *extra]

    def info(self, *extra: str) -> list[str]:
        return ["data", "info", str(self.schema), "--data-dir", str(self.data), *extra]

    def fetch(self, *extra: str) -> list[str]:
        return ["data", "fetch", str(self.schema), *extra]

    # ---- byte-level line editing (files keep their exact bytes elsewhere)
    def lines(self, name: str) -> list[bytes]:
        return self.path(name).read_bytes().split(b"\n")

    def _write(self, name: str, lines: list[bytes]) -> None:
        self.path(name).write_bytes(b"\n".join(lines))

    def n_lines(self, name: str) -> int:
        data = self.path(name).read_bytes()
        return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)

    def set_line(self, name: str, line: int, text: str | bytes) -> int:
        """Replace line ``line`` of ``name`` by ``text``."""
        lines = self.lines(name)
        if not 1 <= line <= self.n_lines(name):
            raise ValueError(f"{name} has no line {line}")
        lines[line - 1] = text.encode() if isinstance(text, str) else text
        self._write(name, lines)
        return line

    def set_field(self, name: str, line: int, column: str, value: str | bytes) -> int:
        """Set one field of a tab-separated row, by the header's column name."""
        lines = self.lines(name)
        header = lines[0].decode().split("\t")
        fields = lines[line - 1].split(b"\t")
        fields[header.index(column)] = value.encode() if isinstance(value, str) else value
        return self.set_line(name, line, b"\t".join(fields))

    def append(self, name: str, *rows: str) -> int:
        """Append rows; returns the line number of the first one."""
        first = self.n_lines(name) + 1
        data = self.path(name).read_bytes()
        if data and not data.endswith(b"\n"):
            data += b"\n"
        self.path(name).write_bytes(data + "".join(f"{r}\n" for r in rows).encode())
        return first

    def find(self, name: str, text: str) -> int:
        """The line number of the only line of ``name`` that contains ``text``."""
        hits = [i + 1 for i, line in enumerate(self.lines(name)) if text.encode() in line]
        if len(hits) != 1:
            raise ValueError(f"{text!r} occurs on lines {hits} of {name}, expected exactly one")
        return hits[0]

    def replace(self, name: str, old: str, new: str) -> int:
        """Replace ``old`` by ``new`` on the only line that contains ``old``; returns that line."""
        line = self.find(name, old)
        self.set_line(name, line, self.lines(name)[line - 1].replace(old.encode(), new.encode()))
        return line

    def insert_line(self, name: str, line: int, text: str) -> int:
        """Insert ``text`` so that it becomes line ``line``; returns ``line``."""
        lines = self.lines(name)
        lines.insert(line - 1, text.encode())
        self._write(name, lines)
        return line

    def insert_after(self, name: str, after: str, text: str) -> int:
        """Insert a line after the only line containing ``after``; returns the new line's number."""
        return self.insert_line(name, self.find(name, after) + 1, text)

    def move_out(self, name: str) -> Path:
        """Move data file ``name`` out of the data directory (to ``elsewhere/``), leaving a
        relative symlink to it in its place; returns the new location."""
        target = self.root / "elsewhere" / name
        target.parent.mkdir(exist_ok=True)
        shutil.move(self.data / name, target)
        (self.data / name).symlink_to(Path("..") / "elsewhere" / name)
        return target


# --------------------------------------------------------------------------- cases
@dataclass
class Prepared:
    """What to run and what the message must say.

    ``file`` (a base name), ``line`` and ``field`` must appear as ``FILE:LINE`` and ``field 'FIELD'``;
    ``count`` as ``N row(s)``; every item of ``also`` as a substring (or regex match).
    """

    args: list[str]
    file: str | None = None
    line: int | None = None
    field: str | None = None
    count: int | None = None
    also: list[Expect] = dc_field(default_factory=list)
    env: dict[str, str] = dc_field(default_factory=dict)

    def expectations(self) -> list[Expect]:
        out: list[Expect] = []
        if self.file is not None:
            out.append(re.compile(rf"{re.escape(self.file)}:{self.line}\b") if self.line is not None
                       else re.compile(rf"{re.escape(self.file)}\b"))
        if self.field is not None:
            out.append(f"field '{self.field}'")
        if self.count is not None:
            out.append(f" {self.count:,} row(s)")
        return out + list(self.also)


@dataclass(frozen=True)
class Case:
    id: str
    group: str                      # which item of the bad-input checklist it covers
    title: str
    make: Callable[[Workspace], Prepared]
    exit_code: int
    warning: bool = False           # data still usable: exit 0 + a warning line; --strict -> exit 8
    offline: bool = False           # run with KGREC_OFFLINE=1
    max_seconds: float | None = None  # the whole run (python start included) must be this quick


CASES: list[Case] = []


def case(id: str, group: str, title: str, exit_code: int = EXIT_OK, **kw) -> Callable:
    def register(make: Callable[[Workspace], Prepared]) -> Callable[[Workspace], Prepared]:
        if any(c.id == id for c in CASES):
            raise ValueError(f"duplicate case id {id}")
        CASES.append(Case(id, group, title, make, exit_code, **kw))
        return make
    return register


# --------------------------------------------------------------------------- running
def get(case_id: str) -> Case:
    return next(c for c in CASES if c.id == case_id)


def cli_env(ws: Workspace, offline: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for one run: no inherited KGREC_* settings, a private cache, the repo importable."""
    env = {k: v for k, v in os.environ.items() if k not in KGREC_ENV}
    env["KGREC_CACHE_DIR"] = str(ws.cache)
    if offline:
        env["KGREC_OFFLINE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update(extra or {})
    return env


@dataclass
class Result:
    case: Case
    prepared: Prepared
    argv: list[str]          # after `kgrec`
    returncode: int
    stdout: str
    stderr: str
    root: Path
    seconds: float = 0.0     # wall time of the subprocess

    @property
    def stderr_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]

    def command(self) -> str:
        """The command line, with the temporary directory shown as $TMP."""
        return "kgrec " + shlex.join(self.argv).replace(str(self.root), "$TMP")

    def shown(self, text: str) -> str:
        return text.replace(str(self.root), "$TMP")


def run_case(c: Case, root: Path, *, before: tuple[str, ...] = (), after: tuple[str, ...] = (),
             timeout: float = 60, env: dict[str, str] | None = None) -> Result:
    """Build the case's corrupted copy under ``root`` and run ``python -m kgrec [before] ARGS [after]``
    (``env``: more environment variables, after the case's own)."""
    ws = Workspace(root)
    prepared = c.make(ws)
    argv = [*before, *prepared.args, *after]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kgrec", *argv], capture_output=True, text=True,
                          env=cli_env(ws, c.offline, {**prepared.env, **(env or {})}), cwd=ws.root, timeout=timeout,
                          check=False)
    return Result(c, prepared, argv, proc.returncode, proc.stdout, proc.stderr, ws.root,
                  time.perf_counter() - start)


def matches(text: str, expect: Expect) -> bool:
    return expect.search(text) is not None if isinstance(expect, re.Pattern) else expect in text

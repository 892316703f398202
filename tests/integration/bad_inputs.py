"""Bad inputs for the ``kgrec`` CLI: one corrupted copy of the tiny data set (or schema) per case.

Not a test module (no ``test_`` prefix): ``tests/integration/test_bad_inputs.py`` runs the
cases under pytest and ``benchmarks/bad_input_table.py`` prints them as a Markdown table.

Each :class:`Case` has a ``make`` function that receives a :class:`Workspace` (a fresh copy
of ``tests/fixtures/tiny.yaml`` and ``tests/fixtures/tiny/`` in a temporary directory),
corrupts the copy and returns a :class:`Prepared`: the CLI arguments and what the message
must name (file, ``:LINE``, field, the number of rows dropped, other substrings). Line
numbers are computed from the edit that was made, never typed in by hand. The fixtures
themselves are never written.

A case is either an *error* (its exit code is non-zero and stderr is one ``kgrec: ...`` line)
or a *warning* (``warning=True``: the data stays usable, exit 0, a ``kgrec: warning:`` line
with the count of rows dropped; ``--strict`` turns it into exit 8).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
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
KGREC_ENV = ("KGREC_CACHE_DIR", "KGREC_OFFLINE", "KGREC_GRAPHS_DIR", "KGREC_TINY_DIR", "XDG_CACHE_HOME")

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


CASES: list[Case] = []


def case(id: str, group: str, title: str, exit_code: int = EXIT_OK, **kw) -> Callable:
    def register(make: Callable[[Workspace], Prepared]) -> Callable[[Workspace], Prepared]:
        if any(c.id == id for c in CASES):
            raise ValueError(f"duplicate case id {id}")
        CASES.append(Case(id, group, title, make, exit_code, **kw))
        return make
    return register


# 1. missing data file ----------------------------------------------------------
@case("missing-data-file", "1 missing file", "friends.tsv deleted", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.path("friends.tsv").unlink()
    return Prepared(ws.validate(), file="friends.tsv", field="files.friends.tsv", also=["file not found"])


@case("missing-data-dir", "1 missing file", "--data-dir names no directory", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    shutil.rmtree(ws.data)
    return Prepared(ws.validate(), file="data", field="data_dir", also=["does not exist (--data-dir)"])


@case("missing-schema-file", "1 missing file", "the schema path does not exist", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    ws.schema.unlink()
    return Prepared(ws.validate(), file="tiny.yaml", also=["schema file not found"])


# 2. wrong header ---------------------------------------------------------------
@case("renamed-node-column", "2 wrong header", "items.tsv header: genres -> genre", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("items.tsv", "\tgenres\t", "\tgenre\t")
    return Prepared(ws.validate(), file="items.tsv", line=line, field="nodes.item.features.genres",
                    also=["column 'genres' not in header"])


@case("renamed-edge-column", "2 wrong header", "friends.tsv header: friend_id -> friend (data info)", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("friends.tsv", "friend_id", "friend")
    return Prepared(ws.info(), file="friends.tsv", line=line, field="edges.friend.columns.dst",
                    also=["column 'friend_id' not in header"])


@case("header-vs-columns", "2 wrong header", "ratings.tsv header differs from the declared columns list",
      EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("ratings.tsv", "\trating\t", "\tscore\t")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="columns",
                    also=["does not match the schema's columns", "'score'"])


# 3. bad encoding ---------------------------------------------------------------
@case("non-utf8-default", "3 encoding", "0xFF byte in users.tsv (utf-8 by default)", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.set_field("users.tsv", 4, "bio", b"film \xff buff")
    return Prepared(ws.validate(), file="users.tsv", line=line, field="encoding", also=["not valid utf-8"])


@case("non-utf8-declared", "3 encoding", "Latin-1 'Caf\\xe9' in items.tsv declared encoding: utf-8", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.replace("tiny.yaml", "items.tsv: {format: tsv}", "items.tsv: {format: tsv, encoding: utf-8}")
    line = ws.n_lines("items.tsv")  # the last row
    ws.set_field("items.tsv", line, "title", "Café Society".encode("latin-1"))
    return Prepared(ws.validate(), file="items.tsv", line=line, field="encoding",
                    also=["not valid utf-8", r"b'\xe9'"])


# 4. dangling ids ---------------------------------------------------------------
@case("dangling-item", "4 dangling id", "two ratings of item i9 (not in items.tsv)", warning=True)
def _(ws: Workspace) -> Prepared:
    first = ws.set_field("ratings.tsv", 5, "item_id", "i9")
    ws.set_field("ratings.tsv", 12, "item_id", "i9")
    return Prepared(ws.validate(), file="ratings.tsv", line=first, field="item_id", count=2,
                    also=["dropped", "dangling"])


@case("dangling-entity", "4 dangling id", "KG edge to unknown entity e:parker (data info)", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.append("kg.tsv", "e:davis\tplayed_with\te:parker")
    return Prepared(ws.info(), file="kg.tsv", line=line, field="tail", count=1, also=["dropped", "dangling"])


# 5. duplicate edges ------------------------------------------------------------
@case("duplicate-edges", "5 duplicates", "two repeated friend pairs", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.append("friends.tsv", "u1\tu2", "u3\tu5")
    return Prepared(ws.validate(), file="friends.tsv", line=line, field="edges.friend", count=2,
                    also=["dropped", "duplicate (user_id, friend_id) pair (first row kept)"])


@case("duplicate-rating", "5 duplicates", "u1 rates i1 twice", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.append("ratings.tsv", "u1\ti1\t3\t300")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="edges.rated", count=1,
                    also=["duplicate (user_id, item_id) pair (first row kept)"])


@case("duplicate-edges-error", "5 duplicates", "two repeated friend pairs with duplicates: error", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.insert_after("tiny.yaml", "columns: {src: user_id, dst: friend_id}", "    duplicates: error")
    line = ws.append("friends.tsv", "u1\tu2", "u3\tu5")
    return Prepared(ws.validate(), file="friends.tsv", line=line, field="edges.friend",
                    also=["duplicate (user_id, friend_id) pair", "2 duplicates"])


# 6. bad weights ----------------------------------------------------------------
@case("nan-rating", "6 bad rating", "ratings NaN and nan", warning=True)
def _(ws: Workspace) -> Prepared:
    first = ws.set_field("ratings.tsv", 3, "rating", "NaN")
    ws.set_field("ratings.tsv", 10, "rating", "nan")
    return Prepared(ws.validate(), file="ratings.tsv", line=first, field="rating", count=2,
                    also=["dropped", "missing or NaN"])


@case("rating-out-of-range", "6 bad rating", "ratings 7, 0 and -1 with weight_range [1, 5]", warning=True)
def _(ws: Workspace) -> Prepared:
    first = ws.set_field("ratings.tsv", 6, "rating", "7")
    ws.set_field("ratings.tsv", 9, "rating", "0")
    ws.set_field("ratings.tsv", 14, "rating", "-1")
    return Prepared(ws.validate(), file="ratings.tsv", line=first, field="rating", count=3,
                    also=["dropped", "outside weight_range [1, 5]"])


@case("rating-garbage", "6 bad rating", "ratings 'abc' and '4.0x'", warning=True)
def _(ws: Workspace) -> Prepared:
    first = ws.set_field("ratings.tsv", 8, "rating", "abc")
    ws.set_field("ratings.tsv", 11, "rating", "4.0x")
    return Prepared(ws.validate(), file="ratings.tsv", line=first, field="rating", count=2,
                    also=["dropped", "not a number (first: 'abc')"])


@case("timestamp-garbage", "6 bad rating", "timestamp 'yesterday'", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.set_field("ratings.tsv", 15, "ts", "yesterday")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="ts", count=1,
                    also=["dropped", "not a number (first: 'yesterday')"])


@case("age-out-of-range", "6 bad rating", "user age 151 (feature max 120)", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.set_field("users.tsv", 4, "age", "151")
    return Prepared(ws.validate(), file="users.tsv", line=line, field="age", count=1,
                    also=["set to missing", "outside [0.0, 120.0]"])


# 7. empty files ----------------------------------------------------------------
@case("empty-file", "7 empty file", "users.tsv is 0 bytes", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.path("users.tsv").write_bytes(b"")
    return Prepared(ws.validate(), file="users.tsv", line=1, field="users.tsv", also=["file is empty"])


@case("blank-lines-only", "7 empty file", "friends.tsv holds only newlines", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.path("friends.tsv").write_bytes(b"\n\n\n")
    return Prepared(ws.validate(), file="friends.tsv", line=1, field="friends.tsv", also=["file is empty"])


@case("header-only", "7 empty file", "ratings.tsv has its header and no rows", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.path("ratings.tsv").write_bytes(ws.lines("ratings.tsv")[0] + b"\n")
    # the first row would be on line 2, just past the header
    return Prepared(ws.validate(), file="ratings.tsv", line=ws.n_lines("ratings.tsv") + 1, field="ratings.tsv",
                    also=["header but no rows"])


# 8. schema errors --------------------------------------------------------------
def _edge_line(ws: Workspace, edge: str, key: str) -> int:
    """The line of ``key`` inside the block of edge ``edge`` in the copied schema."""
    lines = [ln.decode() for ln in ws.lines("tiny.yaml")]
    start = lines.index(f"  {edge}:")
    for i in range(start + 1, len(lines)):
        if lines[i].startswith(f"    {key}:"):
            return i + 1
        if not lines[i].startswith("    "):
            break
    raise ValueError(f"no {key} in edge {edge}")


@case("unknown-node-type", "8 schema", "edge rated has src: usr", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = _edge_line(ws, "rated", "src")
    ws.set_line("tiny.yaml", line, "    src: usr")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.rated.src",
                    also=["unknown node type 'usr'", "did you mean 'user'"])


@case("yaml-key-typo-edge", "8 schema", "edge rated has colums: instead of columns:", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = _edge_line(ws, "rated", "columns")
    ws.replace("tiny.yaml", "    columns: {src: user_id, dst: item_id", "    colums: {src: user_id, dst: item_id")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.rated.colums",
                    also=["unknown key 'colums'", "did you mean 'columns'"])


@case("yaml-key-typo-file", "8 schema", "files.ratings.tsv has colums: (--schema-only)", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "ratings.tsv: {format: tsv, columns:", "ratings.tsv: {format: tsv, colums:")
    return Prepared(ws.validate("--schema-only", data_dir=False), file="tiny.yaml", line=line,
                    field="files.ratings.tsv.colums", also=["did you mean 'columns'"])


@case("unlisted-relation", "8 schema", "kg edge lists relations: [played_with, influenced]; 'genre' rows",
      warning=True)
def _(ws: Workspace) -> Prepared:
    ws.insert_after("tiny.yaml", "columns: {src: head, relation: relation, dst: tail}",
                    "    relations: [played_with, influenced]")
    rows = [ln.split(b"\t")[1] for ln in ws.lines("kg.tsv")[1:] if ln]
    first = 2 + rows.index(b"genre")
    return Prepared(ws.validate(), file="kg.tsv", line=first, field="relation", count=rows.count(b"genre"),
                    also=["dropped", "relation type not listed"])


@case("yaml-syntax", "8 schema", "description: Five users: six items (a second ': ')", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "description: Five users,", "description: Five users:")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, also=["invalid YAML", "mapping values"])


@case("yaml-tab-indent", "8 schema", "a tab indents the gender feature", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "      gender: {type: categorical}", "\tgender: {type: categorical}")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, also=["invalid YAML", "'\\t'"])


@case("yaml-duplicate-key", "8 schema", "edge rated has src: twice", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.insert_line("tiny.yaml", _edge_line(ws, "rated", "src") + 1, "    src: item")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="src", also=["duplicate key 'src'"])


@case("yaml-unclosed-bracket", "8 schema", "weight_range: [1, 5 (unclosed; the error surfaces a line later)",
      EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "weight_range: [1, 5]", "weight_range: [1, 5")
    return Prepared(ws.validate(), file="tiny.yaml", also=["invalid YAML",
                                                           re.compile(rf"tiny\.yaml:{line}\b|line {line}\b")])


@case("yaml-unclosed-quote", "8 schema", "env: \"KGREC_TINY_DIR (unclosed quote; surfaces 18 lines later)",
      EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "env: KGREC_TINY_DIR", 'env: "KGREC_TINY_DIR')
    return Prepared(ws.validate(), file="tiny.yaml", also=["invalid YAML",
                                                           re.compile(rf"tiny\.yaml:{line}\b|line {line}\b")])


@case("unknown-feature-type-typo", "8 schema", "gender: {type: categorial}", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "gender: {type: categorical}", "gender: {type: categorial}")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="nodes.user.features.gender.type",
                    also=["unknown value 'categorial'", "did you mean 'categorical'"])


@case("unknown-feature-type", "8 schema", "gender: {type: image}", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "gender: {type: categorical}", "gender: {type: image}")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="nodes.user.features.gender.type",
                    also=["unknown value 'image'", "expected one of: categorical, multicategorical"])


@case("unknown-role", "8 schema", "role: interation", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "role: interaction", "role: interation")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.rated.role",
                    also=["did you mean 'interaction'"])


@case("node-type-as-list", "8 schema", "src: [user] (a list where a node type name belongs)", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = _edge_line(ws, "rated", "src")
    ws.set_line("tiny.yaml", line, "    src: [user]")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.rated.src")


@case("edge-file-as-list", "8 schema", "file: [ratings.tsv] in edge rated", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = _edge_line(ws, "rated", "file")
    ws.set_line("tiny.yaml", line, "    file: [ratings.tsv]")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.rated.file")


@case("weight-range-not-numeric", "8 schema", "weight_range: [1, high]", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "weight_range: [1, 5]", "weight_range: [1, high]")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.rated.weight_range")


@case("bins-not-numeric", "8 schema", "age bins: [30, old]", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "bins: [30, 45]", "bins: [30, old]")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="nodes.user.features.age.bins")


# 9. checksum -------------------------------------------------------------------
@case("checksum-mismatch", "9 checksum", "wrong sha256 for users.tsv in the schema", EXIT_CHECKSUM)
def _(ws: Workspace) -> Prepared:
    ws.replace("tiny.yaml", "users.tsv: {format: tsv}", f"users.tsv: {{format: tsv, sha256: {BAD_SHA256}}}")
    return Prepared(ws.validate(), file="users.tsv", field="files.users.tsv.sha256",
                    also=[f"expects {BAD_SHA256}", "tiny.yaml"])


@case("checksum-mismatch-fetch", "9 checksum", "wrong sha256 for kg.tsv, data fetch --data-dir", EXIT_CHECKSUM)
def _(ws: Workspace) -> Prepared:
    ws.replace("tiny.yaml", "kg.tsv: {format: tsv}", f"kg.tsv: {{format: tsv, sha256: {BAD_SHA256}}}")
    return Prepared(ws.fetch("--data-dir", str(ws.data)), file="kg.tsv", field="files.kg.tsv.sha256",
                    also=[f"expects {BAD_SHA256}"])


# 10. no network, no cache ------------------------------------------------------
def _url_source(ws: Workspace, keep_env: bool = False) -> None:
    if keep_env:
        ws.insert_after("tiny.yaml", "env: KGREC_TINY_DIR", f"  url: {{href: {UNREACHABLE_URL}}}")
    else:
        ws.replace("tiny.yaml", "env: KGREC_TINY_DIR", f"url: {{href: {UNREACHABLE_URL}}}")


@case("fetch-no-network", "10 fetch", "source url unreachable, empty cache", EXIT_FETCH)
def _(ws: Workspace) -> Prepared:
    _url_source(ws)
    return Prepared(ws.fetch(), file="tiny.yaml", field="source",
                    also=[f"could not download {UNREACHABLE_URL}", "no cached copy of 'tiny'", "--data-dir"])


@case("fetch-offline", "10 fetch", "KGREC_OFFLINE=1, empty cache", EXIT_FETCH, offline=True)
def _(ws: Workspace) -> Prepared:
    _url_source(ws)
    return Prepared(ws.fetch(), file="tiny.yaml", field="source",
                    also=["no cached copy of 'tiny'", "KGREC_OFFLINE", "--data-dir"])


@case("fetch-offline-env-hint", "10 fetch", "KGREC_OFFLINE=1, schema has env KGREC_TINY_DIR (unset)",
      EXIT_FETCH, offline=True)
def _(ws: Workspace) -> Prepared:
    _url_source(ws, keep_env=True)
    return Prepared(ws.fetch(), file="tiny.yaml", field="source",
                    also=["KGREC_OFFLINE", "set KGREC_TINY_DIR or pass --data-dir"])


@case("validate-offline", "10 fetch", "data validate without --data-dir, KGREC_OFFLINE=1", EXIT_FETCH,
      offline=True)
def _(ws: Workspace) -> Prepared:
    _url_source(ws)
    return Prepared(ws.validate(data_dir=False), file="tiny.yaml", field="source", also=["KGREC_OFFLINE"])


@case("env-dir-missing", "10 fetch", "KGREC_TINY_DIR points at a missing directory", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    missing = ws.root / "nowhere"
    return Prepared(ws.fetch(), file="nowhere", field="data_dir", also=["does not exist ($KGREC_TINY_DIR)"],
                    env={"KGREC_TINY_DIR": str(missing)})


# 11. wrong field count ---------------------------------------------------------
@case("extra-field", "11 field count", "ratings.tsv row with 5 fields", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.set_line("ratings.tsv", 7, ws.lines("ratings.tsv")[6] + b"\textra")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="row", also=["expected 4 fields, saw 5"])


@case("extra-field-after-blank", "11 field count", "a blank line, then a row with 5 fields", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.set_line("ratings.tsv", 4, "")
    line = ws.set_line("ratings.tsv", 9, ws.lines("ratings.tsv")[8] + b"\textra")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="row", also=["expected 4 fields, saw 5"])


@case("extra-field-first-row", "11 field count", "friends.tsv first row with 3 fields", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.set_line("friends.tsv", 2, ws.lines("friends.tsv")[1] + b"\tu3")
    return Prepared(ws.validate(), file="friends.tsv", line=line, field="row", also=["expected 2 fields, saw 3"])


@case("missing-field-edge", "11 field count", "ratings.tsv row with 3 fields (no ts)", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.set_line("ratings.tsv", 9, b"\t".join(ws.lines("ratings.tsv")[8].split(b"\t")[:3]))
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="ts", also=["expected 4 fields"])


@case("missing-field-node", "11 field count", "users.tsv row with 3 fields (no bio)", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.set_line("users.tsv", 5, b"\t".join(ws.lines("users.tsv")[4].split(b"\t")[:3]))
    return Prepared(ws.validate(), file="users.tsv", line=line, field="bio", also=["expected 4 fields"])


# 12. unknown data set name -----------------------------------------------------
@case("unknown-dataset-validate", "12 unknown name", "data validate movielens-100kk", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    return Prepared(["data", "validate", "movielens-100kk"], field="name",
                    also=["unknown data set 'movielens-100kk'", "did you mean 'movielens-100k'"])


@case("unknown-dataset-info", "12 unknown name", "data info lastfm2k", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    return Prepared(["data", "info", "lastfm2k"], field="name", also=["did you mean 'lastfm-2k'"])


@case("unknown-dataset-fetch", "12 unknown name", "data fetch ciao-dvd", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    return Prepared(["data", "fetch", "ciao-dvd"], field="name", also=["did you mean 'ciaodvd'"])


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

    @property
    def stderr_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]

    def command(self) -> str:
        """The command line, with the temporary directory shown as $TMP."""
        return "kgrec " + shlex.join(self.argv).replace(str(self.root), "$TMP")

    def shown(self, text: str) -> str:
        return text.replace(str(self.root), "$TMP")


def run_case(c: Case, root: Path, *, before: tuple[str, ...] = (), after: tuple[str, ...] = (),
             timeout: float = 60) -> Result:
    """Build the case's corrupted copy under ``root`` and run ``python -m kgrec [before] ARGS [after]``."""
    ws = Workspace(root)
    prepared = c.make(ws)
    argv = [*before, *prepared.args, *after]
    proc = subprocess.run([sys.executable, "-m", "kgrec", *argv], capture_output=True, text=True,
                          env=cli_env(ws, c.offline, prepared.env), cwd=ws.root, timeout=timeout, check=False)
    return Result(c, prepared, argv, proc.returncode, proc.stdout, proc.stderr, ws.root)


def matches(text: str, expect: Expect) -> bool:
    return expect.search(text) is not None if isinstance(expect, re.Pattern) else expect in text

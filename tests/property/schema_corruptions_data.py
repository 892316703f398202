"""Corruptions of a world's data files: each must give a DataError (exit 4) or a ChecksumError
(exit 5) naming the data file, the field and (where there is one) the line; ``loose`` ones may
give any input error or none, but never a traceback."""

from __future__ import annotations

from hypothesis import strategies as st

from kgrec.errors import ChecksumError, DataError
from schema_outcomes import Outcome, corruption, edge_of, pick, single, tables_where, warning
from schema_world import TableFile, World


# ---- data errors and checksum
@corruption("data: renamed header column", lambda w: bool(tables_where(w, lambda t: t.header)))
def _(w: World, data) -> Outcome:
    t = w.tables[pick(data, tables_where(w, lambda t: t.header), "file")]
    col = pick(data, {c for c, _ in t.uses}, "column")
    t.columns[t.columns.index(col)] = col + "Q"
    if t.declare:
        return Outcome(DataError, t.name, "columns", 1, "does not match the schema's columns")
    first_use = next(f for c, f in t.uses if c == col)
    return Outcome(DataError, t.name, first_use, 1, f"column '{col}' not in header")


@corruption("data: declared columns renamed (no header)", lambda w: bool(tables_where(w, lambda t: not t.header)))
def _(w: World, data) -> Outcome:
    t = w.tables[pick(data, tables_where(w, lambda t: not t.header), "file")]
    col = pick(data, {c for c, _ in t.uses}, "column")
    declared = w.schema["files"][t.name]["columns"]
    declared[declared.index(col)] = col + "Q"
    first_use = next(f for c, f in t.uses if c == col)
    return Outcome(DataError, t.name, first_use, None, f"column '{col}' not in header")


def _truncatable(t: TableFile) -> list[int]:
    return [r for r, row in enumerate(t.rows) if len(t.columns) > 1 and t.sep.join(row[:-1]).strip()]


@corruption("data: a row lacks its last field", lambda w: bool(tables_where(w, _truncatable)))
def _(w: World, data) -> Outcome:
    t = w.tables[pick(data, tables_where(w, _truncatable), "file")]
    r = pick(data, _truncatable(t), "row")
    t.rows[r] = t.rows[r][:-1]
    n = len(t.columns)
    return Outcome(DataError, t.name, t.columns[-1], t.line_of(r), f"expected {n} fields, saw {n - 1}")


@corruption("data: a row has an extra field")
def _(w: World, data) -> Outcome:
    t = w.tables[pick(data, w.tables, "file")]
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row")
    t.rows[r] = [*t.rows[r], "extra"]
    n = len(t.columns)
    return Outcome(DataError, t.name, "row", t.line_of(r), f"expected {n} fields, saw {n + 1}")


@corruption("data: non-UTF-8 byte", lambda w: bool(tables_where(w, lambda t: t.encoding == "utf-8")))
def _(w: World, data) -> Outcome:
    t = w.tables[pick(data, tables_where(w, lambda t: t.encoding == "utf-8"), "file")]
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row")
    j = data.draw(st.integers(0, len(t.columns) - 1), label="field")
    t.rows[r][j] += "\udcff"  # written as the byte 0xff (surrogateescape)
    return Outcome(DataError, t.name, "encoding", t.line_of(r), "not valid utf-8")


@corruption("data: empty file")
def _(w: World, data) -> Outcome:
    name = pick(data, w.tables, "file")
    w.raw[name] = data.draw(st.sampled_from([b"", b"\n", b"\n\n\n", b" \r\n\t"]), label="bytes")
    return Outcome(DataError, name, name, 1, "file is empty")


@corruption("data: header but no rows", lambda w: bool(tables_where(w, lambda t: t.header)))
def _(w: World, data) -> Outcome:
    t = w.tables[pick(data, tables_where(w, lambda t: t.header), "file")]
    t.rows = []
    return Outcome(DataError, t.name, t.name, 2, "file has a header but no rows")


@corruption("data: missing file")
def _(w: World, data) -> Outcome:
    name = pick(data, w.tables, "file")
    w.missing.add(name)
    return Outcome(DataError, name, f"files.{name}", None, "file not found")


@corruption("checksum: wrong sha256")
def _(w: World, data) -> Outcome:
    name = pick(data, w.tables, "file")
    w.schema["files"][name]["sha256"] = "deadbeef" * 8
    return Outcome(ChecksumError, name, f"files.{name}.sha256", None, f"expects {'deadbeef' * 8}")


@corruption("data: a directory or a symlink loop where a data file belongs")
def _(w: World, data) -> Outcome:
    name = pick(data, w.tables, "file")
    w.special[name] = kind = data.draw(st.sampled_from(["directory", "symlink loop"]), label="kind")
    return Outcome(DataError, name, f"files.{name}", None, "is a directory" if kind == "directory" else "symlink loop")


# ---- loose: any outcome but a traceback
SAFE_CODECS = ["ascii", "utf-16", "utf-32", "cp1252", "cp037", "koi8-r", "shift_jis", "utf-7", "big5",
               "unicode_escape", "raw_unicode_escape", "utf-8-sig", "mac-roman"]


@corruption("loose: another encoding declared")
def _(w: World, data) -> Outcome:
    name = pick(data, w.tables, "file")
    w.schema["files"][name]["encoding"] = data.draw(st.sampled_from(SAFE_CODECS), label="codec")
    return Outcome(loose=True)


@corruption("loose: one byte of a data file replaced")
def _(w: World, data) -> Outcome:
    name = pick(data, w.tables, "file")
    raw = bytearray(w.tables[name].to_bytes())
    i = data.draw(st.integers(0, len(raw) - 1), label="offset")
    raw[i] = data.draw(st.sampled_from(list(b"\t,\n\r :|x0.-\xff\x00")), label="byte")
    w.raw[name] = bytes(raw)
    return Outcome(loose=True)


# ---- fixed bugs, kept as regressions
def _weighted(w: World) -> list[str]:
    return [name for name in single(w, "edges.") if "weight" in edge_of(w, name)[1]["columns"]]


@corruption("warning: duplicate edge row merged, float weights", lambda w: bool(_weighted(w)), bug=True)
def _(w: World, data) -> Outcome:
    name = pick(data, _weighted(w), "file")
    e, spec = edge_of(w, name)
    spec["duplicates"] = policy = data.draw(st.sampled_from(["sum", "count", "max"]), label="policy")
    spec.pop("weight_range", None)
    t = w.tables[name]
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row copied")
    t.rows[r][t.columns.index(spec["columns"]["weight"])] = "2.5"
    t.rows.append(list(t.rows[r]))
    return warning(t, t.line_of(len(t.rows) - 1), f"edges.{e}", f"merged by {policy}", "merged")


@corruption("data: a codec that raises UnicodeError (punycode)")
def _(w: World, data) -> Outcome:
    name = pick(data, w.tables, "file")
    w.schema["files"][name]["encoding"] = "punycode"
    w.raw[name] = b"a\tb\n"  # ASCII without '-': punycode raises UnicodeError, not UnicodeDecodeError
    return Outcome(DataError, name, "encoding", None, "cannot decode as punycode")

"""Corruptions that leave a world's data usable: each must give exactly one ``LoadWarning``
naming the data file, the first line, the field, the count of rows and the action (dropped,
merged, set to missing, not split), or for some a DataError."""

from __future__ import annotations

import re

from hypothesis import strategies as st

from kgrec.errors import DataError
from schema_outcomes import Outcome, append_copy, corruption, edge_of, pick, single, warning
from schema_world import World, node_spec


# ---- rows dropped, merged or set to missing
def _dangling_slots(w: World) -> list[tuple[str, str]]:
    return [(name, end) for name in single(w, "edges.") for end in ("src", "dst")
            if "file" in node_spec(w, edge_of(w, name)[1][end])]


@corruption("warning: dangling id", lambda w: bool(_dangling_slots(w)))
def _(w: World, data) -> Outcome:
    name, end = pick(data, _dangling_slots(w), "edge end")
    col = edge_of(w, name)[1]["columns"][end]
    t = w.tables[name]
    return warning(t, append_copy(t, data, {col: "no such id"}), col, "(dangling)")


def _merge_crashes(w: World, name: str) -> bool:
    """A merging policy over a weight column that parses as float: fixed; test_merge_float_weights covers it."""
    spec = edge_of(w, name)[1]
    return spec.get("duplicates") in ("sum", "count", "max") and "weight" in spec["columns"] and any(
        not re.fullmatch(r"-?[0-9]+", v) for v in w.tables[name].column(spec["columns"]["weight"]))


def _dup_edge_files(w: World) -> list[str]:
    return [name for name in single(w, "edges.") if not _merge_crashes(w, name)]


@corruption("warning or error: duplicate edge row", lambda w: bool(_dup_edge_files(w)))
def _(w: World, data) -> Outcome:
    name = pick(data, _dup_edge_files(w), "file")
    e, spec = edge_of(w, name)
    t = w.tables[name]
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row copied")
    t.rows.append(list(t.rows[r]))
    appended, policy = t.line_of(len(t.rows) - 1), spec.get("duplicates", "first")
    where = f"duplicate ({spec['columns']['src']}, {spec['columns']['dst']}) pair"
    if policy == "error":
        return Outcome(DataError, name, f"edges.{e}", appended, f"{where} (1 duplicates")
    if policy in ("sum", "count", "max"):
        return warning(t, appended, f"edges.{e}", f"{where} merged by {policy}", "merged")
    return warning(t, t.line_of(r) if policy == "last" else appended, f"edges.{e}", f"({policy} row kept)")


def _node_files(w: World) -> list[tuple[str, str]]:
    files = single(w, "nodes.")
    return [(n, node_spec(w, n)["file"]) for n in w.schema["nodes"] if node_spec(w, n).get("file") in files]


@corruption("warning: duplicate node id", lambda w: bool(_node_files(w)))
def _(w: World, data) -> Outcome:
    n, name = pick(data, _node_files(w), "node")
    t = w.tables[name]
    return warning(t, append_copy(t, data), node_spec(w, n)["id"], f"duplicate {n} id (first row kept)")


@corruption("warning: empty node id", lambda w: any(len(w.tables[f].columns) > 1 for _, f in _node_files(w)))
def _(w: World, data) -> Outcome:
    n, name = pick(data, [(n, f) for n, f in _node_files(w) if len(w.tables[f].columns) > 1], "node")
    t, id_col = w.tables[name], node_spec(w, n)["id"]
    line = append_copy(t, data, {id_col: ""})
    if not t.sep.join(t.rows[-1]).strip():  # every other field is blank too: a blank line
        return warning(t, line, "row", "blank line")
    return warning(t, line, id_col, "empty node id")


@corruption("warning: empty edge id", lambda w: bool(single(w, "edges.")))
def _(w: World, data) -> Outcome:
    name = pick(data, single(w, "edges."), "file")
    cols = edge_of(w, name)[1]["columns"]
    t = w.tables[name]
    end = data.draw(st.sampled_from(["src", "dst"]), label="end")
    return warning(t, append_copy(t, data, {cols[end]: ""}), f"{cols['src']}/{cols['dst']}", "empty id")


def _numeric_edge_slots(w: World) -> list[tuple[str, str]]:
    return [(name, key) for name in single(w, "edges.") for key in ("weight", "timestamp")
            if key in edge_of(w, name)[1]["columns"]]


@corruption("warning: bad edge weight or timestamp", lambda w: bool(_numeric_edge_slots(w)))
def _(w: World, data) -> Outcome:
    name, key = pick(data, _numeric_edge_slots(w), "column")
    spec = edge_of(w, name)[1]
    t, col = w.tables[name], spec["columns"][key]
    kinds = ["nan", "empty", "garbage"] + (["range"] if key == "weight" and "weight_range" in spec else [])
    kind = data.draw(st.sampled_from(kinds), label="kind")
    value = str(spec["weight_range"][1] + 1) if kind == "range" else \
        {"nan": "NaN", "empty": "", "garbage": "4.0x"}[kind]
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row")
    t.rows[r][t.columns.index(col)] = value
    reason = {"nan": "missing or NaN", "empty": "missing or NaN", "garbage": "not a number (first: '4.0x')",
              "range": "outside weight_range"}[kind]
    return warning(t, t.line_of(r), col, reason)


def _feature_slots(w: World) -> list[tuple[str, str, str]]:
    return [(n, f, fs["type"]) for n in w.schema["nodes"]
            for f, fs in node_spec(w, n).get("features", {}).items() if fs["type"] != "text"]


@corruption("warning: missing, NaN or out-of-range feature", lambda w: bool(_feature_slots(w)))
def _(w: World, data) -> Outcome:
    n, f, ftype = pick(data, _feature_slots(w), "feature")
    fs = node_spec(w, n)["features"][f]
    t = w.tables[node_spec(w, n)["file"]]
    if ftype == "numeric":
        kinds = ["nan", "empty", "garbage"] + (["range"] if "max" in fs else [])
        kind = data.draw(st.sampled_from(kinds), label="kind")
        value = str(fs["max"] + 1) if kind == "range" else {"nan": "NaN", "empty": "", "garbage": "abc"}[kind]
        reason = {"nan": "missing or NaN", "empty": "missing or NaN", "garbage": "not a number (first: 'abc')",
                  "range": "outside ["}[kind]
    else:
        value, reason = data.draw(st.sampled_from(["", "  "]), label="value"), "empty value"
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row")
    t.rows[r][t.columns.index(f)] = value
    return warning(t, t.line_of(r), f, reason, "set to missing")


def _families(w: World) -> list[str]:
    return [name for name in single(w, "edges.") if "relation" in edge_of(w, name)[1]["columns"]]


@corruption("warning: relation value not in the allow-list", lambda w: bool(_families(w)))
def _(w: World, data) -> Outcome:
    name = pick(data, _families(w), "file")
    spec = edge_of(w, name)[1]
    t, col = w.tables[name], spec["columns"]["relation"]
    spec.setdefault("relations", sorted(set(t.column(col))))
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row")
    t.rows[r][t.columns.index(col)] = "zz unknown"
    return warning(t, t.line_of(r), col, "relation type not listed in the schema's 'relations'")


@corruption("warning: blank line")
def _(w: World, data) -> Outcome:
    t = w.tables[pick(data, w.tables, "file")]
    p = data.draw(st.integers(0, len(t.rows)), label="position")
    raw = data.draw(st.sampled_from(["", " ", " \t "]), label="blank")
    if p == len(t.rows) and not t.final_newline:
        raw = " "  # an empty last line without a newline is no line at all
    t.rows.insert(p, raw)
    return warning(t, t.line_of(p), "row", "blank line")


# ---- values that are never changed silently
@corruption("warning: edge weight or timestamp not finite or negative", lambda w: bool(_numeric_edge_slots(w)))
def _(w: World, data) -> Outcome:
    name, key = pick(data, _numeric_edge_slots(w), "column")
    spec = edge_of(w, name)[1]
    t, col = w.tables[name], spec["columns"][key]
    kinds = [("inf", "not finite"), ("-inf", "not finite"), ("1e400", "not finite"), ("-1e999", "not finite"),
             ("Infinity", "not finite")]
    if key == "weight":
        kinds.append(("1e39", "beyond the float32 range"))
        if "weight_range" not in spec:
            kinds.append(("-3", "negative weight"))
    else:
        kinds.append(("-5", "negative timestamp"))
    value, reason = data.draw(st.sampled_from(kinds), label="value")
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row")
    t.rows[r][t.columns.index(col)] = value
    return warning(t, t.line_of(r), col, f"not finite (first: '{value}')" if reason == "not finite" else reason)


def _numeric_features(w: World) -> list[tuple[str, str]]:
    return [(n, f) for n, f, ftype in _feature_slots(w) if ftype == "numeric"]


@corruption("warning: numeric feature not finite", lambda w: bool(_numeric_features(w)))
def _(w: World, data) -> Outcome:
    n, f = pick(data, _numeric_features(w), "feature")
    t = w.tables[node_spec(w, n)["file"]]
    value, reason = data.draw(st.sampled_from([("inf", "not finite"), ("-1e400", "not finite"),
                                               ("4e38", "beyond the float32 range"),
                                               ("-1e39", "beyond the float32 range")]), label="value")
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row")
    t.rows[r][t.columns.index(f)] = value
    return warning(t, t.line_of(r), f, reason, "set to missing")


def _social(w: World) -> list[str]:
    return [name for name in single(w, "edges.") if edge_of(w, name)[1].get("role") == "social"]


@corruption("warning: social self-loop", lambda w: bool(_social(w)))
def _(w: World, data) -> Outcome:
    name = pick(data, _social(w), "file")
    cols = edge_of(w, name)[1]["columns"]
    t = w.tables[name]
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row copied")
    row = list(t.rows[r])
    row[t.columns.index(cols["dst"])] = row[t.columns.index(cols["src"])]
    t.rows.append(row)
    return warning(t, t.line_of(len(t.rows) - 1), f"{cols['src']}/{cols['dst']}", "self-loop")


def _padded_slots(w: World) -> list[tuple[str, str]]:
    """(file, column) whose ids may be padded: a node file's id, or an edge end of a type without a file."""
    slots = [(name, node_spec(w, n)["id"]) for n, name in _node_files(w)]
    for name in single(w, "edges."):
        spec = edge_of(w, name)[1]
        slots += [(name, spec["columns"][end]) for end in ("src", "dst") if "file" not in node_spec(w, spec[end])]
    return slots


@corruption("warning: id equal to another but for surrounding whitespace", lambda w: bool(_padded_slots(w)))
def _(w: World, data) -> Outcome:
    name, col = pick(data, _padded_slots(w), "column")
    t = w.tables[name]
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row copied")
    row = list(t.rows[r])
    row[t.columns.index(col)] = data.draw(st.sampled_from([" {}", "{} ", " {}  "]), label="padding").format(
        row[t.columns.index(col)])
    t.rows.append(row)
    return warning(t, t.line_of(len(t.rows) - 1), col, "equal to another but for surrounding whitespace")


def _multicategorical(w: World) -> list[tuple[str, str]]:
    return [(n, f) for n, f, ftype in _feature_slots(w) if ftype == "multicategorical"]


@corruption("warning: multicategorical sep never occurs", lambda w: bool(_multicategorical(w)))
def _(w: World, data) -> Outcome:
    n, f = pick(data, _multicategorical(w), "feature")
    fs = node_spec(w, n)["features"][f]
    t = w.tables[node_spec(w, n)["file"]]
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row")
    t.rows[r][t.columns.index(f)] = f"t1{fs['sep']}t2"  # at least one value holds the old separator
    fs["sep"] = "#"  # which no value contains
    split = [i for i, v in enumerate(t.column(f)) if re.search(r"[|,;]", v) or re.search(r"\s", v.strip())]
    return warning(t, t.line_of(split[0]), f, "sep '#' never occurs", "not split", count=len(split))

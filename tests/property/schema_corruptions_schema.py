"""Corruptions of a world's schema YAML: each must give a SchemaError (exit 3) naming the schema
file, the dotted field and the key's line (YAML syntax errors: the line only)."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import strategies as st

from kgrec.errors import SchemaError
from kgrec.yamlio import MAX_DEPTH
from schema_outcomes import Outcome, corruption, get, pick, rename_key, schema_error
from schema_reference import yaml_line
from schema_world import World, node_spec


# ---- schema errors (exit 3): the schema file, the dotted field and the key's line
def keyed_paths(s: dict[str, Any]) -> list[list[str]]:
    """Mappings whose keys are schema vocabulary (not user names), non-empty."""
    paths: list[list[str]] = [[], ["source"]] + [["files", f] for f in s["files"]]
    for n, spec in s["nodes"].items():
        paths.append(["nodes", n])
        paths += [["nodes", n, "features", f] for f in (spec or {}).get("features", {})]
        paths += [["nodes", n, "derived", d] for d in (spec or {}).get("derived", {})]
    for e in s["edges"]:
        paths += [["edges", e], ["edges", e, "columns"]]
    return [p for p in paths if get(s, p)]


@corruption("schema: misspelt key")
def _(w: World, data) -> Outcome:
    path = pick(data, keyed_paths(w.schema), "mapping")
    key = pick(data, get(w.schema, path), "key")
    rename_key(get(w.schema, path), key, key + "Q")
    return schema_error(w, path, key + "Q", f"unknown key '{key}Q'")


def required_slots(s: dict[str, Any]) -> list[tuple[list[str], str]]:
    out = [([], k) for k in ("name", "source", "files", "nodes", "edges")]
    for n, spec in s["nodes"].items():
        out += [(["nodes", n, "features", f], "type") for f in (spec or {}).get("features", {})]
        out += [(["nodes", n, "derived", d], k) for d in (spec or {}).get("derived", {})
                for k in ("neighbors", "field")]
    for e in s["edges"]:
        out += [(["edges", e], k) for k in ("src", "dst", "file", "columns")]
        out += [(["edges", e, "columns"], k) for k in ("src", "dst")]
    return out


@corruption("schema: required key deleted")
def _(w: World, data) -> Outcome:
    path, key = pick(data, required_slots(w.schema), "slot")
    mapping = get(w.schema, path)
    del mapping[key]
    text = w.text()
    # a mapping's line is its first key's (block style), or its own key's when it is empty ({})
    line = 1 if not path else yaml_line(text, [*path, next(iter(mapping))]) if mapping else yaml_line(text, path)
    return Outcome(SchemaError, w.schema_file, ".".join([*path, key]), line, f"missing required key '{key}'")


@corruption("schema: unknown choice value")
def _(w: World, data) -> Outcome:
    s = w.schema
    slots = [(["files", f], "format") for f in s["files"]]
    slots += [(["nodes", n, "features", f], "type") for n in s["nodes"] for f in node_spec(w, n).get("features", {})]
    slots += [(["edges", e], k) for e, spec in s["edges"].items() for k in ("role", "duplicates") if k in spec]
    path, key = pick(data, slots, "slot")
    get(s, path)[key] += "Q"
    value = get(s, path)[key]
    return schema_error(w, path, key, f"unknown value '{value}'")


@corruption("schema: value of the wrong type")
def _(w: World, data) -> Outcome:
    s = w.schema
    slots = [(["edges", e], "reverse", "yes please", "expected bool") for e in s["edges"]]
    slots += [(["edges", e], "file", [spec["file"]], "expected str") for e, spec in s["edges"].items()]
    slots += [(["files", f], "header", "no", "expected bool") for f in s["files"]]
    slots += [(["files", f], "encoding", 8, "expected str") for f in s["files"]]
    for n in s["nodes"]:
        spec = node_spec(w, n)
        if "id" in spec:
            slots.append((["nodes", n], "id", [spec["id"]], "expected str"))
        slots += [(["nodes", n, "features", f], "min", "low", "expected float") for f in spec.get("features", {})]
        slots += [(["nodes", n, "derived", d], "top", "five", "expected int") for d in spec.get("derived", {})]
    path, key, value, text = pick(data, slots, "slot")
    get(s, path)[key] = value
    return schema_error(w, path, key, text)


@corruption("schema: unknown node type")
def _(w: World, data) -> Outcome:
    e, end = pick(data, [(e, end) for e in w.schema["edges"] for end in ("src", "dst")], "edge end")
    w.schema["edges"][e][end] = "nodeQ"
    return schema_error(w, ["edges", e], end, "unknown node type 'nodeQ'")


@corruption("schema: undeclared file")
def _(w: World, data) -> Outcome:
    slots = [["edges", e] for e in w.schema["edges"]] + [["nodes", n] for n in w.schema["nodes"]
                                                          if "file" in node_spec(w, n)]
    path = pick(data, slots, "entry")
    get(w.schema, path)["file"] = "missingQ.tsv"
    return schema_error(w, path, "file", "is not declared under 'files'")


@corruption("schema: sensitive attribute is not a feature",
            lambda w: any(node_spec(w, n).get("features") for n in w.schema["nodes"]))
def _(w: World, data) -> Outcome:
    n = pick(data, [n for n in w.schema["nodes"] if node_spec(w, n).get("features")], "node")
    sens = w.schema["nodes"][n].setdefault("sensitive", [])
    sens.append("zzQ")
    line = yaml_line(w.text(), ["nodes", n, "sensitive"]) + len(sens)  # block items follow their key
    return Outcome(SchemaError, w.schema_file, f"nodes.{n}.sensitive", line, "'zzQ' is not a feature")


@corruption("schema: not exactly one interaction edge")
def _(w: World, data) -> Outcome:
    s = w.schema
    inter = next(e for e, spec in s["edges"].items() if spec.get("role") == "interaction")
    others = [e for e, spec in s["edges"].items() if spec.get("role") != "interaction"]
    if others and data.draw(st.booleans(), label="add a second"):
        s["edges"][pick(data, others, "edge")]["role"] = "interaction"
        found = 2
    else:
        s["edges"][inter]["role"] = "other"
        found = 0
    return Outcome(SchemaError, w.schema_file, "edges", yaml_line(w.text(), ["edges"]), f"(found {found})")


@corruption("schema: text template names an unknown field")
def _(w: World, data) -> Outcome:
    n = pick(data, w.schema["nodes"], "node")
    spec = w.schema["nodes"][n] = w.schema["nodes"][n] or {}
    spec["text"] = "about {zzQ}"
    return schema_error(w, ["nodes", n], "text", "neither a feature nor derived")


@corruption("schema: bad weight_range")
def _(w: World, data) -> Outcome:
    e = pick(data, w.schema["edges"], "edge")
    spec = w.schema["edges"][e]
    spec["weight_range"] = [5, 1] if "weight" in spec["columns"] else [1, 5]
    return schema_error(w, ["edges", e], "weight_range", "weight_range is [min, max]")


def _key_lines(text: str) -> list[int]:
    """0-based indices of indented ``key: value`` lines after ``files:`` (no free text there)."""
    lines = text.split("\n")
    start = lines.index("files:")
    return [i for i in range(start + 1, len(lines)) if re.match(r"^ {2,}[A-Za-z_'\"]", lines[i])]


@corruption("yaml: tab indentation")
def _(w: World, data) -> Outcome:
    lines = w.text().split("\n")
    i = pick(data, _key_lines(w.text()), "line")
    lines[i] = "\t" + lines[i].lstrip(" ")
    w.schema_text = "\n".join(lines)
    return Outcome(SchemaError, w.schema_file, None, i + 1, "invalid YAML")


@corruption("yaml: duplicate key")
def _(w: World, data) -> Outcome:
    lines = w.text().split("\n")
    cands = [i for i in _key_lines(w.text()) if re.match(r"^ +[A-Za-z_][A-Za-z0-9_]*: \S", lines[i])]
    i = pick(data, cands, "line")
    lines.insert(i + 1, lines[i])
    w.schema_text = "\n".join(lines)
    key = lines[i].strip().split(":")[0]
    return Outcome(SchemaError, w.schema_file, key, i + 2, f"duplicate key '{key}'")


@corruption("yaml: non-UTF-8 byte")
def _(w: World, data) -> Outcome:
    lines = w.text().encode("utf-8").split(b"\n")
    i = data.draw(st.integers(0, len(lines) - 2), label="line")
    lines[i] += b"\xff"
    w.schema_bytes = b"\n".join(lines)
    return Outcome(SchemaError, w.schema_file, None, i + 1, "not valid UTF-8")


@corruption("yaml: a flow list as a key")
def _(w: World, data) -> Outcome:
    lines = w.text().split("\n")
    cands = [i for i in _key_lines(w.text()) if re.match(r"^ +[A-Za-z_][A-Za-z0-9_]*:", lines[i])]
    i = pick(data, cands, "line")
    indent, key = re.match(r"^( +)([A-Za-z_][A-Za-z0-9_]*)", lines[i]).groups()
    lines[i] = lines[i].replace(f"{indent}{key}:", f"{indent}[{key}]:", 1)
    w.schema_text = "\n".join(lines)
    return Outcome(SchemaError, w.schema_file, "key", i + 1, "a mapping key must be a plain value")


def _template_slots(w: World) -> list[tuple[str, str]]:
    return [(n, f) for n in w.schema["nodes"] for f in node_spec(w, n).get("features", {}) if f.isidentifier()]


@corruption("schema: text template with a format spec or conversion", lambda w: bool(_template_slots(w)))
def _(w: World, data) -> Outcome:
    n, f = pick(data, _template_slots(w), "feature")
    w.schema["nodes"][n]["text"] = data.draw(st.sampled_from(["{%s:.0f}", "{%s!r}", "a {%s:>{%s}}"]),
                                             label="template").replace("%s", f)
    return schema_error(w, ["nodes", n], "text", "takes no format spec or conversion")


# ---- schemas that are valid YAML but refused since the loader is bounded
@corruption("schema: name differs from the file name")
def _(w: World, data) -> Outcome:
    w.schema["name"] = data.draw(st.sampled_from([w.name + "x", w.name.upper() + "Q", "other-name"]), label="name")
    return schema_error(w, [], "name", "does not match the file name")


def _rename_file(w: World, old: str, new: str) -> None:
    """Rename a declared data file everywhere the schema names it (its bytes stay under ``old``)."""
    rename_key(w.schema["files"], old, new)
    for spec in [*w.schema["edges"].values(), *(node_spec(w, n) for n in w.schema["nodes"])]:
        if spec.get("file") == old:
            spec["file"] = new


@corruption("schema: data file path outside the data directory")
def _(w: World, data) -> Outcome:
    name = pick(data, w.tables, "file")
    new, text = data.draw(st.sampled_from([(f"../{name}", "climbs out of the data directory"),
                                           (f"sub/../../{name}", "climbs out of the data directory"),
                                           (f"/nonexistent-kgrec/{name}", "is an absolute path")]), label="path")
    _rename_file(w, name, new)
    return schema_error(w, ["files"], new, text)


@corruption("schema: data file is a symlink out of the data directory")
def _(w: World, data) -> Outcome:
    name = pick(data, w.tables, "file")
    w.outside.add(name)
    return Outcome(SchemaError, w.schema_file, f"files.{name}", yaml_line(w.text(), ["files", name]),
                   "outside the data directory")


SOURCE_TYPOS = [
    ("pip", {"requirement": "x==1", "sha256": 5}, ["sha256"], "expected str"),
    ("pip", {"requirement": ["x==1"]}, ["requirement"], "expected str"),
    ("url", 5, [], "expected a mapping"),
    ("url", {"href": 5}, ["href"], "expected str"),
    ("url", {"href": "http://127.0.0.1:9/x.zip", "sha256": "abc"}, ["sha256"], "64 lowercase hex digits"),
    ("url", {"href": "http://127.0.0.1:9/x.zip", "prefix": ["a/"]}, ["prefix"], "expected str"),
    ("synthetic", [1, 2], [], "expected a mapping"),
]


@corruption("schema: source entry of the wrong type")
def _(w: World, data) -> Outcome:
    kind, value, under, text = pick(data, SOURCE_TYPOS, "entry")
    w.schema["source"][kind] = value
    path = ["source", kind, *under]
    return schema_error(w, path[:-1], path[-1], text)


@corruption("schema: a file's settings as a list")
def _(w: World, data) -> Outcome:
    name = pick(data, w.tables, "file")
    w.schema["files"][name] = [w.schema["files"][name].get("format", "tsv")]
    return schema_error(w, ["files"], name, "expected a mapping, got list")


@corruption("yaml: an alias")
def _(w: World, data) -> Outcome:
    lines = w.text().rstrip("\n").split("\n")
    lines[0] = lines[0].replace("name: ", "name: &n ", 1)
    use = data.draw(st.sampled_from(["*n", "[*n, *n]", "{a: *n}"]), label="alias")
    lines.append(f"citation: {use}")
    w.schema_text = "\n".join(lines) + "\n"
    fld = {"*n": "citation", "[*n, *n]": "citation[0]", "{a: *n}": "citation.a"}[use]
    return Outcome(SchemaError, w.schema_file, fld, len(lines), "YAML alias '*n' is not allowed")


@corruption("yaml: nesting deeper than the limit")
def _(w: World, data) -> Outcome:
    depth = data.draw(st.integers(MAX_DEPTH + 1, 3 * MAX_DEPTH), label="depth")
    lines = w.text().rstrip("\n").split("\n")
    lines.append("citation: " + "[" * depth + "]" * depth)
    w.schema_text = "\n".join(lines) + "\n"
    return Outcome(SchemaError, w.schema_file, "citation[0][0][0]...[0][0]", len(lines),
                   f"nesting deeper than {MAX_DEPTH} levels")


@corruption("yaml: a NUL character")
def _(w: World, data) -> Outcome:
    lines = w.text().split("\n")
    i = data.draw(st.integers(0, len(lines) - 2), label="line")
    j = data.draw(st.integers(0, len(lines[i])), label="column")
    lines[i] = lines[i][:j] + "\x00" + lines[i][j:]
    w.schema_text = "\n".join(lines)
    return Outcome(SchemaError, w.schema_file, None, i + 1, f"NUL character (\\x00) at column {j + 1}")

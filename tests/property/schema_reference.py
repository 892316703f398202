"""Naive reference readings of a schema world, to compare the loader against.

``reference`` reads node ids and edge records straight from the world's rows, ``dict_summary``
reads a schema dict with the documented defaults, and ``yaml_line`` finds the line of a key in
block YAML as ``dump_yaml`` writes it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import yaml

from kgrec.graphs.dataset import reverse_type
from schema_world import World, node_spec

# --------------------------------------------------------------------------- reference reading
def reference(world: World) -> tuple[dict[str, list[str]], dict[tuple[str, str, str], Counter]]:
    """Node ids per type and edge records per edge type, read naively from the world's rows."""
    ids: dict[str, list[str]] = {}
    for n in world.schema["nodes"]:
        spec = node_spec(world, n)
        if "file" in spec:
            ids[n] = world.tables[spec["file"]].column(spec["id"])
    edges: dict[tuple[str, str, str], Counter] = {}
    seen: dict[str, list[str]] = {n: [] for n in world.schema["nodes"]}
    for e, spec in world.schema["edges"].items():
        c = spec["columns"]
        for rec in world.tables[spec["file"]].records():
            et = (spec["src"], rec[c["relation"]] if "relation" in c else e, spec["dst"])
            w = float(np.float32(float(rec[c["weight"]]))) if "weight" in c else None
            ts = float(rec[c["timestamp"]]) if "timestamp" in c else None
            edges.setdefault(et, Counter())[(rec[c["src"]], rec[c["dst"]], w, ts)] += 1
            seen[spec["src"]].append(rec[c["src"]])
            seen[spec["dst"]].append(rec[c["dst"]])
    for n in world.schema["nodes"]:
        ids.setdefault(n, list(dict.fromkeys(seen[n])))
    return ids, edges


def loaded_edges(ds) -> dict[tuple[str, str, str], Counter]:
    out = {}
    for et, table in ds.edges.items():
        src, dst = ds.nodes[et[0]].ids[table.src], ds.nodes[et[2]].ids[table.dst]
        w = [None] * len(table) if table.weight is None else [float(x) for x in table.weight]
        ts = [None] * len(table) if table.timestamp is None else [float(x) for x in table.timestamp]
        out[et] = Counter(zip(src.tolist(), dst.tolist(), w, ts))
    return out


def expected_metadata(world: World) -> Counter:
    """Edge types the schema declares for this data: fixed ones, one per relation value, reverses."""
    out: Counter = Counter()
    for e, spec in world.schema["edges"].items():
        c = spec["columns"]
        rels = set(world.tables[spec["file"]].column(c["relation"])) if "relation" in c else {e}
        for rel in rels:
            out[(spec["src"], rel, spec["dst"])] += 1
            if spec.get("reverse"):
                out[reverse_type((spec["src"], rel, spec["dst"]))] += 1
    return out


def schema_summary(s) -> dict[str, Any]:
    """What a parsed Schema says, as plain data (lines and paths left out)."""
    return {
        "name": s.name, "description": s.description, "license": s.license, "env": s.source.env,
        "files": {n: (f.format, f.encoding, f.header, f.columns, f.sha256) for n, f in s.files.items()},
        "nodes": {n: (v.file, v.id, {f: (x.type, x.min, x.max, x.sep, x.bins) for f, x in v.features.items()},
                      v.sensitive, v.text, {d: (x.neighbors, x.field, x.top) for d, x in v.derived.items()})
                  for n, v in s.nodes.items()},
        "edges": {n: (e.src, e.dst, e.file, e.src_col, e.dst_col, e.role, e.relation_col, e.relations, e.weight,
                      e.weight_min, e.weight_max, e.timestamp, e.reverse, e.duplicates) for n, e in s.edges.items()},
    }


def dict_summary(d: dict[str, Any]) -> dict[str, Any]:
    """The same, read naively from a valid schema dict with the documented defaults."""
    def opt(x):
        return None if x is None else float(x)

    def cols(f):
        return None if "columns" not in f else tuple(f["columns"])

    nodes = {}
    for n, v in d["nodes"].items():
        v = v or {}
        feats = {f: (x["type"], opt(x.get("min")), opt(x.get("max")), x.get("sep", " "),
                     None if "bins" not in x else tuple(float(b) for b in x["bins"]))
                 for f, x in v.get("features", {}).items()}
        derived = {k: (x["neighbors"], x["field"], x.get("top", 5)) for k, x in v.get("derived", {}).items()}
        nodes[n] = (v.get("file"), v.get("id"), feats, tuple(v.get("sensitive", [])), v.get("text"), derived)
    edges = {}
    for n, e in d["edges"].items():
        c, wr = e["columns"], e.get("weight_range")
        edges[n] = (e["src"], e["dst"], e["file"], c["src"], c["dst"], e.get("role", "other"), c.get("relation"),
                    None if "relations" not in e else tuple(e["relations"]), c.get("weight"),
                    None if wr is None else float(wr[0]), None if wr is None else float(wr[1]), c.get("timestamp"),
                    e.get("reverse", False), e.get("duplicates", "first"))
    return {"name": d["name"], "description": d.get("description", "").strip(),
            "license": d.get("license", "").strip(), "env": d["source"].get("env"),
            "files": {n: (f.get("format", "tsv"), f.get("encoding", "utf-8"), f.get("header", True), cols(f),
                          f.get("sha256")) for n, f in d["files"].items()},
            "nodes": nodes, "edges": edges}


def key_text(key: Any) -> str:
    return yaml.safe_dump({key: 0}, allow_unicode=True, width=1 << 30)[: -len(": 0\n")]


def yaml_line(text: str, path: list[Any]) -> int:
    """The 1-based line of the key at ``path`` in block YAML (dump_yaml indents mappings by 2)."""
    lines = text.split("\n")
    start = 0
    for depth, key in enumerate(path):
        prefix = " " * (2 * depth) + key_text(key) + ":"
        for i in range(start, len(lines)):
            indent = len(lines[i]) - len(lines[i].lstrip(" "))
            if depth and lines[i].strip() and indent < 2 * depth:
                raise LookupError(f"{path} not in\n{text}")
            if indent == 2 * depth and lines[i].startswith(prefix):
                start = i + 1
                break
        else:
            raise LookupError(f"{path} not in\n{text}")
    return start


"""The random *world* of the schema property suites: a valid schema dict and its data files.

A world has node types with and without a file, categorical / numeric / multicategorical /
text features, sensitive attributes, text templates with derived neighbour text, exactly one
interaction edge, optional social (never a self-loop), link, attribute and KG-family edges,
reverse flags, duplicate policies and weight ranges, together with the data files it names, in
random formats (tsv / csv / atomic, with or without a header, utf-8 or latin-1, BOM, CRLF, no
final newline), tricky ids (``nan``, ``01``, ``1.0``, ``é``) and nodes without edges. The
schema is written as ``<name>.yaml``, so its ``name`` matches the file name.

Used by ``test_schema_roundtrip.py``, ``test_schema_worlds.py`` and ``test_schema_corruptions.py``
(not a test module itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from kgrec.yamlio import dump_yaml

REPO = Path(__file__).resolve().parents[2]
# One failure per test, shrunk alone: shrinking many distinct failures of these big examples takes minutes.
SLOW_OK = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                   report_multiple_bugs=False)
# A few examples, no shrinking: for checks of one behaviour over random worlds.
NO_SHRINK = settings(max_examples=3, phases=[Phase.explicit, Phase.generate],
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.filter_too_much])

# --------------------------------------------------------------------------- value strategies
YAML_WORDS = ["yes", "no", "on", "off", "null", "true", "nan", "inf", "id", "name", "type"]
NAME = st.one_of(st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(lambda s: not s.startswith("rev_")),
                 st.sampled_from(YAML_WORDS))
TRICKY_IDS = ["nan", "NaN", "NA", "None", "null", "1", "01", "1.0", "-0", "True", "#", "é", "~"]
ID = st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,4}", fullmatch=True), st.sampled_from(TRICKY_IDS))
CATEGORIES = ["a", "b", "c", "nan", "NA", "None", "1", "01", "True", " x ", "ü"]
TOKENS = ["t1", "t2", "jazz", "rock", "nan", "ü", "0"]
RELATION = st.from_regex(r"[a-z]{1,3}[./][a-z]{1,3}", fullmatch=True)  # never an edge name, never rev_*
# Trailing NULs are allowed: test_trailing_nul_is_kept checks they survive (numpy's str dtype dropped them).
TEXT_EXCLUDE = "\t\n\r,\ufeff"


def text_values(encoding: str) -> st.SearchStrategy[str]:
    return st.text(st.characters(codec=encoding, exclude_characters=TEXT_EXCLUDE), max_size=6)


# --------------------------------------------------------------------------- the world
@dataclass
class TableFile:
    """One data file: its declared format and its rows (a list of fields, or a raw line)."""

    name: str
    fmt: str = "tsv"
    header: bool = True
    declare: bool = False
    encoding: str = "utf-8"
    bom: bool = False
    crlf: bool = False
    final_newline: bool = True
    columns: list[str] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)
    uses: list[tuple[str, str]] = field(default_factory=list)  # (column, error field), in build order

    @property
    def sep(self) -> str:
        return "," if self.fmt == "csv" else "\t"

    @property
    def first_line(self) -> int:
        return 2 if self.header else 1

    def line_of(self, r: int) -> int:
        return self.first_line + r

    def records(self) -> list[dict[str, str]]:
        return [dict(zip(self.columns, r)) for r in self.rows if isinstance(r, list)]

    def column(self, name: str) -> list[str]:
        return [rec[name] for rec in self.records()]

    def owners(self) -> set[str]:
        return {".".join(f.split(".")[:2]) for _, f in self.uses}

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.fmt}
        if self.encoding != "utf-8":
            out["encoding"] = self.encoding
        if not self.header:
            out["header"] = False
        if self.declare:
            out["columns"] = list(self.columns)
        return out

    def to_bytes(self) -> bytes:
        lines = [self.sep.join(f"{c}:token" if self.fmt == "atomic" else c for c in self.columns)] \
            if self.header else []
        lines += [r if isinstance(r, str) else self.sep.join(r) for r in self.rows]
        eol = "\r\n" if self.crlf else "\n"
        text = eol.join(lines) + (eol if self.final_newline else "")
        return (b"\xef\xbb\xbf" if self.bom else b"") + text.encode(self.encoding, errors="surrogateescape")


@dataclass
class World:
    name: str
    schema: dict[str, Any]
    tables: dict[str, TableFile]
    schema_text: str | None = None      # set by YAML-level corruptions
    schema_bytes: bytes | None = None   # set by the non-UTF-8 corruption
    raw: dict[str, bytes] = field(default_factory=dict)   # file bytes that replace a table's
    missing: set[str] = field(default_factory=set)
    # data files written outside the data directory, with a symlink to them in it
    outside: set[str] = field(default_factory=set)
    # data files replaced by something else: "directory" or "symlink loop"
    special: dict[str, str] = field(default_factory=dict)

    @property
    def schema_file(self) -> str:
        return f"{self.name}.yaml"

    def text(self) -> str:
        return self.schema_text if self.schema_text is not None else dump_yaml(self.schema)

    def write(self, root: Path) -> tuple[Path, Path]:
        path = root / self.schema_file
        path.write_bytes(self.schema_bytes if self.schema_bytes is not None else self.text().encode("utf-8"))
        data = root / "data"
        data.mkdir()
        for name, table in self.tables.items():
            if name in self.missing:
                continue
            target = data / name
            if self.special.get(name) == "directory":
                target.mkdir()
                continue
            if self.special.get(name) == "symlink loop":
                target.symlink_to(name)  # a link to itself
                continue
            if name in self.outside:
                (root / "outside").mkdir(exist_ok=True)
                target.symlink_to(root / "outside" / name)
                target = root / "outside" / name
            target.write_bytes(self.raw.get(name, table.to_bytes()))
        return path, data


def unique(names: list[str]) -> list[str]:
    """Make names unique by suffixing digits (drawing 40 unique names makes Hypothesis give up)."""
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        while name in seen:
            name += str(i)
        seen.add(name)
        out.append(name)
    return out


def node_spec(world: World, n: str) -> dict[str, Any]:
    return world.schema["nodes"][n] or {}


@st.composite
def worlds(draw, tricky_text: bool = False) -> World:
    pool = iter(unique(draw(st.lists(NAME, min_size=40, max_size=40), label="names")))
    bases = iter(draw(st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), min_size=10, max_size=10,
                               unique=True), label="file names"))
    tables: dict[str, TableFile] = {}
    nodes: dict[str, Any] = {}
    ids: dict[str, list[str]] = {}

    def new_table(columns: list[str]) -> TableFile:
        name = next(bases) + draw(st.sampled_from([".tsv", ".csv", ".inter", ".dat"]))
        fmt = draw(st.sampled_from(["tsv", "csv", "atomic"]))
        header = True if fmt == "atomic" else draw(st.booleans())
        enc = draw(st.sampled_from(["utf-8", "latin-1"]))
        table = TableFile(name, fmt, header, declare=(not header) or draw(st.booleans()), encoding=enc,
                          bom=enc == "utf-8" and draw(st.booleans()), crlf=draw(st.booleans()),
                          final_newline=not draw(st.booleans()), columns=draw(st.permutations(columns)))
        tables[name] = table
        return table

    def fill(table: TableFile, values: dict[str, list[str]]) -> None:
        n = len(next(iter(values.values())))
        table.rows = [[values[c][r] for c in table.columns] for r in range(n)]

    def feature(enc: str, n: int) -> tuple[dict[str, Any], list[str]]:
        ftype = draw(st.sampled_from(["categorical", "numeric", "multicategorical", "text"]))
        spec: dict[str, Any] = {"type": ftype}
        if ftype == "numeric":
            lo = draw(st.none() | st.integers(-100, 100))
            hi = draw(st.none() | st.integers(0, 200))
            if lo is not None:
                spec["min"] = lo
            if hi is not None:
                spec["max"] = hi = max(hi, lo if lo is not None else hi)
            if draw(st.booleans()):
                spec["bins"] = sorted(draw(st.lists(st.integers(-100, 300), max_size=3)))
            a, b = (lo if lo is not None else -10**6), (hi if hi is not None else 10**6)
            vals = draw(st.lists(st.integers(a, b).map(str) | st.floats(a, b).map(repr), min_size=n, max_size=n))
        elif ftype == "categorical":
            vals = draw(st.lists(st.sampled_from(CATEGORIES), min_size=n, max_size=n))
        elif ftype == "multicategorical":
            spec["sep"] = sep = draw(st.sampled_from(["|", ";", " "]))
            vals = [sep.join(t) for t in draw(st.lists(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=3),
                                                       min_size=n, max_size=n))]
        else:
            vals = draw(st.lists(text_values(enc), min_size=n, max_size=n))
        return spec, vals

    def node_type(n: int, has_file: bool, extra: dict[str, list[str]] | None = None) -> str:
        name = next(pool)
        ids[name] = draw(st.lists(ID, min_size=n, max_size=n, unique=True), label=f"{name} ids")
        if not has_file:
            nodes[name] = draw(st.sampled_from([None, {}]))
            return name
        id_col = next(pool)
        fnames = [next(pool) for _ in range(draw(st.integers(0, 3)))]
        table = new_table([id_col, *fnames, *(extra or {})])
        feats, values = {}, {id_col: ids[name], **(extra or {})}
        for f in fnames:
            feats[f], values[f] = feature(table.encoding, n)
        fill(table, values)
        spec: dict[str, Any] = {"file": table.name, "id": id_col}
        if feats or draw(st.booleans()):
            spec["features"] = feats
        if feats and draw(st.booleans()):
            spec["sensitive"] = draw(st.lists(st.sampled_from(fnames), unique=True, min_size=1))
        named = [f for f in fnames if f.isidentifier()]
        if draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(named), unique=True)) if named else []
            spec["text"] = draw(st.sampled_from(["", "About: "])) + " / ".join(f"{{{f}}}" for f in chosen)
        nodes[name] = spec
        return name

    def has_file(t: str) -> bool:
        return bool(nodes[t]) and "file" in nodes[t]

    # ---- node types
    attribute = draw(st.booleans())
    attr_ids = draw(st.lists(ID, min_size=1, max_size=3, unique=True))
    n_users, n_items = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    attr_col = next(pool)
    user_file = attribute or draw(st.booleans())
    user = node_type(n_users, user_file, {attr_col: draw(st.lists(st.sampled_from(attr_ids), min_size=n_users,
                                                                  max_size=n_users))} if attribute else None)
    item = node_type(n_items, draw(st.booleans()))
    entity = node_type(draw(st.integers(1, 6)), draw(st.booleans())) if draw(st.booleans()) else None
    if draw(st.booleans()):  # a node type without edges: isolated nodes, or none at all without a file
        node_type(draw(st.integers(1, 3)), draw(st.booleans()))
    attr = next(pool) if attribute else None
    if attr:
        nodes[attr] = None

    # ---- edges
    edges: dict[str, dict[str, Any]] = {}

    def edge(src: str, dst: str, role: str | None, relations: list[str] | None = None) -> str:
        name = next(pool)
        src_col, dst_col = next(pool), next(pool)
        cols = {"src": src_col, "dst": dst_col}
        weight = draw(st.booleans())
        timestamp = draw(st.booleans())
        columns = [src_col, dst_col]
        if relations:
            cols["relation"] = next(pool)
            columns.append(cols["relation"])
        if weight:
            cols["weight"] = next(pool)
            columns.append(cols["weight"])
        if timestamp:
            cols["timestamp"] = next(pool)
            columns.append(cols["timestamp"])
        table = new_table(columns)
        pair = st.tuples(st.integers(0, len(ids[src]) - 1), st.integers(0, len(ids[dst]) - 1),
                         st.integers(0, len(relations or [""]) - 1))
        if role == "social":  # a user linked to itself is dropped with a warning: not in a valid world
            pair = pair.filter(lambda k: k[0] != k[1])
        keys = draw(st.lists(pair, min_size=1, max_size=10, unique=True), label=f"{name} rows")
        n = len(keys)
        values = {src_col: [ids[src][k[0]] for k in keys], dst_col: [ids[dst][k[1]] for k in keys]}
        spec: dict[str, Any] = {"src": src, "dst": dst}
        if role is not None:
            spec["role"] = role
        spec["file"] = table.name
        spec["columns"] = cols
        if relations:
            values[cols["relation"]] = [relations[k[2]] for k in keys]
            allow = draw(st.sampled_from(["none", "used", "more"]))
            if allow != "none":
                used = sorted(set(values[cols["relation"]]))
                spec["relations"] = used + (["zz.extra"] if allow == "more" else [])
        if weight:
            lo = draw(st.integers(0, 2))
            hi = lo + draw(st.integers(0, 5))
            values[cols["weight"]] = draw(st.lists(st.integers(lo, hi).map(str) | st.floats(lo, hi).map(repr),
                                                   min_size=n, max_size=n))
            if draw(st.booleans()):
                spec["weight_range"] = [lo, hi]
        if timestamp:
            values[cols["timestamp"]] = draw(st.lists(st.integers(0, 2**31).map(str), min_size=n, max_size=n))
        fill(table, values)
        policies = ["first", "last", "count", "error"] + (["sum", "max"] if weight else [])
        if draw(st.booleans()):
            spec["duplicates"] = draw(st.sampled_from(policies))
        if draw(st.booleans()):
            spec["reverse"] = draw(st.booleans())
        edges[name] = spec
        return name

    edge(user, item, "interaction")
    if n_users >= 2 and draw(st.booleans()):
        edge(user, user, "social")
    link = edge(item, entity, draw(st.sampled_from([None, "link"]))) if entity and draw(st.booleans()) else None
    if entity and draw(st.booleans()):
        src = draw(st.sampled_from([entity, item]))
        edge(src, entity, "kg", draw(st.lists(RELATION, min_size=1, max_size=3, unique=True)))
    if attr:
        user_table = tables[nodes[user]["file"]]
        edges[next(pool)] = {"src": user, "dst": attr, "file": user_table.name,
                             "columns": {"src": nodes[user]["id"], "dst": attr_col}}
    if link and has_file(entity) and nodes[entity].get("features") and draw(st.booleans()):
        spec = nodes[item] = nodes[item] or {}
        dname = next(pool)
        target = draw(st.sampled_from(list(nodes[entity]["features"])))
        spec["derived"] = {dname: {"neighbors": link, "field": target, "top": draw(st.integers(1, 3))}}
        if dname.isidentifier():
            spec["text"] = f"{spec.get('text', '')} with {{{dname}}}"

    # ---- order, uses, schema dict
    node_order = draw(st.permutations(list(nodes)))
    edge_order = draw(st.permutations(list(edges)))
    for n in node_order:
        if has_file(n):
            t = tables[nodes[n]["file"]]
            t.uses.append((nodes[n]["id"], f"nodes.{n}.id"))
            t.uses += [(f, f"nodes.{n}.features.{f}") for f in nodes[n].get("features", {})]
    for e in edge_order:
        spec = edges[e]
        for key in ("src", "dst", "relation", "weight", "timestamp"):
            if key in spec["columns"]:
                tables[spec["file"]].uses.append((spec["columns"][key], f"edges.{e}.columns.{key}"))
    # NEL (\x85) is excluded: see test_known_bug_nel_does_not_round_trip
    free = st.text(st.characters(exclude_characters="\x85"), max_size=30) if tricky_text else \
        st.sampled_from(["", "A random world.", "two\nlines"])
    schema: dict[str, Any] = {"name": draw(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)),
                              "description": draw(free), "license": draw(free)}
    if tricky_text and draw(st.booleans()):
        schema["citation"] = draw(free)
    schema["source"] = draw(st.sampled_from([{}, {"env": "KGREC_PROPTEST_UNSET_DIR"}]))
    schema["files"] = {t.name: t.spec() for t in tables.values()}
    schema["nodes"] = {n: nodes[n] for n in node_order}
    schema["edges"] = {e: edges[e] for e in edge_order}
    return World(schema["name"], schema, tables)


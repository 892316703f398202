"""Declarative graph schemas: the single source of truth for node and relation types.

A schema is one YAML file in ``graphs/``. It names the data files, the node types with
their id column, features (categorical, multicategorical, numeric, text) and sensitive
attributes, and the edge types ``(src, relation, dst)`` with their source columns, weight
and timestamp columns, and whether reverse edges are added. An edge entry with a
``relation`` column expands into one edge type per relation value found in the data, so
knowledge-graph relation types are data, not code. See ``graphs/README.md`` for the format.

Validation happens on load and names ``file:line`` and the field of every problem.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgrec.errors import SchemaError
from kgrec.graphs.paths import lexical_escape, outside_hint, outside_paths_allowed
from kgrec.graphs.validation import Ctx, template_fields
from kgrec.yamlio import LineDict, load_yaml

FEATURE_TYPES = ("categorical", "multicategorical", "numeric", "text")
FILE_FORMATS = ("atomic", "tsv", "csv")
EDGE_ROLES = ("interaction", "social", "kg", "link", "other")
DUPLICATE_POLICIES = ("first", "last", "sum", "count", "max", "error")


@dataclass(frozen=True)
class FileSpec:
    """A data file: its format, encoding, expected header and sha256."""

    name: str
    format: str = "tsv"
    encoding: str = "utf-8"
    header: bool = True
    columns: tuple[str, ...] | None = None
    sha256: str | None = None
    line: int | None = field(default=None, compare=False)  # of the file's key in the schema

    @property
    def sep(self) -> str:
        return "," if self.format == "csv" else "\t"


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    type: str
    min: float | None = None
    max: float | None = None
    sep: str = " "
    bins: tuple[float, ...] | None = None


@dataclass(frozen=True)
class DerivedText:
    """A text field built from the top neighbours of a node over one edge type."""

    name: str
    neighbors: str
    field: str
    top: int = 5


@dataclass(frozen=True)
class NodeSpec:
    name: str
    file: str | None = None
    id: str | None = None
    features: dict[str, FeatureSpec] = field(default_factory=dict)
    sensitive: tuple[str, ...] = ()
    text: str | None = None
    derived: dict[str, DerivedText] = field(default_factory=dict)
    label: str | None = None  # the feature that names a node for people (reports, explanations)


@dataclass(frozen=True)
class EdgeSpec:
    """One edge entry: a fixed relation, or a family of relations read from a column."""

    name: str
    src: str
    dst: str
    file: str
    src_col: str
    dst_col: str
    role: str = "other"
    relation_col: str | None = None
    relations: tuple[str, ...] | None = None
    weight: str | None = None
    weight_min: float | None = None
    weight_max: float | None = None
    timestamp: str | None = None
    reverse: bool = False
    duplicates: str = "first"
    line: int | None = None

    @property
    def edge_type(self) -> tuple[str, str, str]:
        """The PyG edge type of a fixed-relation entry."""
        return (self.src, self.name, self.dst)


@dataclass(frozen=True)
class SourceSpec:
    env: str | None = None
    pip: dict[str, str] | None = None
    url: dict[str, str] | None = None
    synthetic: dict[str, Any] | None = None


@dataclass(frozen=True)
class Schema:
    name: str
    path: Path
    description: str
    license: str
    source: SourceSpec
    files: dict[str, FileSpec]
    nodes: dict[str, NodeSpec]
    edges: dict[str, EdgeSpec]

    @property
    def interaction(self) -> EdgeSpec:
        return next(e for e in self.edges.values() if e.role == "interaction")

    @property
    def user_type(self) -> str:
        return self.interaction.src

    @property
    def item_type(self) -> str:
        return self.interaction.dst

    def edges_with_role(self, role: str) -> list[EdgeSpec]:
        return [e for e in self.edges.values() if e.role == role]

    def sensitive_attributes(self) -> dict[str, tuple[str, ...]]:
        return {n: s.sensitive for n, s in self.nodes.items() if s.sensitive}


def _parse_file(name: str, raw: Any, ctx: Ctx, parent: LineDict, allow_outside: bool) -> FileSpec:
    path = f"files.{name}"
    if "\x00" in name:
        raise ctx.error("a data file name may not contain a NUL character", parent, name, path)
    why = lexical_escape(name)
    if why is not None and not allow_outside:
        raise ctx.error(f"data file '{name}' {why}; {outside_hint()}", parent, name, path)
    raw = ctx.mapping(raw, path, parent, name)
    ctx.keys(raw, path, ("format", "encoding", "header", "columns", "sha256"))
    fmt = ctx.choice(raw.get("format", "tsv"), FILE_FORMATS, raw, "format", f"{path}.format")
    encoding = ctx.typed(raw, "encoding", path, str, "utf-8")
    try:
        "".encode(encoding)
    except LookupError:
        raise ctx.error(f"unknown encoding '{encoding}'", raw, "encoding", f"{path}.encoding") from None
    header = ctx.typed(raw, "header", path, bool, True)
    columns = ctx.typed(raw, "columns", path, list)
    if not header and not columns:
        raise ctx.error("a file without a header needs 'columns'", raw, "header", f"{path}.columns")
    sha = ctx.sha256(raw, "sha256", path)
    return FileSpec(name=name, format=fmt, encoding=encoding, header=header,
                    columns=None if columns is None else tuple(str(c) for c in columns), sha256=sha,
                    line=parent.line_of(name))


def _parse_node(name: str, raw: Any, ctx: Ctx, parent: LineDict, files: dict[str, FileSpec]) -> NodeSpec:
    path = f"nodes.{name}"
    raw = ctx.mapping(raw if raw is not None else LineDict(), path, parent, name)
    ctx.keys(raw, path, ("file", "id", "features", "sensitive", "text", "derived", "label"))
    file = ctx.typed(raw, "file", path, str)
    if file is not None and file not in files:
        hint = difflib.get_close_matches(file, list(files), n=1)
        raise ctx.error(f"file '{file}' is not declared under 'files'" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                        raw, "file", f"{path}.file")
    node_id = ctx.typed(raw, "id", path, str)
    if file is not None and node_id is None:
        raise ctx.error("a node type with a file needs an 'id' column", raw, "file", f"{path}.id")
    features: dict[str, FeatureSpec] = {}
    raw_features = ctx.mapping(raw.get("features", LineDict()), f"{path}.features", raw, "features")
    if raw_features and file is None:
        raise ctx.error("features need a node 'file'", raw, "features", f"{path}.features")
    for fname, fraw in raw_features.items():
        fpath = f"{path}.features.{fname}"
        fraw = ctx.mapping(fraw, fpath, raw_features, fname)
        ctx.keys(fraw, fpath, ("type", "min", "max", "sep", "bins"), ("type",))
        ftype = ctx.choice(fraw["type"], FEATURE_TYPES, fraw, "type", f"{fpath}.type")
        bins = ctx.numbers(fraw, "bins", fpath)
        features[fname] = FeatureSpec(name=fname, type=ftype, min=ctx.typed(fraw, "min", fpath, float),
                                      max=ctx.typed(fraw, "max", fpath, float), sep=ctx.typed(fraw, "sep", fpath, str, " "),
                                      bins=bins)
    sensitive = tuple(ctx.typed(raw, "sensitive", path, list, []))
    for i, attr in enumerate(sensitive):
        if not isinstance(attr, str) or attr not in features:
            raise SchemaError(f"sensitive attribute '{attr}' is not a feature of '{name}'", file=ctx.file,
                              line=raw["sensitive"].line_of(i), field=f"{path}.sensitive")
    derived: dict[str, DerivedText] = {}
    raw_derived = ctx.mapping(raw.get("derived", LineDict()), f"{path}.derived", raw, "derived")
    for dname, draw in raw_derived.items():
        dpath = f"{path}.derived.{dname}"
        draw = ctx.mapping(draw, dpath, raw_derived, dname)
        ctx.keys(draw, dpath, ("neighbors", "field", "top"), ("neighbors", "field"))
        derived[dname] = DerivedText(name=dname, neighbors=ctx.typed(draw, "neighbors", dpath, str),
                                     field=ctx.typed(draw, "field", dpath, str), top=ctx.typed(draw, "top", dpath, int, 5))
    text = ctx.typed(raw, "text", path, str)
    if text is not None:
        for fname in template_fields(text, ctx, raw, f"{path}.text"):
            if fname not in features and fname not in derived:
                raise ctx.error(f"text template uses '{{{fname}}}', which is neither a feature nor derived",
                                raw, "text", f"{path}.text")
    label = ctx.typed(raw, "label", path, str)
    if label is not None and (label not in features or features[label].type not in ("text", "categorical")):
        raise ctx.error(f"label '{label}' must name a text or categorical feature of '{name}'"
                        + (f" (its features: {', '.join(features)})" if features else " (it has no features)"),
                        raw, "label", f"{path}.label")
    return NodeSpec(name=name, file=file, id=node_id, features=features, sensitive=sensitive, text=text,
                    derived=derived, label=label)


def _parse_edge(name: str, raw: Any, ctx: Ctx, parent: LineDict, files: dict[str, FileSpec],
                nodes: dict[str, NodeSpec]) -> EdgeSpec:
    path = f"edges.{name}"
    raw = ctx.mapping(raw, path, parent, name)
    ctx.keys(raw, path, ("src", "dst", "file", "columns", "role", "relations", "weight_range", "reverse",
                         "duplicates"), ("src", "dst", "file", "columns"))
    for key in ("src", "dst", "file"):
        ctx.typed(raw, key, path, str)
    for end in ("src", "dst"):
        if raw[end] not in nodes:
            hint = difflib.get_close_matches(str(raw[end]), list(nodes), n=1)
            raise ctx.error(f"unknown node type '{raw[end]}'" + (f" (did you mean '{hint[0]}'?)" if hint else
                                                                 f" (declared: {', '.join(nodes)})"),
                            raw, end, f"{path}.{end}")
    if raw["file"] not in files:
        raise ctx.error(f"file '{raw['file']}' is not declared under 'files'", raw, "file", f"{path}.file")
    cols = ctx.mapping(raw["columns"], f"{path}.columns", raw, "columns")
    ctx.keys(cols, f"{path}.columns", ("src", "dst", "relation", "weight", "timestamp"), ("src", "dst"))
    for key in cols:
        ctx.typed(cols, key, f"{path}.columns", str)
    role = ctx.choice(raw.get("role", "other"), EDGE_ROLES, raw, "role", f"{path}.role")
    relations = ctx.typed(raw, "relations", path, list)
    if relations is not None and "relation" not in cols:
        raise ctx.error("'relations' lists values of a 'relation' column, which 'columns' does not name",
                        raw, "relations", f"{path}.relations")
    wrange = ctx.numbers(raw, "weight_range", path, length=2)
    if wrange is not None and ("weight" not in cols or wrange[0] > wrange[1]):
        raise ctx.error("weight_range is [min, max] with min <= max and needs a 'weight' column", raw,
                        "weight_range", f"{path}.weight_range")
    dup = ctx.choice(raw.get("duplicates", "first"), DUPLICATE_POLICIES, raw, "duplicates", f"{path}.duplicates")
    if dup in ("sum", "max") and "weight" not in cols:
        raise ctx.error(f"duplicates: {dup} needs a 'weight' column", raw, "duplicates", f"{path}.duplicates")
    return EdgeSpec(name=name, src=raw["src"], dst=raw["dst"], file=raw["file"], src_col=str(cols["src"]),
                    dst_col=str(cols["dst"]), role=role, relation_col=cols.get("relation"),
                    relations=None if relations is None else tuple(str(r) for r in relations),
                    weight=cols.get("weight"), timestamp=cols.get("timestamp"),
                    weight_min=None if wrange is None else float(wrange[0]),
                    weight_max=None if wrange is None else float(wrange[1]),
                    reverse=ctx.typed(raw, "reverse", path, bool, False), duplicates=dup, line=parent.line_of(name))


def _parse_source(raw: LineDict, ctx: Ctx) -> SourceSpec:
    """``source``: ``env`` a string; ``pip``/``url`` mappings of strings with a valid sha256;
    ``synthetic`` a mapping of generator parameters (checked against the generator later)."""
    source_raw = ctx.mapping(raw["source"], "source", raw, "source")
    ctx.keys(source_raw, "source", ("env", "pip", "url", "synthetic"))
    ctx.typed(source_raw, "env", "source", str)
    for kind, keys in (("pip", ("requirement", "sha256", "prefix")), ("url", ("href", "sha256", "prefix"))):
        if kind in source_raw:
            spec = ctx.mapping(source_raw[kind], f"source.{kind}", source_raw, kind)
            ctx.keys(spec, f"source.{kind}", keys, keys[:1])
            for key in keys:
                ctx.typed(spec, key, f"source.{kind}", str)
            ctx.sha256(spec, "sha256", f"source.{kind}")
            if not spec[keys[0]].strip():
                raise ctx.error(f"'{keys[0]}' is empty", spec, keys[0], f"source.{kind}.{keys[0]}")
    if "synthetic" in source_raw and source_raw["synthetic"] is not None:
        params = ctx.mapping(source_raw["synthetic"], "source.synthetic", source_raw, "synthetic")
        for key, value in params.items():
            if not isinstance(key, str):
                raise ctx.error(f"a parameter name must be a string, got {key!r}", params, key,
                                f"source.synthetic.{key}")
            if isinstance(value, (dict, list)):
                raise ctx.error(f"expected a number, string or boolean, got {type(value).__name__}", params, key,
                                f"source.synthetic.{key}")
    return SourceSpec(env=source_raw.get("env"), pip=source_raw.get("pip"), url=source_raw.get("url"),
                      synthetic=source_raw.get("synthetic"))


def parse_schema(raw: Any, path: str | Path, *, allow_outside_paths: bool = False, name: str | None = None) -> Schema:
    """Validate a parsed YAML tree and build a :class:`Schema`.

    The schema must declare ``name`` (default: its file name without ``.yaml``; a run
    directory's copy, ``RUN_DIR/schema.yaml``, is loaded with the name the run recorded).

    ``allow_outside_paths`` (or ``$KGREC_ALLOW_OUTSIDE_PATHS=1``) accepts data file names
    that are absolute or climb out of the data directory (see :mod:`kgrec.graphs.paths`)."""
    path = Path(path)
    allow = outside_paths_allowed(allow_outside_paths)
    ctx = Ctx(path)
    raw = ctx.mapping(raw, "")
    ctx.keys(raw, "", ("name", "description", "license", "citation", "source", "files", "nodes", "edges"),
             ("name", "source", "files", "nodes", "edges"))
    ctx.typed(raw, "name", "", str)
    source = _parse_source(raw, ctx)
    files_raw = ctx.mapping(raw["files"], "files", raw, "files")
    files = {str(n): _parse_file(str(n), f, ctx, files_raw, allow) for n, f in files_raw.items()}
    nodes_raw = ctx.mapping(raw["nodes"], "nodes", raw, "nodes")
    nodes = {str(n): _parse_node(str(n), spec, ctx, nodes_raw, files) for n, spec in nodes_raw.items()}
    edges_raw = ctx.mapping(raw["edges"], "edges", raw, "edges")
    edges = {str(n): _parse_edge(str(n), spec, ctx, edges_raw, files, nodes) for n, spec in edges_raw.items()}
    interactions = [e for e in edges.values() if e.role == "interaction"]
    if len(interactions) != 1:
        raise ctx.error(f"exactly one edge needs role: interaction (found {len(interactions)})", raw, "edges", "edges")
    for edge in edges.values():
        if edge.role == "social" and not (edge.src == edge.dst == interactions[0].src):
            raise ctx.error("a social edge joins two nodes of the user type", edges_raw, edge.name, f"edges.{edge.name}")
    for node in nodes.values():
        for d in node.derived.values():
            if d.neighbors not in edges or edges[d.neighbors].src != node.name:
                raise ctx.error(f"derived text '{d.name}' needs an edge from '{node.name}' named '{d.neighbors}'",
                                nodes_raw, node.name, f"nodes.{node.name}.derived.{d.name}.neighbors")
            target = nodes[edges[d.neighbors].dst]
            if d.field not in target.features:
                raise ctx.error(f"derived text '{d.name}': '{d.field}' is not a feature of '{target.name}'",
                                nodes_raw, node.name, f"nodes.{node.name}.derived.{d.name}.field")
    if name is not None and raw["name"] != name:
        raise ctx.error(f"name '{raw['name']}' is not the data set's recorded name '{name}'", raw, "name", "name")
    if name is None and raw["name"] != path.stem:
        raise ctx.error(f"name '{raw['name']}' does not match the file name '{path.name}' (a schema's name is its "
                        f"file name without .yaml: rename the file or write 'name: {path.stem}')", raw, "name", "name")
    return Schema(name=str(raw["name"]), path=path, description=str(raw.get("description", "")).strip(),
                  license=str(raw.get("license", "")).strip(), source=source, files=files, nodes=nodes, edges=edges)


def load_schema(path: str | Path, *, allow_outside_paths: bool = False, name: str | None = None) -> Schema:
    """Load and validate a schema YAML file (``allow_outside_paths``, ``name``: see :func:`parse_schema`)."""
    return parse_schema(load_yaml(path), path, allow_outside_paths=allow_outside_paths, name=name)

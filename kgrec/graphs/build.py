"""Build a :class:`GraphDataset` from a schema and a directory of verified files.

Nothing is changed silently. Each rule below either raises a
:class:`~kgrec.errors.DataError` (exit 4) or is counted in ``GraphDataset.warnings`` (one
:class:`~kgrec.errors.LoadWarning` per cause, with the first line and the count of rows; the
CLI prints them and ``--strict`` turns them into exit 8):

- an edge whose endpoint id is not a node of a type that has a node file is dropped
  (dangling id); node types without a file take their ids from the edges;
- an edge weight or timestamp that is empty, NaN or not a number is dropped;
- an edge weight or timestamp that is not finite (``inf``, ``-inf``, or a number such as
  ``1e400`` that overflows to infinity; for weights, stored as float32, anything beyond
  ±3.4e38) is dropped;
- a negative edge weight is dropped unless the edge declares a ``weight_range`` (then the
  range decides: a weight outside it is dropped); a negative timestamp is dropped;
- an edge of a ``social`` relation from a user to the same user (a self-loop) is dropped;
- a relation value not in the schema's ``relations`` list is dropped;
- duplicate (src, dst[, relation]) rows follow the edge's ``duplicates`` policy (``error``
  raises; the others drop or merge, counted);
- a node feature that is missing, NaN, not finite (or beyond float32) or out of range is set
  to missing (-1 / NaN);
- a duplicate node id keeps its first row; an empty id is dropped;
- ids are kept exactly as written, as Python strings (never numbers: ``7``, ``07``, ``7.0``
  and ``nan`` are four different ids, and trailing NUL characters are kept). Two ids of one
  node type that differ only by surrounding whitespace or Unicode normalisation (``7`` and
  `` 7``; ``é`` composed and decomposed) are ambiguous: the one already stripped and in NFC
  form (else the first seen) is kept and the rows of the others are dropped, counted;
- a multicategorical feature whose ``sep`` never occurs in its column, while its values
  contain whitespace or another common separator (``|``, ``,``, ``;``), is kept with each
  value as one token and counted with the action "not split" (the declared ``sep`` is
  probably wrong). A column of single tokens without such characters is normal.

A value that cannot be parsed as a number counts as missing (the warning quotes it).
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd

from kgrec.errors import DataError, LoadWarning
from kgrec.graphs.dataset import EdgeTable, EdgeType, GraphDataset, NodeTable, reverse_type
from kgrec.graphs.readers import Table, read_table
from kgrec.graphs.schema import EdgeSpec, FeatureSpec, NodeSpec, Schema
from kgrec.graphs.sources import DataLocation

FLOAT32_MAX = float(np.finfo(np.float32).max)
COMMON_SEPARATORS = ("|", ",", ";")


def strings(values: np.ndarray) -> np.ndarray:
    """Cells as an object array of Python ``str``: numpy's fixed-width str dtype would drop
    trailing NUL characters (so ``'7\\x00'`` would become ``'7'``)."""
    return np.fromiter((v if isinstance(v, str) else str(v) for v in values), dtype=object, count=len(values))


TWIN_REASON = "id equal to another but for surrounding whitespace or Unicode normalisation"


def canonical(value: str) -> str:
    """What an id would read as, to a person: stripped and in Unicode NFC form."""
    value = value.strip()
    return value if unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)


def canonical_twins(ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Of the distinct ids at ``rows``, the rows whose id equals another one but for surrounding
    whitespace or Unicode normalisation; the id already in canonical form (else the first seen)
    is the one not returned."""
    canon = np.fromiter((canonical(v) for v in ids[rows]), dtype=object, count=len(rows))
    changed = canon != ids[rows]
    if not changed.any():
        return rows[:0]
    order = np.argsort(changed, kind="stable")  # canonical ids first, then file order
    twin = pd.Series(canon[order]).duplicated().to_numpy()
    return np.sort(rows[order][twin])


class _Builder:
    def __init__(self, schema: Schema, location: DataLocation) -> None:
        self.schema = schema
        self.location = location
        self.warnings: list[LoadWarning] = []
        self._tables: dict[str, Table] = {}
        self._tokens: dict[tuple[str, str], list[list[str]]] = {}  # multicategorical values in file order

    def table(self, name: str) -> Table:
        if name not in self._tables:
            self._tables[name] = read_table(self.location.directory, self.schema.files[name], self.warnings)
        return self._tables[name]

    def warn(self, table: Table, mask: np.ndarray, field: str, reason: str, action: str = "dropped") -> None:
        if mask.any():
            first = int(table.lines[np.flatnonzero(mask)[0]])
            self.warnings.append(LoadWarning(str(table.path), first, field, reason, int(mask.sum()), action))

    def warn_first(self, table: Table, mask: np.ndarray, column: str, reason: str, action: str = "dropped",
                   hint: str = "") -> None:
        """:meth:`warn`, quoting the first offending cell of ``column``: ``reason (first: 'x')[; hint]``."""
        if mask.any():
            first = table.frame[column].iloc[int(np.flatnonzero(mask)[0])]
            self.warn(table, mask, column, f"{reason} (first: '{first}')" + (f"; {hint}" if hint else ""), action)

    def nonfinite(self, table: Table, values: np.ndarray, column: str, keep: np.ndarray, action: str,
                  float32: bool = False) -> np.ndarray:
        """Mask of (kept) values that are ±inf (``inf``, or text such as ``1e400`` that overflows)
        or, with ``float32``, beyond its range; each cause warned about."""
        inf = np.isinf(values) & keep
        self.warn_first(table, inf, column, "not finite", action)
        if not float32:
            return inf
        with np.errstate(invalid="ignore"):
            big = (np.abs(values) > FLOAT32_MAX) & keep & ~inf
        self.warn_first(table, big, column, f"beyond the float32 range of ±{FLOAT32_MAX:.2g}", action)
        return inf | big

    def numeric(self, table: Table, column: str, field: str, action: str) -> tuple[np.ndarray, np.ndarray]:
        """Parse a numeric column; unparsable text becomes NaN, with its own warning.

        Returns the values (float64; ``inf`` where the text overflows) and the mask of
        unparsable entries."""
        raw = table.column(column, field)
        values = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(dtype=np.float64, copy=True)
        lowered = pd.Series(raw, dtype=object).str.strip().str.lower()
        garbage = np.isnan(values) & ~lowered.isin(["", "nan", "na", "null", "none"]).to_numpy()
        self.warn_first(table, garbage, column, "not a number", action)
        return values, garbage

    # ------------------------------------------------------------------ nodes
    def node_table(self, spec: NodeSpec) -> NodeTable:
        if spec.file is None:
            return NodeTable(spec.name, np.empty(0, dtype=object))
        table = self.table(spec.file)
        ids = strings(table.column(spec.id, f"nodes.{spec.name}.id"))
        empty = ids == ""
        self.warn(table, empty, spec.id, "empty node id")
        dup = pd.Series(ids).duplicated().to_numpy() & ~empty
        self.warn(table, dup, spec.id, f"duplicate {spec.name} id (first row kept)")
        twins = np.zeros(len(ids), dtype=bool)
        twins[canonical_twins(ids, np.flatnonzero(~(empty | dup)))] = True
        self.warn_first(table, twins, spec.id, f"{spec.name} {TWIN_REASON}")
        keep = ~(empty | dup | twins)
        if not keep.any():
            raise DataError(f"no valid {spec.name} ids", file=str(table.path), line=table.first_line, field=spec.id)
        sub = Table(table.path, table.frame[keep], table.first_line)
        node = NodeTable(spec.name, ids[keep].astype(object))
        for fspec in spec.features.values():
            node.features[fspec.name], vocab, tokens = self.feature(sub, fspec, spec.name)
            if tokens is not None:
                self._tokens[(spec.name, fspec.name)] = tokens
            if vocab is not None:
                node.vocab[fspec.name] = vocab
        return node

    def feature(self, table: Table, spec: FeatureSpec, node: str
                ) -> tuple[np.ndarray, list[str] | None, list[list[str]] | None]:
        """Values, vocabulary (categorical kinds) and tokens in file order (multicategorical)."""
        field = f"nodes.{node}.features.{spec.name}"
        if spec.type == "numeric":
            values, garbage = self.numeric(table, spec.name, field, "set to missing")
            empty_or_nan = np.isnan(values) & ~garbage
            inf = self.nonfinite(table, values, spec.name, np.ones(len(values), dtype=bool), "set to missing",
                                 float32=True)
            values = np.where(inf, np.nan, values)
            out = np.zeros(len(values), dtype=bool)
            if spec.min is not None:
                out |= values < spec.min
            if spec.max is not None:
                out |= values > spec.max
            self.warn(table, empty_or_nan, spec.name, "missing or NaN", action="set to missing")
            self.warn(table, out, spec.name, f"outside [{spec.min}, {spec.max}]", action="set to missing")
            bad = np.isnan(values) | out
            values = np.where(bad, np.nan, values)
            return values.astype(np.float32), None, None
        raw = strings(table.column(spec.name, field))
        if spec.type == "text":
            return raw, None, None
        missing = np.fromiter((not v.strip() for v in raw), dtype=bool, count=len(raw))
        self.warn(table, missing, spec.name, "empty value", action="set to missing")
        if spec.type == "categorical":
            codes, uniques = pd.factorize(pd.Series(np.where(missing, None, raw)), sort=True)
            return codes.astype(np.int64), [str(u) for u in uniques], None
        self.check_sep(table, spec, raw, missing)
        tokens = [[t for t in v.split(spec.sep) if t] for v in raw]
        vocab = sorted({t for row in tokens for t in row})
        pos = {t: i for i, t in enumerate(vocab)}
        multi = np.zeros((len(raw), len(vocab)), dtype=np.float32)
        for r, row in enumerate(tokens):
            multi[r, [pos[t] for t in row]] = 1.0
        return multi, vocab, tokens

    def check_sep(self, table: Table, spec: FeatureSpec, raw: np.ndarray, missing: np.ndarray) -> None:
        """Warn ("not split") when ``sep`` never occurs but values hold another separator."""
        if missing.all() or any(spec.sep in v for v in raw[~missing]):
            return
        others = [c for c in COMMON_SEPARATORS if c not in spec.sep]
        found = np.fromiter((any(c.isspace() for c in v.strip()) or any(c in v for c in others) for v in raw),
                            dtype=bool, count=len(raw)) & ~missing
        self.warn_first(table, found, spec.name, f"multicategorical sep {spec.sep!r} never occurs in the column, "
                        "but values contain spaces or another separator", action="not split",
                        hint="each value is kept as one token")

    # ------------------------------------------------------------------ edges
    def edge_rows(self, spec: EdgeSpec) -> tuple[Table, dict[str, np.ndarray], np.ndarray]:
        table = self.table(spec.file)
        field = f"edges.{spec.name}.columns"
        cols = {"src": strings(table.column(spec.src_col, f"{field}.src")),
                "dst": strings(table.column(spec.dst_col, f"{field}.dst"))}
        keep = np.ones(len(cols["src"]), dtype=bool)
        if spec.relation_col is not None:
            cols["relation"] = strings(table.column(spec.relation_col, f"{field}.relation"))
            if spec.relations is not None:
                unknown = ~np.isin(cols["relation"], list(spec.relations))
                self.warn(table, unknown, spec.relation_col, "relation type not listed in the schema's 'relations'")
                keep &= ~unknown
        for key, col in (("weight", spec.weight), ("timestamp", spec.timestamp)):
            if col is None:
                continue
            values, garbage = self.numeric(table, col, f"{field}.{key}", "dropped")
            keep &= ~garbage
            self.warn(table, np.isnan(values) & keep, col, "missing or NaN")
            keep &= ~np.isnan(values)
            keep &= ~self.nonfinite(table, values, col, keep, "dropped", float32=key == "weight")
            if key == "weight" and spec.weight_min is not None:
                out = ((values < spec.weight_min) | (values > spec.weight_max)) & keep
                self.warn(table, out, col, f"outside weight_range [{spec.weight_min:g}, {spec.weight_max:g}]")
                keep &= ~out
            else:
                negative = (values < 0) & keep
                self.warn_first(table, negative, col, f"negative {key}",
                                hint="declare a weight_range that allows it" if key == "weight" else "")
                keep &= ~negative
            cols[key] = values
        empty = (cols["src"] == "") | (cols["dst"] == "")
        self.warn(table, empty & keep, f"{spec.src_col}/{spec.dst_col}", "empty id")
        keep &= ~empty
        if spec.role == "social":
            loop = (cols["src"] == cols["dst"]) & keep
            self.warn(table, loop, f"{spec.src_col}/{spec.dst_col}", "self-loop: a social edge from a user to itself")
            keep &= ~loop
        return table, cols, keep

    def dedupe(self, spec: EdgeSpec, table: Table, cols: dict[str, np.ndarray], keep: np.ndarray) -> np.ndarray:
        """Apply the duplicates policy; returns the rows kept (weights updated in ``cols``)."""
        rows = np.flatnonzero(keep)
        key_cols = [cols["src"][rows], cols["dst"][rows]] + ([cols["relation"][rows]] if "relation" in cols else [])
        frame = pd.DataFrame({f"k{i}": k for i, k in enumerate(key_cols)})
        dup = frame.duplicated(keep="last" if spec.duplicates == "last" else "first").to_numpy()
        if not dup.any():
            return rows
        mask = np.zeros(len(keep), dtype=bool)
        mask[rows[dup]] = True
        where = f"duplicate ({spec.src_col}, {spec.dst_col}) pair"
        if spec.duplicates == "error":
            first = int(table.lines[rows[dup][0]])
            raise DataError(f"{where} ({int(dup.sum()):,} duplicates; set 'duplicates' in the schema)",
                            file=str(table.path), line=first, field=f"edges.{spec.name}")
        if spec.duplicates in ("sum", "count", "max"):
            group = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
            values = np.ones(len(rows)) if spec.duplicates == "count" else cols["weight"][rows]
            agg = pd.Series(values).groupby(group).agg("max" if spec.duplicates == "max" else "sum").to_numpy()
            if "weight" not in cols:
                cols["weight"] = np.ones(len(keep))
            cols["weight"][rows] = agg[group]
            self.warn(table, mask, f"edges.{spec.name}", f"{where} merged by {spec.duplicates}", action="merged")
        else:
            self.warn(table, mask, f"edges.{spec.name}", f"{where} ({spec.duplicates} row kept)")
        return rows[~dup]

    def build(self) -> GraphDataset:
        nodes = {name: self.node_table(spec) for name, spec in self.schema.nodes.items()}
        raw_edges = {name: self.edge_rows(spec) for name, spec in self.schema.edges.items()}
        # node types without a file take their ids from every edge end that touches them
        for name, node in nodes.items():
            if self.schema.nodes[name].file is not None:
                continue
            seen: list[np.ndarray] = []
            for ename, spec in self.schema.edges.items():
                _, cols, keep = raw_edges[ename]
                for end in ("src", "dst"):
                    if getattr(spec, end) == name:
                        seen.append(cols[end][keep])
            ids = pd.unique(np.concatenate(seen)).astype(object) if seen else np.empty(0, dtype=object)
            twins = canonical_twins(ids, np.arange(len(ids)))
            node.ids = np.delete(ids, twins)
            self.drop_twin_rows(name, set(ids[twins].tolist()), raw_edges)
        edges: dict[EdgeType, EdgeTable] = {}
        origin: dict[EdgeType, EdgeSpec] = {}
        for ename, spec in self.schema.edges.items():
            table, cols, keep = raw_edges[ename]
            index = {}
            for end in ("src", "dst"):
                ntype = getattr(spec, end)
                idx = pd.Index(nodes[ntype].ids).get_indexer(cols[end])
                dangling = (idx < 0) & keep
                self.warn(table, dangling, getattr(spec, f"{end}_col"),
                          f"id not among the '{ntype}' nodes of {self.schema.nodes[ntype].file} (dangling)")
                keep &= idx >= 0
                index[end] = idx
            rows = self.dedupe(spec, table, cols, keep)
            relations = [spec.name] if spec.relation_col is None else sorted(set(cols["relation"][rows].tolist()))
            for rel in relations:
                sel = rows if spec.relation_col is None else rows[cols["relation"][rows] == rel]
                et = (spec.src, rel, spec.dst)
                if et in edges:
                    raise DataError(f"relation '{rel}' from column '{spec.relation_col}' clashes with another edge type",
                                    file=str(table.path), field=f"edges.{spec.name}")
                edges[et] = EdgeTable(index["src"][sel].astype(np.int64), index["dst"][sel].astype(np.int64),
                                      None if "weight" not in cols else cols["weight"][sel].astype(np.float32),
                                      None if "timestamp" not in cols else cols["timestamp"][sel].astype(np.float64))
                origin[et] = spec
        for et, spec in origin.items():
            if spec.reverse and reverse_type(et) in edges:
                raise DataError(f"edge type {reverse_type(et)} clashes with the reverse of {et} ('reverse: true'); "
                                "rename one of them", file=str(self.schema.path), field=f"edges.{spec.name}.reverse")
        dataset = GraphDataset(self.schema, nodes, edges, origin, self.location, self.warnings)
        for name, spec in self.schema.nodes.items():
            if spec.text is not None:
                nodes[name].text = self.render_text(dataset, spec)
        return dataset

    def drop_twin_rows(self, ntype: str, twins: set[str],
                       raw_edges: dict[str, tuple[Table, dict[str, np.ndarray], np.ndarray]]) -> None:
        """Drop (counted) the edge rows whose ``ntype`` end is one of the ``twins`` (see :func:`canonical_twins`)."""
        if not twins:
            return
        for ename, spec in self.schema.edges.items():
            table, cols, keep = raw_edges[ename]
            for end in ("src", "dst"):
                if getattr(spec, end) == ntype:
                    col = getattr(spec, f"{end}_col")
                    bad = np.isin(cols[end], list(twins)) & keep
                    self.warn_first(table, bad, col, f"{ntype} {TWIN_REASON}")
                    keep &= ~bad

    def render_text(self, dataset: GraphDataset, spec: NodeSpec) -> list[str]:
        node = dataset.nodes[spec.name]
        columns: dict[str, list[str]] = {}
        for fname, fspec in spec.features.items():
            values = node.features[fname]
            if fspec.type == "categorical":
                vocab = node.vocab[fname]
                columns[fname] = [vocab[c] if c >= 0 else "" for c in values]
            elif fspec.type == "multicategorical":
                columns[fname] = [", ".join(tokens) for tokens in self._tokens[(spec.name, fname)]]
            elif fspec.type == "numeric":
                columns[fname] = ["" if np.isnan(v) else f"{v:g}" for v in values]
            else:
                columns[fname] = [str(v) for v in values]
        for d in spec.derived.values():
            columns[d.name] = top_neighbour_text(dataset, d.neighbors, d.field, d.top, node.num)
        names = list(columns)
        return [spec.text.format(**dict(zip(names, row))) for row in zip(*(columns[n] for n in names))] \
            if names else [spec.text.format()] * node.num


def top_neighbour_text(dataset: GraphDataset, edge_name: str, field: str, top: int, num: int) -> list[str]:
    """For each source node, its ``top`` neighbours' ``field`` over edge entry ``edge_name``,
    ordered by edge weight (descending) then neighbour index, joined by ', '."""
    ets = [et for et, spec in dataset.origin.items() if spec.name == edge_name]
    src = np.concatenate([dataset.edges[et].src for et in ets])
    dst = np.concatenate([dataset.edges[et].dst for et in ets])
    weights = [dataset.edges[et].weight for et in ets]
    weight = np.concatenate([w if w is not None else np.ones(len(dataset.edges[et]), np.float32)
                             for w, et in zip(weights, ets)])
    target = dataset.nodes[ets[0][2]].features[field] if ets else np.empty(0)
    order = np.lexsort((dst, -weight, src))
    out: list[list[str]] = [[] for _ in range(num)]
    for s, d in zip(src[order].tolist(), dst[order].tolist()):
        if len(out[s]) < top:
            out[s].append(str(target[d]))
    return [", ".join(x) for x in out]


def build_dataset(schema: Schema, location: DataLocation) -> GraphDataset:
    """Read, validate and index every file of ``schema`` from ``location``."""
    return _Builder(schema, location).build()

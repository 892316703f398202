"""The typed in-memory data set: id maps, feature tables, edges per relation, node text.

:class:`GraphDataset` is the contract between ``kgrec.graphs`` and everything downstream.
``to_hetero()`` returns a :class:`torch_geometric.data.HeteroData` whose ``metadata()``
mirrors the schema: one node type per schema node, one edge type per relation, plus
``rev_<relation>`` edge types where the schema asks for reverse edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kgrec.errors import LoadWarning
from kgrec.graphs.schema import EdgeSpec, Schema
from kgrec.graphs.sources import DataLocation

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

EdgeType = tuple[str, str, str]


@dataclass
class NodeTable:
    """Nodes of one type. Index ``k`` is the node with raw id ``ids[k]``.

    ``features[name]`` is, by feature type: categorical → int64 codes ``[N]`` into
    ``vocab[name]`` (-1 = missing); multicategorical → float32 multi-hot ``[N, len(vocab)]``;
    numeric → float32 ``[N]`` (NaN = missing); text → object ``[N]`` of str.
    """

    name: str
    ids: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)
    vocab: dict[str, list[str]] = field(default_factory=dict)
    text: list[str] | None = None

    @property
    def num(self) -> int:
        return len(self.ids)

    def index(self) -> dict[str, int]:
        """Raw id → index."""
        return {raw: i for i, raw in enumerate(self.ids.tolist())}

    def extended(self, ids: list[str], text: list[str | None] | None = None) -> NodeTable:
        """A copy with ``ids`` appended (``kgrec update``'s new users and items). New nodes
        have no features: categorical codes -1, numeric NaN, multi-hot rows of zeros, text
        features ``""`` (what loading writes for a missing value). Their node text is
        ``text[k]`` where given, else ``""``; the table's text stays ``None`` if it had none."""
        n = len(ids)
        features: dict[str, np.ndarray] = {}
        for name, values in self.features.items():
            if values.dtype == object:
                fill = np.array([""] * n, dtype=object)
            elif values.dtype.kind in "iu":
                fill = np.full(n, -1, dtype=values.dtype)
            elif values.ndim == 2:
                fill = np.zeros((n, values.shape[1]), dtype=values.dtype)
            else:
                fill = np.full(n, np.nan, dtype=values.dtype)
            features[name] = np.concatenate([values, fill])
        node_text = None
        if self.text is not None:
            given = list(text) if text is not None else [None] * n
            node_text = list(self.text) + [t if t is not None else "" for t in given]
        return NodeTable(self.name, np.concatenate([self.ids, np.array(list(ids), dtype=object)]).astype(object),
                         features, dict(self.vocab), node_text)


@dataclass
class EdgeTable:
    """Edges of one type as index arrays; optional float32 weight and float64 timestamp."""

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray | None = None
    timestamp: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.src)

    def subset(self, rows: np.ndarray) -> EdgeTable:
        return EdgeTable(self.src[rows], self.dst[rows], None if self.weight is None else self.weight[rows],
                         None if self.timestamp is None else self.timestamp[rows])

    def appended(self, other: EdgeTable) -> EdgeTable:
        """The rows of ``self`` then those of ``other`` (which must have a weight and a
        timestamp exactly where ``self`` has them)."""
        for name in ("weight", "timestamp"):
            if (getattr(self, name) is None) != (getattr(other, name) is None):
                raise ValueError(f"cannot append edges {'without' if getattr(other, name) is None else 'with'} "
                                 f"a {name} to edges {'with' if getattr(self, name) is not None else 'without'} one")

        def cat(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.concatenate([a, np.asarray(b, dtype=a.dtype)])

        return EdgeTable(cat(self.src, other.src), cat(self.dst, other.dst), cat(self.weight, other.weight),
                         cat(self.timestamp, other.timestamp))


@dataclass
class GraphDataset:
    schema: Schema
    nodes: dict[str, NodeTable]
    edges: dict[EdgeType, EdgeTable]
    origin: dict[EdgeType, EdgeSpec]
    location: DataLocation | None = None
    warnings: list[LoadWarning] = field(default_factory=list)

    @property
    def interaction_type(self) -> EdgeType:
        return self.schema.interaction.edge_type

    @property
    def interactions(self) -> EdgeTable:
        return self.edges[self.interaction_type]

    @property
    def num_users(self) -> int:
        return self.nodes[self.schema.user_type].num

    @property
    def num_items(self) -> int:
        return self.nodes[self.schema.item_type].num

    def with_additions(self, new_users: list[str], new_items: list[str], interactions: EdgeTable,
                       item_text: list[str | None] | None = None) -> GraphDataset:
        """A copy with new users and items appended to their node tables (in the order given,
        so every existing index stays valid; see :meth:`NodeTable.extended`) and
        ``interactions`` (indices into the extended tables) appended to the interaction edges.
        Other edges, the schema, the location (the data files' hashes) and the warnings are
        those of ``self``. Used by ``kgrec update`` and by loading an updated run."""
        user_type, item_type = self.schema.user_type, self.schema.item_type
        nodes = dict(self.nodes)
        nodes[user_type] = nodes[user_type].extended(new_users)
        nodes[item_type] = nodes[item_type].extended(new_items, item_text)
        n_users, n_items = nodes[user_type].num, nodes[item_type].num
        if len(interactions) and (interactions.src.min() < 0 or interactions.src.max() >= n_users
                                  or interactions.dst.min() < 0 or interactions.dst.max() >= n_items):
            raise ValueError("appended interactions index users or items outside the extended node tables")
        edges = dict(self.edges)
        edges[self.interaction_type] = self.interactions.appended(interactions)
        return GraphDataset(self.schema, nodes, edges, dict(self.origin), self.location, list(self.warnings))

    def edge_types(self, role: str | None = None) -> list[EdgeType]:
        return [et for et, spec in self.origin.items() if role is None or spec.role == role]

    def metadata(self) -> tuple[list[str], list[EdgeType]]:
        """What ``to_hetero().metadata()`` returns, without building tensors."""
        types: list[EdgeType] = []
        for et, spec in self.origin.items():
            types.append(et)
            if spec.reverse:
                types.append(reverse_type(et))
        return list(self.nodes), types

    def to_hetero(self, interactions: EdgeTable | None = None) -> HeteroData:
        """Build a ``HeteroData``; pass ``interactions`` to replace the interaction edges
        (a split's training edges). Reverse edges are built from the edges actually used,
        so held-out pairs never leak through ``rev_`` edge types."""
        import torch
        from torch_geometric.data import HeteroData

        data = HeteroData()
        for name, table in self.nodes.items():
            store = data[name]
            store.num_nodes = table.num
            for fname, values in table.features.items():
                if values.dtype != object:
                    store[fname] = torch.from_numpy(values)
        for et, spec in self.origin.items():
            table = interactions if (interactions is not None and et == self.interaction_type) else self.edges[et]
            pairs = [(et, table.src, table.dst)]
            if spec.reverse:
                pairs.append((reverse_type(et), table.dst, table.src))
            for etype, src, dst in pairs:
                store = data[etype]
                store.edge_index = torch.from_numpy(np.stack([src, dst]).astype(np.int64))
                if table.weight is not None:
                    store.edge_weight = torch.from_numpy(table.weight)
                if table.timestamp is not None:
                    store.edge_time = torch.from_numpy(table.timestamp)
        return data

    def summary(self) -> dict[str, object]:
        """Counts per node and edge type, interaction sparsity, linked-item coverage."""
        inter = self.interactions
        users, items = self.num_users, self.num_items
        item_type = self.schema.item_type
        linked = np.zeros(items, dtype=bool)
        for et, spec in self.origin.items():
            if spec.role in ("kg", "link") and et[0] == item_type:
                linked[self.edges[et].src] = True
        groups: dict[str, int] = {}
        for et, spec in self.origin.items():
            if spec.relation_col is not None:
                groups[spec.name] = groups.get(spec.name, 0) + len(self.edges[et])
        return {
            "name": self.schema.name,
            "nodes": {n: t.num for n, t in self.nodes.items()},
            "edges": {et_name(et): len(self.edges[et]) for et in self.origin},
            "relation_groups": {name: {"relations": sum(1 for s in self.origin.values() if s.name == name),
                                       "edges": count} for name, count in groups.items()},
            "interactions": len(inter),
            "users_with_interactions": int(len(np.unique(inter.src))),
            "items_with_interactions": int(len(np.unique(inter.dst))),
            "sparsity": 1.0 - len(inter) / float(max(users * items, 1)),
            "kg_triples": sum(len(self.edges[et]) for et in self.edge_types("kg")),
            "kg_relation_types": len(self.edge_types("kg")),
            "linked_items": int(linked.sum()),
            "linked_item_coverage": float(linked.mean()) if items else 0.0,
            "sensitive": {n: list(s) for n, s in self.schema.sensitive_attributes().items()},
            "warnings": [w.as_dict() for w in self.warnings],
            "files": {} if self.location is None else dict(self.location.sha256),
            "origin": None if self.location is None else self.location.origin,
        }


def reverse_type(et: EdgeType) -> EdgeType:
    return (et[2], f"rev_{et[1]}", et[0])


def et_name(et: EdgeType) -> str:
    return f"({et[0]}, {et[1]}, {et[2]})"

"""Schema-driven side information for the graph models: KG relation paths, social graph,
and the closed-form item-item component with side information (node attribute matrices
are in :mod:`kgrec.data.features`).

Nothing here knows a data set's name: relation paths come from edge roles in the schema.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from kgrec.graphs.dataset import GraphDataset


def row_normalize(m: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float64)
    deg = np.asarray(m.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.maximum(deg, 1e-12), 0.0)
    return sp.csr_matrix(sp.diags(inv) @ m)


def _adjacency(ds: GraphDataset, et: tuple[str, str, str]) -> sp.csr_matrix:
    e = ds.edges[et]
    m = sp.csr_matrix((np.ones(len(e)), (e.src, e.dst)), shape=(ds.nodes[et[0]].num, ds.nodes[et[2]].num))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


@dataclass
class RelationPath:
    """Items → nodes of ``target`` along a named path, as a row-normalised [I, N] matrix.

    A two-hop path keeps its parts: ``first`` the relation leaving the item type, ``mid`` the
    node type it reaches, ``second`` the edge type of the second hop and ``forward`` whether
    it is walked from its source (``False``: the ``rev_`` direction); one-hop paths leave
    ``second`` None."""

    name: str
    target: str
    matrix: sp.csr_matrix
    first: str = ""
    mid: str = ""
    second: tuple[str, str, str] | None = None
    forward: bool = True


def item_relation_paths(ds: GraphDataset, max_paths: int = 64, max_fanout: float = 64.0) -> list[RelationPath]:
    """One path per KG/link relation leaving the item type, and per KG relation one hop
    further (item → link → entity → relation → entity), both directions of KG edges.

    Each path is a relation type the model learns a transform for, so a relation added in
    the schema YAML is picked up with no code change. A two-hop path that reaches more than
    ``max_fanout`` nodes per item on average is skipped: its nnz grows with items × nodes
    (e.g. item → genre → every creator working in that genre), which would make memory
    and each step's cost quadratic, and it carries little beyond its one-hop prefix.
    """
    item = ds.schema.item_type
    kg_types = [et for et in ds.edge_types() if ds.origin[et].role in ("kg", "link")]
    paths: list[RelationPath] = []
    for et in kg_types:
        if et[0] != item:
            continue
        first = _adjacency(ds, et)
        paths.append(RelationPath(et[1], et[2], row_normalize(first), first=et[1], mid=et[2]))
        for et2 in kg_types:
            for forward in (True, False):
                src, dst = (et2[0], et2[2]) if forward else (et2[2], et2[0])
                if src != et[2] or et2[0] == item or et2[2] == item:
                    continue
                second = _adjacency(ds, et2)
                second = second if forward else sp.csr_matrix(second.T)
                two = first @ second
                if two.nnz and two.nnz <= max_fanout * two.shape[0]:
                    label = f"{et[1]}/{et2[1]}" if forward else f"{et[1]}/rev_{et2[1]}"
                    paths.append(RelationPath(label, dst, row_normalize(two), first=et[1], mid=et[2], second=et2,
                                              forward=forward))
    paths.sort(key=lambda p: -p.matrix.nnz)
    return paths[:max_paths]


def social_matrix(ds: GraphDataset) -> sp.csr_matrix | None:
    """Row-normalised, symmetrised user-user matrix of all social edge types (or None)."""
    ets = [et for et in ds.edge_types("social")]
    if not ets:
        return None
    m = sum(_adjacency(ds, et) for et in ets)
    m = m + m.T
    m.setdiag(0)
    m.eliminate_zeros()
    m.data[:] = 1.0
    return row_normalize(m)


def item_item_with_side(train: sp.csr_matrix, side: list[np.ndarray | sp.spmatrix], reg: float,
                        side_weight: float) -> np.ndarray:
    """EASE with side information (Jeunen et al., 2020, "closed-form models for CF with side
    information"): the Gram matrix gains ``side_weight · F Fᵀ`` for each side block
    ``F`` [I, f] (rows L2-normalised), so items similar in KG or text share weight and
    items without interactions get non-zero columns. Returns ``B`` [I, I] with zero diagonal."""
    x = sp.csr_matrix(train, dtype=np.float64)
    gram = (x.T @ x).toarray()
    scale = np.mean(np.diag(gram))
    for f in side:
        f = f.toarray() if sp.issparse(f) else np.asarray(f, dtype=np.float64)
        norms = np.linalg.norm(f, axis=1, keepdims=True)
        f = f / np.maximum(norms, 1e-12)
        gram += side_weight * scale * (f @ f.T)
    gram[np.diag_indices_from(gram)] += reg
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b

"""Hypothesis properties of graph propagation and KG relation paths (issue 5, property 4:
locality). Real components: LightGCN propagation over drawn interaction matrices, and the
relation paths of a tiny synthetic world."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import shortest_path

from kgrec.data.view import bipartite_adjacency
from kgrec.graphs.dataset import EdgeTable, GraphDataset, NodeTable
from kgrec.models.propagation import propagate, to_torch_csr
from kgrec.models.side import item_relation_paths

sys.path.insert(0, str(Path(__file__).resolve().parent))

from strategies import binary_matrices


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> GraphDataset:
    """A tiny synthetic world (100 users, 40 items, KG + friends)."""
    from kgrec.graphs import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGREC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return load_dataset("synthetic", synthetic={"n_users": 100, "n_items": 40, "n_interactions": 300, "seed": 1})


# ----------------------------------------------------------------------------- 4. locality
@given(train=binary_matrices(min_rows=2, max_rows=9, min_cols=2, max_cols=9), layers=st.integers(1, 3),
       data=st.data())
def test_propagation_is_local(train, layers, data) -> None:
    """Adding (u, i) changes only nodes within ``layers`` hops of u or i (in the new graph)."""
    n_users, n_items = train.shape
    free = np.argwhere(train == 0)
    assume(len(free))
    u, i = free[data.draw(st.integers(0, len(free) - 1))]
    new = train.copy()
    new[u, i] = 1.0
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(n_users + n_items, 3)).astype(np.float32))
    before = propagate(to_torch_csr(bipartite_adjacency(sp.csr_matrix(train))), x, layers)
    after = propagate(to_torch_csr(bipartite_adjacency(sp.csr_matrix(new))), x, layers)
    hops = shortest_path(sp.bmat([[None, sp.csr_matrix(new)], [sp.csr_matrix(new).T, None]]), unweighted=True,
                         indices=[u, n_users + i]).min(0)
    far = np.flatnonzero(hops > layers)
    note(f"edge ({u}, {i}), far nodes {far.tolist()}")
    torch.testing.assert_close(after[far], before[far], atol=1e-6, rtol=0.0)


def _with_extras(ds: GraphDataset, keep: np.random.Generator, n_entities: int, empty: tuple[str, str] | None,
                 position: int) -> GraphDataset:
    """A copy of ``ds`` with a random subset of KG edges kept (``keep``), ``n_entities``
    isolated entities appended and, optionally, a relation ``empty = (src type, dst type)``
    without edges inserted at ``position`` of the edge types."""
    edges = {et: (e.subset(np.flatnonzero(keep.random(len(e)) < 0.7)) if ds.origin[et].role == "kg" else e)
             for et, e in ds.edges.items()}
    nodes = dict(ds.nodes)
    if n_entities:
        ent = ds.nodes["entity"]
        nodes["entity"] = NodeTable(ent.name, np.append(ent.ids, [f"new:{k}" for k in range(n_entities)]),
                                    dict(ent.features), dict(ent.vocab), ent.text)
    origin = dict(ds.origin)
    if empty is not None:
        spec = next(s for et, s in ds.origin.items() if s.role == "kg")
        et = (empty[0], "no_edges", empty[1])
        items = list(origin.items())
        items.insert(position % (len(items) + 1), (et, dataclasses.replace(spec, name="no_edges", src=empty[0],
                                                                           dst=empty[1])))
        origin = dict(items)
        edges[et] = EdgeTable(np.empty(0, np.int64), np.empty(0, np.int64))
    return dataclasses.replace(ds, nodes=nodes, edges=edges, origin=origin)


@settings(max_examples=30)
@given(seed=st.integers(0, 2**16), n_entities=st.integers(0, 3),
       empty=st.sampled_from([None, ("item", "entity"), ("entity", "entity")]), position=st.integers(0, 20))
def test_isolated_entity_or_empty_relation_leaves_kg_paths(dataset, seed, n_entities, empty, position) -> None:
    assume(n_entities or empty is not None)
    ds = _with_extras(dataset, np.random.default_rng(seed), 0, None, 0)
    grown = _with_extras(dataset, np.random.default_rng(seed), n_entities, empty, position)
    old, new = item_relation_paths(ds), item_relation_paths(grown)
    by_name = {p.name: p for p in new}
    assert [p.name for p in new if p.name in {o.name for o in old}] == [o.name for o in old]  # order kept
    for p in old:
        q = by_name[p.name]
        n_old = p.matrix.shape[1]
        assert q.target == p.target and q.matrix.shape[0] == p.matrix.shape[0]
        assert (q.matrix[:, :n_old] != p.matrix).nnz == 0
        assert q.matrix[:, n_old:].nnz == 0
    assert all(q.matrix.nnz == 0 for q in new if q.name not in {p.name for p in old})

"""The training view is the only door to interactions: nothing reachable from it, nor the
graph any model propagates over, holds a validation or test pair."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from kgrec.data import SPLIT_METHODS, SplitConfig, make_split
from kgrec.data.view import HeldOut, TrainingView, views


def pairs_of(table) -> set[tuple[int, int]]:
    return set(zip(table.src.tolist(), table.dst.tolist()))


def matrix_pairs(m: sp.spmatrix) -> set[tuple[int, int]]:
    coo = sp.coo_matrix(m)
    coo.eliminate_zeros()
    return set(zip(coo.row.tolist(), coo.col.tolist()))


def held_out_pairs(ds, split) -> set[tuple[int, int]]:
    """Pairs that occur only in validation or test (a pair repeated in train is not held out)."""
    train = pairs_of(ds.interactions.subset(split.train))
    return (pairs_of(ds.interactions.subset(split.valid)) | pairs_of(ds.interactions.subset(split.test))) - train


@pytest.mark.parametrize("method", SPLIT_METHODS)
def test_view_holds_training_pairs_only(movielens, method: str) -> None:
    split = make_split(movielens, SplitConfig(method=method, seed=3))
    view = TrainingView.from_split(movielens, split)
    train = pairs_of(movielens.interactions.subset(split.train))
    held = held_out_pairs(movielens, split)
    assert held, "the split must hold something out for this test to mean anything"
    # the view's own interaction table, its matrix, and the HeteroData built from it
    assert pairs_of(view.dataset.interactions) == train
    assert matrix_pairs(view.train) == train
    graph = view.message_passing_graph()
    fwd = graph["user", "rated", "item"].edge_index
    rev = graph["item", "rev_rated", "user"].edge_index
    in_graph = set(zip(fwd[0].tolist(), fwd[1].tolist())) | set(zip(rev[1].tolist(), rev[0].tolist()))
    assert in_graph == train and not in_graph & held
    # the normalised user-item graph the GNNs propagate over, both blocks
    adj = view.bipartite_adjacency()
    u = view.num_users
    assert matrix_pairs(adj[:u, u:]) == train
    assert {(a, b) for b, a in matrix_pairs(adj[u:, :u])} == train
    # non-interaction relations are kept whole
    full = movielens.to_hetero()
    assert graph["item", "linked_to", "entity"].edge_index.equal(full["item", "linked_to", "entity"].edge_index)
    # the full data set is untouched
    assert len(movielens.interactions) == len(split.train) + len(split.valid) + len(split.test)


def test_the_check_can_fail_on_the_full_graph(movielens) -> None:
    """The comparison above detects a leak: the unsplit data set's graph holds held-out pairs."""
    split = make_split(movielens, SplitConfig(seed=3))
    full = movielens.to_hetero()["item", "rev_rated", "user"].edge_index
    assert set(zip(full[1].tolist(), full[0].tolist())) & held_out_pairs(movielens, split)


@pytest.mark.parametrize("name", ["lightgcn", "kgrec"])
def test_graph_models_propagate_over_the_views_graph(tiny, name: str) -> None:
    """The adjacency inside a built model is the view's, so the view tests cover the models."""
    import torch

    from kgrec.models.base import ModelContext, create_model

    split = make_split(tiny, SplitConfig(seed=1))
    view, _ = views(tiny, split)
    model = create_model(name, ModelContext(view), {"dim": 4})
    adj = model.adj.to_dense().numpy()
    expected = view.bipartite_adjacency().toarray()
    np.testing.assert_allclose(adj, expected, rtol=1e-6)
    held = held_out_pairs(tiny, split)
    u = view.num_users
    assert held and all(adj[a, u + b] == 0 for a, b in held)
    assert isinstance(model.adj, torch.Tensor)


def test_held_out_parts_and_exclusion(movielens) -> None:
    split = make_split(movielens, SplitConfig(seed=3))
    view, heldout = views(movielens, split)
    assert matrix_pairs(heldout.valid) == pairs_of(movielens.interactions.subset(split.valid))
    assert matrix_pairs(heldout.test) == pairs_of(movielens.interactions.subset(split.test))
    assert matrix_pairs(heldout.exclusion(view, "valid")) == matrix_pairs(view.train)
    assert matrix_pairs(heldout.exclusion(view, "test")) == matrix_pairs(view.train) | matrix_pairs(heldout.valid)
    with pytest.raises(ValueError):
        heldout.part("train")
    assert isinstance(heldout, HeldOut)

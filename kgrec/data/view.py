"""The training view: the only door to interactions for models, the trainer, cold start and
the audit.

A split yields two objects:

- :class:`TrainingView`: the data set with its interaction table cut down to the training
  interactions (nodes, features, text, KG, social and link edges are kept), the binary
  training matrix ``train`` [U, I] built from it, and the message-passing graph built from
  it. Nothing reachable from a view holds a validation or test pair, so held-out pairs
  cannot leak by structure.
- :class:`HeldOut`: the validation and test matrices and the cold-start sets, which only
  evaluation reads.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from kgrec.data.splits import Split
from kgrec.graphs.dataset import EdgeTable, GraphDataset

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData


def interaction_matrix(table: EdgeTable, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary CSR [U, I] of an interaction table (duplicates merged, sorted indices)."""
    m = sp.csr_matrix((np.ones(len(table), dtype=np.float32), (table.src, table.dst)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    m.sort_indices()
    return m


def bipartite_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """The normalised user-item adjacency ``Â`` [(U+I), (U+I)] of LightGCN (He et al., 2020):
    ``A = [[0, R], [Rᵀ, 0]]``, ``Â = D^{-1/2} A D^{-1/2}`` (isolated nodes stay zero)."""
    r = sp.csr_matrix(train, dtype=np.float64)
    a = sp.bmat([[None, r], [r.T, None]], format="csr")
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    d = sp.diags(inv)
    return sp.csr_matrix(d @ a @ d)


@dataclass(frozen=True)
class TrainingView:
    """What a model may see (see the module docstring).

    ``dataset.interactions`` holds the training interactions only; ``train`` is their
    binary [U, I] matrix.
    """

    dataset: GraphDataset
    train: sp.csr_matrix

    @classmethod
    def from_split(cls, dataset: GraphDataset, split: Split) -> TrainingView:
        part = dataset.interactions.subset(split.train)
        restricted = copy.copy(dataset)
        restricted.edges = {**dataset.edges, dataset.interaction_type: part}
        restricted.warnings = list(dataset.warnings)
        return cls(restricted, interaction_matrix(part, dataset.num_users, dataset.num_items))

    @property
    def num_users(self) -> int:
        return self.train.shape[0]

    @property
    def num_items(self) -> int:
        return self.train.shape[1]

    @property
    def item_counts(self) -> np.ndarray:
        """Training interactions per item, int64 [I]."""
        return np.diff(self.train.tocsc().indptr).astype(np.int64)

    def message_passing_graph(self) -> HeteroData:
        """The ``HeteroData`` of the view (training interactions and their reverse edges,
        plus every non-interaction relation)."""
        return self.dataset.to_hetero()

    def bipartite_adjacency(self) -> sp.csr_matrix:
        """The normalised user-item graph the graph models propagate over
        (:func:`bipartite_adjacency` of ``train``)."""
        return bipartite_adjacency(self.train)


@dataclass(frozen=True)
class HeldOut:
    """Validation and test interactions ([U, I] binary CSR each) and the cold-start sets."""

    valid: sp.csr_matrix
    test: sp.csr_matrix
    cold_items: np.ndarray
    cold_users: np.ndarray

    @classmethod
    def from_split(cls, dataset: GraphDataset, split: Split) -> HeldOut:
        u, i = dataset.num_users, dataset.num_items
        return cls(interaction_matrix(dataset.interactions.subset(split.valid), u, i),
                   interaction_matrix(dataset.interactions.subset(split.test), u, i),
                   np.asarray(split.cold_items, dtype=np.int64), np.asarray(split.cold_users, dtype=np.int64))

    def part(self, name: str) -> sp.csr_matrix:
        """The binary [U, I] matrix of ``valid`` or ``test``."""
        if name not in ("valid", "test"):
            raise ValueError(f"held-out part must be 'valid' or 'test', got {name!r}")
        return getattr(self, name)

    def exclusion(self, view: TrainingView, name: str) -> sp.csr_matrix:
        """Items never to recommend when ranking for ``name``: the training items, plus the
        validation items when ranking for test (RecBole's full-ranking protocol)."""
        self.part(name)
        if name == "valid":
            return view.train
        both = sp.csr_matrix(view.train + self.valid)
        both.data[:] = 1.0
        return both


def views(dataset: GraphDataset, split: Split) -> tuple[TrainingView, HeldOut]:
    """The training view and the held-out parts of ``split``."""
    return TrainingView.from_split(dataset, split), HeldOut.from_split(dataset, split)

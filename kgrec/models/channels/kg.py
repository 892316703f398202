"""The knowledge-graph channel: relation paths from the schema's KG and link edges.

``h_i ← h_i + Σ_r softmax(a)_r · (M_r (E_{T(r)} ⊙ w_r))_i`` where ``M_r`` is the
row-normalised item → node matrix of relation path ``r`` (one and two hops,
:func:`kgrec.models.side.item_relation_paths`), ``E_T`` embeddings of the path's target
nodes and ``w_r`` a per-relation diagonal transform (R-GCN with diagonal bases). A relation
added in the schema YAML is a new path, with no code change. Edge masks: ``kg[r]`` over the
item's row of ``M_r``; the path rows, side by side, are cold items' content.

Fold-in (:mod:`kgrec.models.foldin`): a new item's row of path ``r`` is its links along
``r`` (distinct targets, weight ``1/n``); a two-hop path without such links derives its row
from the links of its first hop through the second hop's edges, weighted as in training
(:meth:`KnowledgeGraph.second_hops`, rebuilt from the data set), or is empty without them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from kgrec.models.channels.base import Channel, ChannelSettings, NewItem
from kgrec.models.masks import EdgeMasks, replace_row
from kgrec.models.propagation import SparseOperator
from kgrec.models.side import RelationPath, item_relation_paths


class KnowledgeGraph(Channel):
    name = "kg"

    def __init__(self, ctx, paths: list[RelationPath], settings: ChannelSettings) -> None:
        super().__init__()
        ds = ctx.dataset
        self.paths = paths
        for p in paths:  # sorted rows: fold-in's new-item rows (sorted targets) match a trained item's row
            p.matrix.sort_indices()
        self.path_ops = [SparseOperator(p.matrix) for p in paths]
        targets = sorted({p.target for p in paths})
        self.target_index = {t: k for k, t in enumerate(targets)}
        self.node_emb = nn.ModuleList(nn.Embedding(ds.nodes[t].num, settings.dim) for t in targets)
        for emb in self.node_emb:
            nn.init.normal_(emb.weight, std=settings.init_std)
        self.rel_diag = nn.Parameter(torch.ones(len(paths), settings.dim))
        self.rel_logit = nn.Parameter(torch.zeros(len(paths)))

    @classmethod
    def build(cls, ctx, settings: ChannelSettings) -> KnowledgeGraph | None:
        paths = item_relation_paths(ctx.dataset, settings.max_paths)
        return cls(ctx, paths, settings) if paths else None

    def attention(self) -> Tensor:
        return torch.softmax(self.rel_logit, 0)

    def row(self, k: int, item: int) -> tuple[Tensor, Tensor]:
        """Item ``item``'s edges along path ``k``: (target indices int64, weights float32)."""
        row = self.paths[k].matrix[item]
        return torch.from_numpy(row.indices.astype(np.int64)), torch.from_numpy(row.data.astype(np.float32))

    def item(self, h: Tensor, masks: EdgeMasks | None = None) -> Tensor:
        att = self.attention()
        for k, (path, op) in enumerate(zip(self.paths, self.path_ops)):
            x = self.node_emb[self.target_index[path.target]].weight * self.rel_diag[k]
            y = op(x)
            if masks is not None and k < len(masks.kg) and masks.kg[k] is not None:
                cols, vals = self.row(k, masks.item)
                y = replace_row(y, masks.item, (vals * masks.kg[k]) @ x[cols])
            h = h + att[k] * y
        return h

    def item_content(self) -> list[np.ndarray | sp.spmatrix]:
        return [sp.hstack([p.matrix for p in self.paths], format="csr")]

    def link_relations(self, second_hops: dict[str, tuple[str, str, sp.csr_matrix]]) -> dict[str, tuple[str, int]]:
        """The relations a new item's links may name → (target node type, node count): every
        path, and the first hops of the two-hop paths in ``second_hops``."""
        out = {p.name: (p.target, p.matrix.shape[1]) for p in self.paths}
        for first, mid, hop in second_hops.values():
            out.setdefault(first, (mid, hop.shape[0]))
        return out

    def second_hops(self, ds) -> dict[str, tuple[str, str, sp.csr_matrix]]:
        """Each two-hop path ``a/b`` (or ``a/rev_b``) → (``a``, the node type it reaches, the
        binary adjacency [N_mid, N_target] of ``b``, transposed for ``rev_b``), rebuilt from the
        data set ``ds`` with the parts the path recorded (:class:`kgrec.models.side.RelationPath`)."""
        from kgrec.models.side import _adjacency

        out: dict[str, tuple[str, str, sp.csr_matrix]] = {}
        for p in self.paths:
            if p.second is not None:
                hop = _adjacency(ds, p.second)
                out[p.name] = (p.first, p.mid, hop if p.forward else sp.csr_matrix(hop.T))
        return out

    def new_item_rows(self, item: NewItem) -> list[tuple[np.ndarray, np.ndarray]]:
        """A new item's row of each ``M_r`` (target indices int64, weights float64), in path
        order: ``1/n`` over the ``n`` distinct targets given for ``r`` itself; else, for a
        two-hop path, its first hop's links through the second hop (each target weighted by
        the intermediate nodes reaching it, as in training); else empty."""
        rows = []
        for p in self.paths:
            first, _, second = p.name.partition("/")
            cols, vals = np.zeros(0, np.int64), np.zeros(0)
            if p.name in item.links:
                cols = np.unique(item.links[p.name])
                vals = np.full(len(cols), 1.0 / max(len(cols), 1))
            elif second and p.name in item.second_hops and first in item.links:
                hop = item.second_hops[p.name][2]
                mids = np.unique(item.links[first])
                reached = [hop.indices[hop.indptr[m]: hop.indptr[m + 1]] for m in mids]
                cols, counts = np.unique(np.concatenate(reached) if reached else cols, return_counts=True)
                vals = counts / max(counts.sum(), 1)
            rows.append((cols, vals))
        return rows

    def fold_in_item(self, h: Tensor, item: NewItem) -> Tensor:
        att = self.attention()
        for k, (path, (cols, vals)) in enumerate(zip(self.paths, self.new_item_rows(item))):
            if len(cols):
                x = self.node_emb[self.target_index[path.target]].weight[torch.from_numpy(cols)] * self.rel_diag[k]
                h = h + att[k] * (torch.from_numpy(vals.astype(np.float32)) @ x)
        return h

    def new_item_content(self, item: NewItem) -> list[np.ndarray | sp.spmatrix]:
        rows = self.new_item_rows(item)  # side by side, as item_content's hstack of the path matrices
        offsets = np.cumsum([0] + [p.matrix.shape[1] for p in self.paths])
        cols = np.concatenate([c + off for (c, _), off in zip(rows, offsets)])
        vals = np.concatenate([v for _, v in rows])
        return [sp.csr_matrix((vals, cols, [0, len(cols)]), shape=(1, int(offsets[-1])))]

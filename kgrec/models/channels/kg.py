"""The knowledge-graph channel: relation paths from the schema's KG and link edges.

``h_i ← h_i + Σ_r softmax(a)_r · (M_r (E_{T(r)} ⊙ w_r))_i`` where ``M_r`` is the
row-normalised item → node matrix of relation path ``r`` (one and two hops,
:func:`kgrec.models.side.item_relation_paths`), ``E_T`` embeddings of the path's target
nodes and ``w_r`` a per-relation diagonal transform (R-GCN with diagonal bases). A relation
added in the schema YAML is a new path, with no code change. Edge masks: ``kg[r]`` over the
item's row of ``M_r``; the path rows, side by side, are cold items' content.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from kgrec.models.channels.base import Channel, ChannelSettings
from kgrec.models.masks import EdgeMasks, replace_row
from kgrec.models.propagation import SparseOperator
from kgrec.models.side import RelationPath, item_relation_paths


class KnowledgeGraph(Channel):
    name = "kg"

    def __init__(self, ctx, paths: list[RelationPath], settings: ChannelSettings) -> None:
        super().__init__()
        ds = ctx.dataset
        self.paths = paths
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

"""The kgrec model: collaborative, knowledge-graph, social and text signals fused into one
inner-product recommender.

Ego representations (d = ``dim``):

- item ``i``: ``h_i = m_i·e_i + g_i ⊙ P t_i + Σ_r softmax(a)_r · (M_r (E_{T(r)} ⊙ w_r))_i``
  where ``t_i`` is the frozen transformer embedding of the item text, ``P`` a linear
  projection, ``g_i = σ(G [e_i; P t_i])`` a learned gate, ``M_r`` the row-normalised
  item → node matrix of relation path ``r`` (from the schema's KG and link edges, one and
  two hops), ``E_T`` embeddings of the path's target nodes and ``w_r`` a per-relation
  diagonal transform (R-GCN with diagonal bases). ``m_i = 0`` for items without training
  interactions (cold), so they are scored from text and KG alone; ID dropout in training
  teaches the side channels to carry that load.
- user ``u``: ``h_u = m_u·e_u + A x_u + P_u t_u``, then social diffusion
  ``h_u ← h_u + β S h_u`` over the row-normalised friend matrix ``S`` (DiffNet-style),
  where ``x_u`` holds the non-sensitive attributes (sensitive ones only if asked).

LightGCN propagation over the training user-item graph turns ``h`` into ``z``. The
closed-form item-item component (EASE with KG and text side information, which gives
cold items non-zero weights) adds ``X_u · B_{:, i}``; its blend weight ``α`` is chosen on
validation NDCG@10 after training. Both terms are inner products, so the final vectors are
``[α z_u ; X_u]`` and ``[z_i ; B_{:, i}]`` and top-K is one matrix product.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from kgrec.models.base import Batch, ModelContext, Recommender, l2_reg, register
from kgrec.models.propagation import SparseOperator, bipartite_adjacency, propagate, to_torch_csr
from kgrec.models.side import attribute_matrix, item_item_with_side, item_relation_paths, social_matrix

BLEND_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


@register("kgrec")
class KGRec(Recommender):
    """See the module docstring.

    Args:
        dim: embedding size (default 64).
        layers: LightGCN layers (default 2).
        reg: L2 weight on the batch's ego ID embeddings (default 1e-5).
        init_std: normal init std of the embeddings (default 0.1).
        use_kg, use_social, use_text: switch the side signals (for ablations).
        use_sensitive: also feed sensitive user attributes (default False).
        max_paths: most KG relation paths kept, by edge count (default 8).
        item_item: add the EASE-with-side-information term (default True).
        item_item_reg: its λ (default 300).
        side_weight: weight of KG/text similarity in its Gram matrix (default 0.1).
        id_dropout: probability of dropping an ID embedding in a training step (default 0.1).
    """

    needs_text = True

    def __init__(self, ctx: ModelContext, dim: int = 64, layers: int = 2, reg: float = 1e-5, init_std: float = 0.1,
                 use_kg: bool = True, use_social: bool = True, use_text: bool = True, use_sensitive: bool = False,
                 max_paths: int = 8, item_item: bool = True, item_item_reg: float = 300.0, side_weight: float = 0.1,
                 id_dropout: float = 0.1) -> None:
        super().__init__(ctx)
        ds = ctx.dataset
        self.layers, self.reg, self.id_dropout = layers, reg, id_dropout
        self.user_emb = nn.Embedding(ctx.num_users, dim)
        self.item_emb = nn.Embedding(ctx.num_items, dim)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        self.register_buffer("user_warm", torch.from_numpy(np.diff(ctx.train.indptr) > 0).float().unsqueeze(1),
                             persistent=False)
        self.register_buffer("item_warm", torch.from_numpy(ctx.item_counts > 0).float().unsqueeze(1),
                             persistent=False)
        self.adj = to_torch_csr(bipartite_adjacency(ctx.train))
        # knowledge graph: one learned transform per relation path
        self.paths = item_relation_paths(ds, max_paths) if use_kg else []
        self.path_ops = [SparseOperator(p.matrix) for p in self.paths]
        targets = sorted({p.target for p in self.paths})
        self.target_index = {t: k for k, t in enumerate(targets)}
        self.node_emb = nn.ModuleList(nn.Embedding(ds.nodes[t].num, dim) for t in targets)
        for emb in self.node_emb:
            nn.init.normal_(emb.weight, std=init_std)
        self.rel_diag = nn.Parameter(torch.ones(len(self.paths), dim))
        self.rel_logit = nn.Parameter(torch.zeros(len(self.paths)))
        # text, fused by a learned gate
        self.item_proj = self.item_gate = self.user_proj = None
        if use_text and ctx.item_text is not None:
            self.register_buffer("item_text", torch.from_numpy(np.asarray(ctx.item_text, np.float32)), persistent=False)
            self.item_proj = nn.Linear(self.item_text.shape[1], dim)
            self.item_gate = nn.Linear(2 * dim, dim)
        if use_text and ctx.user_text is not None:
            self.register_buffer("user_text", torch.from_numpy(np.asarray(ctx.user_text, np.float32)), persistent=False)
            self.user_proj = nn.Linear(self.user_text.shape[1], dim)
        # user attributes and the social graph
        attrs = attribute_matrix(ds, ds.schema.user_type, include_sensitive=use_sensitive)
        self.attr_emb = None
        if attrs is not None:
            dense = attrs.toarray().astype(np.float32)
            dense /= np.maximum(dense.sum(1, keepdims=True), 1.0)
            self.register_buffer("user_attr", torch.from_numpy(dense), persistent=False)
            self.attr_emb = nn.Linear(dense.shape[1], dim, bias=False)
        social = social_matrix(ds) if use_social else None
        self.social = SparseOperator(social) if social is not None else None
        self.social_beta = nn.Parameter(torch.tensor(0.5)) if social is not None else None
        # closed-form item-item component with side information
        self.item_item = item_item
        self.register_buffer("blend", torch.tensor(1.0))
        if item_item:
            side = [p.matrix for p in self.paths]
            if use_text and ctx.item_text is not None:
                side.append(np.asarray(ctx.item_text, np.float64))
            b = item_item_with_side(ctx.train, side, item_item_reg, side_weight)
            self.register_buffer("ii_user", torch.from_numpy(ctx.train.toarray().astype(np.float32)), persistent=False)
            self.register_buffer("ii_item", torch.from_numpy(b.T.astype(np.float32)))

    def _item_ego(self, drop: Tensor | None) -> Tensor:
        h = self.item_emb.weight * self.item_warm
        if drop is not None:
            h = h * drop
        if self.item_proj is not None:
            t = self.item_proj(self.item_text)
            h = h + torch.sigmoid(self.item_gate(torch.cat([h, t], dim=1))) * t
        if self.paths:
            att = torch.softmax(self.rel_logit, 0)
            for k, (path, op) in enumerate(zip(self.paths, self.path_ops)):
                target = self.node_emb[self.target_index[path.target]].weight
                h = h + att[k] * op(target * self.rel_diag[k])
        return h

    def _user_ego(self, drop: Tensor | None) -> Tensor:
        h = self.user_emb.weight * self.user_warm
        if drop is not None:
            h = h * drop
        if self.attr_emb is not None:
            h = h + self.attr_emb(self.user_attr)
        if self.user_proj is not None:
            h = h + self.user_proj(self.user_text)
        if self.social is not None:
            h = h + self.social_beta * self.social(h)
        return h

    def gnn(self, training: bool = False) -> tuple[Tensor, Tensor]:
        """The propagated representations ``z_u``, ``z_i`` (ID dropout when training)."""
        du = di = None
        if training and self.id_dropout > 0:
            du = (torch.rand(self.num_users, 1) >= self.id_dropout).float()
            di = (torch.rand(self.num_items, 1) >= self.id_dropout).float()
        out = propagate(self.adj, torch.cat([self._user_ego(du), self._item_ego(di)]), self.layers)
        return out[: self.num_users], out[self.num_users:]

    def embed(self) -> tuple[Tensor, Tensor]:
        users, items = self.gnn()
        if not self.item_item:
            return users, items
        return torch.cat([self.blend * users, self.ii_user], 1), torch.cat([items, self.ii_item], 1)

    def loss(self, batch: Batch) -> Tensor:
        users, items = self.gnn(training=True)
        u, p, n = users[batch.users], items[batch.pos], items[batch.neg]
        pos = (u * p).sum(-1)
        neg = torch.einsum("bd,bkd->bk", u, n)
        ego = l2_reg(self.user_emb(batch.users), self.item_emb(batch.pos), self.item_emb(batch.neg.flatten()))
        return self.pair_loss(pos, neg, batch) + self.reg * ego

    @torch.no_grad()
    def after_fit(self, ctx: ModelContext, score: Callable[[Recommender], float]) -> None:
        """Choose the blend weight ``α`` of the GNN against the item-item term on validation,
        with the GNN scores scaled to the item-item scores' spread."""
        if not self.item_item:
            return
        users, items = self.gnn()
        sample = torch.arange(0, self.num_users, max(1, self.num_users // 256))
        gnn_std = (users[sample] @ items.T).std().clamp_min(1e-12)
        ii_std = (self.ii_user[sample] @ self.ii_item.T).std()
        unit = float(ii_std / gnn_std)
        best = (-1.0, 1.0)
        for a in BLEND_GRID:
            self.blend.fill_(a * unit)
            best = max(best, (score(self), a * unit))
        self.blend.fill_(best[1])

"""The kgrec model: collaborative, knowledge-graph, social and text signals fused into one
inner-product recommender.

Ego representations (d = ``dim``):

- item ``i``:  ``h_i = m_i·e_i + g_i ⊙ P t_i + Σ_r softmax(a)_r · (M_r (E_{T(r)} ⊙ w_r))_i``
  where ``t_i`` is the frozen transformer embedding of the item text, ``P`` a linear
  projection, ``g_i = σ(G [e_i; P t_i])`` a learned gate, ``M_r`` the row-normalised
  item → node matrix of relation path ``r`` (from the schema: KG and link edges, one and two
  hops), ``E_T`` embeddings of the path's target nodes and ``w_r`` a per-relation diagonal
  transform (R-GCN with diagonal bases); ``m_i = 0`` for items without training
  interactions (cold), so they are scored from text and KG alone;
- user ``u``:  ``h_u = m_u·e_u + A x_u + P_u t_u`` plus social diffusion
  ``h_u ← h_u + β S h_u`` over the row-normalised friend matrix ``S`` (DiffNet-style), with
  ``x_u`` the non-sensitive attributes; ``m_u = 0`` for users without training interactions.

Then LightGCN propagation over the training user-item graph gives ``z_u, z_i``, and an
item-item term from closed-form EASE with KG and text side information adds
``X_u · B_{:, i}``. Both are inner products, so the final vectors are the concatenations
``[z_u ; γ X_u]`` and ``[z_i ; B_{:, i}]`` and top-K is one matrix product.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from kgrec.models.base import Batch, ModelContext, Recommender, l2_reg, register
from kgrec.models.propagation import bipartite_adjacency, propagate, to_torch_csr
from kgrec.models.side import attribute_matrix, item_item_with_side, item_relation_paths, social_matrix


def _csr(m: sp.spmatrix) -> Tensor:
    return to_torch_csr(sp.csr_matrix(m, dtype=np.float32))


@register("kgrec")
class KGRec(Recommender):
    """See the module docstring.

    Args:
        dim: embedding size (default 64).
        layers: LightGCN layers (default 2).
        reg: L2 weight on the batch's ego ID embeddings (default 1e-5).
        init_std: normal init std of ID embeddings (default 0.1).
        use_kg, use_social, use_text: switch the side signals (ablations).
        use_sensitive: also feed sensitive user attributes (default False).
        item_item: add the EASE-with-side-information term (default True).
        item_item_reg: its λ (default 300).
        side_weight: weight of KG/text similarity in its Gram matrix (default 0.05).
        id_dropout: probability of dropping an item's or user's ID embedding in training,
            which teaches the model to score cold nodes from side information (default 0.1).
    """

    needs_text = True

    def __init__(self, ctx: ModelContext, dim: int = 64, layers: int = 2, reg: float = 1e-5, init_std: float = 0.1,
                 use_kg: bool = True, use_social: bool = True, use_text: bool = True, use_sensitive: bool = False,
                 item_item: bool = True, item_item_reg: float = 300.0, side_weight: float = 0.05,
                 id_dropout: float = 0.1) -> None:
        super().__init__(ctx)
        ds = ctx.dataset
        self.layers, self.reg, self.id_dropout = layers, reg, id_dropout
        U, I = ctx.num_users, ctx.num_items
        self.user_emb = nn.Embedding(U, dim)
        self.item_emb = nn.Embedding(I, dim)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        self.register_buffer("user_warm", torch.from_numpy(np.diff(ctx.train.indptr) > 0).float().unsqueeze(1),
                             persistent=False)
        self.register_buffer("item_warm", torch.from_numpy(ctx.item_counts > 0).float().unsqueeze(1),
                             persistent=False)
        self.adj = to_torch_csr(bipartite_adjacency(ctx.train))
        # knowledge graph relation paths
        self.paths = item_relation_paths(ds) if use_kg else []
        self.path_mats = [_csr(p.matrix) for p in self.paths]
        targets = sorted({p.target for p in self.paths})
        self.target_index = {t: k for k, t in enumerate(targets)}
        self.node_emb = nn.ModuleList(nn.Embedding(ds.nodes[t].num, dim) for t in targets)
        for emb in self.node_emb:
            nn.init.normal_(emb.weight, std=init_std)
        self.rel_diag = nn.Parameter(torch.ones(len(self.paths), dim))
        self.rel_logit = nn.Parameter(torch.zeros(len(self.paths)))
        # text
        self.item_proj = self.item_gate = self.user_proj = None
        if use_text and ctx.item_text is not None:
            self.register_buffer("item_text", torch.from_numpy(np.asarray(ctx.item_text, np.float32)), persistent=False)
            self.item_proj = nn.Linear(self.item_text.shape[1], dim)
            self.item_gate = nn.Linear(2 * dim, dim)
        if use_text and ctx.user_text is not None:
            self.register_buffer("user_text", torch.from_numpy(np.asarray(ctx.user_text, np.float32)), persistent=False)
            self.user_proj = nn.Linear(self.user_text.shape[1], dim)
        # user attributes and social graph
        attrs = attribute_matrix(ds, ds.schema.user_type, include_sensitive=use_sensitive)
        self.attr_emb = None
        if attrs is not None:
            dense = attrs.toarray().astype(np.float32)
            dense /= np.maximum(dense.sum(1, keepdims=True), 1.0)
            self.register_buffer("user_attr", torch.from_numpy(dense), persistent=False)
            self.attr_emb = nn.Linear(dense.shape[1], dim, bias=False)
        social = social_matrix(ds) if use_social else None
        self.social = _csr(social) if social is not None else None
        self.social_beta = nn.Parameter(torch.tensor(0.5)) if social is not None else None
        # closed-form item-item component with side information
        self.item_item = item_item
        if item_item:
            side = [p.matrix for p in self.paths[:8]]
            if ctx.item_text is not None and use_text:
                side.append(np.asarray(ctx.item_text, np.float64))
            b = item_item_with_side(ctx.train, side, item_item_reg, side_weight)
            self.register_buffer("ii_user", torch.from_numpy(ctx.train.toarray().astype(np.float32)), persistent=False)
            self.register_buffer("ii_item", torch.from_numpy(b.T.astype(np.float32)))
            self.ii_scale = nn.Parameter(torch.tensor(1.0))

    # ------------------------------------------------------------------ ego representations
    def _item_ego(self, drop: Tensor | None) -> Tensor:
        e = self.item_emb.weight * self.item_warm
        if drop is not None:
            e = e * drop
        h = e
        if self.item_proj is not None:
            t = self.item_proj(self.item_text)
            g = torch.sigmoid(self.item_gate(torch.cat([e, t], dim=1)))
            h = h + g * t
        if self.paths:
            att = torch.softmax(self.rel_logit, 0)
            for k, (path, mat) in enumerate(zip(self.paths, self.path_mats)):
                target = self.node_emb[self.target_index[path.target]].weight
                h = h + att[k] * (mat @ (target * self.rel_diag[k]))
        return h

    def _user_ego(self, drop: Tensor | None) -> Tensor:
        e = self.user_emb.weight * self.user_warm
        if drop is not None:
            e = e * drop
        h = e
        if self.attr_emb is not None:
            h = h + self.attr_emb(self.user_attr)
        if self.user_proj is not None:
            h = h + self.user_proj(self.user_text)
        if self.social is not None:
            h = h + self.social_beta * (self.social @ h)
        return h

    def _propagate(self, training: bool) -> tuple[Tensor, Tensor]:
        du = di = None
        if training and self.id_dropout > 0:
            du = (torch.rand(self.num_users, 1) >= self.id_dropout).float()
            di = (torch.rand(self.num_items, 1) >= self.id_dropout).float()
        ego = torch.cat([self._user_ego(du), self._item_ego(di)])
        out = propagate(self.adj, ego, self.layers)
        return out[: self.num_users], out[self.num_users:]

    def embed(self) -> tuple[Tensor, Tensor]:
        users, items = self._propagate(False)
        if self.item_item:
            users = torch.cat([users, self.ii_scale * self.ii_user], dim=1)
            items = torch.cat([items, self.ii_item], dim=1)
        return users, items

    def loss(self, batch: Batch) -> Tensor:
        users, items = self._propagate(True)
        u, p, n = users[batch.users], items[batch.pos], items[batch.neg]
        pos = (u * p).sum(-1)
        neg = torch.einsum("bd,bkd->bk", u, n)
        if self.item_item:
            x = self.ii_scale * self.ii_user[batch.users]
            pos = pos + (x * self.ii_item[batch.pos]).sum(-1)
            neg = neg + torch.einsum("bd,bkd->bk", x, self.ii_item[batch.neg])
        ego = l2_reg(self.user_emb(batch.users), self.item_emb(batch.pos), self.item_emb(batch.neg.flatten()))
        return self.pair_loss(pos, neg, batch) + self.reg * ego

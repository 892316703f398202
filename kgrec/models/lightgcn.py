"""LightGCN (He et al., SIGIR 2020) over the training user-item graph."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kgrec.models.base import Batch, ModelContext, Recommender, l2_reg, register
from kgrec.models.propagation import propagate, to_torch_csr


@register("lightgcn")
class LightGCN(Recommender):
    """``E = (1/(L+1)) Σ_{k=0..L} Âᵏ E⁽⁰⁾`` over ``A = [[0, R], [Rᵀ, 0]]`` (training edges
    only); ``s(u, i) = e_u · e_i``. Loss: BPR + ``reg`` on the batch's ego embeddings.

    Args:
        dim: embedding size (default 64).
        layers: propagation layers L (default 2).
        reg: L2 weight (default 1e-5, as RecBole).
        init_std: std of the normal initialisation (default 0.1, as the LightGCN authors; 0 = Xavier).
    """

    def __init__(self, ctx: ModelContext, dim: int = 64, layers: int = 2, reg: float = 1e-5,
                 init_std: float = 0.1) -> None:
        super().__init__(ctx)
        self.layers, self.reg = layers, reg
        self.emb = nn.Embedding(ctx.num_users + ctx.num_items, dim)
        if init_std > 0:
            nn.init.normal_(self.emb.weight, std=init_std)
        else:
            nn.init.xavier_uniform_(self.emb.weight)
        self.adj = to_torch_csr(ctx.view.bipartite_adjacency())

    def embed(self) -> tuple[Tensor, Tensor]:
        out = propagate(self.adj, self.emb.weight, self.layers)
        return out[: self.num_users], out[self.num_users:]

    def loss(self, batch: Batch) -> Tensor:
        users, items = self.embed()
        u, p, n = users[batch.users], items[batch.pos], items[batch.neg]
        pos = (u * p).sum(-1)
        neg = torch.einsum("bd,bkd->bk", u, n)
        ego_u = self.emb(batch.users)
        ego_p = self.emb(batch.pos + self.num_users)
        ego_n = self.emb(batch.neg.flatten() + self.num_users)
        return self.pair_loss(pos, neg, batch) + self.reg * l2_reg(ego_u, ego_p, ego_n)

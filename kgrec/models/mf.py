"""BPR-MF: matrix factorisation trained with Bayesian personalised ranking."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kgrec.models.base import Batch, ModelContext, Recommender, l2_reg, register


@register("bprmf")
class BPRMF(Recommender):
    """``s(u, i) = e_u · e_i`` with ``e ∈ R^dim`` (Rendle et al., 2009).

    Loss: BPR over ``n_neg`` sampled negatives + ``reg · (‖e_u‖² + ‖e_i⁺‖² + ‖e_i⁻‖²)/B``.

    Args:
        dim: embedding size (default 64).
        reg: L2 weight on the batch's embeddings (default 1e-5).
    """

    def __init__(self, ctx: ModelContext, dim: int = 64, reg: float = 1e-5) -> None:
        super().__init__(ctx)
        self.reg = reg
        self.user_emb = nn.Embedding(ctx.num_users, dim)
        self.item_emb = nn.Embedding(ctx.num_items, dim)
        nn.init.xavier_normal_(self.user_emb.weight)
        nn.init.xavier_normal_(self.item_emb.weight)

    def embed(self) -> tuple[Tensor, Tensor]:
        return self.user_emb.weight, self.item_emb.weight

    def loss(self, batch: Batch) -> Tensor:
        u = self.user_emb(batch.users)
        p = self.item_emb(batch.pos)
        n = self.item_emb(batch.neg)
        pos = (u * p).sum(-1)
        neg = torch.einsum("bd,bkd->bk", u, n)
        return self.pair_loss(pos, neg, batch) + self.reg * l2_reg(u, p, n.flatten(0, 1))

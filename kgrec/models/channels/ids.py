"""The ID channel: one learned embedding per user and per item.

``h_u = m_u · e_u``, ``h_i = m_i · e_i`` with ``m = 0`` for users and items without training
interactions (their IDs carry nothing learned), and ID dropout in training (each row zeroed
with probability ``id_dropout`` per step) so that the other channels learn to carry load.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from kgrec.models.channels.base import Channel, ChannelSettings
from kgrec.models.masks import EdgeMasks


class IDs(Channel):
    name = "ids"

    def __init__(self, ctx, settings: ChannelSettings) -> None:
        super().__init__()
        self.id_dropout = settings.id_dropout
        self.user_emb = nn.Embedding(ctx.num_users, settings.dim)
        self.item_emb = nn.Embedding(ctx.num_items, settings.dim)
        nn.init.normal_(self.user_emb.weight, std=settings.init_std)
        nn.init.normal_(self.item_emb.weight, std=settings.init_std)
        self.register_buffer("user_warm", torch.from_numpy(np.diff(ctx.train.indptr) > 0).float().unsqueeze(1),
                             persistent=False)
        self.register_buffer("item_warm", torch.from_numpy(ctx.item_counts > 0).float().unsqueeze(1),
                             persistent=False)

    @classmethod
    def build(cls, ctx, settings: ChannelSettings) -> IDs:
        return cls(ctx, settings)

    def _term(self, emb: nn.Embedding, warm: Tensor) -> Tensor:
        h = emb.weight * warm
        if self.training and self.id_dropout > 0:
            h = h * (torch.rand(h.shape[0], 1) >= self.id_dropout).float()
        return h

    def user(self, h: Tensor, masks: EdgeMasks | None = None) -> Tensor:
        return h + self._term(self.user_emb, self.user_warm)

    def item(self, h: Tensor, masks: EdgeMasks | None = None) -> Tensor:
        return h + self._term(self.item_emb, self.item_warm)

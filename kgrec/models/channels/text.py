"""The text channel: frozen transformer embeddings of item (and user) text.

``h_i ← h_i + g_i ⊙ P t_i`` with ``t_i`` the item text's embedding [d_text], ``P`` a linear
projection to ``d`` and ``g_i = σ(G [h_i; P t_i])`` a learned gate over the ID term that
precedes it; users with profile text get ``h_u ← h_u + P_u t_u``. Scalar masks
``item_text`` and ``user_text``; the item text is cold items' content. Fold-in
(:mod:`kgrec.models.foldin`): a new item's text vector gets the same gated term (its ID term
is zero); an anonymous user has no profile text.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from kgrec.models.channels.base import Channel, ChannelSettings, NewItem
from kgrec.models.masks import EdgeMasks, ScalarChannel

ITEM_TEXT = ScalarChannel("item_text", "item text", "the item's text (title, genres, tags)")
USER_TEXT = ScalarChannel("user_text", "user text", "the user's profile text")


class Text(Channel):
    name = "text"

    def __init__(self, item_text: np.ndarray | None, user_text: np.ndarray | None, dim: int) -> None:
        super().__init__()
        self.item_proj = self.item_gate = self.user_proj = None
        if item_text is not None:
            self.register_buffer("item_text", torch.from_numpy(np.asarray(item_text, np.float32)), persistent=False)
            self.item_proj = nn.Linear(self.item_text.shape[1], dim)
            self.item_gate = nn.Linear(2 * dim, dim)
        if user_text is not None:
            self.register_buffer("user_text", torch.from_numpy(np.asarray(user_text, np.float32)), persistent=False)
            self.user_proj = nn.Linear(self.user_text.shape[1], dim)

    @classmethod
    def build(cls, ctx, settings: ChannelSettings) -> Text | None:
        if ctx.item_text is None and ctx.user_text is None:
            return None
        return cls(ctx.item_text, ctx.user_text, settings.dim)

    def item(self, h: Tensor, masks: EdgeMasks | None = None) -> Tensor:
        if self.item_proj is None:
            return h
        t = self.item_proj(self.item_text)
        g = torch.sigmoid(self.item_gate(torch.cat([h, t], dim=1))) * t
        return h + self.masked(g, masks.item if masks else None, masks, ITEM_TEXT.name)

    def user(self, h: Tensor, masks: EdgeMasks | None = None) -> Tensor:
        if self.user_proj is None:
            return h
        return h + self.masked(self.user_proj(self.user_text), masks.user if masks else None, masks, USER_TEXT.name)

    def scalar_channels(self) -> tuple[ScalarChannel, ...]:
        return tuple(c for c, on in ((ITEM_TEXT, self.item_proj), (USER_TEXT, self.user_proj)) if on is not None)

    def item_content(self) -> list[np.ndarray | sp.spmatrix]:
        return [] if self.item_proj is None else [self.item_text.double().numpy()]

    def fold_in_item(self, h: Tensor, item: NewItem) -> Tensor:
        if self.item_proj is None or item.text is None:
            return h
        t = self.item_proj(torch.from_numpy(np.asarray(item.text, np.float32)).reshape(1, -1))
        return h + (torch.sigmoid(self.item_gate(torch.cat([h.reshape(1, -1), t], dim=1))) * t)[0]

    def new_item_content(self, item: NewItem) -> list[np.ndarray | sp.spmatrix]:
        if self.item_proj is None:
            return []
        width = self.item_text.shape[1]
        return [np.zeros((1, width)) if item.text is None else np.asarray(item.text, np.float64).reshape(1, width)]

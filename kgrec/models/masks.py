"""Edge masks for explaining one (user, item) score of a graph model.

A mask multiplies, by a weight in [0, 1], each input edge that feeds the score of user
``u`` for item ``i``: ``u``'s training interactions, ``u``'s social ties, ``i``'s KG edges
(per relation path and entity), and the text and attribute channels of ``u`` and ``i``.
All ones reproduce the trained model's score exactly; all zeros is the "nothing known"
baseline. The score is differentiable in the masks, which is what Integrated Gradients
needs (:mod:`kgrec.audit.explain`).

Removing a user-item edge keeps the trained degree normalisation: the masked adjacency is
``Â' = Â − Δ`` with ``Δ_{u,h} = Δ_{h,u} = (1 − m_h) Â_{u,h}``, so ``m = 1`` is the model as
trained and ``m = 0`` drops the edge's messages in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from kgrec.models.propagation import SparseMatmul


Channel = Literal["history", "friends", "kg", "item_text", "user_text", "user_attr"]
#: every maskable channel, named as the :class:`EdgeMasks` field that masks it
CHANNELS: tuple[Channel, ...] = ("history", "friends", "kg", "item_text", "user_text", "user_attr")


@dataclass
class EdgeMasks:
    """Multipliers for the inputs of one (user, item) score (``None``: as trained).

    ``history`` [H] follows the user's training items in ascending item order, ``friends``
    [F] the user's social row, ``kg[k]`` [E_k] the item's row of relation path ``k``; the
    text and attribute entries are scalars (0-d tensors). Each field is a channel of
    :data:`CHANNELS`; a model masks only the channels it declares
    (:attr:`kgrec.models.base.Explainable.mask_channels`)."""

    user: int
    item: int
    history: Tensor | None = None
    friends: Tensor | None = None
    kg: list[Tensor | None] = field(default_factory=list)
    item_text: Tensor | None = None
    user_text: Tensor | None = None
    user_attr: Tensor | None = None


def scale_row(x: Tensor, row: int, scale: Tensor | None) -> Tensor:
    """``x`` with row ``row`` multiplied by the scalar ``scale`` (differentiably)."""
    if scale is None:
        return x
    factor = torch.ones(x.shape[0], 1, dtype=x.dtype).index_copy(0, torch.tensor([row]), scale.reshape(1, 1))
    return x * factor


def replace_row(x: Tensor, row: int, new: Tensor) -> Tensor:
    return x.index_copy(0, torch.tensor([row]), new.reshape(1, -1))


def masked_propagate(adj: Tensor, x: Tensor, layers: int, user: int, neighbours: Tensor, weights: Tensor,
                     history: Tensor) -> Tensor:
    """LightGCN propagation (mean of ``Âᵏ X``, k = 0..layers) over ``Â' = Â − Δ`` where
    ``Δ`` removes ``(1 − history)`` of each edge between ``user`` and the node rows
    ``neighbours`` [H] whose normalised weights are ``weights`` [H]."""
    w = ((1.0 - history) * weights).unsqueeze(1)
    row = torch.tensor([user])
    out, cur = x, x
    for _ in range(layers):
        nxt = SparseMatmul.apply(adj, adj, cur)
        nxt = nxt.index_add(0, row, -(w * cur[neighbours]).sum(0, keepdim=True))
        nxt = nxt.index_add(0, neighbours, -(w * cur[user].unsqueeze(0)))
        cur = nxt
        out = out + cur
    return out / (layers + 1)

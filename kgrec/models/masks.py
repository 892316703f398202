"""Edge masks for explaining one (user, item) score of a graph model.

A mask multiplies, by a weight in [0, 1], each input edge that feeds the score of user
``u`` for item ``i``: ``u``'s training interactions, ``u``'s social ties, ``i``'s KG edges
(per relation path and entity), and the scalar channels (text, attributes, time) of ``u`` and ``i``.
All ones reproduce the trained model's score exactly; all zeros is the "nothing known"
baseline. The score is differentiable in the masks, which is what Integrated Gradients
needs (:mod:`kgrec.audit.explain`).

Removing a user-item edge keeps the trained degree normalisation: the masked adjacency is
``Â' = Â − Δ`` with ``Δ_{u,h} = Δ_{h,u} = (1 − m_h) Â_{u,h}``, so ``m = 1`` is the model as
trained and ``m = 0`` drops the edge's messages in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from kgrec.models.propagation import SparseMatmul


Channel = str
#: the channels whose masks hold one entry per edge, named as the :class:`EdgeMasks` field that
#: masks them; every other channel is a scalar channel (:class:`ScalarChannel`)
EDGE_CHANNELS: tuple[Channel, ...] = ("history", "friends", "kg")


@dataclass(frozen=True)
class ScalarChannel:
    """A channel masked by one multiplier per score (a text, attribute or time term):
    ``name`` is its key in :attr:`EdgeMasks.scalars`, ``label`` names it in an explanation
    ("item text") and ``description`` says what it is for a reader of the audit report."""

    name: str
    label: str
    description: str


@dataclass
class EdgeMasks:
    """Multipliers for the inputs of one (user, item) score (``None`` or absent: as trained).

    ``history`` [H] follows the user's training items in ascending item order, ``friends``
    [F] the user's social row, ``kg[k]`` [E_k] the item's row of relation path ``k``;
    ``scalars`` maps each scalar channel's name (:class:`ScalarChannel`) to a 0-d tensor. A
    model masks only the channels it declares
    (:attr:`kgrec.models.base.Explainable.mask_channels`)."""

    user: int
    item: int
    history: Tensor | None = None
    friends: Tensor | None = None
    kg: list[Tensor | None] = field(default_factory=list)
    scalars: dict[str, Tensor] = field(default_factory=dict)

    def scalar(self, name: str) -> Tensor | None:
        return self.scalars.get(name)


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

"""The social channel: DiffNet-style diffusion of the user ego over the friend graph.

``h_u ← h_u + β (S h)_u`` with ``S`` the row-normalised, symmetrised user-user matrix of
every ``social`` edge type in the schema (:func:`kgrec.models.side.social_matrix`) and ``β``
learned (initially 0.5). It comes last on the user side, so it diffuses every other user
term. Edge masks: ``friends`` over the user's row of ``S``. Users without interactions also
borrow their friends' histories for the item-item term (:meth:`Social.borrowed_history`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from kgrec.models.channels.base import Channel, ChannelSettings
from kgrec.models.masks import EdgeMasks, replace_row
from kgrec.models.propagation import SparseOperator
from kgrec.models.side import social_matrix


class Social(Channel):
    name = "social"

    def __init__(self, matrix: sp.csr_matrix) -> None:
        super().__init__()
        self.matrix = matrix
        self.op = SparseOperator(matrix)
        self.beta = nn.Parameter(torch.tensor(0.5))

    @classmethod
    def build(cls, ctx, settings: ChannelSettings) -> Social | None:
        m = social_matrix(ctx.dataset)
        return None if m is None else cls(m)

    def row(self, user: int) -> tuple[Tensor, Tensor]:
        """The user's ties: (friend indices int64 [F], weights float32 [F])."""
        row = self.matrix[user]
        return torch.from_numpy(row.indices.astype(np.int64)), torch.from_numpy(row.data.astype(np.float32))

    def user(self, h: Tensor, masks: EdgeMasks | None = None) -> Tensor:
        s = self.op(h)
        if masks is not None and masks.friends is not None:
            cols, vals = self.row(masks.user)
            s = replace_row(s, masks.user, (vals * masks.friends) @ h[cols])
        return h + self.beta * s

    def borrowed_history(self, train: sp.csr_matrix) -> sp.csr_matrix:
        """[U, I]: for users without training interactions, the mean history of their friends
        (zero rows for everyone else)."""
        cold = np.flatnonzero(np.diff(train.indptr) == 0)
        place = sp.csr_matrix((np.ones(len(cold), np.float32), (cold, np.arange(len(cold)))),
                              shape=(train.shape[0], len(cold)))
        return sp.csr_matrix(place @ sp.csr_matrix(self.matrix[cold] @ train, dtype=np.float32))

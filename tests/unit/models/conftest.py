"""Fixtures of the model unit tests."""

from __future__ import annotations

import pytest
import torch

from kgrec.models.base import Recommender


class FixedVectors(Recommender):
    """A real Recommender whose vectors are given (no training)."""

    trainable = False

    def __init__(self, users: torch.Tensor, items: torch.Tensor) -> None:
        torch.nn.Module.__init__(self)
        self.num_users, self.num_items = users.shape[0], items.shape[0]
        self.u, self.i = users, items

    def embed(self):
        return self.u, self.i


@pytest.fixture()
def fixed_vectors():
    """``fixed_vectors(users [U, d], items [I, d])``: a Recommender ranking by those vectors."""
    return FixedVectors

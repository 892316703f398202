"""Ranking restricted to candidate items (the cold-items-only protocol)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.models.ranking import rank


def test_candidates_only_ranks_candidates_in_score_order_with_masking(fixed_vectors):
    g = torch.Generator().manual_seed(0)
    model = fixed_vectors(torch.randn(6, 4, generator=g), torch.randn(30, 4, generator=g))
    candidates = np.array([2, 5, 9, 11, 17, 23, 29])
    exclude = sp.csr_matrix((np.ones(3), ([0, 0, 4], [5, 6, 23])), shape=(6, 30))
    users = np.arange(6)
    top = rank(model, users, 4, exclude, candidates)
    scores = (model.u @ model.i.T).numpy()
    for u in users:
        allowed = [c for c in candidates if not exclude[u, c]]
        expected = sorted(allowed, key=lambda c: (-scores[u, c], c))[:4]
        assert top[u].tolist() == expected

"""A low-rank linear item-item model: ELSA (Vančura, Alves, Kasalický and Kordík, "Scalable
linear shallow autoencoder for collaborative filtering", RecSys 2022).

The item-item weights are ``B = A Aᵀ − I`` with ``A`` [I, d] of unit rows, never formed:
a user's scores are ``x_u A Aᵀ − x_u``, so for items outside the history (the only ones
ranked) the score is the inner product ``(x_u A) · A_i`` of two d-dimensional vectors.
``A`` is trained with Adam on the normalised squared error of the reconstruction,
``‖ x̂_u/‖x̂_u‖ − x_u/‖x_u‖ ‖²`` averaged over user rows, in mini-batches of rows, and
early-stopped on a validation callback. Memory is O(nnz + I·d + batch·I); no [I, I] or
[U, I] matrix is built.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F


def elsa_scores(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``x A Aᵀ − x`` for dense rows ``x`` [B, I] and unit-row ``A`` [I, d]."""
    return (x @ a) @ a.T - x


def fit_elsa(x: sp.csr_matrix, dim: int, *, epochs: int = 30, lr: float = 0.1, batch_size: int = 512,
             seed: int = 0, patience: int = 2, validate: Callable[[torch.Tensor], float] | None = None
             ) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """Train ``A`` [I, dim] (unit rows) on the rows of ``x`` [U, I] (binary or weighted).

    ``validate(A)`` (higher is better) is called after each epoch; training stops after
    ``patience`` epochs without improvement and returns the best ``A`` and the history.
    Deterministic for a given ``seed`` on CPU.
    """
    gen = torch.Generator().manual_seed(seed)
    n_users, n_items = x.shape
    dim = min(dim, n_items)
    weight = torch.nn.Parameter(torch.empty(n_items, dim))
    torch.nn.init.xavier_uniform_(weight, generator=gen)
    opt = torch.optim.Adam([weight], lr=lr)
    x = sp.csr_matrix(x, dtype=np.float32)
    rows = np.flatnonzero(np.diff(x.indptr) > 0)
    best, best_a, bad, history = float("-inf"), F.normalize(weight.detach(), dim=-1).clone(), 0, []
    for epoch in range(epochs):
        order = rows[torch.randperm(len(rows), generator=gen).numpy()]
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = torch.from_numpy(x[order[start: start + batch_size]].toarray())
            a = F.normalize(weight, dim=-1)
            loss = (F.normalize(elsa_scores(batch, a), dim=-1) - F.normalize(batch, dim=-1)).pow(2).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        record = {"epoch": epoch + 1, "loss": total / max(len(order), 1)}
        a = F.normalize(weight.detach(), dim=-1)
        if validate is None:
            best_a = a.clone()
            history.append(record)
            continue
        record["valid"] = metric = float(validate(a))
        history.append(record)
        if metric > best:
            best, best_a, bad = metric, a.clone(), 0
        else:
            bad += 1
            if bad >= patience:
                break
    return best_a, history

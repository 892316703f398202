r"""A low-rank linear item-item model: ELSA (Vančura, Alves, Kasalický and Kordík, "Scalable
linear shallow autoencoder for collaborative filtering", RecSys 2022).

The item-item weights are ``B = A Aᵀ − I`` with ``A`` [I, d] of unit rows, never formed:
a user's scores are ``x_u A Aᵀ − x_u``, so for items outside the history (the only ones
ranked) the score is the inner product ``(x_u A) · A_i`` of two d-dimensional vectors.
``A`` is trained with Adam on the normalised squared error of the reconstruction,
``‖ x̂_u/‖x̂_u‖ − x_u/‖x_u‖ ‖²`` averaged over user rows, in mini-batches of rows, and
early-stopped on a validation callback.

The loss is computed exactly without the [B, I] reconstruction (:func:`elsa_loss`): with
``z = x A`` [B, d] from the sparse rows and the Gram matrix ``G = AᵀA`` [d, d],

.. math::
    ‖x̂‖² = z G zᵀ − 2 ‖z‖² + ‖x‖², \qquad x̂ · x = ‖z‖² − ‖x‖²,

so a step costs O(nnz_B·d + I·d²) time and O(nnz_B·d + I·d) memory, and an epoch
O(nnz·d + (U/B)·I·d²). No [I, I], [U, I] or [B, I] matrix is built.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch.nn import functional as F

EPS = 1e-12  # the norm floor of F.normalize, which the dense loss used


def elsa_scores(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``x A Aᵀ − x`` for dense rows ``x`` [B, I] and unit-row ``A`` [I, d]."""
    return (x @ a) @ a.T - x


def sparse_rows(x: sp.csr_matrix, dtype: torch.dtype = torch.float32) -> Tensor:
    """A torch sparse COO tensor [B, I] (coalesced) of scipy CSR rows ``x`` [B, I]."""
    x = sp.csr_matrix(x)
    if not x.has_canonical_format:  # sorted indices without duplicates, on a copy
        x = x.copy()
        x.sum_duplicates()
    rows = np.repeat(np.arange(x.shape[0], dtype=np.int64), np.diff(x.indptr))
    index = torch.from_numpy(np.stack([rows, x.indices.astype(np.int64)]))
    return torch.sparse_coo_tensor(index, torch.from_numpy(x.data).to(dtype), x.shape, is_coalesced=True,
                                   check_invariants=False)


def elsa_loss(x: Tensor, a: Tensor) -> Tensor:
    r"""Per-row normalised squared error ``‖x̂/max(‖x̂‖, ε) − x/‖x‖‖²`` of ``x̂ = x A Aᵀ − x``.

    ``x`` [B, I]: the rows, a coalesced torch sparse COO tensor (:func:`sparse_rows`) or a
    dense one, every row non-zero; ``a`` [I, d]: the unit-row factors. With ``z = x A``
    [B, d] (a sparse-dense product), ``p = ‖z‖²``, ``q = z G zᵀ`` (``G = AᵀA`` [d, d]) and
    ``n = ‖x‖²``:

    .. math::
        ‖x̂‖² = q − 2p + n, \quad x̂·x = p − n, \quad
        \ell = \frac{‖x̂‖²}{m²} − 2\frac{p − n}{m \sqrt{n}} + 1, \quad m = \max(‖x̂‖, ε),

    i.e. ``2 − 2 cos(x̂, x)`` whenever ``‖x̂‖ ≥ ε = 1e-12`` (``F.normalize``'s floor, so the
    value equals the dense formula), and finite, value and gradient, when the reconstruction
    vanishes (``‖x̂‖²`` is clamped at 0 against rounding, ``m`` at ε). No [B, I] tensor is
    formed: time O(nnz·d + I·d²), memory O(nnz + B·d + d²) beyond ``a``. Returns [B].
    """
    if x.layout == torch.strided:
        z, n = x @ a, (x * x).sum(1)
    else:
        x = x.to_sparse_coo() if x.layout != torch.sparse_coo else x
        z = torch.sparse.mm(x, a)
        n = torch.zeros(x.shape[0], dtype=a.dtype).index_add_(0, x.indices()[0], x.values() ** 2)
    gram = a.T @ a
    p = (z * z).sum(1)
    q = ((z @ gram) * z).sum(1)
    err2 = (q - 2 * p + n).clamp_min(0.0)
    m2 = err2.clamp_min(EPS * EPS)
    return err2 / m2 - 2 * (p - n) / (m2.sqrt() * n.sqrt()) + 1


def fit_elsa(x: sp.csr_matrix, dim: int, *, epochs: int = 30, lr: float = 0.1, batch_size: int = 512,
             seed: int = 0, patience: int = 2, validate: Callable[[torch.Tensor], float] | None = None
             ) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """Train ``A`` [I, dim] (unit rows) on the rows of ``x`` [U, I] (binary or weighted).

    Each epoch visits the non-empty rows in a random order, in mini-batches of
    ``batch_size`` rows, and takes one Adam step (``lr``) on the mean :func:`elsa_loss` of the
    batch, with ``A`` the row-normalised parameter (Xavier-uniform initialised; ``dim`` is
    capped at I). ``validate(A)`` (higher is better) is called after each epoch; training
    stops after ``patience`` epochs without improvement and returns the best ``A`` and the
    history (``epoch``, mean ``loss``, ``valid``). Without ``validate`` it runs all ``epochs``
    and returns the last ``A``. Deterministic for a given ``seed`` on CPU.

    Cost per step O(nnz_B·dim + I·dim²): a larger ``batch_size`` amortises the ``I·dim²``
    Gram term over more rows.
    """
    gen = torch.Generator().manual_seed(seed)
    n_users, n_items = x.shape
    dim = min(dim, n_items)
    weight = torch.nn.Parameter(torch.empty(n_items, dim))
    torch.nn.init.xavier_uniform_(weight, generator=gen)
    opt = torch.optim.Adam([weight], lr=lr)
    x = sp.csr_matrix(x, dtype=np.float32, copy=True)  # the caller's matrix stays as it is
    x.sum_duplicates()  # ‖x‖² from the stored values
    x.eliminate_zeros()
    rows = np.flatnonzero(np.diff(x.indptr) > 0)
    best, best_a, bad, history = float("-inf"), F.normalize(weight.detach(), dim=-1).clone(), 0, []
    for epoch in range(epochs):
        order = rows[torch.randperm(len(rows), generator=gen).numpy()]
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = x[order[start: start + batch_size]]
            a = F.normalize(weight, dim=-1)
            loss = elsa_loss(sparse_rows(batch), a).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * batch.shape[0]
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

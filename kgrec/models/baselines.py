"""Closed-form baselines: MostPop, ItemKNN and EASE, all as inner products.

Each stores its factors as buffers so that a run directory's safetensors file rebuilds it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from kgrec.models.base import ModelContext, Recommender, register


def _dense(x: sp.spmatrix | np.ndarray) -> Tensor:
    arr = x.toarray() if sp.issparse(x) else np.asarray(x)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


class _ClosedForm(Recommender):
    trainable = False

    def __init__(self, ctx: ModelContext) -> None:
        super().__init__(ctx)
        self.register_buffer("user_factors", torch.zeros(0))
        self.register_buffer("item_factors", torch.zeros(0))

    def embed(self) -> tuple[Tensor, Tensor]:
        return self.user_factors, self.item_factors


@register("mostpop")
class MostPop(_ClosedForm):
    """Score every item by its training popularity: ``u = [1]``, ``i = [n_i]``."""

    def fit(self, ctx: ModelContext) -> None:
        self.user_factors = torch.ones(ctx.num_users, 1)
        self.item_factors = torch.from_numpy(ctx.item_counts.astype(np.float32)).unsqueeze(1)


@register("itemknn")
class ItemKNN(_ClosedForm):
    """Item-based kNN (RecBole ItemKNN): cosine similarity ``S = D⁻½ XᵀX D⁻½`` with
    ``shrink`` added to the denominator, keeping the ``k`` largest entries per item column.
    Score ``s(u, i) = X_u · S_{:, i}``, so ``u = X_u`` and ``i = S_{:, i}``.

    Args:
        k: neighbours kept per item (default 100).
        shrink: similarity shrinkage (default 0).
    """

    def __init__(self, ctx: ModelContext, k: int = 100, shrink: float = 0.0) -> None:
        super().__init__(ctx)
        self.k, self.shrink = k, shrink

    def fit(self, ctx: ModelContext) -> None:
        x = ctx.train.astype(np.float32)
        co = (x.T @ x).toarray()
        norms = np.sqrt(np.diag(co))
        sim = co / (np.outer(norms, norms) + self.shrink + 1e-12)
        np.fill_diagonal(sim, 0.0)
        if self.k < sim.shape[0]:
            cut = np.argpartition(-sim, self.k, axis=0)[self.k:]
            np.put_along_axis(sim, cut, 0.0, axis=0)
        self.user_factors = _dense(x)
        self.item_factors = _dense(sim.T)


@register("ease")
class EASE(_ClosedForm):
    """EASE (Steck, 2019): ``B = I - P·diag(1/diag(P))`` with ``P = (XᵀX + λI)⁻¹``, so
    ``diag(B) = 0``; score ``s(u, i) = X_u · B_{:, i}`` (``u = X_u``, ``i = B_{:, i}``).

    Args:
        reg: λ, the L2 weight (default 300, chosen on MovieLens-100k validation NDCG@10).
    """

    def __init__(self, ctx: ModelContext, reg: float = 300.0) -> None:
        super().__init__(ctx)
        self.reg = reg

    def fit(self, ctx: ModelContext) -> None:
        x = ctx.train.astype(np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.reg
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)
        np.fill_diagonal(b, 0.0)
        self.user_factors = _dense(ctx.train)
        self.item_factors = _dense(b.T)


@register("text")
class TextOnly(_ClosedForm):
    """Text-only: cosine similarity between an item's text embedding and the mean embedding
    of the user's training history (``u = mean_{j∈H(u)} t_j``, ``i = t_i``, both from the
    configured Hugging Face encoder, L2-normalised). Scores cold items like warm ones."""

    needs_text = True

    def fit(self, ctx: ModelContext) -> None:
        if ctx.item_text is None:
            raise ValueError("the text baseline needs item text (a 'text' template in the schema)")
        t = np.asarray(ctx.item_text, dtype=np.float32)
        x = ctx.train.astype(np.float32)
        profile = np.asarray(x @ t) / np.maximum(np.asarray(x.sum(1)), 1.0)
        profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-12)
        self.user_factors = _dense(profile)
        self.item_factors = _dense(t)


@register("elsa")
class ELSA(_ClosedForm):
    """The low-rank linear autoencoder ELSA (:mod:`kgrec.models.lowrank`) on the training
    interactions alone: ``u = x_u A``, ``i = A_i`` with ``A`` [I, dim] of unit rows.

    Args:
        dim: rank (default 192).
        epochs: Adam epochs over the user rows (default 23, the best epoch on MovieLens-100k
            validation NDCG@10 with these settings).
        lr: Adam learning rate (default 0.01).
        batch_size: user rows per step (default 256).
    """

    def __init__(self, ctx: ModelContext, dim: int = 192, epochs: int = 23, lr: float = 0.01,
                 batch_size: int = 256) -> None:
        super().__init__(ctx)
        self.dim, self.epochs, self.lr, self.batch_size = dim, epochs, lr, batch_size

    def fit(self, ctx: ModelContext) -> None:
        from kgrec.models.lowrank import fit_elsa

        a, _ = fit_elsa(ctx.train, self.dim, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                        seed=int(torch.initial_seed()) % (2**31))
        x = ctx.train.astype(np.float32)
        self.user_factors = torch.from_numpy(np.asarray(x @ a.numpy(), dtype=np.float32))
        self.item_factors = a.contiguous()

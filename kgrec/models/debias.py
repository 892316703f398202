"""Training objectives, including the causal debiasing options.

- ``bpr``: ``mean -log σ(s⁺ - s⁻)``.
- ``softmax``: sampled softmax over the positive and its ``n_neg`` negatives,
  ``-log exp(s⁺/τ) / (exp(s⁺/τ) + Σ exp(s⁻/τ))`` (many negatives sharpen the ranking).
- ``ips``: inverse-propensity-weighted BPR (Saito et al., WSDM 2020, for pairwise loss):
  each positive (u, i) is weighted by ``w_i = 1 / p_i`` with the popularity propensity
  ``p_i = (n_i / max_j n_j)^((γ+1)/2)`` (Yang et al., 2018) clipped below at ``clip``, and the
  weights self-normalised so
  they average 1 over the training interactions (they sum to the sample size).
- ``pda``: popularity-bias deconfounding (Zhang et al., SIGIR 2021): train on
  ``(ELU(s) + 1) · m_i^γ`` with ``m_i`` the item's share of training interactions, so the
  popularity confounder is absorbed by ``m_i^γ``; rank by ``s`` (deconfounded, an inner
  product, which is monotone in ``ELU(s) + 1``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from kgrec.errors import SchemaError

OBJECTIVES = ("bpr", "softmax", "ips", "pda")


def ips_weights(item_counts: np.ndarray, gamma: float = 0.5, clip: float = 0.01) -> np.ndarray:
    """Per-item ``1/p_i`` with the popularity propensity of
    :func:`kgrec.metrics.ranking.popularity_propensity` (the same model the debiased metrics use:
    ``p_i = clip_[clip,1]((n_i / max n)^((γ+1)/2))``), scaled so the mean over training
    interactions (items weighted by ``n_i``) is 1. Items with ``n_i = 0`` get the clipped
    maximum weight; with no interactions at all every weight is 1."""
    from kgrec.metrics.ranking import popularity_propensity

    counts = np.asarray(item_counts, dtype=np.float64)
    if counts.sum() <= 0:
        return np.ones_like(counts)
    w = 1.0 / popularity_propensity(counts, gamma=gamma, clip=clip)
    return w / (np.sum(w * counts) / max(counts.sum(), 1.0))


def popularity_share(item_counts: np.ndarray) -> np.ndarray:
    """``m_i``: item ``i``'s share of the training interactions, floored at the smallest
    non-zero share (so items without interactions do not get a zero factor)."""
    counts = np.asarray(item_counts, dtype=np.float64)
    share = counts / max(counts.sum(), 1.0)
    floor = share[share > 0].min() if (share > 0).any() else 1.0
    return np.maximum(share, floor)


class Objective:
    """Pairwise loss on [B] positive and [B, n_neg] negative scores."""

    def __init__(self, kind: str = "bpr", item_counts: np.ndarray | None = None, gamma: float = 0.5,
                 clip: float = 0.01, temperature: float = 1.0) -> None:
        if kind not in OBJECTIVES:
            raise SchemaError(f"unknown objective '{kind}' (expected one of {', '.join(OBJECTIVES)})",
                              field="train.objective")
        self.kind, self.gamma, self.temperature = kind, gamma, temperature
        if kind != "bpr" and item_counts is None:
            raise ValueError(f"objective '{kind}' needs item counts")
        if kind == "ips":
            self.item_weight = torch.from_numpy(ips_weights(item_counts, gamma, clip).astype(np.float32))
        if kind == "pda":
            self.pop_factor = torch.from_numpy(popularity_share(item_counts).astype(np.float32)) ** gamma

    def __call__(self, pos: Tensor, neg: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        if self.kind == "pda":
            pos = (F.elu(pos) + 1.0) * self.pop_factor[pos_items]
            neg = (F.elu(neg) + 1.0) * self.pop_factor[neg_items]
        if self.kind == "softmax":
            logits = torch.cat([pos.unsqueeze(-1), neg], dim=-1) / self.temperature
            return -(logits[:, 0] - torch.logsumexp(logits, dim=-1)).mean()
        per = -F.logsigmoid(pos.unsqueeze(-1) - neg).mean(-1)
        if self.kind == "ips":
            per = per * self.item_weight[pos_items]
        return per.mean()

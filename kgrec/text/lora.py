"""LoRA fine-tuning of the text encoder on the collaborative signal (peft).

The frozen encoder embeds an item's text; fine-tuning adapts it so that items consumed by
the same users land close together, which is what the recommender needs from text (and
what lets a cold item's text say more about who will like it).

Objective: in-batch InfoNCE over co-consumption pairs. A step samples ``batch_size``
training interactions ``(u, i)`` and, for each, another item ``j`` of the same user; with
``a = enc(text_i)``, ``b = enc(text_j)`` (mean-pooled, L2-normalised) it minimises

    ``-1/B Σ_k log softmax_k(a_k · bᵀ / τ)``

so ``j`` must be recognised among the other pairs' items. Only the LoRA adapters on the
attention ``query`` and ``value`` projections (rank ``r``, scale ``alpha / r``) train; the
encoder's weights stay frozen. The adapter and the re-encoded vectors are saved with the run.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    steps: int = 150
    batch_size: int = 32
    lr: float = 0.0005
    temperature: float = 0.05
    max_length: int = 64
    seed: int = 2020


def _pool(hidden: Any, mask: Any) -> Any:
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=1)


def co_consumption_pairs(train: sp.csr_matrix, n: int, rng: np.random.Generator) -> np.ndarray:
    """``[n, 2]`` item pairs ``(i, j)``, ``i ≠ j``, both in the training history of one user;
    ``(u, i)`` is drawn uniformly over interactions of users with at least two items."""
    train = sp.csr_matrix(train)
    deg = np.diff(train.indptr)
    rows = np.repeat(np.arange(train.shape[0]), deg)
    ok = deg[rows] >= 2
    picks = rng.choice(np.flatnonzero(ok), size=n)
    users, first = rows[picks], train.indices[picks]
    offset = rng.integers(1, deg[users])  # any other position in the user's row
    second = train.indices[train.indptr[users] + (picks - train.indptr[users] + offset) % deg[users]]
    return np.stack([first, second], 1)


def finetune(texts: list[str], train: sp.csr_matrix, model_path: str, settings: LoraSettings, out_dir: Path, *,
             progress: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Fine-tune LoRA adapters on ``texts`` (one per item, aligned with ``train``'s columns),
    save the adapter under ``out_dir``, and return the re-encoded ``[I, d]`` float32 vectors
    and training stats (losses, seconds)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm
    from transformers import AutoModel, AutoTokenizer

    t0 = time.perf_counter()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    base = AutoModel.from_pretrained(model_path, local_files_only=True, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                                            target_modules=["query", "value"]))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.lr)

    def encode(idx: np.ndarray) -> Any:
        batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=settings.max_length,
                          return_tensors="pt")
        return _pool(model(**batch).last_hidden_state, batch["attention_mask"])

    losses = []
    model.train()
    bar = tqdm(range(settings.steps), desc="LoRA text encoder", unit="step", file=sys.stderr, disable=not progress)
    for _ in bar:
        pairs = co_consumption_pairs(train, settings.batch_size, rng)
        a, b = encode(pairs[:, 0]), encode(pairs[:, 1])
        logits = a @ b.T / settings.temperature
        # the same item can appear twice in a batch: count every matching column as a positive
        same = torch.from_numpy(pairs[:, 1][None, :] == pairs[:, 1][:, None])
        loss = -(torch.logsumexp(logits.masked_fill(~same, -torch.inf), 1) - torch.logsumexp(logits, 1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    vectors = np.empty((len(texts), base.config.hidden_size), np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), 128):
            idx = np.arange(start, min(start + 128, len(texts)))
            vectors[idx] = encode(idx).numpy()
    stats = {"steps": settings.steps, "first_loss": float(np.mean(losses[:10])) if losses else None,
             "last_loss": float(np.mean(losses[-10:])) if losses else None, "seconds": time.perf_counter() - t0}
    np.save(out_dir / "item_text.npy", vectors)
    return vectors, stats

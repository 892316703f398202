"""Shared Hypothesis strategies for the property suites: tiny interaction matrices,
permutations, integer-valued score matrices (to force ties) and masks."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st


@st.composite
def binary_matrices(draw, *, min_rows: int = 1, max_rows: int = 7, min_cols: int = 1, max_cols: int = 7,
                    rows: int | None = None, cols: int | None = None) -> np.ndarray:
    """A float64 0/1 matrix [rows, cols] (shrinks towards all zeros)."""
    n = rows if rows is not None else draw(st.integers(min_rows, max_rows))
    m = cols if cols is not None else draw(st.integers(min_cols, max_cols))
    bits = draw(st.lists(st.booleans(), min_size=n * m, max_size=n * m))
    return np.asarray(bits, dtype=np.float64).reshape(n, m)


def permutation_of(n: int) -> st.SearchStrategy[np.ndarray]:
    """A permutation of ``range(n)`` as an int64 array."""
    return st.permutations(range(n)).map(lambda p: np.asarray(p, dtype=np.int64))


@st.composite
def integer_scores(draw, *, max_users: int = 6, max_items: int = 12, lo: int = -3, hi: int = 3) -> np.ndarray:
    """Integer-valued float32 scores [U, I] from a small range, so ties are common."""
    n = draw(st.integers(1, max_users))
    m = draw(st.integers(1, max_items))
    vals = draw(st.lists(st.integers(lo, hi), min_size=n * m, max_size=n * m))
    return np.asarray(vals, dtype=np.float32).reshape(n, m)


def user_batches(n_users: int, max_size: int = 8) -> st.SearchStrategy[np.ndarray]:
    """A batch of user indices in any order, duplicates allowed, as int64."""
    return st.lists(st.integers(0, n_users - 1), min_size=1, max_size=max_size).map(
        lambda xs: np.asarray(xs, dtype=np.int64))

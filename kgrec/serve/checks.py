"""The one integer check of :mod:`kgrec.serve` (options, request fields, log records)."""

from __future__ import annotations

import numpy as np


def is_int(value: object, low: int | None = None, high: int | None = None, *, numpy: bool = False) -> bool:
    """``value`` is an integer (never a bool) in ``[low, high]`` (``None``: unbounded);
    ``numpy``: numpy integers count too (not where the value goes to SQLite or JSON as is)."""
    kinds = (int, np.integer) if numpy else int
    if isinstance(value, bool) or not isinstance(value, kinds):
        return False
    return (low is None or value >= low) and (high is None or value <= high)  # type: ignore[operator]

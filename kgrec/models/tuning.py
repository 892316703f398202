"""Post-training choices on validation: one grid search serves the blend, recency and prior
weights of :mod:`kgrec.models.kgrec`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kgrec.models.base import Recommender


def choose(set_value: Callable[[float], object], grid: Sequence[float], score: Callable[[Recommender], float],
           model: Recommender) -> float:
    """Set each value of ``grid`` in turn and keep the one with the best validation
    ``score(model)`` (the first of equals); returns it."""
    best = (float("-inf"), grid[0])
    for value in grid:
        set_value(value)
        current = score(model)
        if current > best[0]:
            best = (current, value)
    set_value(best[1])
    return best[1]

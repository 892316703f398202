"""Process-wide runtime settings: torch threads and seeds."""

from __future__ import annotations

import os
import random

import numpy as np


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (default 1, or ``$KGREC_THREADS``).

    PyG scatter and sparse ops ran 5-25x slower with 2 threads on 2-core machines.
    """
    import torch

    n = int(threads if threads is not None else os.environ.get("KGREC_THREADS", "1"))
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch; return a NumPy generator for explicit use."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)

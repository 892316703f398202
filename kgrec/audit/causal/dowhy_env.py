"""How DoWhy is run: quiet logs, a seeded global NumPy RNG, and joblib's threading backend.

- :func:`quiet_dowhy`: DoWhy's root logger at WARNING, without its per-refutation normality
  notice (the p-value is reported, not judged), and without the warning about graph nodes
  missing from the data (they are unobserved by design);
- :func:`seeded_numpy`: the global NumPy RNG (used by DoWhy's bootstrap and direct
  simulation) seeded during the call and restored afterwards;
- :func:`joblib_backend`: with ``n_jobs != 1`` joblib's process backend would copy a
  refuter's RandomState into every task (identical runs), so the threading backend is used.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

import numpy as np


class _DropNormalTestNotice(logging.Filter):
    """DoWhy warns on every refutation with < 100 runs that its p-value assumes normality;
    the p-value is reported, not judged, so the notice is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "We assume a Normal Distribution" not in record.getMessage()


@contextlib.contextmanager
def quiet_dowhy() -> Iterator[None]:
    root, refuter = logging.getLogger("dowhy"), logging.getLogger("dowhy.causal_refuter")
    level, flt = root.level, _DropNormalTestNotice()
    root.setLevel(logging.WARNING)
    refuter.addFilter(flt)
    try:
        with warnings.catch_warnings():
            # CausalModel warns (UserWarning) about graph nodes that are not data columns;
            # they are unobserved by design, and identification reports what that implies.
            warnings.filterwarnings("ignore", message=".*not in the data.*", module="dowhy")
            yield
    finally:
        refuter.removeFilter(flt)
        root.setLevel(level)


@contextlib.contextmanager
def seeded_numpy(seed: int) -> Iterator[None]:
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextlib.contextmanager
def joblib_backend(n_jobs: int) -> Iterator[None]:
    if n_jobs == 1:
        yield
        return
    from joblib import parallel_config

    with parallel_config(backend="threading"):
        yield

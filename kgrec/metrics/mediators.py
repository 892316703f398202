r"""Per-user history mediators: how much a user has interacted, and how mainstream that history is.

One definition shared by the audit's mediation analysis (:mod:`kgrec.audit.mediation_check`, on a
run's training split) and the synthetic world's planted outcome (:mod:`kgrec.graphs.synthetic_outcome`,
on the world's interactions), so the world plants its effect on exactly the quantities the audit
measures. numpy and scipy only.

For an interaction matrix ``X`` [U, I] (any stored nonzero is one interaction of user u with item i),
``n_u`` the number of items in row u and ``c_i`` the number of users in column i::

    activity_u            = log(1 + n_u)
    history_popularity_u  = (1 / n_u) sum_{i in row u} log(1 + c_i)     (0 when n_u = 0)

``activity`` is how much history a user gave the recommender; ``history_popularity`` is the history's
composition: the mean log popularity of its items (high for mainstream users, low for users of niche,
long-tail items). A share of long-tail items is not a third mediator: it measures the same popularity
profile (on MovieLens-100k's training split its correlation with ``history_popularity`` over users is
-0.95, for the items outside the most popular 20%), and two nearly collinear mediators split one
indirect path arbitrarily between them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

MEDIATORS = ("activity", "history_popularity")


def history_mediators(matrix: sp.spmatrix, *, item_counts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``{"activity": [U], "history_popularity": [U]}`` float64 for the rows of ``matrix`` [U, I]
    (module docstring). ``item_counts`` [I] overrides ``c_i`` (default: the column counts of
    ``matrix`` itself). Explicit zeros are not interactions."""
    m = sp.csr_matrix(matrix, copy=True)
    m.eliminate_zeros()
    m.data = np.ones_like(m.data, dtype=np.float64)
    n_u = np.diff(m.indptr).astype(np.float64)
    if item_counts is None:
        item_counts = np.bincount(m.indices, minlength=m.shape[1])
    counts = np.asarray(item_counts, dtype=np.float64).ravel()
    if counts.shape != (m.shape[1],):
        raise ValueError(f"item_counts has {counts.shape[0]} entries for {m.shape[1]} items")
    total = np.asarray(m @ np.log1p(counts)).ravel()
    return {"activity": np.log1p(n_u),
            "history_popularity": np.where(n_u > 0, total / np.maximum(n_u, 1.0), 0.0)}

"""Top-K by torch.topk equals the first K of a stable descending sort, ties and excluded
(-inf) items included."""

import numpy as np
import scipy.sparse as sp
import torch
from hypothesis import given
from hypothesis import strategies as st

from kgrec.models.ranking import topk_from_vectors


@given(st.integers(1, 12), st.integers(1, 40), st.integers(1, 45), st.integers(0, 2**31 - 1),
       st.sampled_from([2, 5, 1000]), st.sampled_from([0.0, 0.2, 0.9]))
def test_topk_equals_stable_sort(users, items, k, seed, levels, excluded):
    rng = np.random.default_rng(seed)
    # few score levels -> many ties, at the k-th place too
    scores = rng.integers(0, levels, (users, items)).astype(np.float32)
    mask = rng.random((users, items)) < excluded
    ref = torch.from_numpy(np.where(mask, -np.inf, scores).astype(np.float32))
    want = torch.sort(ref, dim=1, descending=True, stable=True).indices[:, :min(k, items)].numpy()
    # user vectors = score rows, item vectors = identity: the products are the scores
    got = topk_from_vectors(torch.from_numpy(scores), torch.eye(items), np.arange(users), k,
                            exclude=sp.csr_matrix(mask), chunk=5)
    np.testing.assert_array_equal(got, want)

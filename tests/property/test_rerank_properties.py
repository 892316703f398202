"""Properties of calibrated re-ranking (kgrec.models.rerank) on random pools: a K-subset of the
pool without repeats, the model's order at strength 0, invariance of the output to positive
affine maps of the scores (they are min-max scaled), and determinism."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from kgrec.models.rerank import CalibratedReranker, Grouping, calibrated_order, targets

N_ITEMS = 24


@st.composite
def pools(draw, *, integer: bool = False):
    """(candidates [n, M] distinct item ids, scores [n, M], histories CSR [n, I], groupings, k)."""
    n = draw(st.integers(1, 5))
    m = draw(st.integers(1, 10))
    k = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    cand = np.stack([rng.choice(N_ITEMS, m, replace=False) for _ in range(n)])
    if integer:  # few levels: ties in the scores, and exact arithmetic under the affine maps below
        scores = rng.integers(-4, 5, size=(n, m)).astype(np.float64)
    else:
        scores = rng.normal(size=(n, m))
    hist = sp.csr_matrix((rng.random((n, N_ITEMS)) < draw(st.sampled_from([0.0, 0.1, 0.4]))).astype(np.float64))
    groupings = []
    for j in range(draw(st.integers(1, 3))):
        g = int(rng.integers(2, 5))
        groupings.append(Grouping(f"g{j}", rng.integers(0, g, N_ITEMS), tuple(str(x) for x in range(g))))
    return cand, scores, hist, groupings, k


strengths = st.sampled_from([0.0, 0.05, 0.3, 0.5, 0.8, 1.0]) | st.floats(0.0, 1.0)


@given(pools(), strengths, st.integers(0, 2**32 - 1))
def test_output_is_a_k_subset_of_the_pool(case, strength, pad_seed) -> None:
    cand, scores, hist, groupings, k = case
    m = cand.shape[1]
    kk = min(k, m)
    rng = np.random.default_rng(pad_seed)  # short pools ("-1" padding at the end), at least k valid slots
    for row in cand:
        row[m - int(rng.integers(0, m - kk + 1)):] = -1
    out = CalibratedReranker(groupings, strength=strength, pool=m).rerank(cand, scores, hist, k)
    assert out.shape == (cand.shape[0], kk) and out.dtype == np.int64
    for row, pool in zip(out, cand):
        assert set(row.tolist()) <= set(pool[pool >= 0].tolist())  # never padding while valid ones remain
        assert len(set(row.tolist())) == len(row)


@given(pools(integer=True), st.booleans())
def test_strength_zero_is_the_models_order(case, sorted_pool) -> None:
    cand, scores, hist, groupings, k = case
    if sorted_pool:  # the pool as rank() hands it over: best first (ties in any order)
        scores = -np.sort(-scores, axis=1)
    kk = min(k, cand.shape[1])
    out = CalibratedReranker(groupings, strength=0.0, pool=cand.shape[1]).rerank(cand, scores, hist, k)
    np.testing.assert_array_equal(out, cand[:, :kk])
    # the greedy objective itself at λ = 0 is a stable descending sort of the scores
    groups = [g.codes[cand] for g in groupings]
    tgt = [targets(g, hist) for g in groupings]
    pos = calibrated_order(scores, groups, tgt, k, 0.0)
    np.testing.assert_array_equal(pos, np.argsort(-scores, axis=1, kind="stable")[:, :kk])
    if sorted_pool:
        np.testing.assert_array_equal(pos, np.tile(np.arange(kk), (cand.shape[0], 1)))


@given(pools(integer=True), strengths, st.integers(-6, 10), st.integers(-1000, 1000))
def test_positive_affine_maps_of_the_scores_do_not_change_the_list(case, strength, log2_scale, shift) -> None:
    # integer scores, a power-of-two scale and an integer shift keep every step exact, so the
    # min-max scaled scores are bit-identical and so is the list (ties included)
    cand, scores, hist, groupings, k = case
    reranker = CalibratedReranker(groupings, strength=strength, pool=cand.shape[1])
    base = reranker.rerank(cand, scores, hist, k)
    np.testing.assert_array_equal(reranker.rerank(cand, scores * 2.0 ** log2_scale, hist, k), base)
    np.testing.assert_array_equal(reranker.rerank(cand, scores + shift, hist, k), base)
    np.testing.assert_array_equal(reranker.rerank(cand, scores * 2.0 ** log2_scale + shift, hist, k), base)


@given(pools(), st.floats(0.01, 0.99), st.floats(0.1, 10.0))
def test_any_positive_scale_keeps_the_list_on_continuous_scores(case, strength, scale) -> None:
    # continuous scores: an arbitrary positive scale moves the scaled scores by rounding only
    cand, scores, hist, groupings, k = case
    reranker = CalibratedReranker(groupings, strength=strength, pool=cand.shape[1])
    np.testing.assert_array_equal(reranker.rerank(cand, scores * scale - 3.0, hist, k),
                                  reranker.rerank(cand, scores, hist, k))


@given(pools(), strengths)
def test_deterministic_and_row_independent(case, strength) -> None:
    cand, scores, hist, groupings, k = case
    reranker = CalibratedReranker(groupings, strength=strength, pool=cand.shape[1])
    args = (cand.copy(), scores.copy(), hist.copy(), k)
    first = reranker.rerank(*args)
    np.testing.assert_array_equal(reranker.rerank(*args), first)
    np.testing.assert_array_equal(args[0], cand)  # inputs are not modified
    np.testing.assert_array_equal(args[1], scores)
    # the greedy selection of one row does not depend on the other rows (targets given)
    groups = [g.codes[cand] for g in groupings]
    tgt = [targets(g, hist) for g in groupings]
    whole = calibrated_order(scores, groups, tgt, k, strength)
    for r in range(cand.shape[0]):
        one = calibrated_order(scores[r: r + 1], [g[r: r + 1] for g in groups], [t[r: r + 1] for t in tgt], k, strength)
        np.testing.assert_array_equal(one[0], whole[r])

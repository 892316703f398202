"""Hypothesis properties of kgrec.metrics.ranking on random rankings and relevant sets.

``max_examples`` comes from the active Hypothesis profile (registered elsewhere)."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from kgrec.metrics import ranking as M

ACC = ["recall", "precision", "hit", "ndcg", "mrr", "map"]


@st.composite
def cases(draw):
    """(topk [U, K], relevant sets, k <= K, item weights, n_items)."""
    n_items = draw(st.integers(2, 15))
    width = draw(st.integers(1, n_items))
    n_users = draw(st.integers(1, 6))
    topk = np.array([draw(st.permutations(range(n_items)))[:width] for _ in range(n_users)], dtype=np.int64)
    rel = [draw(st.sets(st.integers(0, n_items - 1), min_size=1, max_size=n_items)) for _ in range(n_users)]
    k = draw(st.integers(1, width))
    w = np.array(draw(st.lists(st.floats(0.5, 50.0), min_size=n_items, max_size=n_items)))
    return topk, rel, k, w, n_items


def to_csr(rel: list[set[int]], n_items: int) -> sp.csr_matrix:
    rows = [u for u, s in enumerate(rel) for _ in s]
    cols = [i for s in rel for i in sorted(s)]
    return sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(rel), n_items))


def values(name, k, topk, relevant, w):
    return M.per_user(name, k, topk=topk, relevant=relevant, item_weights=w)


@settings(deadline=None)
@given(cases())
def test_accuracy_in_unit_interval_and_equal_to_reference(naive, case):
    topk, rel, k, w, n_items = case
    relevant = to_csr(rel, n_items)
    for name in ACC + ["ips_recall", "ips_ndcg"]:
        got = values(name, k, topk, relevant, w)
        assert got.shape == (len(rel),) and got.dtype == np.float64
        assert ((got >= 0) & (got <= 1 + 1e-12)).all(), name
        want = [naive(name, list(topk[u]), rel[u], k, w) for u in range(len(rel))]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=name)


@settings(deadline=None)
@given(cases())
def test_perfect_ranking_scores_one(case):
    _, rel, k, w, n_items = case
    # each user's relevant items first, heaviest first, then everything else
    topk = np.array([sorted(s, key=lambda i: -w[i]) + [i for i in range(n_items) if i not in s] for s in rel])
    relevant = to_csr(rel, n_items)
    n_rel = np.array([len(s) for s in rel])
    for name in ("hit", "ndcg", "mrr", "map", "ips_ndcg"):
        np.testing.assert_allclose(values(name, k, topk, relevant, w), 1.0, err_msg=name)
    for name in ("recall", "ips_recall"):
        np.testing.assert_allclose(values(name, k, topk, relevant, w)[n_rel <= k], 1.0, err_msg=name)
    np.testing.assert_allclose(values("precision", k, topk, relevant, w)[n_rel >= k], 1.0)


@settings(deadline=None)
@given(cases(), st.data())
def test_ndcg_monotone_when_a_hit_moves_up(case, data):
    topk, rel, k, w, n_items = case
    relevant = to_csr(rel, n_items)
    before = values("ndcg", k, topk, relevant, w)
    assert (before >= 0).all()
    u = data.draw(st.integers(0, len(rel) - 1))
    hit_pos = [j for j in range(k) if topk[u, j] in rel[u]]
    miss_pos = [j for j in range(k) if topk[u, j] not in rel[u]]
    pairs = [(i, j) for i in miss_pos for j in hit_pos if i < j]
    if not pairs:
        return
    i, j = data.draw(st.sampled_from(pairs))
    swapped = topk.copy()
    swapped[u, [i, j]] = swapped[u, [j, i]]
    after = values("ndcg", k, swapped, relevant, w)
    assert after[u] > before[u]
    np.testing.assert_array_equal(np.delete(after, u), np.delete(before, u))


@settings(deadline=None)
@given(cases(), st.integers(1, 30))
def test_beyond_accuracy_bounds(case, n_users):
    topk, _, k, w, n_items = case
    cov = M.item_coverage(topk, k, n_items)
    gini = M.gini_exposure(topk, k, n_items)
    assert 0 < cov <= 1 and 0 <= gini <= 1
    assert cov == len(set(topk[:, :k].ravel().tolist())) / n_items
    flat = topk[:, :k].ravel().tolist()
    counts = [flat.count(i) for i in range(n_items)]
    mad = sum(abs(a - b) for a in counts for b in counts) / (2 * n_items * sum(counts))
    assert math.isclose(gini, mad, rel_tol=1e-9, abs_tol=1e-12)
    item_counts = np.clip(np.round(w).astype(int) - 1, 0, n_users)  # includes zeros
    nov = M.novelty(topk, k, item_counts, n_users)
    assert math.isclose(nov, np.mean([-math.log2(max(item_counts[i], 1) / n_users) for i in flat]), abs_tol=1e-12)
    assert nov >= 0
    assert math.isclose(M.average_popularity(topk, k, item_counts), np.mean(item_counts[flat]))


@settings(deadline=None)
@given(cases(), st.data())
def test_intra_list_diversity_matches_reference(case, data):
    topk, _, k, _, n_items = case
    if k < 2:
        return
    n_feat = data.draw(st.integers(1, 6))
    sets = [data.draw(st.sets(st.integers(0, n_feat - 1))) for _ in range(n_items)]
    feats = to_csr(sets, n_feat)

    def dist(a, b):
        union = sets[a] | sets[b]
        return 1 - len(sets[a] & sets[b]) / len(union) if union else 0.0

    want = np.mean([np.mean([dist(a, b) for x, a in enumerate(row[:k]) for b in row[x + 1: k]]) for row in topk])
    got = M.intra_list_diversity(topk, k, feats)
    assert 0 <= got <= 1 and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)

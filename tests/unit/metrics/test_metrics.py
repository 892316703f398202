"""Unit tests of kgrec.metrics.ranking: boundaries, hand-computed golden values, agreement with a
naive per-user Python loop and with RecBole 1.2.1's own matrix code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial.distance import jaccard

from kgrec.metrics import ranking as M

ACC = ["recall", "precision", "hit", "ndcg", "mrr", "map"]


def csr(rows: list[set[int]], n_items: int, values=None) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in sorted(items)]
    v = np.ones(len(c)) if values is None else values
    return sp.csr_matrix((v, (r, c)), shape=(len(rows), n_items))


def acc(name, k, topk, relevant):
    return getattr(M, name)(M.hits_matrix(topk, relevant), M.n_relevant(relevant), k)


# ------------------------------------------------------------------ naive reference (one user at a time)
def naive_beyond(name, topk, k, n_items, counts=None, n_users=None, feats=None) -> float:
    lists = [list(row[:k]) for row in topk]
    flat = [i for lst in lists for i in lst]
    if name == "coverage":
        return len(set(flat)) / n_items
    if name == "gini":  # mean-absolute-difference form, independent of the sorted formula
        c = [flat.count(i) for i in range(n_items)]
        return sum(abs(a - b) for a in c for b in c) / (2 * n_items * sum(c))
    if name == "novelty":
        return float(np.mean([-math.log2(max(counts[i], 1) / n_users) for i in flat]))
    if name == "avg_popularity":
        return float(np.mean([counts[i] for i in flat]))
    if name == "diversity":
        dense = feats.toarray() != 0
        per = []
        for lst in lists:
            d = [jaccard(dense[a], dense[b]) for x, a in enumerate(lst) for b in lst[x + 1:]]
            per.append(np.mean(d))
        return float(np.mean(per))
    raise KeyError(name)


def random_case(seed: int, n_users=40, n_items=30, width=10):
    rng = np.random.default_rng(seed)
    topk = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :width]
    rows = [set(rng.choice(n_items, size=rng.integers(1, 12), replace=False).tolist()) for _ in range(n_users)]
    rows[0] = set(topk[0, :3].tolist())  # a user with a perfect top 3
    relevant = csr(rows, n_items, values=rng.integers(1, 6, sum(map(len, rows))).astype(float))
    weights = 1.0 / M.popularity_propensity(rng.integers(0, 50, n_items))
    dense = (rng.random((n_items, 8)) < 0.3).astype(float)
    dense[[3, 7]] = 0  # featureless items
    feats = sp.csr_matrix(dense)
    return topk, rows, relevant, weights, feats, rng.integers(0, 40, n_items)


# ------------------------------------------------------------------ boundaries
@pytest.mark.parametrize("k", [1, 3, 5])
def test_perfect_ranking(k):
    topk = np.array([[4, 1, 0, 2, 3], [2, 3, 4, 0, 1]])
    relevant = csr([{4, 1, 0}, {2}], 5)  # relevant items occupy the top positions
    for name in ("hit", "ndcg", "mrr", "map"):
        np.testing.assert_allclose(acc(name, k, topk, relevant), 1.0)
    np.testing.assert_allclose(acc("recall", k, topk, relevant), [min(3, k) / 3, 1.0])
    np.testing.assert_allclose(acc("precision", k, topk, relevant), [min(3, k) / k, 1 / k])
    w = np.array([3.0, 1.0, 1.0, 1.0, 9.0])  # ranked 4 (w=9), 1 (w=1), 0 (w=3): ips_ndcg < 1 unless k=1
    assert M.ips_ndcg(topk, relevant, k, w)[1] == pytest.approx(1.0)
    assert (M.ips_ndcg(topk, relevant, k, w)[0] == pytest.approx(1.0)) == (k == 1)  # ideal order is 4, 0, 1
    assert M.ips_recall(topk, relevant, 5, w) == pytest.approx([1.0, 1.0])


def test_no_hit_gives_zero():
    topk = np.array([[0, 1, 2], [3, 4, 5]])
    relevant = csr([{5}, {0, 1}], 6)
    for name in ACC:
        np.testing.assert_array_equal(acc(name, 3, topk, relevant), 0.0)
    for fn in (M.ips_recall, M.ips_ndcg):
        np.testing.assert_array_equal(fn(topk, relevant, 3, np.ones(6)), 0.0)


# ------------------------------------------------------------------ golden values
GOLD_TOPK = np.array([[2, 0, 4, 1, 3], [5, 1, 2, 3, 4]])
GOLD_REL = csr([{0, 3, 5}, {5}], 6)  # user A: hits at ranks 2 and 5 (n_rel 3); user B: hit at rank 1


def test_golden_accuracy():
    L3, L6 = math.log2(3), math.log2(6)
    expected = {
        # user A @5: hits at ranks 2, 5 of 3 relevant
        # recall 2/3; precision 2/5; hit 1; mrr 1/2
        # ndcg (1/log2 3 + 1/log2 6) / (1 + 1/log2 3 + 1/log2 4) = 1.01778 / 2.13093 = 0.47762
        # map (P@2 + P@5) / min(3, 5) = (1/2 + 2/5) / 3 = 0.3
        # user B @5: hit at rank 1 of 1: all 1 except precision = 1/5
        ("recall", 5): [2 / 3, 1], ("precision", 5): [2 / 5, 1 / 5], ("hit", 5): [1, 1], ("mrr", 5): [0.5, 1],
        ("ndcg", 5): [(1 / L3 + 1 / L6) / (1 + 1 / L3 + 0.5), 1], ("map", 5): [0.3, 1],
        # user A @2: one hit at rank 2; ndcg 0.63093 / (1 + 0.63093) = 0.38685; map (1/2) / min(3, 2) = 0.25
        ("recall", 2): [1 / 3, 1], ("precision", 2): [1 / 2, 1 / 2], ("hit", 2): [1, 1], ("mrr", 2): [0.5, 1],
        ("ndcg", 2): [(1 / L3) / (1 + 1 / L3), 1], ("map", 2): [0.25, 1],
        # @1: user A misses everything
        ("ndcg", 1): [0, 1], ("map", 1): [0, 1], ("mrr", 1): [0, 1],
    }
    for (name, k), value in expected.items():
        np.testing.assert_allclose(acc(name, k, GOLD_TOPK, GOLD_REL), value, err_msg=f"{name}@{k}")
    assert expected[("ndcg", 5)][0] == pytest.approx(0.47762, abs=1e-5)


def test_golden_ips():
    w = np.array([1.0, 2.0, 1.0, 4.0, 1.0, 1.0])
    # user A: relevant {0, 3, 5} with weights 1, 4, 1 (sum 6); hits: item 0 (w 1) at rank 2, item 3 (w 4) at rank 5
    # ips_recall@5 = (1 + 4) / 6; ips_recall@2 = 1 / 6
    np.testing.assert_allclose(M.ips_recall(GOLD_TOPK, GOLD_REL, 5, w), [5 / 6, 1])
    np.testing.assert_allclose(M.ips_recall(GOLD_TOPK, GOLD_REL, 2, w), [1 / 6, 1])
    # ips_ndcg@5: DCG = 1/log2 3 + 4/log2 6 = 2.17834; IDCG from weights [4, 1, 1] = 4 + 1/log2 3 + 1/2 = 5.13093
    dcg, idcg = 1 / math.log2(3) + 4 / math.log2(6), 4 + 1 / math.log2(3) + 0.5
    np.testing.assert_allclose(M.ips_ndcg(GOLD_TOPK, GOLD_REL, 5, w), [dcg / idcg, 1])
    assert dcg / idcg == pytest.approx(0.42455, abs=1e-5)
    # uniform weights reduce to the plain metrics
    for k in (1, 2, 5):
        np.testing.assert_allclose(M.ips_ndcg(GOLD_TOPK, GOLD_REL, k, np.full(6, 7.0)), acc("ndcg", k, GOLD_TOPK, GOLD_REL))
        np.testing.assert_allclose(M.ips_recall(GOLD_TOPK, GOLD_REL, k, np.ones(6)), acc("recall", k, GOLD_TOPK, GOLD_REL))


def test_golden_propensity():
    # (c / 16) ** ((0.5 + 1) / 2) = (c / 16) ** 0.75: 0 -> clip 1e-3, 1 -> 0.125, 4 -> 0.35355, 16 -> 1
    p = M.popularity_propensity(np.array([0, 1, 4, 16]))
    np.testing.assert_allclose(p, [1e-3, 0.125, 0.25 ** 0.75, 1.0])
    np.testing.assert_allclose(M.popularity_propensity(np.array([0, 1, 4, 16]), gamma=1.0, clip=0.1), [0.1, 0.1, 0.25, 1])  # 1/16 clipped
    np.testing.assert_array_equal(M.popularity_propensity(np.zeros(3)), 1.0)
    with pytest.raises(ValueError):
        M.popularity_propensity(np.array([1, -1]))


def test_golden_beyond():
    topk = np.array([[0, 1], [0, 2]])
    # coverage: items {0, 1, 2} of 4 = 0.75
    assert M.item_coverage(topk, 2, 4) == 0.75
    # gini: counts [2, 1, 1, 0] sorted [0, 1, 1, 2]; sum (2i - 5) c_(i) = -3*0 - 1*1 + 1*1 + 3*2 = 6; / (4 * 4) = 0.375
    assert M.gini_exposure(topk, 2, 4) == pytest.approx(0.375)
    assert M.gini_exposure(np.array([[0], [0]]), 1, 4) == pytest.approx(3 / 4)  # one item: (n - 1) / n
    assert M.gini_exposure(np.array([[0, 1], [2, 3]]), 2, 4) == pytest.approx(0.0)  # uniform
    # novelty, counts [8, 4, 2, 0], 8 users: -log2 of 8/8, 4/8, 8/8, 2/8 = 0, 1, 0, 2 -> mean 0.75
    counts = np.array([8, 4, 2, 0])
    assert M.novelty(topk, 2, counts, 8) == pytest.approx(0.75)
    assert M.novelty(np.array([[3]]), 1, counts, 8) == pytest.approx(3.0)  # count 0 is taken as 1
    # average popularity: (8 + 4 + 8 + 2) / 4 = 5.5
    assert M.average_popularity(topk, 2, counts) == pytest.approx(5.5)
    # ILD: item 0 {a, b}, 1 {b}, 2 {}, 3 {c}; pair (0, 1): 1 - 1/2 = 0.5; pair (0, 2): 1 - 0/2 = 1 -> mean 0.75
    feats = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]]))
    assert M.intra_list_diversity(topk, 2, feats) == pytest.approx(0.75)
    assert M.intra_list_diversity(np.array([[2, 1]]), 2, feats) == 1.0  # featureless vs featured
    two_empty = sp.csr_matrix(np.array([[0, 0], [0, 0], [1, 0]]))
    assert M.intra_list_diversity(np.array([[0, 1]]), 2, two_empty) == 0.0  # scipy's convention
    assert M.intra_list_diversity(np.array([[0, 1, 2]]), 3, two_empty) == pytest.approx(2 / 3)


# ------------------------------------------------------------------ agreement with the naive loop
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_reference(seed, naive):
    topk, rows, relevant, w, feats, counts = random_case(seed)
    for k in (1, 2, 5, 10):
        for name in ACC + ["ips_recall", "ips_ndcg"]:
            got = M.per_user(name, k, topk=topk, relevant=relevant, item_weights=w)
            want = [naive(name, list(topk[u]), rows[u], k, w) for u in range(len(rows))]
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"{name}@{k}")
        extra = dict(counts=counts, n_users=60, feats=feats)
        got = M.compute(["coverage", "gini", "novelty", "avg_popularity"] + (["diversity"] if k > 1 else []), [k],
                        topk=topk, n_items=30, item_counts=counts, item_features=feats, n_users=60)
        for key, value in got.items():
            assert value == pytest.approx(naive_beyond(key.split("@")[0], topk, k, 30, **extra), rel=1e-12), key


def _recbole_pos_matrix(pos_index, pos_len):
    """RecBole 1.2.1 ``metric_info`` code for the top-k metrics (``np.float`` -> ``np.float64``)."""
    cols = np.arange(1, pos_index.shape[1] + 1)
    out = {"recall": np.cumsum(pos_index, axis=1) / pos_len.reshape(-1, 1),
           "precision": pos_index.cumsum(axis=1) / cols,
           "hit": (np.cumsum(pos_index, axis=1) > 0).astype(int)}
    mrr = np.zeros_like(pos_index, dtype=np.float64)
    for row, idx in enumerate(pos_index.argmax(axis=1)):
        mrr[row, idx:] = 1 / (idx + 1) if pos_index[row, idx] > 0 else 0
    pre = pos_index.cumsum(axis=1) / cols
    sum_pre = np.cumsum(pre * pos_index.astype(np.float64), axis=1)
    actual_len = np.where(pos_len > pos_index.shape[1], pos_index.shape[1], pos_len)
    mapm = np.zeros_like(pos_index, dtype=np.float64)
    for row, lens in enumerate(actual_len):
        ranges = np.arange(1, pos_index.shape[1] + 1)
        ranges[lens:] = ranges[lens - 1]
        mapm[row] = sum_pre[row] / ranges
    idcg = np.cumsum(np.tile(1.0 / np.log2(cols + 1), (len(pos_len), 1)), axis=1)
    for row, idx in enumerate(actual_len):
        idcg[row, idx:] = idcg[row, idx - 1]
    dcg = np.cumsum(np.where(pos_index, 1.0 / np.log2(cols + 1), 0), axis=1)
    return {**out, "mrr": mrr, "map": mapm, "ndcg": dcg / idcg}


@pytest.mark.parametrize("seed", [3, 4])
def test_matches_recbole_code(seed):
    topk, rows, relevant, *_ = random_case(seed, n_users=60, width=12)
    hits, n_rel = M.hits_matrix(topk, relevant), M.n_relevant(relevant)
    ref = _recbole_pos_matrix(hits, n_rel)
    for name in ACC:
        for k in range(1, 13):
            np.testing.assert_allclose(getattr(M, name)(hits, n_rel, k), ref[name][:, k - 1], rtol=1e-12,
                                       err_msg=f"{name}@{k}")


# ------------------------------------------------------------------ inputs, registry, compute
def test_hits_matrix_and_non_canonical_relevant():
    topk = np.array([[3, 1, 0], [2, 0, 1]])
    # row 0: items 1, 1 (duplicate), 0 (unsorted); row 1: item 2 stored as an explicit zero, item 0 weight 5
    relevant = sp.csr_matrix((np.array([2.0, 1.0, 1.0, 0.0, 5.0]), np.array([1, 1, 0, 2, 0]), np.array([0, 3, 5])),
                             shape=(2, 4))
    assert not relevant.has_canonical_format
    np.testing.assert_array_equal(M.hits_matrix(topk, relevant), [[False, True, True], [False, True, False]])
    np.testing.assert_array_equal(M.n_relevant(relevant), [2, 1])
    assert relevant.nnz == 5  # the caller's matrix is left alone
    np.testing.assert_array_equal(M.hits_matrix(topk, csr([set(), set()], 4)), False)
    with pytest.raises(ValueError, match="no relevant"):
        acc("recall", 2, topk, csr([{1}, set()], 4))


@pytest.mark.parametrize("bad", [np.array([[0, 0, 1]]), np.array([[0, 4, 1]]), np.array([[-1, 2, 1]]),
                                 np.array([0, 1]), np.array([[0.0, 1.0]])])
def test_bad_topk(bad):
    with pytest.raises(ValueError):
        M.hits_matrix(bad, csr([{1}], 4))


def test_registry_and_compute():
    assert set(M.METRICS) == {"recall", "precision", "hit", "ndcg", "mrr", "map", "ips_recall", "ips_ndcg",
                              "coverage", "gini", "novelty", "avg_popularity", "diversity"}
    assert not M.METRICS["gini"].higher_is_better and not M.METRICS["avg_popularity"].higher_is_better
    assert M.METRICS["ndcg"].higher_is_better and M.METRICS["ndcg"].is_per_user
    assert M.METRICS["ips_ndcg"].needs == {"hits", "item_weights"}
    topk, rows, relevant, w, feats, counts = random_case(5)
    out = M.compute(["ndcg", "recall", "coverage"], [5, 10], topk=topk, relevant=relevant, n_items=30)
    assert list(out) == ["ndcg@5", "ndcg@10", "recall@5", "recall@10", "coverage@5", "coverage@10"]
    assert out["ndcg@5"] == pytest.approx(M.per_user("ndcg", 5, topk=topk, relevant=relevant).mean())
    assert all(isinstance(v, float) for v in out.values())
    with pytest.raises(ValueError, match="item_weights"):
        M.compute(["ips_ndcg"], [5], topk=topk, relevant=relevant, n_items=30)
    with pytest.raises(ValueError, match="n_users"):
        M.compute(["novelty"], [5], topk=topk, n_items=30, item_counts=counts)
    with pytest.raises(ValueError, match="relevant"):
        M.compute(["ndcg"], [5], topk=topk, n_items=30)
    with pytest.raises(ValueError, match="unknown"):
        M.compute(["ndgc"], [5], topk=topk, relevant=relevant, n_items=30)
    with pytest.raises(ValueError, match="exceeds"):
        M.compute(["ndcg"], [20], topk=topk, relevant=relevant, n_items=30)
    with pytest.raises(ValueError, match="per-user"):
        M.per_user("coverage", 5, topk=topk, relevant=relevant)


def test_cutoff_beyond_a_complete_short_catalogue():
    # 3 items, all ranked; @5 pads the list with misses: precision divides by 5
    topk, relevant = np.array([[2, 0, 1]]), csr([{0, 1}], 3)
    out = M.compute(["precision", "recall", "ndcg", "coverage"], [5], topk=topk, relevant=relevant, n_items=3)
    assert out["precision@5"] == pytest.approx(2 / 5) and out["recall@5"] == 1.0
    assert out["ndcg@5"] == pytest.approx((1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3)))
    assert out["coverage@5"] == 1.0

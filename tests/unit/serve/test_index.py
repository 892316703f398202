"""kgrec.serve.index: exact flat search, ANN recall, exclusion, padding, add, config validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgrec.serve import index as index_mod
from kgrec.serve.index import KINDS, IndexConfig, ItemIndex

ANN_KINDS = ("ivf", "hnsw")
ALL_KINDS = ("flat", "ivf", "hnsw")


def naive_topk(vectors, queries, k, exclude=None):
    """Reference: exact float64 scores, sorted by (score desc, id asc), excluded ids dropped, padded."""
    vectors = np.asarray(vectors, dtype=np.float64)
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    scores = np.full((len(queries), k), -np.inf)
    for b, q in enumerate(np.asarray(queries, dtype=np.float64)):
        s = vectors @ q
        banned = set() if exclude is None else {int(i) for i in exclude[b]}
        order = [i for i in sorted(range(len(s)), key=lambda i: (-s[i], i)) if i not in banned][:k]
        ids[b, : len(order)] = order
        scores[b, : len(order)] = s[order]
    return ids, scores


def mixture(rng, centers, n, spread):
    labels = rng.integers(0, len(centers), n)
    return (centers[labels] + spread * rng.standard_normal((n, centers.shape[1]))).astype(np.float32)


@pytest.fixture(scope="module")
def clustered():
    """20,000 items and 300 queries from one Gaussian mixture (50 components, d=32)."""
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((50, 32))
    return mixture(rng, centers, 20_000, 1.0), mixture(rng, centers, 300, 1.0)


@pytest.fixture(scope="module")
def small():
    """2,000 items / 50 queries from a mixture (IVF gets 51 lists by default)."""
    rng = np.random.default_rng(2)
    centers = rng.standard_normal((10, 16))
    return mixture(rng, centers, 2_000, 0.7), mixture(rng, centers, 50, 0.7)


def assert_sorted(ids, scores):
    for i_row, s_row in zip(ids, scores):
        valid = i_row >= 0
        assert (s_row[valid][:-1] >= s_row[valid][1:]).all()
        tie = s_row[valid][:-1] == s_row[valid][1:]
        assert (i_row[valid][:-1][tie] < i_row[valid][1:][tie]).all()
        assert len(set(i_row[valid].tolist())) == valid.sum()


# -- exactness of flat (and of the reference) ------------------------------------------------

def test_flat_equals_naive_with_ties_and_exclusions(monkeypatch):
    rng = np.random.default_rng(0)
    # small integers: float32 products are exact, so ties are true ties whatever the summation order
    base = rng.integers(-2, 3, size=(40, 6)).astype(np.float32)
    vectors = np.concatenate([base, base[:15], base[3:8]])  # duplicated rows tie exactly
    queries = rng.integers(-2, 3, size=(25, 6)).astype(np.float32)
    queries[0] = 0  # every item ties
    exclude = [rng.choice(len(vectors), size=rng.integers(0, 30), replace=False) for _ in queries]
    idx = ItemIndex.build(vectors, IndexConfig(kind="flat"))
    monkeypatch.setattr(index_mod, "_SCAN_CELLS", 100)  # several chunks
    for k in (1, 7, 20, 80):
        for excl in (None, exclude):
            want_ids, want_scores = naive_topk(vectors, queries, k, excl)
            for got_ids, got_scores in (idx.search(queries, k, excl), idx.exact(queries, k, excl)):
                assert got_ids.dtype == np.int64 and got_scores.dtype == np.float32
                assert got_ids.shape == got_scores.shape == (len(queries), k)
                np.testing.assert_array_equal(got_ids, want_ids)
                np.testing.assert_array_equal(got_scores, want_scores.astype(np.float32))


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_exact_reference_is_kind_independent_and_follows_adds(kind, small):
    vectors, queries = small
    idx = ItemIndex.build(vectors[:1500], IndexConfig(kind=kind))
    for piece in np.array_split(vectors[1500:], 3):  # grows the stored copy several times
        idx.add(piece)
    assert idx.ntotal == len(vectors)
    np.testing.assert_array_equal(idx.exact(queries, 10)[0], naive_topk(vectors, queries, 10)[0])


# -- ANN recall ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ANN_KINDS)
def test_ann_recall_at_defaults(kind, clustered):
    vectors, queries = clustered
    idx = ItemIndex.build(vectors, IndexConfig(kind=kind))
    assert idx.kind == kind and idx.ntotal == 20_000 and idx.dim == 32
    assert idx.recall(queries, 10) >= 0.99
    rng = np.random.default_rng(3)
    exclude = [rng.choice(20_000, size=100, replace=False) for _ in queries]
    assert idx.recall(queries, 10, exclude) >= 0.99
    # seen items are typically the best-scored ones: recall must hold at depth
    top, _ = idx.exact(queries, 100)
    assert idx.recall(queries, 10, list(top)) >= 0.98


def test_auto_kind_and_describe(small):
    vectors, _ = small
    assert ItemIndex.build(vectors, IndexConfig(flat_max=2_000)).kind == "flat"
    idx = ItemIndex.build(vectors, IndexConfig(flat_max=1_999))
    assert idx.kind == "ivf"
    info = json.loads(json.dumps(idx.describe()))
    assert info["kind"] == "ivf" and info["ntotal"] == 2_000 and info["dim"] == 16
    assert info["nlist"] == 2_000 // 39 and info["nprobe"] == 51  # the default 96, capped at nlist
    assert info["rerank"] is True
    assert info["build_seconds"] >= 0
    hnsw = ItemIndex.build(vectors, IndexConfig(kind="hnsw", hnsw_m=16)).describe()
    assert hnsw["M"] == 16 and hnsw["ef_search"] == 128


# -- exclusion and padding -----------------------------------------------------------------

@pytest.mark.parametrize("kind", ALL_KINDS)
def test_exclusion_of_most_top_candidates(kind, small):
    vectors, queries = small
    idx = ItemIndex.build(vectors, IndexConfig(kind=kind))
    top, _ = idx.exact(queries, 300)
    exclude = [row[:250] for row in top]  # the 250 best items of each query are seen
    ids, scores = idx.search(queries, 10, exclude)
    assert (ids >= 0).all() and np.isfinite(scores).all()
    for row, banned in zip(ids, exclude):
        assert not np.isin(row, banned).any()
    assert_sorted(ids, scores)
    assert idx.recall(queries, 10, exclude) >= 0.95


def test_ivf_grows_and_retries_when_probed_lists_run_dry(small):
    vectors, queries = small
    idx = ItemIndex.build(vectors, IndexConfig(kind="ivf", nlist=40, nprobe=1))
    # exclude every item of each query's 8 best lists: the first round probes
    # ceil(sqrt(1 + h / 20)) of them (h: the excluded items in the query's best list), finding no valid item
    _, item_list = idx._quantizer.search(vectors, 1)
    _, query_lists = idx._quantizer.search(queries, 8)
    exclude = [np.flatnonzero(np.isin(item_list[:, 0], lists)) for lists in query_lists]
    calls: dict[bytes, list[int]] = {}  # query -> nprobe of each faiss search, in order

    class Spy:
        def __init__(self, real):
            self.real = real

        def search(self, x, n, **kw):
            calls.setdefault(x.tobytes(), []).append(kw["params"].nprobe)
            return self.real.search(x, n, **kw)

    idx._index = Spy(idx._index)
    ids, scores = idx.search(queries, 10, exclude)
    assert len(calls) == len(queries)
    for probes in calls.values():  # every query retried, each time with twice the lists (or all of them)
        assert len(probes) > 1 and probes[0] < 8
        assert all(b == min(2 * a, 40) for a, b in zip(probes, probes[1:]))
    assert (ids >= 0).all() and np.isfinite(scores).all()
    for row, banned in zip(ids, exclude):
        assert not np.isin(row, banned).any()
    assert_sorted(ids, scores)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_padding_when_too_few_valid_items(kind):
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((200, 8)).astype(np.float32)
    queries = rng.standard_normal((5, 8)).astype(np.float32)
    idx = ItemIndex.build(vectors, IndexConfig(kind=kind, nlist=4 if kind == "ivf" else None))
    keep = np.array([3, 77, 150])
    exclude = [np.setdiff1d(np.arange(200), keep) for _ in queries]
    ids, scores = idx.search(queries, 10, exclude)
    want_ids, want_scores = naive_topk(vectors, queries, 10, exclude)
    np.testing.assert_array_equal(ids, want_ids)
    assert (ids[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()
    np.testing.assert_allclose(scores[:, :3], want_scores[:, :3], rtol=1e-5)
    ids, scores = idx.search(queries, 250)  # k > ntotal
    assert (ids[:, :200] >= 0).all() and (ids[:, 200:] == -1).all() and np.isneginf(scores[:, 200:]).all()
    assert (np.sort(ids[:, :200], axis=1) == np.arange(200)).all()
    ids, _ = idx.search(queries, 5, [np.arange(200)] * 5)  # everything seen
    assert (ids == -1).all()


def test_out_of_range_exclusions_are_ignored(small):
    vectors, queries = small
    idx = ItemIndex.build(vectors, IndexConfig(kind="flat"))
    plain = idx.search(queries[:3], 5)[0]
    np.testing.assert_array_equal(idx.search(queries[:3], 5, [[-1, 10**9], [], np.array([5000])])[0], plain)


# -- add -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ALL_KINDS)
def test_added_item_is_retrievable_at_once(kind, small):
    vectors, queries = small
    idx = ItemIndex.build(vectors, IndexConfig(kind=kind))
    rng = np.random.default_rng(5)
    fresh = 40.0 * rng.standard_normal((3, 16)).astype(np.float32)  # long vectors: each its own best match
    ids = idx.add(fresh)
    np.testing.assert_array_equal(ids, [2_000, 2_001, 2_002])
    assert idx.ntotal == 2_003
    got, scores = idx.search(fresh, 3)
    np.testing.assert_array_equal(got[:, 0], ids)
    np.testing.assert_allclose(scores[:, 0], (fresh * fresh).sum(axis=1), rtol=1e-5)
    # a seen new item is excluded like any other
    got, _ = idx.search(fresh[:1], 3, [ids[:1]])
    assert ids[0] not in got
    assert idx.add(np.empty((0, 16), dtype=np.float32)).size == 0
    assert idx.describe()["ntotal"] == 2_003


# -- rerank --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ANN_KINDS)
@pytest.mark.parametrize("rerank", [False, True])
def test_results_sorted_best_first_with_and_without_rerank(kind, rerank, small):
    vectors, queries = small
    idx = ItemIndex.build(vectors, IndexConfig(kind=kind, rerank=rerank))
    ids, scores = idx.search(queries, 20, [np.arange(b, 2_000, 50) for b in range(len(queries))])
    assert (ids >= 0).all()
    assert_sorted(ids, scores)
    exact_scores = np.einsum("bkd,bd->bk", vectors[ids].astype(np.float64), queries.astype(np.float64))
    np.testing.assert_allclose(scores, exact_scores, rtol=1e-4, atol=1e-4)
    assert idx.recall(queries, 20) >= 0.95


@pytest.mark.parametrize("kind", ANN_KINDS)
@pytest.mark.parametrize("rerank", [False, True])
def test_ties_are_ordered_by_id(kind, rerank, small):
    vectors, queries = small
    tripled = np.repeat(vectors[:600], 3, axis=0)[::-1].copy()  # ids 3j, 3j+1, 3j+2 tie exactly
    idx = ItemIndex.build(tripled, IndexConfig(kind=kind, rerank=rerank))
    ids, scores = idx.search(queries, 12)
    assert_sorted(ids, scores)
    assert (np.diff(scores, axis=1) == 0).sum() >= len(queries) * 6  # the ties were really there


def test_tie_aware_recall_counts_a_tied_twin_but_not_a_worse_or_excluded_item(monkeypatch):
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.9, 0.0], [0.0, 1.0]], dtype=np.float32)  # 0 and 1 tie
    query = np.array([[1.0, 0.0]], dtype=np.float32)
    idx = ItemIndex.build(vectors, IndexConfig(kind="flat"))
    assert idx.recall(query, 1) == idx.recall(query, 1, ties=True) == 1.0
    answers = {1: 1.0, 2: 0.0}  # returned id -> tie-aware recall@1: the twin is as good as id 0, item 2 worse
    for returned, want in answers.items():
        monkeypatch.setattr(idx, "search", lambda q, k, exclude=None, r=returned: (
            np.array([[r]]), np.array([[float(vectors[r] @ q[0])]], dtype=np.float32)))
        assert idx.recall(query, 1) == 0.0  # by id, only the lowest tied id counts
        assert idx.recall(query, 1, ties=True) == want
    # with 0 excluded, returning the excluded 0 is a miss; the twin 1 is the answer
    monkeypatch.setattr(idx, "search", lambda q, k, exclude=None: (np.array([[0]]), np.array([[1.0]], np.float32)))
    assert idx.recall(query, 1, [np.array([0])], ties=True) == 0.0


# -- validation ----------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("kind", "pq"), ("flat_max", -1), ("nlist", 0), ("nprobe", 0), ("nprobe", 2.5), ("nprobe", True),
    ("hnsw_m", 1), ("ef_search", 0), ("ef_construction", 0), ("rerank", "yes"), ("oversample", 0),
    ("train_sample", 0), ("seed", -1), ("seed", 2**31), ("threads", 0),
])
def test_config_validation(field, value):
    with pytest.raises(ValueError, match=rf"IndexConfig\.{field}\b"):
        IndexConfig(**{field: value})


def test_kinds_and_valid_config():
    assert KINDS == ("auto", "flat", "ivf", "hnsw")
    for kind in KINDS:
        assert IndexConfig(kind=kind).kind == kind


def test_input_validation(small):
    vectors, queries = small
    with pytest.raises(ValueError, match="2-D"):
        ItemIndex.build(vectors[0])
    with pytest.raises(ValueError, match="2-D"):
        ItemIndex.build(vectors[:0])
    bad = vectors.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        ItemIndex.build(bad)
    with pytest.raises(ValueError, match="non-finite"):
        ItemIndex.build(np.full((3, 2), 1e300))  # overflows float32
    with pytest.raises(ValueError, match="nlist"):
        ItemIndex.build(vectors, IndexConfig(kind="ivf", nlist=100, train_sample=50))
    idx = ItemIndex.build(vectors, IndexConfig(kind="flat"))
    with pytest.raises(ValueError, match="16 columns"):
        idx.search(queries[:, :8], 5)
    with pytest.raises(ValueError, match="16 columns"):
        idx.add(np.ones((1, 15)))
    with pytest.raises(ValueError, match="non-finite"):
        idx.add(np.full((1, 16), np.inf))
    for k in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match="k must be"):
            idx.search(queries, k)
    with pytest.raises(ValueError, match="one id array per query"):
        idx.search(queries, 5, [[1]])
    with pytest.raises(ValueError, match="integer item ids"):
        idx.search(queries[:1], 5, [np.array([1.5])])
    with pytest.raises(TypeError):
        ItemIndex.build(vectors, {"kind": "flat"})


def test_build_copies_the_vectors(small):
    vectors, queries = small
    own = vectors.copy()
    idx = ItemIndex.build(own, IndexConfig(kind="flat"))
    before = idx.search(queries, 5)
    own[:] = 0
    np.testing.assert_array_equal(idx.search(queries, 5)[0], before[0])
    assert not idx.vectors.flags.writeable and idx.vectors.shape == (2_000, 16)

"""Calibrated re-ranking (kgrec.models.rerank, Steck 2018) and ``rank_reranked``: golden lists,
boundaries of the strength, and a naive per-candidate reference of the greedy objective."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.errors import SchemaError
from kgrec.models import create_model
from kgrec.models import rerank as rr
from kgrec.models.ranking import rank, rank_reranked
from kgrec.models.rerank import (ALPHA, CalibratedReranker, Grouping, calibrated_order, feature_grouping,
                                 popularity_grouping, reranker_for, targets)


def naive_order(scores, groups, target, k, strength, valid=None) -> list[list[int]]:
    """The greedy objective one candidate at a time, in plain Python: for each position, every
    untaken valid candidate's (1 - λ)·minmax(score) − λ·Σ_g KL(p_g ‖ (1 − α)·q_g(S ∪ {i}) + α·p_g),
    the first maximum wins; padding (invalid) only when no valid candidate is left, in pool order."""
    out = []
    n, m = len(scores), len(scores[0])
    for r in range(n):
        row = [float(x) for x in scores[r]]
        finite = [x for x in row if math.isfinite(x)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
        scaled = [0.0 if not math.isfinite(x) else ((x - lo) / (hi - lo) if hi > lo else 1.0) for x in row]
        chosen: list[int] = []
        for step in range(min(k, m)):
            best, best_gain = None, -math.inf
            for j in range(m):
                if j in chosen or (valid is not None and not valid[r][j]):
                    continue
                kl = 0.0
                for gm, tg in zip(groups, target):
                    p = [float(x) for x in tg[r]]
                    cnt = [0] * len(p)
                    for c in chosen + [j]:
                        cnt[int(gm[r][c])] += 1
                    for g, pg in enumerate(p):
                        q = (1 - ALPHA) * cnt[g] / (step + 1) + ALPHA * pg
                        if pg > 0:
                            kl += pg * math.log(pg / q)
                gain = (1 - strength) * scaled[j] - strength * kl
                if gain > best_gain:
                    best, best_gain = j, gain
            if best is None:
                best = next(j for j in range(m) if j not in chosen)
            chosen.append(best)
        out.append(chosen)
    return out


def _random_case(rng: np.random.Generator, n_groupings: int):
    n, m = int(rng.integers(1, 5)), int(rng.integers(1, 10))
    k = int(rng.integers(1, m + 3))
    scores = rng.normal(size=(n, m))
    groups, target = [], []
    for _ in range(n_groupings):
        g = int(rng.integers(2, 5))
        groups.append(rng.integers(0, g, size=(n, m)))
        p = rng.dirichlet(np.ones(g), size=n)
        p[rng.random((n, g)) < 0.25] = 0.0  # some groups the user never saw (the p = 0 terms)
        p[p.sum(1) == 0, 0] = 1.0
        target.append(p / p.sum(1, keepdims=True))
    return scores, groups, target, k


# --- golden lists and boundaries -----------------------------------------------------------------

def test_strength_zero_is_the_models_order() -> None:
    rng = np.random.default_rng(0)
    scores = rng.permutation(np.arange(12.0)).reshape(2, 6)  # distinct, not sorted
    groups = [rng.integers(0, 2, (2, 6))]
    target = [np.array([[0.1, 0.9], [0.9, 0.1]])]
    got = calibrated_order(scores, groups, target, 4, 0.0)
    np.testing.assert_array_equal(got, np.argsort(-scores, axis=1)[:, :4])
    # the re-ranker at strength 0 hands back the candidates as given, padding and all
    cand = np.array([[7, 3, 9, -1, -1], [0, 4, 2, 8, 1]])
    hist = sp.csr_matrix((2, 10))
    reranker = CalibratedReranker([popularity_grouping(np.arange(10), 0.5)], strength=0.0, pool=5)
    np.testing.assert_array_equal(reranker.rerank(cand, rng.normal(size=(2, 5)), hist, 4), cand[:, :4])
    np.testing.assert_array_equal(reranker.rerank(cand, rng.normal(size=(2, 5)), hist, 9), cand)


def test_strength_one_meets_a_reachable_target_and_keeps_the_models_order_in_ties() -> None:
    # the model ranks all heads first; the user's history is half head, half tail
    scores = np.array([[8.0, 7, 6, 5, 4, 3, 2, 1]])
    groups = [np.array([[0, 0, 0, 0, 1, 1, 1, 1]])]
    got = calibrated_order(scores, groups, [np.array([[0.5, 0.5]])], 4, 1.0)
    assert got.tolist() == [[0, 4, 1, 5]]  # 2 heads and 2 tails; equal gains go to the better-scored
    got = calibrated_order(scores, groups, [np.array([[0.75, 0.25]])], 4, 1.0)
    assert sorted(np.bincount(groups[0][0, got[0]], minlength=2).tolist()) == [1, 3]
    assert np.bincount(groups[0][0, got[0]], minlength=2).tolist() == [3, 1]
    # a target of all tail: only tails, in the model's order
    assert calibrated_order(scores, groups, [np.array([[0.0, 1.0]])], 3, 1.0).tolist() == [[4, 5, 6]]


def test_intermediate_strength_trades_score_for_calibration() -> None:
    scores = np.array([[1.0, 0.99, 0.98, 0.97, 0.0, 0.0]])
    groups = [np.array([[0, 0, 0, 0, 1, 1]])]
    target = [np.array([[0.5, 0.5]])]
    assert calibrated_order(scores, groups, target, 2, 0.0).tolist() == [[0, 1]]
    assert calibrated_order(scores, groups, target, 2, 0.5).tolist() == [[0, 4]]
    # the KL of the list to the target never grows with the strength on this pool
    def kl(order):
        q = np.bincount(groups[0][0, order], minlength=2) / len(order)
        q = (1 - ALPHA) * q + ALPHA * target[0][0]
        return float(np.sum(target[0][0] * np.log(target[0][0] / q)))
    kls = [kl(calibrated_order(scores, groups, target, 4, s)[0]) for s in (0.0, 0.2, 0.5, 0.8, 1.0)]
    assert all(a >= b - 1e-12 for a, b in zip(kls, kls[1:])) and kls[0] > kls[-1]


@pytest.mark.parametrize("n_groupings", [1, 2, 3])
@pytest.mark.parametrize("strength", [0.0, 0.01, 0.3, 0.7, 1.0])
def test_matches_the_naive_reference(n_groupings: int, strength: float) -> None:
    for seed in range(12):
        rng = np.random.default_rng(1000 * n_groupings + seed)
        scores, groups, target, k = _random_case(rng, n_groupings)
        got = calibrated_order(scores, groups, target, k, strength)
        assert got.tolist() == naive_order(scores, groups, target, k, strength), seed


@pytest.mark.parametrize("strength", [0.0, 0.4, 1.0])
def test_matches_the_naive_reference_with_padding(strength: float) -> None:
    for seed in range(15):
        rng = np.random.default_rng(seed)
        scores, groups, target, k = _random_case(rng, 2)
        valid = rng.random(scores.shape) < 0.6
        valid[:, 0] |= ~valid.any(1)  # at least one valid slot per row
        k = min(k, int(valid.sum(1).min()))  # enough valid candidates (the exhausted case: below)
        s = np.where(valid, scores, -np.inf)  # as CalibratedReranker.rerank passes padding
        got = calibrated_order(s, groups, target, k, strength, valid=valid)
        assert got.tolist() == naive_order(s, groups, target, k, strength, valid.tolist()), seed
        for row, v in zip(got, valid):
            assert v[row].all() and len(set(row.tolist())) == len(row)


def _pool(rng: np.random.Generator, n: int, m: int, n_items: int, max_padding: int) -> np.ndarray:
    cand = np.stack([rng.choice(n_items, m, replace=False) for _ in range(n)])
    for row in cand:
        row[rng.choice(m, int(rng.integers(0, max_padding + 1)), replace=False)] = -1  # padding anywhere
    return cand


def test_output_is_a_subset_of_the_pool_without_repeats() -> None:
    rng = np.random.default_rng(3)
    n, m, n_items = 30, 12, 50
    cand = _pool(rng, n, m, n_items, max_padding=4)  # >= 8 valid candidates per row
    scores = rng.normal(size=(n, m))
    hist = sp.random(n, n_items, density=0.1, random_state=4, format="csr")
    hist.data[:] = 1.0
    groupings = [popularity_grouping(rng.integers(0, 20, n_items), 0.3),
                 feature_grouping("provider", rng.integers(-1, 4, n_items))]
    for strength in (0.2, 1.0):
        out = CalibratedReranker(groupings, strength=strength, pool=m).rerank(cand, scores, hist, 8)
        assert out.shape == (n, 8)
        for row, pool in zip(out, cand):
            assert set(row.tolist()) <= set(pool[pool >= 0].tolist()) and len(set(row.tolist())) == 8


def test_padding_fills_the_list_once_the_valid_candidates_run_out() -> None:
    rng = np.random.default_rng(8)
    n, m, n_items = 20, 8, 30
    cand = _pool(rng, n, m, n_items, max_padding=7)
    scores = rng.normal(size=(n, m))
    hist = sp.csr_matrix((rng.random((n, n_items)) < 0.2).astype(np.float64))
    grouping = popularity_grouping(rng.integers(0, 9, n_items), 0.3)
    out = CalibratedReranker([grouping], strength=0.5, pool=m).rerank(cand, scores, hist, 6)
    for row, pool in zip(out, cand):
        n_valid = min(6, int((pool >= 0).sum()))
        assert set(row[:n_valid].tolist()) <= set(pool[pool >= 0].tolist())
        assert len(set(row[:n_valid].tolist())) == n_valid and (row[n_valid:] == -1).all()
    valid = cand >= 0
    s = np.where(valid, scores, -np.inf)
    groups, tgt = [grouping.codes[np.where(valid, cand, 0)]], [targets(grouping, hist)]
    assert calibrated_order(s, groups, tgt, 6, 0.5, valid=valid).tolist() == naive_order(
        s, groups, tgt, 6, 0.5, valid.tolist())


def test_padding_is_never_chosen_while_valid_candidates_remain() -> None:
    # padding slots carry the best scores and an ideal group: still never before a valid one
    cand = np.array([[-1, -1, 5, 6, 7]])
    scores = np.array([[100.0, 90.0, 1.0, 0.5, 0.2]])
    codes = np.array([1, 1, 1, 1, 1, 0, 0, 0])  # item 0 (what padding would look up) is "tail"
    hist = sp.csr_matrix(np.array([[0, 1, 1, 1, 1, 0, 0, 0.0]]))  # an all-tail history
    out = CalibratedReranker([Grouping("popularity", codes, ("head", "tail"))], strength=1.0, pool=5).rerank(
        cand, scores, hist, 4)
    assert out[0, :3].tolist() == [5, 6, 7] and out[0, 3] == -1


def test_rows_are_reranked_independently_across_chunks(monkeypatch) -> None:
    rng = np.random.default_rng(5)
    n, m, n_items = 7, 6, 20
    cand = np.stack([rng.choice(n_items, m, replace=False) for _ in range(n)])
    scores = rng.normal(size=(n, m))
    dense = (rng.random((n, n_items)) < 0.3).astype(np.float64)
    dense[:, 0] = 1.0  # every row has a history (see the cold-user test below)
    hist = sp.csr_matrix(dense)
    reranker = CalibratedReranker([popularity_grouping(rng.integers(0, 9, n_items), 0.25)], strength=0.6, pool=m)
    whole = reranker.rerank(cand, scores, hist, 4)
    monkeypatch.setattr(rr, "CHUNK", 3)
    np.testing.assert_array_equal(reranker.rerank(cand, scores, hist, 4), whole)
    for u in range(n):
        np.testing.assert_array_equal(reranker.rerank(cand[u: u + 1], scores[u: u + 1], hist[u: u + 1], 4)[0],
                                      whole[u])


def test_cold_user_is_calibrated_to_the_catalogue_whoever_else_is_in_the_batch(small_world) -> None:
    counts = small_world.item_counts
    reranker = reranker_for(small_world.dataset, counts, groupings=["popularity"], strength=1.0, pool=10,
                            head_share=0.2)
    codes = reranker.groupings[0].codes
    heads, tails = np.flatnonzero(codes == 0)[:5], np.flatnonzero(codes == 1)[:5]
    cand = np.tile(np.concatenate([heads, tails]), (2, 1))  # the model ranks heads first
    scores = np.tile(np.linspace(1, 0, 10), (2, 1))
    hist = sp.lil_matrix((2, small_world.num_items))
    hist[1, heads] = 1.0  # user 0 is cold; user 1 has seen heads only
    hist = sp.csr_matrix(hist)
    prior = np.bincount(codes, weights=counts, minlength=2) / counts.sum()  # the catalogue's training mix
    want = cand[0, calibrated_order(scores[:1], [codes[cand[:1]]], [prior[None, :]], 5, 1.0)[0]]
    np.testing.assert_array_equal(reranker.rerank(cand[:1], scores[:1], hist[:1], 5)[0], want)
    np.testing.assert_array_equal(reranker.rerank(cand, scores, hist, 5)[0], want)


# --- targets and groupings -----------------------------------------------------------------------

def test_targets_rows_are_distributions_and_empty_histories_get_the_overall_mix() -> None:
    g = Grouping("popularity", np.array([0, 1, 1, 1]), ("head", "tail"))
    hist = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [1, 0, 1, 1.0]]))
    t = targets(g, hist)
    np.testing.assert_allclose(t, [[0.5, 0.5], [2 / 7, 5 / 7], [0, 1], [1 / 3, 2 / 3]])
    # a binary history of 7 items: 2 head, 5 tail -> the overall mix for the empty row
    none = targets(g, sp.csr_matrix((3, 4)))
    np.testing.assert_allclose(none, np.full((3, 2), 0.5))  # nobody has history: uniform
    rng = np.random.default_rng(0)
    g3 = Grouping("x", rng.integers(0, 3, 30), ("a", "b", "c"))
    h = sp.csr_matrix((rng.random((25, 30)) < 0.15).astype(np.float64))
    t3 = targets(g3, h)
    assert t3.shape == (25, 3) and (t3 >= 0).all()
    np.testing.assert_allclose(t3.sum(1), 1.0)
    for u in range(25):  # the naive count, row by row
        items = h[u].indices
        want = np.bincount(g3.codes[items], minlength=3) / len(items) if len(items) else t3[u]
        np.testing.assert_allclose(t3[u], want)


def test_feature_grouping_maps_missing_codes_to_their_own_group() -> None:
    g = feature_grouping("genre", np.array([0, -1, 2, 1, -1]), ["a", "b", "c"])
    assert g.codes.tolist() == [0, 3, 2, 1, 3]
    assert g.names == ("genre=a", "genre=b", "genre=c", "genre=missing") and g.n_groups == 4
    g = feature_grouping("p", np.array([1, -1, 1]))
    assert g.codes.tolist() == [1, 2, 1] and g.names == ("p=0", "p=1", "p=missing")
    g = feature_grouping("p", np.array([-1, -1]))
    assert g.codes.tolist() == [0, 0] and g.names == ("p=missing",)
    g = feature_grouping("p", np.array([0, 0]), ["a", "b", "c"])  # unused vocabulary stays a group
    assert g.names == ("p=a", "p=b", "p=c") and g.codes.tolist() == [0, 0]
    assert (targets(feature_grouping("p", np.array([0, -1])), sp.csr_matrix([[0, 1.0]])) == [[0, 1]]).all()


def test_popularity_grouping_is_head_then_tail() -> None:
    g = popularity_grouping(np.array([5, 1, 3, 0, 2]), 0.4)
    assert g.codes.tolist() == [0, 1, 0, 1, 1] and g.names == ("head", "tail")


# --- construction ---------------------------------------------------------------------------------

@pytest.mark.parametrize("strength", [-0.1, 1.01, float("nan"), float("inf")])
def test_reranker_rejects_strength_outside_unit_interval(strength: float) -> None:
    g = popularity_grouping(np.arange(4), 0.5)
    with pytest.raises(ValueError, match="strength"):
        CalibratedReranker([g], strength=strength, pool=10)


@pytest.mark.parametrize("pool", [0, -3, 2.5, True])
def test_reranker_rejects_bad_pools_and_no_groupings(pool) -> None:
    g = popularity_grouping(np.arange(4), 0.5)
    with pytest.raises(ValueError, match="pool"):
        CalibratedReranker([g], strength=0.5, pool=pool)
    with pytest.raises(ValueError, match="grouping"):
        CalibratedReranker([], strength=0.5, pool=10)
    for ok in (0.0, 1.0):
        assert CalibratedReranker([g], strength=ok, pool=1).with_strength(0.25).strength == 0.25


def test_reranker_for_names_the_field_of_an_unknown_grouping(small_world) -> None:
    ds, counts = small_world.dataset, small_world.item_counts
    built = reranker_for(ds, counts, groupings=["popularity", "provider", "genre"], strength=0.3, pool=7,
                         head_share=0.2)
    assert [g.name for g in built.groupings] == ["popularity", "provider", "genre"]
    assert (built.strength, built.pool) == (0.3, 7)
    assert built.groupings[2].n_groups == len(ds.nodes["item"].vocab["genre"])
    np.testing.assert_array_equal(built.groupings[0].codes, popularity_grouping(counts, 0.2).codes)
    for bad in ("genra", "critic_score", "title"):  # a typo, a numeric and a text feature
        with pytest.raises(SchemaError, match="rerank.groupings") as err:
            reranker_for(ds, counts, groupings=["popularity", bad], strength=0.3, pool=7, head_share=0.2)
        assert err.value.field == "rerank.groupings" and bad in str(err.value)
        assert "popularity" in err.value.message and "provider" in err.value.message


# --- rank_reranked on real models -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["mostpop", "itemknn"])
def test_rank_reranked_at_strength_zero_equals_rank(small_world, name: str) -> None:
    model = create_model(name, small_world)
    model.fit(small_world)
    users = np.arange(small_world.num_users)
    exclude = small_world.train
    g = popularity_grouping(small_world.item_counts, 0.2)
    for pool, k in ((10, 5), (2, 5), (40, 20)):
        want = rank(model, users, k, exclude)
        got = rank_reranked(model, users, k, exclude, CalibratedReranker([g], strength=0.0, pool=pool), exclude)
        np.testing.assert_array_equal(got, want)


def test_rank_reranked_reranks_the_models_pool_by_inner_products(small_world) -> None:
    model = create_model("itemknn", small_world)
    model.fit(small_world)
    users = np.arange(0, small_world.num_users, 3)
    exclude = small_world.train
    reranker = CalibratedReranker([popularity_grouping(small_world.item_counts, 0.2)], strength=0.7, pool=15)
    got = rank_reranked(model, users, 6, exclude, reranker, small_world.train)
    pool = rank(model, users, 15, exclude)
    with torch.no_grad():
        full = model.full_scores(torch.from_numpy(users)).double().numpy()
    want = reranker.rerank(pool, np.take_along_axis(full, pool, axis=1), small_world.train[users], 6)
    np.testing.assert_array_equal(got, want)
    for row, p in zip(got, pool):
        assert set(row.tolist()) <= set(p.tolist()) and len(set(row.tolist())) == 6
    assert not np.array_equal(got, pool[:, :6])  # strength 0.7 does move items on this data


def test_rank_reranked_never_recommends_excluded_items_while_others_remain(fixed_vectors) -> None:
    g = torch.Generator().manual_seed(0)
    model = fixed_vectors(torch.randn(5, 3, generator=g), torch.randn(8, 3, generator=g))
    exclude = sp.csr_matrix(np.tile([1.0, 1, 1, 0, 0, 0, 0, 0], (5, 1)))  # 5 unseen items per user
    codes = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    reranker = CalibratedReranker([Grouping("popularity", codes, ("head", "tail"))], strength=0.9, pool=8)
    out = rank_reranked(model, np.arange(5), 3, exclude, reranker, exclude)
    assert not np.take_along_axis(exclude.toarray(), out, axis=1).any()

"""Hypothesis properties of kgrec.audit.fairness against naive numpy recomputations.

The bootstrapped properties run few, small examples (``n_boot`` 8, ≤ 40 users): each builds
one or two Fairlearn MetricFrames."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from kgrec.audit.fairness import exposure_fairness, user_disparities

LABELS = ["a", "b", "c", "d"]
FAST = settings(max_examples=25, deadline=None)


@st.composite
def users(draw, max_users: int = 40):
    """(values float [n] in [0, 1] with ties and zeros, labels str [n], min_group_size)."""
    n = draw(st.integers(2, max_users))
    values = draw(st.lists(st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1)), min_size=n, max_size=n))
    labels = draw(st.lists(st.sampled_from(LABELS[: draw(st.integers(1, 4))]), min_size=n, max_size=n))
    return np.array(values), np.array(labels), draw(st.integers(1, 6))


def _naive(values: np.ndarray, labels: np.ndarray, min_size: int) -> tuple[dict[str, tuple[int, float]], float, float]:
    """Per-group (n, mean), and difference/ratio over the groups with n >= min_size."""
    groups = {g: (int((labels == g).sum()), float(values[labels == g].mean())) for g in np.unique(labels)}
    big = [m for n, m in groups.values() if n >= min_size]
    if len(big) < 2:
        return groups, math.nan, math.nan
    return groups, max(big) - min(big), 1.0 if max(big) == 0 else min(big) / max(big)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@FAST
@given(users())
def test_ratio_in_unit_interval(data):
    values, labels, min_size = data
    [r] = user_disparities(values={"m": values}, attributes={"g": labels}, min_group_size=min_size, n_boot=8)
    if not math.isnan(r.ratio):
        assert 0.0 <= r.ratio <= 1.0
        assert r.difference >= 0.0
    for end in (*r.ratio_ci,):
        assert math.isnan(end) or 0.0 <= end <= 1.0
    lo, hi = r.difference_ci
    assert math.isnan(lo) or 0.0 <= lo <= hi


@FAST
@given(users(), st.permutations(["zz", "aa", "mm", "bb"]))
def test_relabelling_groups_leaves_disparity_unchanged(data, names):
    values, labels, min_size = data
    renamed = np.array([names[LABELS.index(x)] for x in labels])
    [a] = user_disparities(values={"m": values}, attributes={"g": labels}, min_group_size=min_size, n_boot=8)
    [b] = user_disparities(values={"m": values}, attributes={"g": renamed}, min_group_size=min_size, n_boot=8)
    for x, y in [(a.difference, b.difference), (a.ratio, b.ratio), (a.overall, b.overall),
                 *zip(a.difference_ci, b.difference_ci), *zip(a.ratio_ci, b.ratio_ci)]:
        assert _same(x, y)
    # the same groups under the new names, with the same sizes and values
    assert sorted((g.n, g.value, g.small) for g in a.groups) == sorted((g.n, g.value, g.small) for g in b.groups)


@settings(max_examples=60, deadline=None)
@given(users())
def test_group_values_match_numpy_per_group(data):
    values, labels, min_size = data
    [r] = user_disparities(values={"m": values}, attributes={"g": labels}, min_group_size=min_size, n_boot=0)
    groups, diff, ratio = _naive(values, labels, min_size)
    got = {g.group: g for g in r.groups}
    assert got.keys() == {f"g={k}" for k in groups}
    for k, (n, mean) in groups.items():
        g = got[f"g={k}"]
        assert g.n == n and g.small == (n < min_size) and _same(g.value, mean)
    assert r.flagged_small == [name for name, g in got.items() if g.small]
    assert _same(r.difference, diff) and _same(r.ratio, ratio)
    assert _same(r.overall, values.mean())


@settings(max_examples=40, deadline=None)
@given(users(), st.lists(st.sampled_from([0, 1, 2, -1]), min_size=40, max_size=40))
def test_intersection_cells_match_numpy(data, other):
    values, labels, _ = data
    codes = np.array(other[: len(values)])
    res = user_disparities(values={"m": values}, attributes={"g": labels, "h": codes}, n_boot=0, min_group_size=1)
    r = res[-1]
    assert r.attribute == "g × h" and r.n_missing == int((codes == -1).sum())
    known = codes != -1
    expected = {}
    for g in np.unique(labels[known]):
        for h in np.unique(codes[known]):
            cell = known & (labels == g) & (codes == h)
            if cell.any():
                expected[f"g={g} & h={h}"] = (int(cell.sum()), float(values[cell].mean()))
    got = {s.group: (s.n, s.value) for s in r.groups}
    assert got.keys() == expected.keys()
    for k, (n, m) in expected.items():
        assert got[k][0] == n and math.isclose(got[k][1], m, rel_tol=1e-9, abs_tol=1e-12)


@st.composite
def rankings(draw):
    n_items = draw(st.integers(3, 12))
    n_users = draw(st.integers(1, 8))
    k = draw(st.integers(1, min(4, n_items)))
    topk = np.array([draw(st.permutations(range(n_items)))[:k] for _ in range(n_users)])
    rel = draw(st.lists(st.lists(st.booleans(), min_size=n_items, max_size=n_items), min_size=n_users,
                        max_size=n_users))
    counts = np.array(draw(st.lists(st.integers(0, 50), min_size=n_items, max_size=n_items)))
    groups = np.array(draw(st.lists(st.integers(-1, 2), min_size=n_items, max_size=n_items)))
    return topk, sp.csr_matrix(np.array(rel, dtype=float)), counts, groups


@settings(max_examples=60, deadline=None)
@given(rankings(), st.sampled_from(["log", "uniform"]))
def test_exposure_shares_match_loops(data, weighting):
    topk, relevant, counts, groups = data
    res = exposure_fairness(topk=topk, relevant=relevant, item_counts=counts, item_groups={"p": groups},
                            position_weighting=weighting)
    exposure = np.zeros(len(counts))
    for row in topk:
        for j, i in enumerate(row):
            exposure[i] += 1 / math.log2(j + 2) if weighting == "log" else 1.0
    relevance = relevant.toarray().sum(0)
    total_rel = relevance.sum()
    pop, attr = res
    assert math.isclose(sum(g.exposure_share for g in pop.groups), 1.0)
    missing = groups == -1
    assert math.isclose(sum(g.exposure_share for g in attr.groups) + attr.missing_exposure_share, 1.0)
    for g in attr.groups:
        mask = groups == int(g.group.split("=")[1])
        assert g.n_items == mask.sum()
        assert math.isclose(g.exposure_share, exposure[mask].sum() / exposure.sum())
        if total_rel > 0:
            assert math.isclose(g.relevance_share, relevance[mask].sum() / total_rel)
            if g.relevance_share > 0:
                assert math.isclose(g.ratio, g.exposure_share / g.relevance_share)
    assert attr.n_missing_items == missing.sum()
    head = np.zeros(len(counts), dtype=bool)
    head[np.argsort(-counts, kind="stable")[: pop.groups[0].n_items]] = True
    # head items are at least as popular as every tail item
    assert counts[head].min() >= counts[~head].max()
    assert math.isclose(pop.long_tail_coverage, np.isin(np.flatnonzero(~head), topk).mean())

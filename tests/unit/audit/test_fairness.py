"""kgrec.audit.fairness on hand-built examples with known group means and exposure shares."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from kgrec.audit.fairness import exposure_fairness, gate, user_disparities
from kgrec.audit.groups import group_order
from kgrec.errors import DataError, SchemaError
from kgrec.metrics.beyond import gini_exposure


def _two_groups(extra: int = 0):
    """40 F users at 0.2/0.4 (mean 0.3), 40 M users at 0.6 (mean 0.6), ``extra`` X users at 1.0."""
    values = np.r_[np.tile([0.2, 0.4], 20), np.full(40, 0.6), np.full(extra, 1.0)]
    gender = np.array(["F"] * 40 + ["M"] * 40 + ["X"] * extra)
    return values, gender


def _by(result, name):
    return next(g for g in result.groups if g.group == name)


def test_golden_two_groups():
    values, gender = _two_groups()
    [r] = user_disparities(values={"ndcg@10": values}, attributes={"gender": gender}, n_boot=100, seed=3)
    assert (r.metric, r.attribute) == ("ndcg@10", "gender")
    assert [(g.group, g.n, g.small) for g in r.groups] == [("gender=F", 40, False), ("gender=M", 40, False)]
    assert _by(r, "gender=F").value == pytest.approx(0.3)
    assert _by(r, "gender=M").value == pytest.approx(0.6)
    assert r.difference == pytest.approx(0.3)
    assert r.ratio == pytest.approx(0.5)
    assert r.overall == pytest.approx(0.45)
    assert r.flagged_small == [] and r.n_missing == 0 and r.min_group_size == 30
    # M is constant: every resample gives 0.6; F's mean varies in [0.2, 0.4] around 0.3
    m = _by(r, "gender=M")
    assert (m.ci_low, m.ci_high) == pytest.approx((0.6, 0.6))
    f = _by(r, "gender=F")
    assert 0.2 <= f.ci_low < 0.3 < f.ci_high <= 0.4
    lo, hi = r.difference_ci
    assert 0.2 <= lo < hi <= 0.4
    lo, hi = r.ratio_ci
    assert 1 / 3 <= lo < hi <= 2 / 3
    d = r.to_dict()
    assert d["difference_ci"] == list(r.difference_ci) and d["groups"][0]["group"] == "gender=F"


def test_groups_are_listed_in_reading_order_not_as_text():
    labels = ["<18", "18-25", "25-35", "35-45", "45-56", ">=56"]
    assert sorted(reversed(labels), key=group_order) == labels  # as text, "<18" came after "45-56"
    assert sorted(["b", "10", "a", "9"], key=group_order) == ["9", "10", "a", "b"]
    rng = np.random.default_rng(0)
    age = np.array(labels * 40, dtype=object)
    rng.shuffle(age)
    [r] = user_disparities(values={"m": rng.random(age.size)}, attributes={"age": age}, n_boot=0,
                           intersections=False)
    assert [g.group for g in r.groups] == [f"age={a}" for a in labels]


def test_same_seed_same_intervals_other_seed_differs():
    values, gender = _two_groups()
    kw = {"values": {"m": values}, "attributes": {"gender": gender}, "n_boot": 30}
    a, b, c = (user_disparities(**kw, seed=s)[0] for s in (1, 1, 2))
    assert a.to_dict() == b.to_dict()
    assert a.difference_ci != c.difference_ci


def test_small_group_flagged_and_excluded_from_comparison():
    values, gender = _two_groups(extra=3)
    [r] = user_disparities(values={"m": values}, attributes={"gender": gender}, n_boot=20)
    x = _by(r, "gender=X")
    assert (x.n, x.small, x.value) == (3, True, pytest.approx(1.0))
    assert r.flagged_small == ["gender=X"]
    # X at 1.0 would make the difference 0.7 and the ratio 0.3 were it compared
    assert r.difference == pytest.approx(0.3) and r.ratio == pytest.approx(0.5)
    assert r.difference_ci[1] <= 0.4 and r.ratio_ci[0] >= 1 / 3
    assert r.overall == pytest.approx((0.3 * 40 + 0.6 * 40 + 3.0) / 83)
    [r1] = user_disparities(values={"m": values}, attributes={"gender": gender}, n_boot=0, min_group_size=3)
    assert r1.flagged_small == [] and r1.difference == pytest.approx(0.7) and r1.ratio == pytest.approx(0.3)
    assert math.isnan(r1.difference_ci[0]) and math.isnan(r1.groups[0].ci_low)  # n_boot=0: no intervals


def test_fewer_than_two_comparable_groups_gives_nan():
    values, gender = _two_groups()
    [r] = user_disparities(values={"m": values}, attributes={"gender": gender}, n_boot=0, min_group_size=41)
    assert r.flagged_small == ["gender=F", "gender=M"]
    assert math.isnan(r.difference) and math.isnan(r.ratio)
    assert not gate("ratio", r.ratio, threshold=0.8, op=">=").passed


def test_missing_values_form_no_group_but_are_counted():
    values = np.r_[np.full(4, 0.5), np.full(4, 0.1), np.full(3, 0.9)]
    obj = np.array(["a"] * 4 + ["b"] * 4 + [None, float("nan"), -1], dtype=object)
    flt = np.r_[np.zeros(4), np.ones(4), [np.nan, -1.0, np.nan]]
    code = np.r_[np.zeros(4, int), np.ones(4, int), [-1, -1, -1]]
    res = user_disparities(values={"m": values}, attributes={"o": obj, "f": flt, "c": code},
                           intersections=False, n_boot=0, min_group_size=1)
    for r, names in zip(res, (["o=a", "o=b"], ["f=0", "f=1"], ["c=0", "c=1"])):
        assert [g.group for g in r.groups] == names
        assert r.n_missing == 3
        assert r.difference == pytest.approx(0.4) and r.ratio == pytest.approx(0.2)
        assert r.overall == pytest.approx(0.3)  # the 0.9 users are not in any group


def test_intersection_group_names_and_counts():
    gender = np.array(["F", "F", "M", "M", "M", "F"])
    age = np.array(["18-25", "26-35", "18-25", "18-25", "26-35", "18-25"])
    occ = np.array([1, 1, 1, 2, 2, 2])
    values = np.array([0.1, 0.2, 0.3, 0.5, 0.6, 0.3])
    res = user_disparities(values={"ndcg@10": values, "recall@10": values / 2},
                           attributes={"gender": gender, "age": age, "occ": occ}, n_boot=0, min_group_size=1)
    assert [(r.attribute, r.metric) for r in res][::2] == [
        ("gender", "ndcg@10"), ("age", "ndcg@10"), ("occ", "ndcg@10"),
        ("gender × age", "ndcg@10"), ("gender × occ", "ndcg@10"), ("age × occ", "ndcg@10")]
    r = res[6]
    assert {g.group: (g.n, round(g.value, 6)) for g in r.groups} == {
        "gender=F & age=18-25": (2, 0.2), "gender=F & age=26-35": (1, 0.2),
        "gender=M & age=18-25": (2, 0.4), "gender=M & age=26-35": (1, 0.6)}
    assert r.difference == pytest.approx(0.4) and r.ratio == pytest.approx(1 / 3)
    # gender=F & occ=... : F users are occ 1,1,2; M users occ 1,2,2 -> four non-empty cells
    assert [g.group for g in res[8].groups] == ["gender=F & occ=1", "gender=F & occ=2",
                                                "gender=M & occ=1", "gender=M & occ=2"]
    assert len(user_disparities(values={"m": values}, attributes={"gender": gender, "age": age},
                                intersections=False, n_boot=0)) == 2


def test_empty_intersection_cells_are_not_groups():
    a = np.array(["x", "x", "y", "y"])
    b = np.array([0, 0, 1, 1])  # only (x,0) and (y,1) occur
    [_, _, r] = user_disparities(values={"m": np.array([0.1, 0.3, 0.5, 0.7])}, attributes={"a": a, "b": b},
                                 n_boot=10, min_group_size=1)
    assert [(g.group, g.n) for g in r.groups] == [("a=x & b=0", 2), ("a=y & b=1", 2)]
    assert r.difference == pytest.approx(0.4)


def test_all_zero_groups_have_ratio_one():
    values, gender = np.zeros(80), np.repeat(["F", "M"], 40)
    [r] = user_disparities(values={"m": values}, attributes={"gender": gender}, n_boot=20)
    assert r.ratio == 1.0 and r.ratio_ci == (1.0, 1.0) and r.difference == 0.0


def test_one_group_at_zero_has_ratio_zero():
    values, gender = np.r_[np.zeros(40), np.full(40, 0.5)], np.repeat(["F", "M"], 40)
    [r] = user_disparities(values={"m": values}, attributes={"gender": gender}, n_boot=20)
    assert r.ratio == 0.0 and r.ratio_ci == (0.0, 0.0) and r.difference == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs, error, field", [
    ({"values": {"m": [0.1, 0.2]}, "attributes": {"g": ["a"]}}, DataError, "g"),
    ({"values": {"m": [0.1, -0.2]}, "attributes": {"g": ["a", "b"]}}, DataError, "m"),
    ({"values": {"m": [0.1, np.nan]}, "attributes": {"g": ["a", "b"]}}, DataError, "m"),
    ({"values": {"m": [0.1, 0.2], "n": [0.1]}, "attributes": {"g": ["a", "b"]}}, DataError, "values"),
    ({"values": {}, "attributes": {"g": ["a", "b"]}}, DataError, "values"),
    ({"values": {"m": [0.1, 0.2]}, "attributes": {}}, DataError, "attributes"),
    ({"values": {"m": [0.1, 0.2]}, "attributes": {"g": ["a", "b"]}, "ci_level": 1.0}, SchemaError, "ci_level"),
    ({"values": {"m": [0.1, 0.2]}, "attributes": {"g": ["a", "b"]}, "min_group_size": 0}, SchemaError,
     "min_group_size"),
    ({"values": {"m": [0.1, 0.2]}, "attributes": {"g": ["a", "b"]}, "n_boot": -1}, SchemaError, "n_boot"),
])
def test_user_bad_input(kwargs, error, field):
    with pytest.raises(error) as e:
        user_disparities(**kwargs)
    assert e.value.field == field


# ----------------------------------------------------------------------------- exposure
def _csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


def test_exposure_golden_log_weights():
    topk = np.array([[0, 1], [0, 2]])
    relevant = _csr([[0], [3]], 4)
    counts = np.array([9, 5, 1, 0])  # head (head_share 0.25 of 4 items) = item 0
    [pop] = exposure_fairness(topk=topk, relevant=relevant, item_counts=counts, head_share=0.25)
    w2 = 1 / math.log2(3)
    total = 2 + 2 * w2
    head, tail = pop.groups
    assert (head.group, head.n_items, tail.group, tail.n_items) == ("head", 1, "tail", 3)
    assert head.exposure_share == pytest.approx(2 / total) and tail.exposure_share == pytest.approx(2 * w2 / total)
    assert head.relevance_share == 0.5 and tail.relevance_share == 0.5
    assert head.ratio == pytest.approx(2 * 2 / total) and pop.min_ratio == pytest.approx(tail.ratio)
    assert pop.long_tail_coverage == pytest.approx(2 / 3)  # items 1, 2 of tail {1, 2, 3}
    assert pop.gini == pytest.approx(gini_exposure(topk, 2, 4))
    [uni] = exposure_fairness(topk=topk, relevant=relevant, item_counts=counts, head_share=0.25,
                              position_weighting="uniform")
    assert uni.groups[0].exposure_share == 0.5


def test_exposure_shares_sum_to_one():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 50, 30, 5
    topk = np.stack([rng.choice(n_items, k, replace=False) for _ in range(n_users)])
    relevant = sp.csr_matrix((rng.random((n_users, n_items)) < 0.1).astype(float))
    genre = rng.integers(0, 4, n_items)
    res = exposure_fairness(topk=topk, relevant=relevant, item_counts=rng.integers(0, 100, n_items),
                            item_groups={"genre": genre})
    assert [r.grouping for r in res] == ["popularity", "genre"]
    for r in res:
        assert sum(g.exposure_share for g in r.groups) == pytest.approx(1.0)
        assert sum(g.relevance_share for g in r.groups) == pytest.approx(1.0)
        assert sum(g.n_items for g in r.groups) == n_items and r.n_missing_items == 0
    assert [g.group for g in res[1].groups] == ["genre=0", "genre=1", "genre=2", "genre=3"]
    assert res[0].groups[0].n_items == 6  # round(0.2 * 30)


def test_proportional_recommender_has_ratio_one():
    # every user's held-out items are exactly their top-K: exposure ∝ relevance under uniform weights
    topk = np.array([[0, 1, 2], [0, 3, 4], [5, 1, 0], [6, 7, 2]])
    relevant = _csr([list(r) for r in topk], 8)
    provider = np.array([0, 0, 1, 1, 2, 2, 2, 1])
    res = exposure_fairness(topk=topk, relevant=relevant, item_counts=np.arange(8)[::-1],
                            item_groups={"provider": provider}, position_weighting="uniform")
    for r in res:
        assert all(g.ratio == pytest.approx(1.0) for g in r.groups)
        assert r.min_ratio == pytest.approx(1.0)


def test_missing_item_codes_and_unrelevant_groups():
    topk = np.array([[0, 1], [2, 3]])
    relevant = _csr([[0], [1]], 5)
    provider = np.array([0, 0, 1, -1, -1])
    _, r = exposure_fairness(topk=topk, relevant=relevant, item_counts=np.ones(5),
                             item_groups={"provider": provider}, position_weighting="uniform")
    assert [(g.group, g.n_items) for g in r.groups] == [("provider=0", 2), ("provider=1", 1)]
    assert r.n_missing_items == 2 and r.missing_exposure_share == 0.25 and r.missing_relevance_share == 0.0
    p0, p1 = r.groups
    assert (p0.exposure_share, p0.relevance_share, p0.ratio) == (0.5, 1.0, 0.5)
    assert (p1.exposure_share, p1.relevance_share, p1.ratio) == (0.25, 0.0, math.inf)
    assert r.min_ratio == 0.5
    assert r.to_dict()["groups"][1]["ratio"] == math.inf


@pytest.mark.parametrize("kwargs, error, field", [
    ({"position_weighting": "exp"}, SchemaError, "position_weighting"),
    ({"head_share": 1.0}, SchemaError, "head_share"),
    ({"item_counts": np.ones(3)}, DataError, "item_counts"),
    ({"topk": np.array([[0, 7]])}, DataError, "topk"),
    ({"topk": np.array([[0, 1], [1, 2]])}, DataError, "topk"),
    ({"item_groups": {"g": np.zeros(3)}}, DataError, "g"),
])
def test_exposure_bad_input(kwargs, error, field):
    base = {"topk": np.array([[0, 1]]), "relevant": _csr([[0]], 4), "item_counts": np.ones(4)}
    with pytest.raises(error) as e:
        exposure_fairness(**{**base, **kwargs})
    assert e.value.field == field


# ----------------------------------------------------------------------------- gates
def test_gate_boundaries():
    assert gate("ratio", 0.8, threshold=0.8, op=">=").passed
    assert not gate("ratio", np.nextafter(0.8, 0), threshold=0.8, op=">=").passed
    assert gate("gini", 0.5, threshold=0.5, op="<=").passed
    assert not gate("gini", np.nextafter(0.5, 1), threshold=0.5, op="<=").passed
    g = gate("ratio", float("nan"), threshold=0.8, op=">=", detail="gender")
    assert not g.passed and g.detail.startswith("gender; ") and "NaN" in g.detail
    assert g.to_dict()["op"] == ">="
    with pytest.raises(SchemaError):
        gate("x", 1.0, threshold=1.0, op=">")
    with pytest.raises(SchemaError):
        gate("x", 1.0, threshold=float("nan"), op="<=")

"""The mitigation sweep's choice of setting, the alternatives' cells, the recommended actions
built from failed gates, and the plan's mitigation block."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import pytest

from kgrec.audit.actions import recommended_actions
from kgrec.audit.alternatives import Measured, cell
from kgrec.audit.gates import Gate, GateSpec
from kgrec.audit.mitigation import Sweep
from kgrec.audit.plan import load_plan
from kgrec.errors import SchemaError

RATIO = "exposure/relevance ratio, weakest popularity group"
AGE = "ndcg@10 ratio across age"
NAN = math.nan


def measured(ratio: float, ndcg: float, age: float = 0.7) -> Measured:
    keys = {RATIO: "exposure_ratio", "exposure Gini": "gini", AGE: "user_ratio"}
    values = {"NDCG@10": ndcg, RATIO: ratio, "exposure Gini": 0.9, AGE: age}
    passed = {RATIO: ratio >= 0.2, "exposure Gini": True, AGE: age >= 0.8}
    return Measured("x", values, {"NDCG@10": (ndcg - 0.01, ndcg + 0.01), RATIO: (ratio - 0.02, ratio + 0.02),
                                  "exposure Gini": (NAN, NAN), AGE: (age - 0.1, age + 0.1)},
                    diff={"NDCG@10": (ndcg - 0.32, ndcg - 0.33, ndcg - 0.31)}, keys=keys, passed=passed)


def sweep(ratios: list[float]) -> Sweep:
    strengths = [0.0, 0.1, 0.3, 1.0][: len(ratios)]
    return Sweep(strengths, [measured(r, 0.32 - 0.01 * s) for s, r in zip(strengths, ratios)], ["popularity"], 100, 50)


@pytest.mark.parametrize("ratios, expected", [
    ([0.05, 0.1, 0.25, 0.8], 0.3),   # the first strength whose item-side gates pass
    ([0.05, 0.21, 0.25, 0.8], 0.1),
    ([0.3, 0.4, 0.5, 0.8], 0.0),     # the model alone passes
    ([0.05, 0.1, 0.15, 0.19], None),  # nothing tried passes
])
def test_weakest_passing_setting(ratios, expected):
    best = sweep(ratios).weakest_passing
    assert (None if best is None else best[0]) == expected


def test_a_failing_user_side_gate_does_not_block_the_item_side_choice():
    s = sweep([0.05, 0.25])
    assert not s.settings[1].passed[AGE] and s.weakest_passing[0] == 0.1


def test_cells_show_an_interval_only_where_one_was_computed():
    m = measured(0.25, 0.31)
    assert cell(m, RATIO) == "0.2500 [0.2300, 0.2700] PASS"
    assert cell(m, "exposure Gini") == "0.9000 PASS"
    assert cell(m, AGE, gate=False) == "0.7000 [0.6000, 0.8000]"
    assert cell(m, "missing") == "–"


def gate(name: str, key: str, value: float, threshold: float) -> Gate:
    return replace(GateSpec(">=", threshold).evaluate(name=name, value=value, section="fairness"), key=key)


def ctx():
    return SimpleNamespace(plan=SimpleNamespace(k=10))


def test_item_side_failure_gets_the_weakest_passing_re_ranking_with_its_measured_effect_and_cost():
    s = sweep([0.05, 0.1, 0.25, 0.8])
    actions = recommended_actions(ctx(), [gate(RATIO, "exposure_ratio", 0.05, 0.2)], sweep=s)
    assert len(actions) == 1
    a = actions[0]
    assert RATIO in a.finding and "0.0500" in a.finding
    assert "--set rerank.strength=0.3" in a.action
    assert "0.0500 → 0.2500 [0.2300, 0.2700]" in a.expected_effect
    assert "-0.0030 NDCG@10" in a.expected_effect  # measured cost at strength 0.3: 0.317 − 0.32
    assert "Art. 34" in a.rule


def test_no_passing_setting_says_so_and_no_sweep_says_not_measured():
    failing = [gate(RATIO, "exposure_ratio", 0.05, 0.2)]
    assert "No re-ranking strength up to 1" in recommended_actions(ctx(), failing, sweep=sweep([0.05, 0.1, 0.15, 0.19]))[0].action
    assert recommended_actions(ctx(), failing)[0].expected_effect.startswith("not measured")


def test_one_action_per_attribute_and_none_for_passing_gates():
    gates = [gate(AGE, "user_ratio", 0.7, 0.8), gate("recall@10 ratio across age", "user_ratio", 0.6, 0.8),
             gate("ndcg@10 ratio across gender", "user_ratio", 0.9, 0.8)]
    actions = recommended_actions(ctx(), gates)
    assert len(actions) == 1 and "recall@10 ratio across age" in actions[0].finding  # the worst of the two
    assert "four-fifths" in actions[0].rule


def test_regressions_against_the_baseline_become_an_action():
    row = SimpleNamespace(name="NDCG@10", difference=-0.01, ci_low=-0.02, ci_high=-0.001, regression=True)
    actions = recommended_actions(ctx(), [], comparison=[row])
    assert len(actions) == 1 and "NDCG@10: -0.0100" in actions[0].finding and "Art. 34" in actions[0].rule


def _plan(tmp_path, block: str):
    p = tmp_path / "plan.yaml"
    p.write_text("name: t\nmitigation:\n" + block)
    return p


def test_plan_mitigation_block_is_validated_and_always_holds_strength_zero(tmp_path):
    plan = load_plan(_plan(tmp_path, "  strengths: [0.5, 0.2]\n  pool: 30\n"))
    assert plan.mitigation.strengths == [0.0, 0.2, 0.5] and plan.mitigation.pool == 30
    with pytest.raises(SchemaError, match="mitigation.strengths"):
        load_plan(_plan(tmp_path, "  strengths: [1.5]\n"))
    with pytest.raises(SchemaError, match="mitigation.pool"):
        load_plan(_plan(tmp_path, "  pool: 0\n"))
    with pytest.raises(SchemaError, match="mitigation"):
        load_plan(_plan(tmp_path, "  strenghts: [0.1]\n"))


def _mediation(direct: tuple[float, float, float], indirect: tuple[float, float, float]):
    iv = lambda e, lo, hi: SimpleNamespace(estimate=e, ci_low=lo, ci_high=hi)  # noqa: E731
    total = iv(direct[0] + indirect[0], direct[1] + indirect[1], direct[2] + indirect[2])
    est = SimpleNamespace(total_effect=total, natural_direct_effect=iv(*direct), natural_indirect_effect=iv(*indirect),
                          share_mediated=iv(indirect[0] / total.estimate, 0.0, 1.0))
    item = SimpleNamespace(attribute="age", group=">=56", estimate=est)
    return SimpleNamespace(k=10, of=lambda a: item if a == "age" else None)


@pytest.mark.parametrize("direct, indirect, lever", [
    ((-0.07, -0.13, -0.02), (-0.01, -0.04, 0.02), "A direct part of the gap for '>=56' remains"),
    ((-0.01, -0.05, 0.03), (-0.05, -0.08, -0.02), "is not shown to remain beyond activity"),
])
def test_the_user_side_action_follows_the_mediation(direct, indirect, lever):
    a = recommended_actions(ctx(), [gate(AGE, "user_ratio", 0.7, 0.8)], mediation=_mediation(direct, indirect))[0]
    assert lever in a.action
    assert "mediation: age: of the NDCG@10 gap" in a.expected_effect and "mediation section" in a.evidence
    other = recommended_actions(ctx(), [gate("ndcg@10 ratio across gender × age", "user_ratio", 0.7, 0.8)],
                                mediation=_mediation(direct, indirect))[0]
    assert "could not decompose" in other.action  # intersections are not decomposed


def test_a_regression_the_re_ranking_would_repair_names_the_measured_value():
    row = SimpleNamespace(name=RATIO, difference=-0.02, ci_low=-0.03, ci_high=-0.01, regression=True,
                          baseline=0.1, candidate=0.08)
    a = recommended_actions(ctx(), [], comparison=[row], sweep=sweep([0.05, 0.1, 0.25, 0.8]))[0]
    assert "candidate with re-ranking at strength 0.3 0.2500 [0.2300, 0.2700]" in a.expected_effect

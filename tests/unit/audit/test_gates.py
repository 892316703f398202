"""One gate type for plan, checks and report: GateSpec states a criterion, evaluates it into
a Gate, and both compare through the one ``compare``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from kgrec.audit.fairness import gate
from kgrec.audit.gates import OPS, Gate, GateSpec, compare
from kgrec.audit.plan import load_plan
from kgrec.audit.report import model as report_model
from kgrec.errors import SchemaError

REPO = Path(__file__).resolve().parents[3]


def test_the_report_and_the_fairness_gate_are_the_audit_gate_type():
    assert report_model.Gate is Gate and report_model.compare is compare
    assert type(gate("ratio", 0.9, threshold=0.8, op=">=")) is Gate


@pytest.mark.parametrize(("bounds", "op", "passes", "fails"), [
    ({"min": 0.8}, ">=", 0.8, 0.79),
    ({"max": 0.95}, "<=", 0.95, 0.96),
])
def test_plan_bounds_become_specs_with_inclusive_boundaries(bounds, op, passes, fails):
    spec = GateSpec.from_bounds(**bounds)
    assert (spec.op, spec.threshold) == (op, next(iter(bounds.values())))
    assert spec.check(passes) and not spec.check(fails) and not spec.check(math.nan)
    assert spec.to_dict() == {"min": bounds.get("min"), "max": bounds.get("max")}
    assert (spec.min, spec.max) == (bounds.get("min"), bounds.get("max"))


def test_evaluate_builds_the_report_gate_from_the_same_spec():
    spec = GateSpec("<=", 0.01)
    g = spec.evaluate(name="completeness", value=0.004, detail="d", section="explanations")
    assert g == Gate(name="completeness", value=0.004, threshold=0.01, op="<=", passed=True, detail="d",
                     section="explanations")
    assert g.spec == spec
    assert Gate.evaluate(name="completeness", value=0.004, threshold=0.01, op="<=", detail="d",
                         section="explanations") == g
    assert not spec.evaluate(name="completeness", value=0.02).passed


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("value", [0.5, 0.8, 0.9, math.nan])
def test_check_is_compare_for_every_operator(op, value):
    spec = GateSpec(op, 0.8)
    assert spec.check(value) == compare(value, op, 0.8) == spec.evaluate(name="g", value=value).passed
    assert not math.isnan(value) or not spec.check(value)


def test_bad_specs_are_rejected():
    with pytest.raises(ValueError, match="operator"):
        GateSpec("=>", 1.0)
    with pytest.raises(ValueError, match="NaN"):
        GateSpec(">=", math.nan)
    with pytest.raises(ValueError, match="number"):
        GateSpec(">=", "0.8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exactly one of min or max"):
        GateSpec.from_bounds()
    with pytest.raises(ValueError, match="exactly one of min or max"):
        GateSpec.from_bounds(min=0.1, max=0.9)
    with pytest.raises(ValueError, match="gate 'g'"):
        Gate(name="g", value=1.0, threshold=math.nan, op=">=", passed=False)


def test_shipped_plan_thresholds_are_gate_specs():
    plan = load_plan(REPO / "audit" / "movielens-100k.yaml")
    assert all(isinstance(s, GateSpec) for s in plan.thresholds.values())
    assert plan.thresholds["user_ratio"] == GateSpec(">=", 0.8)
    assert plan.thresholds["gini"] == GateSpec("<=", 0.95)
    assert plan.to_dict()["thresholds"]["gini"] == {"min": None, "max": 0.95}  # the plan's own form


def test_a_nan_plan_threshold_is_a_schema_error_naming_the_line(tmp_path):
    p = tmp_path / "plan.yaml"
    p.write_text("name: x\nthresholds:\n  gini: {max: .nan}\n")
    with pytest.raises(SchemaError, match="NaN") as err:
        load_plan(p)
    assert err.value.line == 3 and err.value.field == "thresholds.gini"



def test_worst_first_orders_failures_by_how_far_they_miss():
    from kgrec.audit.gates import worst_first

    g = [Gate.evaluate(name="ok_far", value=0.99, threshold=0.8, op=">="),
         Gate.evaluate(name="fail_near", value=0.79, threshold=0.8, op=">="),
         Gate.evaluate(name="ok_near", value=0.94, threshold=0.95, op="<="),
         Gate.evaluate(name="fail_far", value=0.10, threshold=0.8, op=">="),
         Gate.evaluate(name="nan", value=math.nan, threshold=1.0, op=">=")]
    assert [x.name for x in worst_first(g)] == ["nan", "fail_far", "fail_near", "ok_near", "ok_far"]

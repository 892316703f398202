"""Audit plans: the shipped plans load; mistakes name the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrec.audit.plan import check_against, load_plan
from kgrec.errors import SchemaError

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["movielens-100k", "synthetic", "lastfm-2k"])
def test_shipped_plans_load(name):
    plan = load_plan(REPO / "audit" / f"{name}.yaml")
    assert plan.name == name and plan.k == 10
    assert {q.kind for q in plan.causal} >= {"popularity", "off_policy"}
    assert plan.thresholds["completeness"].max == 0.01


def _write(tmp_path, text):
    p = tmp_path / "plan.yaml"
    p.write_text(text)
    return p


def test_unknown_gate_names_line_and_suggests(tmp_path):
    p = _write(tmp_path, "name: x\nthresholds:\n  user_ratio: {min: 0.8}\n  gin: {max: 0.9}\n")
    with pytest.raises(SchemaError) as err:
        load_plan(p)
    assert err.value.line == 4 and err.value.field == "thresholds.gin" and "did you mean 'gini'" in str(err.value)


def test_threshold_needs_exactly_one_bound(tmp_path):
    with pytest.raises(SchemaError, match="exactly one of min or max"):
        load_plan(_write(tmp_path, "name: x\nthresholds:\n  gini: {min: 0.1, max: 0.9}\n"))


def test_unknown_key_and_bad_kind(tmp_path):
    with pytest.raises(SchemaError) as err:
        load_plan(_write(tmp_path, "name: x\nsensitve: [gender]\n"))
    assert err.value.line == 2 and "did you mean 'sensitive'" in str(err.value)
    with pytest.raises(SchemaError, match="unknown kind 'popular'"):
        load_plan(_write(tmp_path, "name: x\ncausal:\n  - {name: q, kind: popular}\n"))


def test_attributes_are_checked_against_the_schema(tmp_path, tiny):
    plan = load_plan(_write(tmp_path, "name: x\nsensitive: [nationality]\n"))
    with pytest.raises(SchemaError, match="'nationality' is not in the data set's schema"):
        check_against(plan, tiny)

"""Explanation robustness (Captum infidelity and max-sensitivity): the axioms on models whose
exact attributions are known, the plan's settings, and the report's section and JSON."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients
from captum.metrics import infidelity

from kgrec.audit.explain_robustness import (
    RobustnessSettings,
    explanation_infidelity,
    explanation_sensitivity,
    removal_perturbation,
    robustness,
    summary,
)
from kgrec.audit.plan import load_plan
from kgrec.errors import SchemaError

W = torch.tensor([0.5, -1.0, 2.0, 0.25, 0.75, 1.5, -0.3, 0.9])


def linear(x: torch.Tensor) -> torch.Tensor:
    """``f(x) = x · w`` over a batch [N, M] → [N]; IG against 0 gives exactly ``x ⊙ w``."""
    return x @ W


def ig_at_ones(forward, m: int, n_steps: int = 64) -> np.ndarray:
    attr = IntegratedGradients(forward).attribute(torch.ones(1, m), baselines=torch.zeros(1, m), n_steps=n_steps,
                                                  method="gausslegendre")
    return attr.detach().numpy().reshape(-1)


# ----------------------------------------------------------------------------- infidelity
def test_infidelity_of_exact_linear_attributions_is_zero_and_of_shuffled_ones_is_not():
    exact = W.numpy()
    gap = float(W.sum())
    settings = {"gap": gap, "removal": 0.3, "samples": 50, "seed": 0}
    assert explanation_infidelity(forward=linear, attributions=exact, **settings) == pytest.approx(0.0, abs=1e-6)
    shuffled = exact[np.random.default_rng(1).permutation(len(exact))]
    assert not np.allclose(shuffled, exact)
    wrong = explanation_infidelity(forward=linear, attributions=shuffled, **settings)
    assert wrong > 1e-2  # in units of gap²: the shuffled attributions miss removals by > 10% of the gap


def test_removal_perturbation_is_exact_for_global_attributions_at_any_input():
    """Away from x = 1 the exact IG attributions are x ⊙ w; the removal indicator
    I = (x − x̃)/(x − b) makes Iᵀ(x ⊙ w) the score change, so infidelity is 0 there too (with
    I = x − x̃, Captum's multiply_by_inputs=False, it would not be)."""
    x = torch.linspace(0.2, 1.8, len(W)).reshape(1, -1)
    torch.manual_seed(0)
    value = infidelity(linear, removal_perturbation(removal=0.5), x, x * W, baselines=torch.zeros_like(x),
                       n_perturb_samples=40)
    assert float(value) == pytest.approx(0.0, abs=1e-6)


def test_infidelity_is_in_units_of_the_score_gap():
    wrong = W.numpy()[::-1].copy()
    base = explanation_infidelity(forward=linear, attributions=wrong, gap=float(W.sum()), removal=0.3, samples=30,
                                  seed=2)
    scaled = explanation_infidelity(forward=lambda x: 10.0 * linear(x), attributions=10.0 * wrong,
                                    gap=10.0 * float(W.sum()), removal=0.3, samples=30, seed=2)
    assert scaled == pytest.approx(base, rel=1e-5)


# ----------------------------------------------------------------------------- max-sensitivity
def test_max_sensitivity_of_ig_on_a_linear_model_is_bounded_by_the_radius():
    m, radius = len(W), 1e-3
    attr = ig_at_ones(linear, m, n_steps=8)
    np.testing.assert_allclose(attr, W.numpy(), atol=1e-6)
    value = explanation_sensitivity(forward=linear, attributions=attr, n_steps=8, radius=radius, samples=5, seed=0)
    # a(x + ε) − a(x) = ε ⊙ w, so ‖·‖ / ‖a(x)‖ ≤ r ‖w‖ / ‖1 ⊙ w‖ = r
    bound = radius * float(W.norm()) / float((torch.ones(m) * W).norm())
    assert 0.0 < value <= bound + 1e-7
    assert value == pytest.approx(0.0, abs=1e-3)


def test_max_sensitivity_is_large_for_a_relu_model_near_its_kink():
    m, radius = len(W), 0.02
    w = W.abs()
    kink = float(w.sum()) - 0.01  # at x = 1 the score is just above the ReLU's threshold

    def relu(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ w - kink)

    attr = ig_at_ones(relu, m)
    relu_value = explanation_sensitivity(forward=relu, attributions=attr, n_steps=64, radius=radius, samples=5,
                                         seed=0)
    lin_value = explanation_sensitivity(forward=lambda x: x @ w, attributions=w.numpy(), n_steps=64, radius=radius,
                                        samples=5, seed=0)
    assert lin_value <= radius + 1e-7
    assert relu_value > 0.5 and relu_value > 20 * lin_value


def test_metrics_are_seeded_and_leave_the_callers_random_state_alone():
    settings = RobustnessSettings(infidelity_samples=5, removal=0.3, sensitivity_samples=2, radius=0.05, seed=3)
    wrong = W.numpy()[::-1].copy()
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = robustness(forward=linear, attributions=wrong, gap=float(W.sum()), n_steps=8, settings=settings)
    assert torch.equal(torch.rand(1), expected_next)
    again = robustness(forward=linear, attributions=wrong, gap=float(W.sum()), n_steps=8, settings=settings)
    assert first == again and first[0] > 0 and first[1] > 0


def test_summary_is_over_finite_values():
    assert summary([0.1, None, 0.3, float("nan"), 0.2]) == {"mean": pytest.approx(0.2), "median": 0.2, "max": 0.3,
                                                           "n": 3}
    empty = summary([])
    assert empty["n"] == 0 and np.isnan(empty["max"])


# ----------------------------------------------------------------------------- the plan
def _plan(tmp_path, block: str, thresholds: str = ""):
    p = tmp_path / "plan.yaml"
    p.write_text(f"name: x\n{thresholds}explanations:\n  sample: 2\n{block}")
    return p


def test_robustness_settings_have_defaults_and_are_read(tmp_path):
    plan = load_plan(_plan(tmp_path, ""))
    e = plan.explanations
    assert (e.robustness_samples, e.infidelity_removal, e.sensitivity_samples, e.sensitivity_radius) == (10, 0.2, 1,
                                                                                                         0.02)
    plan = load_plan(_plan(tmp_path, "  robustness_samples: 4\n  sensitivity_radius: 0.05\n  sensitivity_samples: 3\n"
                                     "  infidelity_removal: 0.5\n"))
    e = plan.explanations
    assert (e.robustness_samples, e.infidelity_removal, e.sensitivity_samples, e.sensitivity_radius) == (4, 0.5, 3,
                                                                                                         0.05)
    assert plan.to_dict()["explanations"]["sensitivity_radius"] == 0.05


@pytest.mark.parametrize(("line", "field", "words"), [
    ("robustness_samples: 0", "explanations.robustness_samples", "from 1 to 1000"),
    ("robustness_samples: 5000", "explanations.robustness_samples", "from 1 to 1000"),
    ("sensitivity_samples: 0", "explanations.sensitivity_samples", "from 1 to 100"),
    ("sensitivity_radius: 0", "explanations.sensitivity_radius", "in (0, 1]"),
    ("sensitivity_radius: -0.1", "explanations.sensitivity_radius", "in (0, 1]"),
    ("sensitivity_radius: .nan", "explanations.sensitivity_radius", "in (0, 1]"),
    ("infidelity_removal: 1.0", "explanations.infidelity_removal", "strictly between 0 and 1"),
])
def test_out_of_range_settings_name_the_field_and_line(tmp_path, line, field, words):
    with pytest.raises(SchemaError) as err:
        load_plan(_plan(tmp_path, f"  {line}\n"))
    assert err.value.field == field and words in str(err.value) and err.value.line == 4


def test_wrong_types_and_typos_are_schema_errors(tmp_path):
    with pytest.raises(SchemaError) as err:
        load_plan(_plan(tmp_path, "  robustness_samples: ten\n"))
    assert err.value.field == "explanations.robustness_samples" and "expected int" in str(err.value)
    with pytest.raises(SchemaError) as err:
        load_plan(_plan(tmp_path, "  sensitivity_radus: 0.1\n"))
    assert "did you mean 'sensitivity_radius'" in str(err.value)


def test_robustness_gates_are_known_thresholds(tmp_path):
    plan = load_plan(_plan(tmp_path, "", "thresholds:\n  infidelity: {max: 0.01}\n  max_sensitivity: {max: 0.05}\n"))
    assert plan.thresholds["infidelity"].max == 0.01 and plan.thresholds["max_sensitivity"].max == 0.05
    with pytest.raises(SchemaError, match="did you mean 'max_sensitivity'"):
        load_plan(_plan(tmp_path, "", "thresholds:\n  max_sensitivty: {max: 0.05}\n"))


# ----------------------------------------------------------------------------- section and report.json
@pytest.fixture(scope="module")
def audited(trained):
    """run_explanations on a small trained kgrec model (synthetic world), 3 recommendations."""
    from kgrec.audit.explain_check import run_explanations
    from kgrec.audit.gates import GateSpec
    from kgrec.audit.plan import AuditPlan, ExplanationPlan

    ds, _, model = trained
    plan = AuditPlan(name="t", explanations=ExplanationPlan(sample=3, n_steps=8, max_steps=16, robustness_samples=4,
                                                            sensitivity_samples=1, sensitivity_radius=0.02),
                     thresholds={"infidelity": GateSpec("<=", 0.5), "max_sensitivity": GateSpec("<=", 1e-9)})
    users = np.arange(40)
    with torch.no_grad():
        u, i = model.embed()
        topk = torch.argsort(u[torch.from_numpy(users)] @ i.T, dim=1, descending=True)[:, :1].numpy()
    ctx = SimpleNamespace(run=SimpleNamespace(model=model, dataset=ds, config=SimpleNamespace(
        model=SimpleNamespace(name="kgrec", params={}))), plan=plan, users=users, topk=topk, timings={},
        name=lambda kind, idx: f"{kind}#{idx}", unlabelled=lambda: [])
    return ctx, run_explanations(ctx, progress=False)


def test_every_explanation_carries_both_metrics(audited):
    _, res = audited
    assert len(res.explanations) == 3
    for e in res.explanations:
        assert e.infidelity is not None and e.infidelity >= 0 and np.isfinite(e.infidelity)
        assert e.max_sensitivity is not None and e.max_sensitivity > 0
        assert {"infidelity", "max_sensitivity"} <= set(e.to_dict())
    values = [e.infidelity for e in res.explanations]
    assert res.infidelity == {"mean": pytest.approx(np.mean(values)), "median": pytest.approx(np.median(values)),
                              "max": pytest.approx(max(values)), "n": 3}
    assert res.max_sensitivity["max"] == pytest.approx(max(e.max_sensitivity for e in res.explanations))
    assert res.robustness_settings == {"infidelity_samples": 4, "removal": 0.2, "sensitivity_samples": 1,
                                       "radius": 0.02, "seed": 0}


def test_section_shows_the_table_and_report_json_carries_the_values(audited):
    from kgrec.audit.report.jsonout import to_json
    from kgrec.audit.report.markdown import to_markdown
    from kgrec.audit.report.model import Report
    from kgrec.audit.sections import explanations_section

    ctx, res = audited
    section, transparency = explanations_section(ctx, res)
    by_caption = {t.caption: t for t in section.tables}
    per = next(t for c, t in by_caption.items() if c.startswith("Robustness of each explanation"))
    assert per.columns[-2:] == ["infidelity", "max-sensitivity"] and "faithful" in per.columns
    assert [row[-2] for row in per.rows] == [pytest.approx(e.infidelity, rel=1e-2, abs=1e-12)
                                             for e in res.explanations]
    summary_table = by_caption["Explanation robustness and faithfulness, summary"]
    assert [r[0] for r in summary_table.rows] == ["infidelity", "max-sensitivity", "faithfulness rate"]
    assert summary_table.rows[0][3] == pytest.approx(res.infidelity["max"], rel=1e-2)
    text = " ".join(section.paragraphs)
    assert "lower is better" in text and "±0.02" in text and "4 random removals" in text
    gates = {g.name: g for g in section.gates}
    assert gates["largest explanation infidelity"].passed
    assert not gates["largest explanation max-sensitivity"].passed  # max 1e-9: a gate that fails
    assert gates["largest explanation max-sensitivity"].key == "max_sensitivity"

    report = Report(title="t", created="2025-01-01T00:00:00+00:00", run_dir="r", plan="p",
                    sections=[section, transparency])
    data = to_json(report)["explanations"]["data"]
    assert data["robustness"]["infidelity"]["max"] == pytest.approx(res.infidelity["max"])
    assert data["robustness"]["max_sensitivity"]["n"] == 3
    assert data["robustness"]["settings"]["radius"] == 0.02
    assert [e["max_sensitivity"] for e in data["explanations"]] == [e.max_sensitivity for e in res.explanations]
    assert "max-sensitivity" in to_markdown(report)

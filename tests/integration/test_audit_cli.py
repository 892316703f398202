"""kgrec audit end to end through the CLI: a kgrec run on the synthetic world, audited with
the shipped plan (trimmed for speed), rendered and opened in headless Chromium.

The report of the first test lands in ``reports/ci-synthetic/`` (git-ignored) so CI keeps
its screenshot."""

from __future__ import annotations

import json

import pytest
import yaml
from cli import REPO, kgrec, trimmed_plan as plan  # noqa: E402  (tests/integration/cli.py)

CI_REPORT = REPO / "reports" / "ci-synthetic"


def test_audit_writes_three_formats_and_renders_in_chromium(run_dir, env, tmp_path):
    proc = kgrec("audit", str(run_dir), "--plan", str(plan(tmp_path)), "-o", str(CI_REPORT), "--overwrite",
                 "--no-progress", env=env)
    assert proc.returncode in (0, 9), proc.stderr
    report = json.loads((CI_REPORT / "report.json").read_text())
    assert report["schema_version"] == "1.0"
    assert {"causal", "fairness", "explanations", "gates"} <= set(report)
    assert (proc.returncode == 0) == report["passed"] == all(g["passed"] for g in report["gates"])
    # the planted effect of the synthetic world is checked against the same estimator
    truth = report["causal"]["data"]["truth"]
    assert truth and {t["planted"] for t in truth} == {"sensitive_effect_on_genre_share",
                                                       "sensitive_effect_on_genre_share_global"}
    expl = report["explanations"]["data"]
    assert expl["max_relative_delta"] <= 0.01
    _check_alternatives(report, run_dir, env)
    assert (CI_REPORT / "report.md").read_text().count("| ") > 10
    html = (CI_REPORT / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html
    from kgrec.audit.report.browser import find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium binary on this machine: the browser check could not run")
    assert "browser check: ok" in proc.stdout, proc.stdout
    assert (CI_REPORT / "screenshot.png").stat().st_size > 50_000


def test_failed_gate_exits_9_and_passing_plan_exits_0(run_dir, env, tmp_path):
    strict = plan(tmp_path, gini={"max": 0.0})
    proc = kgrec("audit", str(run_dir), "--plan", str(strict), "-o", str(tmp_path / "strict"), "--no-browser",
                 "--no-progress", env=env)
    assert proc.returncode == 9, proc.stderr
    assert "exposure Gini" in proc.stderr
    lenient = tmp_path / "lenient.yaml"
    raw = yaml.safe_load(strict.read_text())
    raw["thresholds"] = {"completeness": {"max": 0.01}}
    lenient.write_text(yaml.safe_dump(raw))
    proc = kgrec("audit", str(run_dir), "--plan", str(lenient), "-o", str(tmp_path / "ok"), "--no-browser",
                 "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    again = kgrec("audit", str(run_dir), "--plan", str(lenient), "-o", str(tmp_path / "ok"), "--no-browser",
                  env=env)
    assert again.returncode == 7 and "--overwrite" in again.stderr


def test_bad_plan_is_a_schema_error_naming_the_line(run_dir, env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nk: 10\nthresholds:\n  gini: {maximum: 0.9}\n")
    proc = kgrec("audit", str(run_dir), "--plan", str(bad), "-o", str(tmp_path / "r"), env=env)
    assert proc.returncode == 3
    assert f"{bad}:4" in proc.stderr and "maximum" in proc.stderr


def test_baseline_comparison_is_paired_and_flags_regressions(run_dir, env, tmp_path):
    base = tmp_path / "synthetic-mostpop"
    proc = kgrec("train", "--data", "synthetic", "--set", "model.name=mostpop", "-o", str(base), "--no-progress",
                 env=env)
    assert proc.returncode == 0, proc.stderr
    # the baseline against itself: every difference is exactly 0, with a zero-width CI, and nothing regresses
    proc = kgrec("audit", str(base), "--baseline", str(base), "--plan", str(plan(tmp_path)), "-o",
                 str(tmp_path / "self"), "--no-browser", "--no-progress", env=env)
    assert proc.returncode in (0, 9), proc.stderr
    same = json.loads((tmp_path / "self" / "report.json").read_text())["comparison"]["data"]
    assert same["paired"] and same["regressions"] == []
    assert all(r["difference"] == 0 for r in same["rows"])
    assert all(r["ci_low"] == r["ci_high"] == 0 for r in same["rows"] if r["ci_low"] is not None)
    # the kgrec run against the popularity baseline: NDCG and every fairness gate carry a paired CI
    proc = kgrec("audit", str(run_dir), "--baseline", str(base), "--plan", str(plan(tmp_path)), "-o",
                 str(tmp_path / "vs"), "--no-browser", "--no-progress", env=env)
    assert proc.returncode in (0, 9), proc.stderr
    report = json.loads((tmp_path / "vs" / "report.json").read_text())
    comp = report["comparison"]["data"]
    rows = {r["name"]: r for r in comp["rows"]}
    assert comp["paired"] and {"NDCG@10", "Recall@10", "exposure Gini", "long-tail coverage"} <= set(rows)
    assert {g["name"] for g in report["gates"]} <= set(rows)  # every gate of the candidate is compared
    for r in rows.values():
        if r["baseline"] is None:  # a gate only the candidate's audit evaluates: kgrec explains, MostPop cannot
            assert r["name"] in {g["name"] for g in report["gates"] if g["section"] == "explanations"}
            continue
        assert r["difference"] == pytest.approx(r["candidate"] - r["baseline"])
    # the verdict's regressions, by the rule restated here: newly failing, or a CI wholly on the worse side
    def worse(r):
        ci = r["ci_low"] is not None and (r["ci_high"] < 0 if r["better"] == "higher" else r["ci_low"] > 0)
        return bool(r["baseline_passed"] and r["candidate_passed"] is False) or ci
    assert comp["regressions"] == [r["name"] for r in comp["rows"] if worse(r)]
    ndcg = rows["NDCG@10"]
    assert ndcg["ci_low"] <= ndcg["difference"] <= ndcg["ci_high"]
    # distinct-item counts are not resampled (a resample of users holds fewer distinct lists)
    assert rows["exposure Gini"]["ci_low"] is None and rows["long-tail coverage"]["ci_low"] is None
    assert any(p.startswith("Worse (regressions)") for p in report["summary"]["paragraphs"])  # in the verdict
    assert "Comparison with the baseline" in (tmp_path / "vs" / "report.md").read_text()


def _section(report: dict, key: str) -> dict:
    return report[key]


def _check_alternatives(report: dict, run_dir, env) -> None:
    """The mitigation sweep, the non-profiling rankings and the recommended actions: strength 0
    is the model the fairness section audited, the non-profiling row is what ``kgrec evaluate
    --ranking popular`` measures, and every failed gate is answered by an action."""
    sweep = _section(report, "mitigation")["data"]
    assert sweep["strengths"] == [0.0, 0.5, 1.0]
    gates = {g["name"]: g for g in report["gates"]}
    zero = sweep["settings"][0]
    for name, value in zero["values"].items():
        if name in gates and gates[name]["section"] == "fairness":
            assert value == pytest.approx(gates[name]["value"], abs=1e-12), name
    weakest = [n for n in zero["values"] if n.startswith("exposure/relevance ratio, weakest popularity")][0]
    ratios = [s["values"][weakest] for s in sweep["settings"]]
    assert ratios[-1] > ratios[0]  # full calibration moves exposure towards the tail
    passing = [s for s, m in zip(sweep["strengths"], sweep["settings"]) if m["item_side_passed"]]
    assert sweep["weakest_passing"] == (passing[0] if passing else None)
    ndcg = next(n for n in zero["values"] if n.startswith("NDCG@"))
    assert zero["diff"][ndcg] == [0.0, 0.0, 0.0]  # the reference against itself
    nonprof = _section(report, "nonprofiling")["data"]["rankings"]
    assert [m["label"] for m in nonprof][1:] == ["non-profiling: popular", "non-profiling: recent"]
    proc = kgrec("evaluate", str(run_dir), "--ranking", "popular", env=env)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run_dir / "eval" / "nonprofiling-popular" / "metrics.json").read_text())["test"]
    assert nonprof[1]["values"][ndcg] == pytest.approx(metrics[ndcg.lower()], abs=1e-9)
    mediation = _section(report, "mediation")["data"]["attributes"]
    assert [m["attribute"] for m in mediation] == ["group", "age"]  # the synthetic plan's sensitive attributes
    for m in mediation:
        est = m["estimate"]
        assert est["total_effect"]["estimate"] == pytest.approx(
            est["natural_direct_effect"]["estimate"] + est["natural_indirect_effect"]["estimate"], abs=1e-9)
    actions = _section(report, "actions")["data"]["actions"]
    failed = [g for g in report["gates"] if not g["passed"]]
    item_failed = [g for g in failed if g["key"] in ("exposure_ratio", "gini", "long_tail_coverage")]
    if item_failed:
        assert any(g["name"] in actions[0]["finding"] for g in item_failed)
        if sweep["weakest_passing"] is not None:
            assert f"rerank.strength={sweep['weakest_passing']:g}" in actions[0]["action"]
    assert any("Art. 38" in a["rule"] for a in actions)


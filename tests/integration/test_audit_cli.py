"""kgrec audit end to end through the CLI: a kgrec run on the synthetic world, audited with
the shipped plan (trimmed for speed), rendered and opened in headless Chromium.

The report of the first test lands in ``reports/ci-synthetic/`` (git-ignored) so CI keeps
its screenshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli import kgrec, trimmed_plan as plan  # noqa: E402  (tests/integration/cli.py)

REPO = Path(__file__).resolve().parents[2]
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

"""The HTML report in headless Chromium: no console errors, a real full-page screenshot.

Skipped only when no Chromium binary exists (CI installs Debian's ``chromium``); the
Playwright package must be installed (``pip install playwright``, no browser download).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from kgrec.audit.report import Figure, Gate, Report, Section, Table, check_html, find_chromium, write_html
from kgrec.audit.report.plots import bar_with_ci, forest_plot, grouped_bars

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="no Chromium binary ($KGREC_CHROMIUM, /usr/bin/chromium, chromium on PATH)")


def demo_report() -> Report:
    causal = Section(
        key="causal", title="Causal effects",
        paragraphs=[("Effects of item popularity and of user attributes on what the model recommends, estimated with "
                    "DoWhy (backdoor adjustment, linear regression) and checked with three refutation tests.")],
        tables=[Table(columns=["question", "estimate", "95% CI low", "95% CI high", "refutations passed"],
                      rows=[["popularity → in top-10", 0.084, 0.061, 0.107, "3/3"],
                            ["gender=F → Rock & Metal share", -0.021, -0.049, 0.007, "3/3"],
                            ["age<25 → avg popularity", 0.043, 0.012, 0.074, "2/3"]],
                      caption="Average treatment effects")],
        figures=[Figure(title="Causal estimates with 95% confidence intervals",
                        png=forest_plot([("popularity → in top-10", 0.084, 0.061, 0.107),
                                         ("gender=F → Rock & Metal share", -0.021, -0.049, 0.007),
                                         ("age<25 → avg popularity", 0.043, 0.012, 0.074)],
                                        "Causal estimates", reference=0.0),
                        alt="Forest plot: popularity has a positive effect; the gender effect's interval spans 0.",
                        caption="A dashed line marks no effect.")],
        gates=[Gate.evaluate(name="refutations", value=8 / 9, threshold=0.8, op=">=", detail="8 of 9 tests passed")],
        data={"estimates": [0.084, -0.021, 0.043]},
    )
    groups = ["F", "M", "F ∩ age<25", "M ∩ age<25"]
    ndcg = [0.291, 0.312, 0.244, 0.301]
    fairness = Section(
        key="fairness", title="Fairness",
        paragraphs=[("Per-group NDCG@10 with bootstrap intervals; the ratio gate is the smallest group over the "
                    "largest (the 0.8 rule).")],
        tables=[Table(columns=["group", "users", "NDCG@10", "Recall@10"],
                      rows=[[g, n, v, v * 1.4] for g, n, v in zip(groups, [812, 1047, 190, 233], ndcg, strict=True)],
                      caption="Accuracy by user group")],
        figures=[Figure(title="NDCG@10 by user group", png=bar_with_ci(groups, ndcg, [v - 0.02 for v in ndcg],
                                                                      [v + 0.02 for v in ndcg], "NDCG@10 by group",
                                                                      "NDCG@10"),
                        alt="Bar chart of NDCG@10 per user group with confidence intervals.")],
        gates=[Gate.evaluate(name="user_ratio", value=0.244 / 0.312, threshold=0.8, op=">=",
                             detail="F ∩ age<25 vs M")],
        subsections=[Section(
            key="exposure", title="Item exposure",
            figures=[Figure(title="Exposure vs relevance share", png=grouped_bars(
                ["head", "torso", "tail"],
                {"exposure share": [0.62, 0.29, 0.09], "relevance share": [0.45, 0.33, 0.22]},
                "Exposure vs relevance by popularity group", "share"), alt="Grouped bars: the tail is under-exposed.")],
            gates=[Gate.evaluate(name="exposure_ratio", value=0.41, threshold=0.8, op=">=", detail="tail items"),
                   Gate.evaluate(name="gini", value=0.57, threshold=0.7, op="<=")],
        )],
    )
    explanations = Section(
        key="explanations", title="Explanations",
        paragraphs=[("Integrated Gradients over edge masks; removing the top-3 attributed history items lowers the "
                    "score more than removing 3 random ones in 85% of the sampled recommendations.")],
        tables=[Table(columns=["user", "item", "top attribution", "path"],
                      rows=[["u12", "<script>alert(1)</script>", "history: Radiohead", "Radiohead → tag:alternative"],
                            ["u40", "AC/DC & friends", "kg: genre=rock", "—"]])],
        gates=[Gate.evaluate(name="faithfulness", value=0.85, threshold=0.7, op=">="),
               Gate.evaluate(name="completeness", value=0.004, threshold=0.01, op="<=")],
    )
    return Report(title="Audit of kgrec on Last.fm (run 2025-01-01)", created="2025-01-01T12:00:00+00:00",
                  run_dir="runs/lastfm-kgrec", plan="audit/default.yaml",
                  sections=[causal, fairness, explanations],
                  meta={"kgrec": "0.1.0", "seed": 0, "python": "3.11", "config_sha256": "ab12" * 16})


def test_report_renders_in_chromium_without_errors(tmp_path: Path) -> None:
    import matplotlib.image

    html = write_html(demo_report(), tmp_path / "report.html")
    shot = tmp_path / "report.png"
    res = check_html(html, shot, timeout=60)
    assert res.ok, (res.detail, res.console_errors)
    assert res.console_errors == []
    assert res.screenshot == shot and shot.stat().st_size > 10_000
    img = matplotlib.image.imread(io.BytesIO(shot.read_bytes()), format="png")
    assert img.shape[1] == 1280 and img.shape[0] > 900  # the full page, longer than the viewport
    rgb = np.rint(img[..., :3] * 255).astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    assert len(np.unique(packed)) > 50  # not a blank or single-colour page
    # the red FAIL badge colour (#b42318) and the green PASS one (#1a7f37) are on the page
    assert (packed == 0xB42318).sum() > 50 and (packed == 0x1A7F37).sum() > 50


def test_the_check_catches_console_errors_and_external_requests(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><h1>bad</h1><img src="https://example.com/x.png" alt="remote">'
                    '<script>console.error("boom"); undefinedFunction();</script></body></html>', encoding="utf-8")
    res = check_html(page, tmp_path / "bad.png")
    assert not res.ok
    text = "\n".join(res.console_errors)
    assert "console.error: boom" in text and "undefinedFunction is not defined" in text
    assert "external request blocked: https://example.com/x.png" in text
    assert "image did not load: 'remote'" in text

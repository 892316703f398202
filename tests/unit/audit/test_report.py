"""The audit report model and its JSON, Markdown and HTML renderers (no browser needed)."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from kgrec.audit.report import (
    SCHEMA_VERSION,
    Figure,
    Gate,
    Report,
    Section,
    Table,
    check_html,
    to_html,
    to_json,
    to_markdown,
    write_all,
    write_html,
    write_json,
    write_markdown,
)
from kgrec.audit.report.fmt import format_value
from kgrec.audit.report.plots import DPI, WIDTH_IN, bar_with_ci, forest_plot, grouped_bars

XSS = "<script>alert(1)</script>"


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def decode(png: bytes) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(png), format="png")


@pytest.fixture(scope="module")
def png() -> bytes:
    return forest_plot([("popularity → top-K", 0.12, 0.05, 0.19), ("gender → genre share", -0.02, -0.08, 0.04)],
                       "Causal estimates", reference=0.0)


@pytest.fixture()
def report(png: bytes) -> Report:
    causal = Section(
        key="causal", title="Causal effects",
        paragraphs=["Effects are estimated with DoWhy's backdoor adjustment.", "Q&A: values < 0 mean less exposure."],
        tables=[Table(columns=["question", "estimate", "p"], rows=[["R&B share", 0.123456, np.float64(0.04)],
                                                                    ["pipe | cell", float("nan"), None]],
                      caption="Estimates")],
        figures=[Figure(title="Forest plot", png=png, alt="forest plot of the causal estimates", caption="95% CI")],
        gates=[Gate.evaluate(name="refutations", value=1.0, threshold=0.9, op=">=")],
        data={"estimates": [0.123456, float("nan"), np.float32(2.5)], "n": np.int64(7), "inf": float("inf")},
    )
    item = Section(key="items", title=f"Item {XSS}",
                   gates=[Gate.evaluate(name="exposure_ratio", value=0.61, threshold=0.8, op=">=",
                                        detail="popular vs tail")])
    fairness = Section(
        key="fairness", title="Fairness",
        paragraphs=[f"Title of the top item: {XSS}"],
        tables=[Table(columns=["group", "NDCG@10"], rows=[["women & men", 0.31], [XSS, 0.29]])],
        gates=[Gate.evaluate(name="user_ratio", value=0.92, threshold=0.8, op=">=")],
        subsections=[item],
    )
    return Report(title="Audit of run A", created="2025-01-01T00:00:00+00:00", run_dir="runs/a",
                  plan="audit/default.yaml", sections=[causal, fairness],
                  meta={"seed": 0, "versions": {"torch": "2.13"}})


def test_gates_are_collected_recursively_and_one_failure_fails_the_report(report: Report) -> None:
    gates = report.gates()
    assert [g.name for g in gates] == ["refutations", "user_ratio", "exposure_ratio"]
    assert [g.section for g in gates] == ["causal", "fairness", "items"]
    assert [g.passed for g in gates] == [True, True, False]
    assert not report.passed()
    assert report.section("causal").passed() and not report.section("fairness").passed()
    assert Report(title="t", created="c", run_dir="r", plan="p").passed()  # no gates: vacuous pass


def test_gate_evaluate_ops_and_nan() -> None:
    assert Gate.evaluate(name="g", value=0.8, threshold=0.8, op=">=").passed
    assert not Gate.evaluate(name="g", value=0.8, threshold=0.8, op=">").passed
    assert Gate.evaluate(name="g", value=0.2, threshold=0.3, op="<=").passed
    assert not Gate.evaluate(name="g", value=float("nan"), threshold=0.3, op="<=").passed
    assert not Gate.evaluate(name="g", value=float("nan"), threshold=0.3, op=">=").passed
    with pytest.raises(ValueError, match="operator"):
        Gate(name="g", value=1, threshold=1, op="=>", passed=True)


def test_bad_tables_and_figures_are_rejected() -> None:
    with pytest.raises(ValueError, match="row 1 has 1 cells, expected 2"):
        Table(columns=["a", "b"], rows=[[1, 2], [3]])
    with pytest.raises(ValueError, match="not PNG"):
        Figure(title="f", png=b"GIF89a", alt="x")


def test_json_has_schema_and_required_keys_and_round_trips(report: Report, tmp_path: Path) -> None:
    path = write_json(report, tmp_path / "report.json")
    text = path.read_text(encoding="utf-8")
    loaded = json.loads(text)
    assert loaded["schema_version"] == SCHEMA_VERSION == "1.0"
    for key in ("causal", "fairness", "explanations", "gates"):
        assert key in loaded
    assert loaded["explanations"] is None  # required key, no such section
    assert loaded["passed"] is False
    assert [(g["name"], g["passed"], g["section"]) for g in loaded["gates"]] == [
        ("refutations", True, "causal"), ("user_ratio", True, "fairness"), ("exposure_ratio", False, "items")]
    assert loaded == json.loads(json.dumps(to_json(report)))
    # stable: sorted keys, identical bytes on a second write, no NaN/Infinity tokens
    assert text == json.dumps(loaded, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert write_json(report, tmp_path / "again.json").read_text(encoding="utf-8") == text
    assert "NaN" not in text and "Infinity" not in text
    causal = loaded["causal"]
    assert causal["data"] == {"estimates": [0.123456, None, 2.5], "n": 7, "inf": None}
    assert causal["tables"][0]["rows"] == [["R&B share", 0.123456, 0.04], ["pipe | cell", None, None]]
    assert causal["figures"] == [{"title": "Forest plot", "alt": "forest plot of the causal estimates",
                                  "caption": "95% CI"}]
    assert base64.b64encode(report.sections[0].figures[0].png[:60]).decode()[:40] not in text
    sub = loaded["fairness"]["subsections"]["items"]
    assert sub["title"] == f"Item {XSS}" and sub["gates"][0]["value"] == 0.61


def test_json_section_keys_become_top_level_and_collisions_are_errors(report: Report) -> None:
    extra = Section(key="model_card", title="Model card", data={"model": "kgrec"})
    out = to_json(Report(title="t", created="c", run_dir="r", plan="p", sections=[*report.sections, extra]))
    assert out["model_card"]["data"] == {"model": "kgrec"}
    with pytest.raises(ValueError, match="collides"):
        to_json(Report(title="t", created="c", run_dir="r", plan="p", sections=[Section(key="gates", title="x")]))
    with pytest.raises(ValueError, match="duplicate"):
        to_json(Report(title="t", created="c", run_dir="r", plan="p",
                       sections=[Section(key="causal", title="x"), Section(key="causal", title="y")]))


def test_markdown_gate_table_first_escaping_and_figure_files(report: Report, tmp_path: Path) -> None:
    md_path = write_markdown(report, tmp_path / "report.md")
    md = md_path.read_text(encoding="utf-8")
    lines = md.splitlines()
    head = lines.index("| Result | Gate | Section | Value | Criterion | Detail |")
    assert head < next(i for i, line in enumerate(lines) if line.startswith("## 1. "))  # summary comes first
    assert lines[head + 1] == "|---|---|---|---:|---|---|"
    assert lines[head + 2] == "| ❌ **FAIL** | exposure_ratio | items | 0.61 | ≥ 0.8 | popular vs tail |"  # worst first
    assert "✅ **PASS** | refutations | causal | 1 | ≥ 0.9 |" in md
    assert XSS not in md and "\\<script\\>alert(1)\\</script\\>" in md
    assert "| pipe \\| cell | NaN | — |" in md
    fig = tmp_path / "figures" / "figure-01-causal.png"
    assert fig.read_bytes() == report.sections[0].figures[0].png
    assert "](figures/figure-01-causal.png)" in md
    by_title = to_markdown(report)  # no files: figures referenced by title
    assert "*Figure 1: Forest plot*" in by_title and "](figures/" not in by_title


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self._row = []

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._row is not None and data.strip():
            self._row.append(data.strip())


def test_html_is_self_contained_escaped_and_shows_fail(report: Report, tmp_path: Path) -> None:
    html = write_html(report, tmp_path / "report.html").read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(html)
    refs = [v for _, attrs in parser.tags for k, v in attrs.items() if k in ("src", "href") and v]
    assert refs and all(v.startswith(("#", "data:image/png;base64,")) for v in refs), refs
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<script" not in html.lower().replace("&lt;script", "")
    assert not [t for t, _ in parser.tags if t in ("script", "link", "iframe", "object")]
    imgs = [a["src"] for t, a in parser.tags if t == "img"]
    assert len(imgs) == 1 and "data:image/png;base64," in html
    assert base64.b64decode(imgs[0].split(",", 1)[1]) == report.sections[0].figures[0].png
    # escaping: the raw payload never appears; its escaped form does (title, paragraph, cell)
    assert XSS not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
    assert "women &amp; men" in html and "R&amp;B share" in html and "women & men" not in html
    # the failing gate's summary row says FAIL in words (not colour alone), the others PASS
    summary = {r[1]: r for r in parser.rows if len(r) >= 4 and r[2] in ("causal", "fairness", "items")}
    assert summary["exposure_ratio"][:5] == ["✘ FAIL", "exposure_ratio", "items", "0.61", "≥ 0.8"]
    assert summary["refutations"][:2] == ["✔ PASS", "refutations"]
    assert summary["user_ratio"][:2] == ["✔ PASS", "user_ratio"]
    assert "1 of 3 gates failed:</strong> exposure_ratio." in html
    assert 'id="sec-causal"' in html and 'href="#sec-fairness-items"' in html  # table of contents


def test_html_badges_and_numbers_are_rendered_from_the_gate(report: Report) -> None:
    html = to_html(report)
    assert re.search(r'<tr class="failed"><td><span class="badge fail">✘ FAIL</span></td><td><strong>'
                     r'exposure_ratio</strong></td><td>items</td><td class="num">0.61</td><td>≥ 0.8</td>', html)
    assert html.count('class="badge pass"') >= 2


def test_write_all_writes_three_files(report: Report, tmp_path: Path) -> None:
    paths = write_all(report, tmp_path / "out")
    assert {p.name for p in paths.values()} == {"report.json", "report.md", "report.html"}
    assert (tmp_path / "out" / "figures" / "figure-01-causal.png").is_file()


@pytest.mark.parametrize(("value", "text"), [
    (None, "—"), (True, "yes"), (3, "3"), (12345, "12,345"), (0.123456, "0.1235"), (float("nan"), "NaN"),
    (float("-inf"), "-∞"), (0.0, "0"), (2.5e-5, "2.500e-05"), (123456.7, "123,457"), (np.float32(0.5), "0.5"),
    (np.int64(4), "4"), ("a&b", "a&b"),
])
def test_format_value(value, text) -> None:
    assert format_value(value) == text


def test_plots_return_pngs_of_fixed_width_with_content() -> None:
    pngs = [
        bar_with_ci(["a", "b $x$", "c"], [0.5, 0.8, float("nan")], [0.4, 0.7, float("nan")], [0.6, 0.9, 1.0],
                    "NDCG@10 by group", "NDCG@10", reference=0.8),
        forest_plot([("x", 0.1, 0.0, 0.2), ("y", -0.1, float("nan"), 0.0)], "Effects", reference=0.0),
        grouped_bars(["head", "torso", "tail"], {"exposure": [0.7, 0.2, 0.1], "relevance": [0.5, 0.3, 0.2]},
                     "Exposure vs relevance", "share"),
    ]
    for png in pngs:
        w, h = png_size(png)
        assert w == round(WIDTH_IN * DPI) and h >= 2.2 * DPI - 1
        img = decode(png)
        assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 20  # not blank
    assert pngs[2] == grouped_bars(["head", "torso", "tail"], {"exposure": [0.7, 0.2, 0.1],
                                                               "relevance": [0.5, 0.3, 0.2]},
                                   "Exposure vs relevance", "share")  # deterministic bytes
    with pytest.raises(ValueError, match="lengths differ"):
        bar_with_ci(["a"], [1.0, 2.0], [0.0], [1.0], "t", "x")
    with pytest.raises(ValueError, match="series 'e' has 1 values for 2 groups"):
        grouped_bars(["a", "b"], {"e": [1.0]}, "t")


def test_browser_check_without_a_browser_reports_instead_of_raising(report: Report, tmp_path: Path) -> None:
    html = write_html(report, tmp_path / "report.html")
    res = check_html(html, tmp_path / "shot.png", browser=str(tmp_path / "no-such-chromium"))
    assert not res.ok and res.screenshot is None and "no Chromium browser found" in res.detail
    assert not (tmp_path / "shot.png").exists()
    assert math.isfinite(res.elapsed_s)


@pytest.mark.parametrize(("text", "md"), [
    ("0.61", "0.61"), ("1. item", "1\\. item"), ("# h", "\\# h"), ("- x", "\\- x"), ("---", "\\---"),
    ("a|b", "a\\|b"), ("[x](javascript:y)", "\\[x\\](javascript:y)"), ("<b>&amp;", "\\<b\\>\\&amp;"),
    ("two\nlines", "two lines"), ("user_ratio", "user_ratio"),
])
def test_markdown_escapes_user_text(text, md) -> None:
    from kgrec.audit.report.markdown import md_text

    assert md_text(text) == md


def test_html_anchors_are_unique_for_colliding_keys() -> None:
    r = Report(title="t", created="c", run_dir="r", plan="p",
               sections=[Section(key="a b", title="x"), Section(key="a-b", title="y"),
                         Section(key="summary", title="z")])
    html = to_html(r)
    assert 'id="sec-a-b"' in html and 'id="sec-a-b-2"' in html and 'href="#sec-a-b-2"' in html
    assert html.count('id="summary"') == 1

"""``report.md``: the audit report as GitHub-flavoured Markdown.

Order: title and verdict, the gate summary table (Result, Gate, Section, Value, Criterion,
Detail) first, then the numbered sections (paragraphs, the section's gates, tables,
figures, subsections), then the provenance (``Report.meta``).

Figures: :func:`write_markdown` writes each figure as a PNG into a ``figures/`` directory
next to ``report.md`` (``figures/figure-01-<section>.png``, numbered in document order) and
links it as ``![alt](figures/...)`` under a caption line. :func:`to_markdown` with
``figures_dir=None`` references figures by title only (no files).

Every user string is escaped for CommonMark/GFM: backslash escapes for ``\\ ` * [ ] < >
|`` and entity-like ``&``, block markers at the start of a line (``# ``, ``- ``, ``+ ``,
``1. ``, and ``---``/``===`` rules) are escaped, and newlines in one text become spaces. Raw HTML and links
from the data therefore never reach a Markdown renderer.
"""

from __future__ import annotations

import re
from pathlib import Path

from kgrec.audit.gates import worst_first
from kgrec.audit.report.fmt import criterion, format_value, is_numeric, slug
from kgrec.audit.report.model import Figure, Gate, Report, Section, Table

FIGURES_DIR = "figures"
_SPECIAL = re.compile(r"([\\`*\[\]<>|])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_BLOCK = re.compile(r"^([#+=-])(?=\s|$)|^([-=_])(?=[-=_\s]*$)")
_ORDERED = re.compile(r"^(\d+)([.)])(?=\s|$)")


def md_text(text: object) -> str:
    """One line of inline Markdown showing ``text`` literally."""
    s = re.sub(r"\s*[\r\n]+\s*", " ", str(text)).strip()
    s = _SPECIAL.sub(r"\\\1", s)
    s = _ENTITY.sub(r"\\&", s)
    s = _ORDERED.sub(r"\1\\\2", s, count=1)
    return _BLOCK.sub(r"\\\g<0>", s, count=1)


def _badge(passed: bool) -> str:
    return "✅ **PASS**" if passed else "❌ **FAIL**"


def _table(columns: list[str], rows: list[list[object]], right: list[bool]) -> list[str]:
    head = "| " + " | ".join(md_text(c) for c in columns) + " |"
    rule = "|" + "|".join("---:" if r else "---" for r in right) + "|"
    body = ["| " + " | ".join(md_text(format_value(c)) if not isinstance(c, _Raw) else c.text for c in row) + " |"
            for row in rows]
    return [head, rule, *body]


class _Raw:
    """Markdown that is already escaped (badges)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _gate_rows(gates: list[Gate], with_section: bool) -> list[str]:
    cols = ["Result", "Gate", *(["Section"] if with_section else []), "Value", "Criterion", "Detail"]
    rows = [[_Raw(_badge(g.passed)), g.name, *([g.section] if with_section else []), g.value,
             criterion(g), g.detail] for g in worst_first(gates)]
    right = [False, False, *([False] if with_section else []), True, False, False]
    return _table(cols, rows, right)


def _data_table(t: Table) -> list[str]:
    right = [bool(t.rows) and all(is_numeric(r[i]) or r[i] is None for r in t.rows) for i in range(len(t.columns))]
    lines = [f"*Table: {md_text(t.caption)}*", ""] if t.caption else []
    if not t.rows:
        return [*lines, "*(no rows)*"]
    return [*lines, *_table([str(c) for c in t.columns], t.rows, right)]


def figure_files(report: Report) -> list[tuple[Figure, str]]:
    """Each figure with its file name ``figure-NN-<section>.png``, in document order."""
    out: list[tuple[Figure, str]] = []
    for sec in report.walk():
        for fig in sec.figures:
            out.append((fig, f"figure-{len(out) + 1:02d}-{slug(sec.key)}.png"))
    return out


def _section(sec: Section, number: str, depth: int, files: dict[int, str], figures_dir: str | None,
             counter: list[int]) -> list[str]:
    verdict = f" — {_badge(sec.passed())}" if sec.all_gates() else ""
    lines = [f"{'#' * min(depth, 6)} {number} {md_text(sec.title)}{verdict}", ""]
    for p in sec.paragraphs:
        lines += [md_text(p), ""]
    if sec.gates:
        lines += ["**Gates**", "", *_gate_rows(sec.gates, with_section=False), ""]
    for t in sec.tables:
        lines += [*_data_table(t), ""]
    for cap, text in sec.blocks:
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
        lines += [f"**{md_text(cap)}**", "", fence, text.rstrip("\n"), fence, ""]
    for fig in sec.figures:
        counter[0] += 1
        cap = f"*Figure {counter[0]}: {md_text(fig.title)}*" + (f" — {md_text(fig.caption)}" if fig.caption else "")
        if figures_dir is not None:
            alt = md_text(fig.alt or fig.title)
            lines += [f"![{alt}]({figures_dir}/{files[id(fig)]})", "", cap, ""]
        else:
            lines += [cap + f" (alt: {md_text(fig.alt)})" if fig.alt else cap, ""]
    for i, sub in enumerate(sec.subsections, 1):
        lines += _section(sub, f"{number}{i}.", depth + 1, files, figures_dir, counter)
    return lines


def to_markdown(report: Report, *, figures_dir: str | None = None) -> str:
    """The report as Markdown text. ``figures_dir``: the relative directory the figure PNGs
    are (or will be) in, to link them as images; None references figures by title."""
    gates = report.gates()
    n_pass = sum(g.passed for g in gates)
    lines = [
        f"# {md_text(report.title)}", "",
        f"- **Verdict:** {_badge(report.passed())} ({n_pass} of {len(gates)} gates passed)",
        f"- **Created:** {md_text(report.created)}",
        f"- **Run:** {md_text(report.run_dir)}",
        f"- **Audit plan:** {md_text(report.plan)}", "",
        "## Summary of gates", "",
    ]
    lines += [*_gate_rows(gates, with_section=True), ""] if gates else ["*No gates were evaluated.*", ""]
    files = {id(f): name for f, name in figure_files(report)}
    counter = [0]
    for i, sec in enumerate(report.sections, 1):
        lines += _section(sec, f"{i}.", 2, files, figures_dir, counter)
    if report.meta:
        lines += ["## Provenance", ""]
        rows = [[str(k), v if isinstance(v, (int, float, str, bool)) or v is None else str(v)]
                for k, v in report.meta.items()]
        lines += [*_table(["Field", "Value"], rows, [False, False]), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(report: Report, path: str | Path, *, write_figures: bool = True) -> Path:
    """Write ``report.md`` (parents created) and, when ``write_figures``, the figure PNGs
    into ``<dir of path>/figures/``; returns the Markdown path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figs = figure_files(report)
    if write_figures and figs:
        fig_dir = path.parent / FIGURES_DIR
        fig_dir.mkdir(exist_ok=True)
        for fig, name in figs:
            (fig_dir / name).write_bytes(fig.png)
    text = to_markdown(report, figures_dir=FIGURES_DIR if write_figures else None)
    path.write_text(text, encoding="utf-8")
    return path

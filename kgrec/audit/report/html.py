"""``report.html``: the audit report as ONE self-contained HTML file.

Layout: a masthead (title, created, run, plan), the summary (overall PASS/FAIL verdict,
the failed gates by name, and the table of all gates), a table of contents, the numbered
sections (paragraphs, the section's gates, tables, figures, subsections) and the
provenance (``Report.meta``).

Self-contained: CSS is inline, figures are ``data:image/png;base64`` URIs, there is no
JavaScript and no external reference; a Content-Security-Policy ``<meta>`` (``default-src
'none'; img-src data:; style-src 'unsafe-inline'``) makes the browser refuse any request
that would slip in. PASS/FAIL is shown as a coloured badge with an icon and the word (not
colour alone). Every string that comes from the report (titles, paragraphs, table cells,
captions, alt texts, gate names and details, meta) goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path
from typing import Any

from kgrec.audit.gates import worst_first
from kgrec.audit.report.fmt import criterion, format_value, is_numeric, slug
from kgrec.audit.report.model import SCHEMA_VERSION, Gate, Report, Section, Table

NUM = ' class="num"'
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { --ink:#1f2328; --muted:#57606a; --line:#d0d7de; --bg:#f6f8fa; --accent:#0b4f8a;
        --pass:#1a7f37; --pass-bg:#dafbe1; --fail:#b42318; --fail-bg:#ffebe9; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin:0; color:var(--ink); background:#fff; line-height:1.5;
       font:15px/1.55 -apple-system, "Segoe UI", "Helvetica Neue", Helvetica, Arial, "Noto Sans",
       "Liberation Sans", "DejaVu Sans", sans-serif; }
.masthead { background:var(--accent); color:#fff; padding:28px 0 22px; }
.wrap { max-width:1060px; margin:0 auto; padding:0 28px; }
.kicker { text-transform:uppercase; letter-spacing:.08em; font-size:12px; opacity:.85; }
h1 { margin:4px 0 14px; font-size:28px; line-height:1.25; font-weight:650; overflow-wrap:anywhere; }
.facts { display:grid; grid-template-columns:max-content 1fr; gap:2px 16px; margin:0; font-size:14px; }
.facts dt { opacity:.8; } .facts dd { margin:0; overflow-wrap:anywhere; }
main { padding:8px 0 40px; }
h2 { font-size:21px; margin:36px 0 12px; padding-bottom:6px; border-bottom:1px solid var(--line);
     display:flex; align-items:center; gap:10px; flex-wrap:wrap; }
h3 { font-size:17px; margin:26px 0 10px; display:flex; align-items:center; gap:10px; flex-wrap:wrap; }
h4, h5, h6 { font-size:15px; margin:20px 0 8px; }
.secnum { color:var(--muted); font-weight:500; }
p { margin:0 0 12px; max-width:78ch; overflow-wrap:anywhere; }
.verdict { display:flex; align-items:center; gap:16px; margin:26px 0 8px; padding:16px 20px;
           border-radius:8px; border:1px solid; }
.verdict.pass { background:var(--pass-bg); border-color:#9bd6a8; }
.verdict.fail { background:var(--fail-bg); border-color:#f4b0aa; }
.verdict .big { font-size:18px; padding:6px 14px; }
.verdict-text { font-size:15px; } .verdict-text strong { font-size:17px; }
.badge { display:inline-block; padding:2px 9px; border-radius:999px; font-size:12.5px; font-weight:700;
         letter-spacing:.03em; white-space:nowrap; color:#fff; vertical-align:middle; }
.badge.pass { background:var(--pass); } .badge.fail { background:var(--fail); }
.table-wrap { overflow-x:auto; margin:8px 0 18px; }
table { border-collapse:collapse; width:100%; font-size:14px; }
caption { caption-side:top; text-align:left; font-weight:600; color:var(--muted); padding:0 0 6px; }
th, td { border-bottom:1px solid var(--line); padding:6px 10px; text-align:left; vertical-align:top;
         overflow-wrap:break-word; word-break:normal; hyphens:manual; }
pre { background:var(--bg); border:1px solid var(--line); border-radius:6px; padding:10px 12px; overflow-x:auto;
      font-size:13px; line-height:1.45; white-space:pre; }
figure.code figcaption { font-weight:600; color:var(--muted); margin-bottom:4px; }
th { background:var(--bg); font-weight:600; border-top:1px solid var(--line); }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tr.failed td { background:#fff5f4; }
table.gates td { vertical-align:middle; } table.gates td:first-child { width:92px; }
td.detail { color:var(--muted); }
.toc { background:var(--bg); border:1px solid var(--line); border-radius:8px; padding:4px 22px 10px;
       margin:26px 0; }
.toc h2 { border:0; margin:12px 0 4px; font-size:17px; }
.toc ol { margin:4px 0; padding-left:0; list-style:none; } .toc ol ol { padding-left:22px; } .toc li { margin:3px 0; }
.toc a { color:var(--accent); text-decoration:none; } .toc a:hover { text-decoration:underline; }
.toc .badge { font-size:11px; padding:1px 7px; margin-left:6px; }
figure { margin:14px 0 22px; }
figure img { display:block; max-width:100%; height:auto; border:1px solid var(--line); border-radius:6px; }
figcaption { font-size:13.5px; color:var(--muted); margin-top:6px; max-width:78ch; }
.muted { color:var(--muted); }
code { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size:13px;
       background:var(--bg); padding:1px 4px; border-radius:4px; overflow-wrap:anywhere; }
footer { border-top:1px solid var(--line); color:var(--muted); font-size:13px; padding:14px 0 30px; }
@media print {
  .masthead { background:#fff; color:var(--ink); border-bottom:2px solid var(--ink); }
  .toc { break-after:page; } section.report-section { break-before:page; }
  figure, tr { break-inside:avoid; }
  .badge, .verdict { -webkit-print-color-adjust:exact; print-color-adjust:exact; }
}
"""


def _e(text: Any) -> str:
    return escape(str(text), quote=True)


def badge(passed: bool, cls: str = "") -> str:
    word, icon = ("PASS", "✔") if passed else ("FAIL", "✘")
    state = "pass" if passed else "fail"
    return f'<span class="badge {state}{(" " + cls) if cls else ""}">{icon} {word}</span>'


def _cell(value: Any) -> str:
    cls = ' class="num"' if is_numeric(value) else ""
    return f"<td{cls}>{_e(format_value(value))}</td>"


def gates_table(gates: list[Gate], *, with_section: bool, caption: str = "") -> str:
    head = ["Result", "Gate", *(["Section"] if with_section else []), "Value", "Criterion", "Detail"]
    ths = "".join(f'<th scope="col"{NUM if h == "Value" else ""}>{h}</th>' for h in head)
    rows = []
    for g in worst_first(gates):
        sec = f"<td>{_e(g.section)}</td>" if with_section else ""
        rows.append(f'<tr class="{"passed" if g.passed else "failed"}"><td>{badge(g.passed)}</td>'
                    f"<td><strong>{_e(g.name)}</strong></td>{sec}{_cell(g.value)}"
                    f'<td>{_e(criterion(g))}</td><td class="detail">{_e(g.detail)}</td></tr>')
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return (f'<div class="table-wrap"><table class="gates">{cap}<thead><tr>{ths}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def data_table(t: Table) -> str:
    numeric = [bool(t.rows) and all(is_numeric(r[i]) or r[i] is None for r in t.rows) for i in range(len(t.columns))]
    ths = "".join(f'<th scope="col"{NUM if n else ""}>{_e(c)}</th>' for c, n in zip(t.columns, numeric, strict=True))
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in t.rows)
    if not t.rows:
        body = f'<tr><td colspan="{max(len(t.columns), 1)}" class="muted">(no rows)</td></tr>'
    cap = f"<caption>{_e(t.caption)}</caption>" if t.caption else ""
    return f'<div class="table-wrap"><table>{cap}<thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table></div>'


class _Ids:
    """Unique anchor ids from section keys."""

    def __init__(self) -> None:
        self.used: set[str] = {"summary", "contents", "provenance"}
        self.by_section: dict[int, str] = {}

    def get(self, sec: Section, prefix: str) -> str:
        if id(sec) not in self.by_section:
            base = f"{prefix}{slug(sec.key)}"
            name, i = base, 2
            while name in self.used:
                name, i = f"{base}-{i}", i + 1
            self.used.add(name)
            self.by_section[id(sec)] = name
        return self.by_section[id(sec)]


def _toc(sections: list[Section], ids: _Ids, number: str, prefix: str) -> str:
    items = []
    for i, sec in enumerate(sections, 1):
        anchor = ids.get(sec, prefix)
        mark = badge(sec.passed()) if sec.all_gates() else ""
        sub = _toc(sec.subsections, ids, f"{number}{i}.", anchor + "-") if sec.subsections else ""
        items.append(f'<li><a href="#{anchor}">{number}{i}. {_e(sec.title)}</a>{mark}{sub}</li>')
    return f"<ol>{''.join(items)}</ol>"


def _section(sec: Section, ids: _Ids, number: str, depth: int, prefix: str, counter: list[int]) -> str:
    anchor = ids.get(sec, prefix)
    h = f"h{min(depth, 6)}"
    mark = badge(sec.passed()) if sec.all_gates() else ""
    parts = [f'<{h}><span class="secnum">{number}</span> {_e(sec.title)} {mark}</{h}>']
    parts += [f"<p>{_e(p)}</p>" for p in sec.paragraphs]
    if sec.gates:
        parts.append(gates_table(sec.gates, with_section=False, caption="Gates"))
    parts += [data_table(t) for t in sec.tables]
    parts += [f'<figure class="code"><figcaption>{_e(cap)}</figcaption><pre>{_e(text)}</pre></figure>'
              for cap, text in sec.blocks]
    for fig in sec.figures:
        counter[0] += 1
        uri = "data:image/png;base64," + base64.b64encode(fig.png).decode("ascii")
        cap = f"<strong>Figure {counter[0]}.</strong> {_e(fig.title)}"
        cap += f" — {_e(fig.caption)}" if fig.caption else ""
        parts.append(f'<figure><img src="{uri}" alt="{_e(fig.alt or fig.title)}">'
                     f"<figcaption>{cap}</figcaption></figure>")
    for i, sub in enumerate(sec.subsections, 1):
        parts.append(_section(sub, ids, f"{number}{i}.", depth + 1, anchor + "-", counter))
    cls = ' class="report-section"' if depth == 2 else ""
    return f'<section id="{_e(anchor)}"{cls}>{"".join(parts)}</section>'


def _meta_value(value: Any) -> str:
    if value is None or isinstance(value, (bool, int, float, str)):
        return _e(format_value(value))
    try:
        text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = str(value)
    return f"<code>{_e(text)}</code>"


def to_html(report: Report) -> str:
    """The report as one self-contained HTML document (a str)."""
    gates = report.gates()
    ok = report.passed()
    failed = [g for g in gates if not g.passed]
    if not gates:
        summary_line = "No gates were evaluated."
    elif ok:
        summary_line = f"<strong>All {len(gates)} gates passed.</strong>"
    else:
        names = ", ".join(_e(g.name) for g in failed)
        summary_line = f"<strong>{len(failed)} of {len(gates)} gates failed:</strong> {names}."
    ids = _Ids()
    counter = [0]
    sections = "".join(_section(s, ids, f"{i}.", 2, "sec-", counter) for i, s in enumerate(report.sections, 1))
    toc_items = _toc(report.sections, ids, "", "sec-")
    meta = ""
    if report.meta:
        rows = "".join(f'<tr><th scope="row">{_e(k)}</th><td>{_meta_value(v)}</td></tr>'
                       for k, v in report.meta.items())
        meta = (f'<section id="provenance" class="report-section"><h2>Provenance</h2><div class="table-wrap">'
                f"<table><tbody>{rows}</tbody></table></div></section>")
    gate_block = gates_table(gates, with_section=True) if gates else '<p class="muted">No gates were evaluated.</p>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="generator" content="kgrec audit report (schema {SCHEMA_VERSION})">
<title>{_e(report.title)}</title>
<style>{CSS}</style>
</head>
<body>
<header class="masthead"><div class="wrap">
<div class="kicker">Recommender system audit report</div>
<h1>{_e(report.title)}</h1>
<dl class="facts"><dt>Created</dt><dd>{_e(report.created)}</dd><dt>Run</dt><dd>{_e(report.run_dir)}</dd>
<dt>Audit plan</dt><dd>{_e(report.plan)}</dd><dt>Verdict</dt><dd>{"PASS" if ok else "FAIL"}</dd></dl>
</div></header>
<main class="wrap">
<section id="summary" aria-label="Summary">
<div class="verdict {"pass" if ok else "fail"}" role="status">{badge(ok, "big")}
<div class="verdict-text">{summary_line}</div></div>
<h2>Summary of gates</h2>
{gate_block}
</section>
<nav id="contents" class="toc" aria-label="Contents"><h2>Contents</h2>{toc_items}</nav>
{sections}
{meta}
</main>
<footer><div class="wrap">Generated by kgrec · report schema {SCHEMA_VERSION} ·
machine-readable version: report.json</div></footer>
</body>
</html>
"""


def write_html(report: Report, path: str | Path) -> Path:
    """Write ``report.html`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_html(report), encoding="utf-8")
    return path

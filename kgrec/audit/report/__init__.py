"""The audit report: typed sections (:mod:`.model`) rendered as ``report.html``
(:mod:`.html`, one self-contained file), ``report.md`` (:mod:`.markdown`) and
``report.json`` (:mod:`.jsonout`); figures from :mod:`.plots`; a headless-Chromium check
of the HTML in :mod:`.browser`.

:func:`write_all` writes the three files into one directory::

    out/report.json   out/report.md   out/figures/*.png   out/report.html
"""

from __future__ import annotations

from pathlib import Path

from kgrec.audit.report.browser import BrowserCheck, check_html, find_chromium
from kgrec.audit.report.html import to_html, write_html
from kgrec.audit.report.jsonout import to_json, write_json
from kgrec.audit.report.markdown import to_markdown, write_markdown
from kgrec.audit.report.model import SCHEMA_VERSION, Figure, Gate, GateSpec, Report, Section, Table

__all__ = [
    "SCHEMA_VERSION",
    "BrowserCheck",
    "Figure",
    "Gate",
    "GateSpec",
    "Report",
    "Section",
    "Table",
    "check_html",
    "find_chromium",
    "to_html",
    "to_json",
    "to_markdown",
    "write_all",
    "write_html",
    "write_json",
    "write_markdown",
]


def write_all(report: Report, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` (with ``figures/``) and ``report.html`` into
    ``out_dir`` (created); returns ``{"json": path, "markdown": path, "html": path}``."""
    out = Path(out_dir)
    return {"json": write_json(report, out / "report.json"),
            "markdown": write_markdown(report, out / "report.md"),
            "html": write_html(report, out / "report.html")}

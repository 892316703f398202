"""The audit report as typed data: gates, tables, figures and sections (no rendering here).

Checks never format output themselves: each produces a :class:`Section` (text paragraphs,
:class:`Table` s, :class:`Figure` s, pass/fail :class:`Gate` s and a machine-readable
``data`` payload); the renderers in :mod:`kgrec.audit.report.html`,
:mod:`~kgrec.audit.report.markdown` and :mod:`~kgrec.audit.report.jsonout` turn a
:class:`Report` into ``report.html``, ``report.md`` and ``report.json``.

Gates are the audit's one gate type, :class:`kgrec.audit.gates.Gate` (re-exported here): a
measured ``value`` against a ``threshold`` by ``op`` (one of ``>=``, ``<=``, ``>``, ``<``,
``==``), built by :meth:`GateSpec.evaluate <kgrec.audit.gates.GateSpec.evaluate>` or
:meth:`Gate.evaluate`; a NaN value never passes. A report passes when every gate in every
section and subsection passes (a report without gates passes vacuously).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from kgrec.audit.gates import OPS, Gate, GateSpec, compare

__all__ = ["OPS", "SCHEMA_VERSION", "Figure", "Gate", "GateSpec", "Report", "Section", "Table", "compare"]

SCHEMA_VERSION = "1.0"


@dataclass
class Table:
    """A table: ``rows`` is a list of rows, each with ``len(columns)`` cells (str, int, float,
    bool or None; the renderers format numbers)."""

    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.caption!r}: row {i} has {len(row)} cells, "
                                 f"expected {len(self.columns)} ({', '.join(map(str, self.columns))})")


@dataclass
class Figure:
    """A PNG figure (see :mod:`kgrec.audit.report.plots`); ``alt`` is the text alternative
    for screen readers and for the Markdown/JSON outputs."""

    title: str
    png: bytes
    alt: str
    caption: str = ""

    def __post_init__(self) -> None:
        if not self.png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError(f"figure {self.title!r}: png is not PNG data")


@dataclass
class Section:
    """One part of the report. ``key`` names it in ``report.json`` (``causal``,
    ``fairness``, ``explanations``, ``summary``, ``model_card``, ``datasheet``,
    ``transparency``, ``reproducibility``, ...); ``data`` is its JSON payload (plain
    dicts/lists/numbers/strings; NaN/inf become null)."""

    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    subsections: list[Section] = field(default_factory=list)
    blocks: list[tuple[str, str]] = field(default_factory=list)  # (caption, preformatted text, e.g. YAML)

    def __post_init__(self) -> None:
        if not self.key or not str(self.key).strip():
            raise ValueError(f"section {self.title!r}: empty key")

    def all_gates(self) -> list[Gate]:
        """This section's gates, then its subsections' (depth first); a gate without
        ``section`` gets the key of the section that holds it."""
        out = [g if g.section else replace(g, section=self.key) for g in self.gates]
        for sub in self.subsections:
            out.extend(sub.all_gates())
        return out

    def passed(self) -> bool:
        return all(g.passed for g in self.all_gates())

    def walk(self) -> Iterator[Section]:
        """This section and all subsections, depth first."""
        yield self
        for sub in self.subsections:
            yield from sub.walk()


@dataclass
class Report:
    """The whole audit: ``created`` is an ISO-8601 timestamp, ``run_dir`` the audited run,
    ``plan`` the audit plan (path or name), ``meta`` free-form provenance (versions, seeds,
    hashes)."""

    title: str
    created: str
    run_dir: str
    plan: str
    sections: list[Section] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def gates(self) -> list[Gate]:
        """All gates of all sections and subsections, in document order."""
        return [g for s in self.sections for g in s.all_gates()]

    def passed(self) -> bool:
        """True when every gate passed (vacuously true without gates)."""
        return all(g.passed for g in self.gates())

    def section(self, key: str) -> Section | None:
        """The top-level section with this key, or None."""
        return next((s for s in self.sections if s.key == key), None)

    def walk(self) -> Iterator[Section]:
        for s in self.sections:
            yield from s.walk()

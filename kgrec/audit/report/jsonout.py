"""``report.json``: the machine-readable audit report.

Layout (``schema_version`` ``"1.0"``)::

    {
      "schema_version": "1.0",
      "title": str, "created": str, "run_dir": str, "plan": str, "meta": {...},
      "passed": bool,                      # every gate passed
      "gates": [{"name", "section", "value", "threshold", "op", "passed", "detail",
                 "key"}, ...],                      # key: the plan threshold the gate evaluates
      "causal": <section> | null,          # always present
      "fairness": <section> | null,        # always present
      "explanations": <section> | null,    # always present
      "<other section key>": <section>,    # summary, model_card, datasheet, transparency, ...
    }

    <section> = {"title", "paragraphs": [str], "data": {...},
                 "tables": [{"caption", "columns", "rows"}],
                 "figures": [{"title", "alt", "caption"}],     # no PNG bytes
                 "gates": [<gate>],                           # this section's own gates
                 "subsections": {key: <section>}}

Every Section.key maps to one top-level key (a key that collides with the report's own
fields or repeats is a ValueError). Values are made JSON-safe: NaN/±inf become ``null``,
numpy scalars and arrays become numbers and lists, tuples/sets become lists, Paths
strings, bytes are dropped (``null``), dict keys strings. Output is stable: keys are
sorted and the file ends with a newline.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from pathlib import Path, PurePath
from typing import Any

from kgrec.audit.report.model import SCHEMA_VERSION, Gate, Report, Section

REQUIRED_KEYS = ("causal", "fairness", "explanations")
RESERVED = frozenset({"schema_version", "title", "created", "run_dir", "plan", "meta", "passed", "gates"})


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (NaN/inf → None; see the module docstring)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [jsonable(v) for v in sorted(value, key=repr)]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return jsonable(value.tolist())
    return str(value)


def gate_json(gate: Gate) -> dict[str, Any]:
    return jsonable({"name": gate.name, "section": gate.section, "value": gate.value, "threshold": gate.threshold,
                     "op": gate.op, "passed": bool(gate.passed), "detail": gate.detail, "key": gate.key})


def section_json(section: Section) -> dict[str, Any]:
    """One section as JSON (its own gates only; the report lists all of them in ``gates``)."""
    subs: dict[str, Any] = {}
    for sub in section.subsections:
        if sub.key in subs:
            raise ValueError(f"section {section.key!r}: duplicate subsection key {sub.key!r}")
        subs[sub.key] = section_json(sub)
    own = [g if g.section else dataclasses.replace(g, section=section.key) for g in section.gates]
    return {
        "title": section.title,
        "paragraphs": list(section.paragraphs),
        "data": jsonable(section.data),
        "tables": [{"caption": t.caption, "columns": [str(c) for c in t.columns], "rows": jsonable(t.rows)}
                   for t in section.tables],
        "figures": [{"title": f.title, "alt": f.alt, "caption": f.caption} for f in section.figures],
        "gates": [gate_json(g) for g in own],
        "subsections": subs,
    }


def to_json(report: Report) -> dict[str, Any]:
    """The report as a JSON-ready dict (see the module docstring for the layout)."""
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "title": report.title,
        "created": report.created,
        "run_dir": str(report.run_dir),
        "plan": str(report.plan),
        "meta": jsonable(report.meta),
        "passed": report.passed(),
        "gates": [gate_json(g) for g in report.gates()],
    }
    out.update({k: None for k in REQUIRED_KEYS})
    seen: set[str] = set()
    for section in report.sections:
        if section.key in RESERVED:
            raise ValueError(f"section key {section.key!r} collides with a report field "
                             f"({', '.join(sorted(RESERVED))})")
        if section.key in seen:
            raise ValueError(f"duplicate section key {section.key!r}")
        seen.add(section.key)
        out[section.key] = section_json(section)
    return out


def dumps(report: Report) -> str:
    """``to_json`` serialized: sorted keys, 2-space indent, UTF-8 text, no NaN, final newline."""
    return json.dumps(to_json(report), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(report: Report, path: str | Path) -> Path:
    """Write ``report.json`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(report), encoding="utf-8")
    return path

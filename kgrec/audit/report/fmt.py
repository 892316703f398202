"""Plain-text formatting of cell values and gates, shared by the HTML and Markdown renderers.

Numbers: integers as is; floats with 4 significant digits (``0.8123``), thousands
separators from 10 000 on, scientific notation below 1e-3; NaN as ``NaN``, ±inf as
``∞``/``-∞``; None as ``—``; booleans as ``yes``/``no``. The JSON output keeps full
precision.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

from kgrec.audit.report.model import Gate

OP_TEXT = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "="}


def format_value(value: Any) -> str:
    """A short human-readable rendering of one table cell or gate number (not escaped)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "∞" if v > 0 else "-∞"
        if v == 0:
            return "0"
        if abs(v) >= 1e12 or abs(v) < 1e-3:
            return f"{v:.3e}"
        if abs(v) >= 10_000:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    return str(value)


def is_numeric(value: Any) -> bool:
    """Whether a cell is a number (right-aligned in tables)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def criterion(gate: Gate) -> str:
    """``value ≥ threshold`` style text of a gate's rule, e.g. ``≥ 0.8``."""
    return f"{OP_TEXT.get(gate.op, gate.op)} {format_value(gate.threshold)}"


def slug(text: str) -> str:
    """A lowercase ``[a-z0-9-]`` anchor/file name for a section key (``x`` if nothing is left)."""
    s = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    return s or "x"

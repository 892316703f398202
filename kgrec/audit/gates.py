"""The one gate type of the audit: a plan states it, the checks evaluate it, the report shows it.

- :class:`GateSpec` is a criterion ``value op threshold``. A plan's ``thresholds`` entry
  ``{min: x}`` is ``GateSpec(">=", x)`` and ``{max: x}`` is ``GateSpec("<=", x)``
  (:meth:`GateSpec.from_bounds`); boundaries pass.
- :meth:`GateSpec.evaluate` measures a value against it and returns a :class:`Gate`: the
  criterion with its ``name``, ``value``, ``passed``, ``detail`` and ``section``, which the
  report renders (:mod:`kgrec.audit.report`). :meth:`Gate.evaluate` builds one from an
  operator and a threshold through the same spec.
- :func:`compare` is the only comparison: ``value op threshold``, where a NaN value never
  passes.

Operators are ``>=``, ``<=``, ``>``, ``<`` and ``==``; a plan can state the first two
(:data:`BOUNDS`). A spec with another operator or a NaN threshold is a ``ValueError``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

OPS = (">=", "<=", ">", "<", "==")
#: the plan's bound keys and the operators they stand for
BOUNDS = {"min": ">=", "max": "<="}


def compare(value: float, op: str, threshold: float) -> bool:
    """``value op threshold``; NaN (value or threshold) is never a pass."""
    if op not in OPS:
        raise ValueError(f"unknown gate operator {op!r}; expected one of {', '.join(OPS)}")
    value, threshold = float(value), float(threshold)
    if math.isnan(value) or math.isnan(threshold):
        return False
    return {">=": value >= threshold, "<=": value <= threshold, ">": value > threshold,
            "<": value < threshold, "==": value == threshold}[op]


@dataclass(frozen=True)
class GateSpec:
    """A pass/fail criterion ``value op threshold`` (what a plan's threshold states)."""

    op: str
    threshold: float

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown gate operator {self.op!r}; expected one of {', '.join(OPS)}")
        if not isinstance(self.threshold, numbers.Real) or isinstance(self.threshold, bool):
            raise ValueError(f"gate threshold must be a number, got {self.threshold!r}")
        if math.isnan(self.threshold):
            raise ValueError("gate threshold must be a number, got NaN")
        object.__setattr__(self, "threshold", float(self.threshold))

    @classmethod
    def from_bounds(cls, *, min: float | None = None, max: float | None = None) -> GateSpec:  # noqa: A002
        """``{min: x}`` → ``>= x``, ``{max: x}`` → ``<= x``; exactly one bound is given."""
        if (min is None) == (max is None):
            raise ValueError("give exactly one of min or max")
        return cls(">=", min) if min is not None else cls("<=", max)  # type: ignore[arg-type]

    @property
    def min(self) -> float | None:
        """The lower bound, for a ``>=`` spec (None otherwise)."""
        return self.threshold if self.op == ">=" else None

    @property
    def max(self) -> float | None:
        """The upper bound, for a ``<=`` spec (None otherwise)."""
        return self.threshold if self.op == "<=" else None

    def check(self, value: float) -> bool:
        """Whether ``value`` meets the criterion (NaN never does)."""
        return compare(value, self.op, self.threshold)

    def evaluate(self, *, name: str, value: float, detail: str = "", section: str = "") -> Gate:
        """The gate ``name`` with ``value`` measured against this criterion."""
        return Gate(name=name, value=float(value), threshold=self.threshold, op=self.op,
                    passed=self.check(value), detail=detail, section=section)

    def to_dict(self) -> dict[str, Any]:
        """The plan's form: ``{"min": x, "max": None}`` or ``{"min": None, "max": x}``;
        other operators as ``{"op": op, "threshold": x}``."""
        if self.op in BOUNDS.values():
            return {"min": self.min, "max": self.max}
        return {"op": self.op, "threshold": self.threshold}


@dataclass
class Gate:
    """An evaluated criterion: ``passed == (value op threshold)`` for a gate built by
    :meth:`GateSpec.evaluate` or :meth:`evaluate`. ``section`` is the key of the report
    section it belongs to (filled in by the report when left empty)."""

    name: str
    value: float
    threshold: float
    op: str
    passed: bool
    detail: str = ""
    section: str = ""
    key: str = ""  # the plan threshold it evaluates (``user_ratio``, ``exposure_ratio``, ...), when known

    def __post_init__(self) -> None:
        try:
            GateSpec(self.op, self.threshold)
        except ValueError as err:
            raise ValueError(f"gate {self.name!r}: {err}") from None

    @property
    def spec(self) -> GateSpec:
        """The criterion this gate was measured against."""
        return GateSpec(self.op, self.threshold)

    @classmethod
    def evaluate(cls, *, name: str, value: float, threshold: float, op: str, detail: str = "",
                 section: str = "") -> Gate:
        """A gate whose ``passed`` is computed as ``value op threshold`` (NaN fails)."""
        return GateSpec(op, threshold).evaluate(name=name, value=value, detail=detail, section=section)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "threshold": self.threshold, "op": self.op,
                "passed": self.passed, "detail": self.detail, "section": self.section, "key": self.key}


def margin(gate: Gate) -> float:
    """How far a gate's value lies on the passing side of its threshold, relative to the
    threshold's size (negative: by how much it fails; NaN values count as the worst)."""
    if math.isnan(gate.value):
        return -math.inf
    side = gate.value - gate.threshold if gate.op == ">=" else gate.threshold - gate.value
    return side / max(abs(gate.threshold), 1e-3)


def worst_first(gates: list[Gate]) -> list[Gate]:
    """``gates`` ordered for a reviewer: failures first, the furthest from passing first, then
    the passes, the closest to failing first (ties keep their order)."""
    return sorted(gates, key=margin)

"""Audit plans: what `kgrec audit` checks and the thresholds it gates on (YAML in `audit/`).

A plan names the sensitive attributes, K, the thresholds, the causal questions with their
confounders, the explanation sample and the seeds. Unknown keys and wrong types are schema
errors naming the plan file, line and field; attributes are checked against the run's
schema when the audit starts (:func:`check_against`).

Gates (``thresholds``), each ``{min: x}`` or ``{max: x}``, loaded as the audit's one gate
type, :class:`kgrec.audit.gates.GateSpec` (``>= x`` or ``<= x``), which the checks evaluate
into the report's gates:

- ``user_ratio``: the min/max ratio of per-user NDCG@K and Recall@K over the groups of each
  sensitive attribute (and their intersections): the "0.8 rule" by default;
- ``exposure_ratio``: for each item grouping, the smallest exposure share / relevance share;
- ``gini``: exposure Gini of the top-K lists; ``long_tail_coverage``: share of tail items
  recommended at least once;
- ``refutations``: the share of causal refutation tests passed;
- ``completeness``: the largest IG completeness delta relative to |score − baseline score|;
- ``faithfulness``: the rate at which removing the top-3 attributed history items lowers the
  score more than removing 3 random ones;
- ``infidelity``: the largest Captum infidelity of an explanation (mean squared error of the
  predicted score change under random edge removals, in units of (score − baseline score)²;
  :mod:`kgrec.audit.explain_robustness`), gated with ``{max: x}``;
- ``max_sensitivity``: the largest Captum max-sensitivity of an explanation (relative change
  of the attributions under a small input perturbation), gated with ``{max: x}``.

The ``explanations`` block (:class:`ExplanationPlan`) sizes the Integrated Gradients and
the robustness metrics; the robustness settings are range-checked (:func:`check_robustness`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kgrec.audit.gates import GateSpec
from kgrec.errors import SchemaError
from kgrec.yamlio import build_dataclass, load_yaml

QUESTION_KINDS = ("popularity", "sensitive", "off_policy")
GATES = ("user_ratio", "exposure_ratio", "gini", "long_tail_coverage", "refutations", "completeness", "faithfulness",
         "infidelity", "max_sensitivity")


@dataclass
class _Bounds:
    """The YAML shape of one threshold, ``{min: x}`` or ``{max: x}`` (read into a GateSpec)."""

    min: float | None = None
    max: float | None = None


@dataclass
class CausalQuestion:
    """One question. ``popularity``: effect of log item popularity on being in users' top-K
    lists, adjusted for ``confounders`` (item attributes, KG degree, text cluster).
    ``sensitive``: effect of the user attribute ``attribute`` (binary after ``treated``
    picks the treated value) on ``outcome`` (``genre_share`` of ``genre`` in the top-K, or
    ``avg_popularity``), adjusted for ``confounders`` (user activity, history share).
    ``off_policy``: the model's click rate from logged data (IPS, SNIPS, DR)."""

    name: str
    kind: str
    attribute: str | None = None
    treated: str | None = None
    outcome: str | None = None
    genre: str | None = None
    confounders: list[str] = field(default_factory=list)
    method: str = "backdoor.linear_regression"


@dataclass
class ExplanationPlan:
    """How many top-1 recommendations are explained (``sample``) and how: Integrated Gradients
    from ``n_steps`` steps, doubled up to ``max_steps`` until the completeness gap is within
    ``max_delta``; faithfulness removes the top ``faithfulness_k`` history items. Robustness
    (:mod:`kgrec.audit.explain_robustness`): Captum's infidelity from ``robustness_samples``
    random removals of each input edge with probability ``infidelity_removal``, and Captum's
    max-sensitivity from ``sensitivity_samples`` perturbations of the inputs, uniform in the
    L∞ ball of radius ``sensitivity_radius`` (each one a further Integrated Gradients run)."""

    sample: int = 20
    n_steps: int = 64
    max_delta: float = 0.01
    max_steps: int = 1024
    faithfulness_k: int = 3
    robustness_samples: int = 10
    infidelity_removal: float = 0.2
    sensitivity_samples: int = 1
    sensitivity_radius: float = 0.02


#: the robustness fields of ExplanationPlan -> (the rule a value must meet, the check)
_ROBUSTNESS_RULES: dict[str, tuple[str, Any]] = {
    "robustness_samples": ("an integer from 1 to 1000", lambda v: 1 <= v <= 1000),
    "infidelity_removal": ("a probability strictly between 0 and 1", lambda v: 0 < v < 1),
    "sensitivity_samples": ("an integer from 1 to 100", lambda v: 1 <= v <= 100),
    "sensitivity_radius": ("a number in (0, 1]", lambda v: 0 < v <= 1),
}


@dataclass
class MitigationPlan:
    """The re-ranking sweep (:mod:`kgrec.audit.mitigation`): the calibrated re-ranker of
    :mod:`kgrec.models.rerank` over ``popularity`` and the plan's ``item_groups``, at each
    ``strengths`` value (0 = the model alone), on each user's top ``pool`` candidates, with
    ``n_boot`` bootstrap resamples of users for the CIs."""

    strengths: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0])
    pool: int = 100
    n_boot: int = 50


@dataclass
class AuditPlan:
    name: str
    k: int = 10
    seeds: list[int] = field(default_factory=lambda: [0])
    sensitive: list[str] = field(default_factory=list)
    intersections: bool = True
    min_group_size: int = 30
    item_groups: list[str] = field(default_factory=list)
    head_share: float = 0.2
    n_boot: int = 200
    refutation_simulations: int = 20
    thresholds: dict[str, GateSpec] = field(default_factory=dict)
    causal: list[CausalQuestion] = field(default_factory=list)
    explanations: ExplanationPlan = field(default_factory=ExplanationPlan)
    mitigation: MitigationPlan = field(default_factory=MitigationPlan)
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data, thresholds in the plan's ``{min, max}`` form."""
        out = asdict(self)
        out["thresholds"] = {key: spec.to_dict() for key, spec in self.thresholds.items()}
        return out


def load_plan(path: str | Path) -> AuditPlan:
    """Read and validate a plan file (errors name the file, line and field)."""
    path = Path(path)
    if not path.is_file():
        raise SchemaError("audit plan not found", file=str(path), field="--plan")
    raw = load_yaml(path)
    file = str(path)
    if not isinstance(raw, dict):
        raise SchemaError("an audit plan is a mapping", file=file, field="plan")
    thresholds = raw.pop("thresholds", {}) or {}
    lines = {k: raw.line_of(k) for k in raw} if hasattr(raw, "line_of") else {}
    block = raw.get("explanations")
    explanation_lines = {k: block.line_of(k) for k in block} if hasattr(block, "line_of") else {}
    plan = build_dataclass(AuditPlan, raw, "", file)
    plan.path = file
    if not isinstance(thresholds, dict):
        raise SchemaError(f"expected a mapping of gate: {{min|max: value}}, got {thresholds!r}", file=file,
                          field="thresholds")
    for key, spec in thresholds.items():
        line = thresholds.line_of(key) if hasattr(thresholds, "line_of") else None
        if key not in GATES:
            import difflib

            hint = difflib.get_close_matches(str(key), GATES, n=1)
            raise SchemaError(f"unknown gate '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else
                                                         f" (known: {', '.join(GATES)})"),
                              file=file, line=line, field=f"thresholds.{key}")
        bounds = build_dataclass(_Bounds, spec, f"thresholds.{key}", file)
        try:
            plan.thresholds[key] = GateSpec.from_bounds(min=bounds.min, max=bounds.max)
        except ValueError as err:
            raise SchemaError(str(err), file=file, line=line, field=f"thresholds.{key}") from None
    for i, q in enumerate(plan.causal):
        where = f"causal[{i}]"
        if q.kind not in QUESTION_KINDS:
            raise SchemaError(f"unknown kind '{q.kind}' (expected one of {', '.join(QUESTION_KINDS)})",
                              file=file, line=lines.get("causal"), field=f"{where}.kind")
        if q.kind == "sensitive" and not (q.attribute and q.outcome):
            raise SchemaError("a sensitive question needs 'attribute' and 'outcome'", file=file,
                              line=lines.get("causal"), field=where)
        if q.kind == "sensitive" and q.outcome not in ("genre_share", "avg_popularity"):
            raise SchemaError(f"unknown outcome '{q.outcome}' (genre_share or avg_popularity)", file=file,
                              line=lines.get("causal"), field=f"{where}.outcome")
    if plan.k < 1:
        raise SchemaError(f"k must be >= 1, got {plan.k}", file=file, line=lines.get("k"), field="k")
    _check_mitigation(plan.mitigation, file, lines.get("mitigation"))
    check_robustness(plan.explanations, file=file, lines=explanation_lines)
    return plan


def check_robustness(block: ExplanationPlan, *, file: str | None = None, lines: dict[str, int] | None = None) -> None:
    """The robustness settings of the ``explanations`` block within their ranges
    (:data:`_ROBUSTNESS_RULES`); a value outside is a SchemaError naming
    ``explanations.<field>`` (and its line, from ``lines``)."""
    for name, (rule, ok) in _ROBUSTNESS_RULES.items():
        value = getattr(block, name)
        if not math.isfinite(value) or not ok(value):
            raise SchemaError(f"explanations.{name} must be {rule}, got {value!r}", file=file,
                              line=(lines or {}).get(name), field=f"explanations.{name}")


def _check_mitigation(m: MitigationPlan, file: str, line: int | None) -> None:
    bad = [s for s in m.strengths if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s <= 1]
    if not m.strengths or bad:
        raise SchemaError(f"strengths must be a non-empty list of numbers in [0, 1], got {m.strengths!r}", file=file,
                          line=line, field="mitigation.strengths")
    m.strengths = sorted({float(s) for s in m.strengths} | {0.0})  # the model alone is always the reference
    if m.pool < 1:
        raise SchemaError(f"pool must be >= 1, got {m.pool}", file=file, line=line, field="mitigation.pool")
    if m.n_boot < 0:
        raise SchemaError(f"n_boot must be >= 0, got {m.n_boot}", file=file, line=line, field="mitigation.n_boot")


def check_against(plan: AuditPlan, dataset: Any) -> None:
    """Every attribute the plan names exists in the run's schema (user features for
    ``sensitive`` and questions, item features for ``item_groups``)."""
    schema = dataset.schema
    user = schema.nodes[schema.user_type].features
    item = schema.nodes[schema.item_type].features
    for i, name in enumerate(plan.sensitive):
        if name not in user:
            raise SchemaError(f"user attribute '{name}' is not in the data set's schema (has: {', '.join(user)})",
                              file=plan.path, field=f"sensitive[{i}]")
    for i, name in enumerate(plan.item_groups):
        if name not in item:
            raise SchemaError(f"item attribute '{name}' is not in the data set's schema (has: {', '.join(item)})",
                              file=plan.path, field=f"item_groups[{i}]")
    for i, q in enumerate(plan.causal):
        if q.attribute is not None and q.attribute not in user:
            raise SchemaError(f"user attribute '{q.attribute}' is not in the data set's schema", file=plan.path,
                              field=f"causal[{i}].attribute")

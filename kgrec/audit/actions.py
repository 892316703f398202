"""The report's "Recommended actions": one action per failed gate (grouped by the plan rule it
breaks), each with its evidence, the effect the audit measured for the action, and the rule.

Expected effects are never guessed: they are read from the mitigation sweep
(:mod:`kgrec.audit.mitigation`), the non-profiling rankings (:mod:`kgrec.audit.nonprofiling`),
the mediation analysis and the baseline comparison when the audit ran them, and the action
says "not measured" otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kgrec.audit.alternatives import cell, fmt
from kgrec.audit.context import AuditContext
from kgrec.audit.gates import Gate, worst_first
from kgrec.audit.report.model import Section, Table

#: plan key → the rule it stands for (what a compliance reviewer cites)
RULES = {
    "exposure_ratio": "plan gate exposure_ratio; DSA Art. 34(1)-(2): risks from the recommender's design "
                      "(exposure of items and providers)",
    "gini": "plan gate gini; DSA Art. 34(2)(a): concentration of exposure from the recommender's design",
    "long_tail_coverage": "plan gate long_tail_coverage; DSA Art. 34(2)(a)",
    "user_ratio": "plan gate user_ratio (the four-fifths rule); DSA Art. 34(1)(b): discrimination "
                  "(EU Charter Art. 21)",
    "refutations": "plan gate refutations; DSA Art. 34: a risk assessment must not rest on a fragile estimate",
    "completeness": "plan gate completeness; DSA Art. 27: explanations of the main parameters must be accurate",
    "faithfulness": "plan gate faithfulness; DSA Art. 27",
    "infidelity": "plan gate infidelity; DSA Art. 27",
    "max_sensitivity": "plan gate max_sensitivity; DSA Art. 27",
}
ITEM_KEYS = ("exposure_ratio", "gini", "long_tail_coverage")
EXPLAIN_KEYS = ("completeness", "faithfulness", "infidelity", "max_sensitivity")


@dataclass
class Action:
    finding: str
    action: str
    expected_effect: str
    evidence: str
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gate_text(g: Gate) -> str:
    return f"{g.name} = {fmt(g.value)}, needs {g.op} {g.threshold:g}"


def _item_action(failed: list[Gate], sweep: Any, k: int) -> Action:
    finding = "; ".join(_gate_text(g) for g in failed)
    rule = "; ".join(dict.fromkeys(RULES[g.key] for g in failed))
    if sweep is None:
        return Action(finding, "Run the mitigation sweep (plan mitigation.strengths) to size a re-ranking stage.",
                      "not measured (the audit ran no sweep)", "fairness section", rule)
    best = sweep.weakest_passing
    if best is None:
        return Action(finding, f"No re-ranking strength up to {max(sweep.strengths):g} passes; widen the candidate "
                      f"pool (mitigation.pool, now {sweep.pool}) or retrain with exposure-aware objectives "
                      "(train.objective=ips or pda) and audit again.",
                      "no tried setting passes the item-side gates", "mitigation section", rule)
    s, m = best
    ndcg = f"NDCG@{k}"
    d = m.diff[ndcg]
    effects = [f"{g.name}: {fmt(g.value)} → {cell(m, g.name, gate=False)}" for g in failed]
    return Action(finding,
                  f"Switch on calibrated re-ranking at strength {s:g}: --set rerank.method=calibrated "
                  f"--set rerank.strength={s:g} --set rerank.pool={sweep.pool} (kgrec evaluate, kgrec serve, or the "
                  "run's config).",
                  "; ".join(effects) + f"; cost {d[0]:+.4f} {ndcg} [95% CI {fmt(d[1])}, {fmt(d[2])}]",
                  "mitigation section (sweep table and trade-off plot)", rule)


def _user_action(g: Gate, sweep: Any, mediation: Any) -> Action:
    """The action for a failed user-ratio gate: what the mediation says the gap runs through
    decides the lever; the sweep says what the item-side re-ranking does to this ratio."""
    from kgrec.audit.mediation_check import reading

    attribute = g.name.rsplit(" across ", 1)[-1]
    item = mediation.of(attribute) if mediation is not None else None
    effect = []
    if sweep is not None and sweep.weakest_passing is not None:
        s, m = sweep.weakest_passing
        if g.name in m.values:
            effect.append(f"re-ranking at strength {s:g} (for the item-side gates) gives {cell(m, g.name, gate=False)}")
    if item is None:
        lever = ("Review the gap with the product owner before deploying; the audit could not decompose it "
                 "(an intersection, or too few users).")
    else:
        effect.append("mediation: " + reading(item, mediation.k))
        nde, nie = item.estimate.natural_direct_effect, item.estimate.natural_indirect_effect
        direct = nde.ci_high < 0 or nde.ci_low > 0
        lever = (f"A direct part of the gap for '{item.group}' remains that activity and history do not explain: "
                 "investigate inputs that proxy the attribute and the model's treatment of this group before "
                 "deploying." if direct else
                 f"The gap for '{item.group}' is not shown to remain beyond activity and history composition: the lever "
                 "is better handling of users with little or unusual history (cold-start content/KG features, "
                 "onboarding), and the gap should be monitored.")
        if not direct and not (nie.ci_high < 0 or nie.ci_low > 0):
            lever += " Neither part is clear of 0 here, so more test users are needed to tell them apart."
    return Action(_gate_text(g), lever, "; ".join(effect) if effect else "not measured for this gate",
                  "fairness section" + (", mediation section" if item is not None else ""), RULES["user_ratio"])


def _regression_effect(regressions: Sequence[Any], sweep: Any) -> str:
    """What the weakest passing re-ranking does to each regressed quantity it measured."""
    best = None if sweep is None else sweep.weakest_passing
    parts = []
    for r in regressions:
        if best is not None and best[0] > 0 and r.name in best[1].values:
            parts.append(f"{r.name}: baseline {fmt(r.baseline)}, candidate {fmt(r.candidate)}, candidate with "
                         f"re-ranking at strength {best[0]:g} {cell(best[1], r.name, gate=False)}")
    return "; ".join(parts) if parts else "as measured in the comparison"


def recommended_actions(ctx: AuditContext, gates: Sequence[Gate], *, sweep: Any = None, nonprofiling: Any = None,
                        mediation: Any = None, comparison: Sequence[Any] | None = None) -> list[Action]:
    """The actions, worst finding first (module docstring)."""
    failed = [g for g in worst_first(list(gates)) if not g.passed]
    out: list[Action] = []
    item = [g for g in failed if g.key in ITEM_KEYS]
    if item:
        out.append(_item_action(item, sweep, ctx.plan.k))
    seen_attrs = set()
    for g in failed:
        if g.key == "user_ratio":
            attr = g.name.rsplit(" across ", 1)[-1]
            if attr not in seen_attrs:  # one action per attribute (NDCG and Recall ratios together)
                seen_attrs.add(attr)
                out.append(_user_action(g, sweep, mediation))
        elif g.key == "refutations":
            out.append(Action(_gate_text(g), "Treat the causal estimates whose refutations failed as unreliable; add "
                              "the missing confounders to the plan's questions and audit again.",
                              "not measurable before the plan changes", "causal section", RULES["refutations"]))
        elif g.key in EXPLAIN_KEYS:
            out.append(Action(_gate_text(g), "Do not show these explanations to users as they are; raise the IG steps "
                              "(explanations.max_steps) or explain with another method, and audit again.",
                              "not measured", "explanations section", RULES[g.key]))
    regressions = [r for r in (comparison or []) if r.regression]
    if regressions:
        out.append(Action("; ".join(f"{r.name}: {r.difference:+.4f} [{fmt(r.ci_low)}, {fmt(r.ci_high)}] against the "
                                    "baseline" for r in regressions),
                          "Decide explicitly before replacing the baseline: the candidate is worse on these.",
                          _regression_effect(regressions, sweep), "comparison section",
                          "DSA Art. 34(1): assess risks before deploying a change"))
    if nonprofiling is not None and len(nonprofiling.rankings) > 1:
        k = ctx.plan.k
        ndcg = f"NDCG@{k}"
        options = [f"'{m.label}': {ndcg} {cell(m, ndcg)}" for m in nonprofiling.rankings[1:]]
        out.append(Action("a recommender of a very large platform must offer one option not based on profiling",
                          "Offer the non-profiling ranking to users (kgrec serve: \"ranking\": \"popular\").",
                          f"against the personalised {cell(nonprofiling.rankings[0], ndcg)}: " + "; ".join(options),
                          "non-profiling section", "DSA Art. 38"))
    return out


def actions_section(actions: list[Action]) -> Section:
    paragraphs = ["What the audit's findings ask for, worst first. Each action names the measured effect it would have "
                  "(from this audit's mitigation sweep, non-profiling rankings, mediation analysis or comparison) and "
                  "the rule it concerns. Nothing here is applied automatically."]
    if not actions:
        paragraphs.append("No gate failed; nothing is required.")
    rows = [[i, a.finding, a.action, a.expected_effect, a.evidence, a.rule] for i, a in enumerate(actions, 1)]
    table = Table(["#", "finding", "action", "expected effect (measured)", "evidence", "rule"], rows,
                  "Recommended actions")
    return Section("actions", "Recommended actions", paragraphs, [table] if rows else [], [], [],
                   {"actions": [a.to_dict() for a in actions]})

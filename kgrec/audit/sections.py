"""Turn check results into report sections and gates (checks never format output)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from kgrec.audit.causal_check import CausalResults
from kgrec.audit.context import AuditContext
from kgrec.audit.explain_check import ExplainResults
from kgrec.audit.fairness_check import FairnessResults
from kgrec.audit.report.model import Figure, Gate, Section, Table

#: what each edge channel's attributions are; scalar channels describe themselves (ExplainResults.kind_words)
KIND_WORDS = {"history": "the user's own history (items they interacted with)",
              "kg": "knowledge-graph links of the recommended item (relations and entities)",
              "friend": "the user's friends (social ties)"}


def _f(x: Any, nd: int = 4) -> Any:
    if isinstance(x, float):
        return "–" if not math.isfinite(x) else round(x, nd)
    return x


def _ope_table(value: str, estimates: list[Any], observed_label: str, observed: float,
               observed_ci: tuple[float, float], caption: str) -> Table:
    """Off-policy estimates (IPS, SNIPS, DR) with their CIs, ESS and clipping, and an observed rate."""
    return Table(["estimator", value, "95% CI", "CI width", "ESS", "clipped rows"],
                 [[e.name.upper(), _f(e.value, 5), f"[{_f(e.ci_low, 5)}, {_f(e.ci_high, 5)}]",
                   _f(e.ci_high - e.ci_low, 5), _f(e.ess, 1), e.clipped] for e in estimates]
                 + [[observed_label, _f(observed, 5), f"[{_f(observed_ci[0], 5)}, {_f(observed_ci[1], 5)}]",
                     _f(observed_ci[1] - observed_ci[0], 5), "–", "–"]], caption)


def make_gate(ctx: AuditContext, key: str, name: str, value: float, section: str, detail: str = "") -> Gate | None:
    """The plan's gate ``key`` evaluated on ``value`` (None when the plan does not set it)."""
    spec = ctx.plan.thresholds.get(key)
    if spec is None:
        return None
    return replace(spec.evaluate(name=name, value=value, detail=detail, section=section), key=key)


def _gates(*gates: Gate | None) -> list[Gate]:
    return [g for g in gates if g is not None]


def causal_section(ctx: AuditContext, res: CausalResults) -> Section:
    from kgrec.audit.report.plots import forest_plot

    rows, refs, figs = [], [], []
    for e in res.estimates:
        ok = sum(r.passed for r in e.refutations)
        rows.append([e.question, e.treatment, e.outcome, _f(e.estimate), f"[{_f(e.ci_low)}, {_f(e.ci_high)}]", e.n,
                     f"{ok}/{len(e.refutations)}", e.method])
        for r in e.refutations:
            refs.append([e.question, r.name, _f(r.new_effect), _f(r.p_value) if r.p_value is not None else "–",
                         "PASS" if r.passed else "FAIL", r.detail])
    tables = [Table(["question", "treatment", "outcome", "estimate", "95% CI", "n", "refutations passed", "method"],
                    rows, "Effect estimates (DoWhy: model → identify → estimate → refute)"),
              Table(["question", "refuter", "new effect", "p-value", "result", "detail"], refs, "Refutation tests")]
    if res.estimates:
        figs.append(Figure("Causal effect estimates", forest_plot([(e.question, e.estimate, e.ci_low, e.ci_high)
                                                                   for e in res.estimates],
                                                                  title="Estimates with 95% CIs", reference=0.0),
                           "forest plot of the causal estimates", "Each line is one question; 0 = no effect."))
    sens = [[e.question, _f((e.sensitivity or {}).get("robustness_value")),
             _f((e.sensitivity or {}).get("robustness_value_alpha")),
             (e.sensitivity or {}).get("error") or (e.sensitivity or {}).get("method", "")]
            for e in res.estimates if e.sensitivity]
    if sens:
        tables.append(Table(["question", "robustness value", "robustness value (significance)", "detail"], sens,
                            "Unobserved-confounder sensitivity (Cinelli–Hazlett): the share of residual variance a "
                            "hidden confounder would have to explain, of both treatment and outcome, to remove the "
                            "effect (or its significance)"))
    if res.flips:
        tables.append(Table(["attribute", "users", "mean top-K Jaccard after flip", "max |score change|",
                             "model reads it", "detail"],
                            [[f.attribute, f.users, _f(f.mean_jaccard), _f(f.max_abs_score_change, 6),
                              f.model_uses_attribute, f.detail] for f in res.flips],
                            _flip_caption(ctx, [f.attribute for f in res.flips])))
    paragraphs = ["Popularity bias: the effect of an item's log training popularity on the log number of users "
                  "whose top-K list holds it, adjusted for item content (features, KG degree, text components). "
                  "An elasticity above 0 means popular items are recommended more than their content explains.",
                  "Sensitive attributes: the effect of a user attribute on what the user is recommended, adjusted "
                  "for activity and the same quantity in the user's own history."]
    if any(q.kind == "off_policy" for q in ctx.plan.causal):
        paragraphs.append(
            "Off-policy value of this model: the data set logs only positive interactions (no impressions, no "
            "non-clicks, no logging propensities), so the model's click rate is not identifiable from it with IPS, "
            "SNIPS or DR; its popularity-propensity-weighted Recall and NDCG are in the model card's metrics "
            f"(ips_recall@{ctx.plan.k}, ips_ndcg@{ctx.plan.k}). The estimators themselves are validated below on the "
            "Open Bandit Dataset, where impressions and propensities were logged.")
    if res.off_policy is not None:
        op = res.off_policy
        tables.append(_ope_table("value", op.estimates, "observed", op.observed, op.observed_ci,
                                 f"Off-policy value on the Open Bandit Dataset: the {op.target_policy} policy's "
                                 f"click rate estimated from {op.n_logged} {op.logging_policy} logs, against its "
                                 f"observed rate over {op.n_observed} rows"))
        paragraphs.append(f"Off-policy check: {op.notes}")
    elif res.off_policy_error:
        paragraphs.append(f"Off-policy check not run: {res.off_policy_error}")
    if res.served is not None:
        sv = res.served
        tables.append(_ope_table("click rate per slot", sv.estimates, "logging policy, observed", sv.logging_rate,
                                 sv.logging_ci, f"This model's click rate on the served traffic "
                                 f"({ctx.exposure_log}): estimated from {sv.requests} logged requests "
                                 f"({sv.exposures} exposures, policies: {', '.join(sv.policies)}; this model agrees "
                                 f"with {sv.matched_rows} shown slots), against the logging policy's observed rate"))
        paragraphs.append("Served-log check: the estimates weight each logged slot by this model's choice over the "
                          "logging policy's propensity (item-position model); they are unbiased where the logging "
                          "policy could have shown this model's items. " + " ".join(sv.notes))
    if res.truth:
        tables.append(Table(["question", "planted effect", "true", "estimate", "95% CI", "relative error", "recovered"],
                            [[t["question"], t["planted"], _f(t["true"]), _f(t["estimate"]),
                              f"[{_f(t['ci_low'])}, {_f(t['ci_high'])}]", _f(t["relative_error"], 3),
                              "yes" if t["recovered"] else "no"] for t in res.truth],
                            "Planted effects of the synthetic world (truth.json) against the same estimator on the "
                            "observed interactions"))
    passed, total = res.refutations
    gates = _gates(make_gate(ctx, "refutations", "refutation tests passed (share)", passed / total if total else
                             float("nan"), "causal", f"{passed} of {total}"))
    data = {"estimates": [e.to_dict() for e in res.estimates], "flips": [f.to_dict() for f in res.flips],
            "off_policy": res.off_policy.to_dict() if res.off_policy is not None else None,
            "off_policy_error": res.off_policy_error, "truth": res.truth,
            "served_log": res.served.to_dict() if res.served is not None else None}
    return Section("causal", "Causal effects", paragraphs, tables, figs, gates, data)


GINI, LONG_TAIL = "exposure Gini", "long-tail coverage"


def _user_ratio_name(d: Any) -> str:
    return f"{d.metric} ratio across {d.attribute}"


def _exposure_ratio_name(x: Any) -> str:
    return f"exposure/relevance ratio, weakest {x.grouping} group"


def fairness_gate_values(users: list[Any], exposure: list[Any]) -> dict[str, float]:
    """Every fairness gate's value by the gate's report name, from user_disparities' and
    exposure_fairness' results (the fairness section and the baseline comparison share it)."""
    out = {_user_ratio_name(d): d.ratio for d in users}
    out.update({_exposure_ratio_name(x): x.min_ratio for x in exposure})
    if exposure:
        out.update({GINI: exposure[0].gini, LONG_TAIL: exposure[0].long_tail_coverage})
    return out


def fairness_gate_keys(users: list[Any], exposure: list[Any]) -> dict[str, str]:
    """The plan threshold key (``user_ratio``, ``exposure_ratio``, ``gini``,
    ``long_tail_coverage``) of every name :func:`fairness_gate_values` returns."""
    out = {_user_ratio_name(d): "user_ratio" for d in users}
    out.update({_exposure_ratio_name(x): "exposure_ratio" for x in exposure})
    if exposure:
        out.update({GINI: "gini", LONG_TAIL: "long_tail_coverage"})
    return out


def fairness_section(ctx: AuditContext, res: FairnessResults) -> Section:
    from kgrec.audit.report.plots import bar_with_ci, grouped_bars

    tables, figs, gates = [], [], []
    for d in res.users:
        tables.append(Table(["group", "users", d.metric, "95% CI", "small (flagged)"],
                            [[g.group, g.n, _f(g.value), f"[{_f(g.ci_low)}, {_f(g.ci_high)}]", "yes" if g.small else ""]
                             for g in d.groups],
                            f"{d.metric} by {d.attribute}: difference {_f(d.difference)} "
                            f"[{_f(d.difference_ci[0])}, {_f(d.difference_ci[1])}], ratio {_f(d.ratio)} "
                            f"[{_f(d.ratio_ci[0])}, {_f(d.ratio_ci[1])}]"))
        if " × " not in d.attribute:
            big = [g for g in d.groups if not g.small]
            figs.append(Figure(f"{d.metric} by {d.attribute}",
                               bar_with_ci([g.group for g in big], [g.value for g in big], [g.ci_low for g in big],
                                           [g.ci_high for g in big], title=f"{d.metric} by {d.attribute}",
                                           xlabel=d.metric), f"bar chart of {d.metric} by {d.attribute}"))
        gates.append(make_gate(ctx, "user_ratio", _user_ratio_name(d), d.ratio, "fairness",
                               f"min/max over groups of ≥ {d.min_group_size} users"))
    for x in res.exposure:
        tables.append(Table(["group", "items", "exposure share", "relevance share", "ratio"],
                            [[g.group, g.n_items, _f(g.exposure_share), _f(g.relevance_share), _f(g.ratio)]
                             for g in x.groups],
                            f"Exposure by {x.grouping}: Gini {_f(x.gini)}, long-tail coverage "
                            f"{_f(x.long_tail_coverage)}"))
        figs.append(Figure(f"Exposure vs relevance by {x.grouping}",
                           grouped_bars([g.group for g in x.groups], {"exposure share": [g.exposure_share for g in
                                                                                        x.groups],
                                                                      "relevance share": [g.relevance_share for g in
                                                                                          x.groups]},
                                        title=f"Exposure vs relevance by {x.grouping}"),
                           f"exposure and relevance shares by {x.grouping}"))
        gates.append(make_gate(ctx, "exposure_ratio", _exposure_ratio_name(x), x.min_ratio, "fairness"))
    if res.exposure:
        pop = res.exposure[0]
        gates += [make_gate(ctx, "gini", GINI, pop.gini, "fairness"),
                  make_gate(ctx, "long_tail_coverage", LONG_TAIL, pop.long_tail_coverage, "fairness")]
    paragraphs = [f"User side: per-user NDCG@{ctx.plan.k} and Recall@{ctx.plan.k} on the test split by each sensitive "
                  f"attribute and their intersections (Fairlearn MetricFrame, {ctx.plan.n_boot} bootstrap resamples). "
                  f"Groups with fewer than {ctx.plan.min_group_size} users are flagged and left out of the ratio.",
                  "Item side: each group's share of exposure (position-weighted top-K slots) against its share of "
                  "held-out relevant interactions."] + ([res.note] if res.note else [])
    data = {"users": [d.to_dict() for d in res.users], "exposure": [x.to_dict() for x in res.exposure]}
    return Section("fairness", "Fairness", paragraphs, tables, figs, _gates(*gates), data)


def _flip_caption(ctx: AuditContext, flipped: list[str]) -> str:
    """The flip table's title: the attributes it lists, and the plan's sensitive attributes it
    does not (only categorical ones are flipped: a binned numeric value has no single swap)."""
    names = list(dict.fromkeys(flipped))
    rest = [a for a in ctx.plan.sensitive if a not in names]
    title = f"Counterfactual flip of {', '.join(names)}"
    return title + (f" (not flipped: {', '.join(rest)}; only the categorical attributes of the causal questions are "
                    "flipped)" if rest else "")


def _count_of(rate: float, n: int) -> str:
    """A rate over ``n`` cases as a count: "18 of 20 cases (90%)"; "no case" when n is 0."""
    if n == 0 or rate != rate:
        return "no case (none could be judged)"
    hits = round(rate * n)
    return f"{hits} of {n} case{'s' if n != 1 else ''} ({rate:.0%})"


def _sig(x: float | None, digits: int = 3) -> Any:
    """``x`` to ``digits`` significant figures ("–" for None or non-finite): robustness values
    span 1e-6 to 1, which fixed decimals would round to 0."""
    if x is None or not math.isfinite(x):
        return "–"
    return float(f"{x:.{digits}g}")


def _robustness(ctx: AuditContext, res: ExplainResults) -> tuple[list[Table], list[Gate | None], str]:
    """The explanations' robustness beside their faithfulness: a per-explanation table, a
    summary table with the settings, the optional ``infidelity`` / ``max_sensitivity`` gates
    (each on the largest value) and a paragraph in plain words for a reviewer."""
    from kgrec.audit.explain_robustness import RobustnessSettings

    st, k = res.robustness_settings or RobustnessSettings().to_dict(), ctx.plan.explanations.faithfulness_k
    infd, sens = res.infidelity, res.max_sensitivity
    yes_no = {True: "yes", False: "no", None: "–"}
    per = Table(["user", "recommended", "faithful", f"top-{k} drop", f"random-{k} drop", "infidelity",
                 "max-sensitivity"],
                [[e.user, e.item_label, yes_no[e.faithful], _sig(e.top_drop), _sig(e.random_drop), _sig(e.infidelity),
                  _sig(e.max_sensitivity)] for e in res.explanations],
                "Robustness of each explanation (Captum infidelity and max-sensitivity) beside its faithfulness")
    n_inf, n_sens = st["infidelity_samples"], st["sensitivity_samples"]
    removals = (f"{n_inf} random removal{'s' if n_inf != 1 else ''} per explanation, each input edge removed with "
                f"probability {st['removal']}")
    nudges = (f"{n_sens} random perturbation{'s' if n_sens != 1 else ''} per explanation, every input moved by at "
              f"most ±{st['radius']}")
    removal = f"{removals}; squared error in units of (score − baseline)²; seed {st['seed']}"
    nudge = (f"the largest over {nudges}; the same Integrated Gradients; relative to the attributions' size; "
             f"seed {st['seed']}")
    summary = Table(["measure", "mean", "median", "max", "explanations", "better", "settings"],
                    [["infidelity", _sig(infd.get("mean")), _sig(infd.get("median")), _sig(infd.get("max")),
                      infd.get("n", 0), "lower", removal],
                     ["max-sensitivity", _sig(sens.get("mean")), _sig(sens.get("median")), _sig(sens.get("max")),
                      sens.get("n", 0), "lower", nudge],
                     ["faithfulness rate", _f(res.faithfulness_rate, 3), "–", "–", res.faithfulness_n, "higher",
                      f"top-{k} attributed history items removed against {k} random ones"]],
                    "Explanation robustness and faithfulness, summary")
    gates = [make_gate(ctx, "infidelity", "largest explanation infidelity", infd.get("max", float("nan")),
                       "explanations", f"over {infd.get('n', 0)} recommendations; in units of (score − baseline)²"),
             make_gate(ctx, "max_sensitivity", "largest explanation max-sensitivity", sens.get("max", float("nan")),
                       "explanations", f"over {sens.get('n', 0)} recommendations; radius {st['radius']}")]
    text = ("Robustness of the explanations (Captum's metrics, beside faithfulness). Infidelity asks whether the "
            "attributions predict what happens to the score when inputs are taken away: some input edges are removed "
            "at random, and the sum of their attributions is compared with the actual change of the score. It is the "
            "mean squared miss, measured in units of the explanation's own score gap (score − baseline), so 0 means "
            "every removal was predicted exactly and 0.01 a typical miss of about 10% of the gap; lower is better. "
            "Max-sensitivity asks whether the explanation is stable: every input is moved by a small random amount "
            "and the attributions are recomputed the same way; it is the largest change of the attributions "
            "relative to their size (0.05: they moved by 5%); lower is better. A score that depends linearly on "
            f"its inputs gives at most the radius ({st['radius']}), because its attributions move exactly as much as "
            f"the inputs do. Settings: infidelity from {removals}; max-sensitivity from {nudges}; seed {st['seed']}. "
            f"Here the infidelity "
            f"was {_sig(infd.get('mean'))} on average (largest {_sig(infd.get('max'))}) and the max-sensitivity "
            f"{_sig(sens.get('mean'))} on average (largest {_sig(sens.get('max'))}).")
    return [per, summary], gates, text


def explanations_section(ctx: AuditContext, res: ExplainResults) -> tuple[Section, Section]:
    from kgrec.audit.report.plots import bar_with_ci

    if not res.supported:
        empty = Section("explanations", "Explanations", [res.note], [], [], [], {"supported": False})
        return empty, Section("transparency", "Main parameters of the ranking (DSA Art. 27)", [res.note], [], [], [],
                              {})
    rows, paths = [], []
    for e in res.explanations:
        top = "; ".join(f"{a.label} ({a.kind}) {a.value:+.3f}" for a in e.attributions[:3])
        rows.append([e.user, e.item_label, _f(e.score), _f(e.baseline_score), _f(e.delta, 6), _f(e.relative_delta, 5),
                     e.n_steps, top, {True: "yes", False: "no", None: "–"}[e.faithful]])
        paths += [[e.user, e.item_label, p] for p in e.paths[:2]]
    tables = [Table(["user", "recommended", "score", "baseline", "completeness δ", "|δ| / |score − baseline|", "IG steps",
                     "top attributions", "faithful"], rows, "Integrated Gradients over the score's input edges"),
              Table(["user", "recommended", "why (knowledge-graph path)"], paths, "Knowledge-graph paths")]
    robust_tables, robust_gates, robust_text = _robustness(ctx, res)
    tables[1:1] = robust_tables  # beside faithfulness: right after the attributions table
    gates = _gates(make_gate(ctx, "completeness", "largest IG completeness gap (relative)", res.max_relative_delta,
                             "explanations"),
                   make_gate(ctx, "faithfulness", "faithfulness rate", res.faithfulness_rate, "explanations",
                             f"over {res.faithfulness_n} recommendations"), *robust_gates)
    paragraphs = [f"{len(res.explanations)} top-1 recommendations of randomly drawn test users. Attributions sum to "
                  "the score minus the score with every input edge removed (completeness); the largest relative gap "
                  f"was {_f(res.max_relative_delta, 5)}. Removing the 3 most-attributed history items lowered the score "
                  f"more than removing 3 random ones in {_count_of(res.faithfulness_rate, res.faithfulness_n)}.",
                  robust_text]
    unnamed = ctx.unlabelled()
    if unnamed:
        paragraphs.append(f"This data set gives no readable names for {', '.join(unnamed)} nodes (their schema "
                          "declares no label), so the paths name them by their raw ids from the data files.")
    section = Section("explanations", "Explanations", paragraphs, tables, [], gates,
                      {"explanations": [e.to_dict() for e in res.explanations],
                       "max_relative_delta": res.max_relative_delta, "faithfulness_rate": res.faithfulness_rate,
                       "robustness": {"infidelity": res.infidelity, "max_sensitivity": res.max_sensitivity,
                                      "settings": res.robustness_settings}})
    labels = list(res.importance)
    fig = Figure("Relative importance of each signal",
                 bar_with_ci(labels, [res.importance[k] for k in labels], [res.importance[k] for k in labels],
                             [res.importance[k] for k in labels], title="Share of total |attribution|",
                             xlabel="share"), "bar chart of signal importance")
    para = ["Which signals drive recommendations, measured as each signal's share of the total absolute "
            "attribution over the explained recommendations:"]
    words = {**KIND_WORDS, **res.kind_words}
    para += [f"{words.get(k, k)}: {res.importance[k]:.0%}" for k in labels]
    # res.supported: the model is Explainable (kgrec.models.base), so it declares its KG relations
    relation_rows = [[r.name, r.target, round(r.weight, 4) if r.weight is not None else None]
                     for r in res.relations]
    para.append("Scores are inner products of a user vector and an item vector: a graph neural network over "
                "interactions, the knowledge graph, social ties and text, plus an item-to-item term learned in "
                "closed form from co-interactions. Sensitive attributes are not inputs unless the run says so "
                f"(use_sensitive = {bool(ctx.run.config.model.params.get('use_sensitive', False))}).")
    transparency = Section("transparency", "Main parameters of the ranking (DSA Art. 27)", para,
                           [Table(["relation path", "target", "learned weight"], relation_rows,
                                  "Learned weight of each knowledge-graph relation path")] if relation_rows else [],
                           [fig], [], {"importance": res.importance,
                                       "relation_weights": {r[0]: r[2] for r in relation_rows}})
    return section, transparency

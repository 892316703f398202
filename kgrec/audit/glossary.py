"""The report's scope statement and its glossary: every metric and estimator the report names,
defined once in plain words for a reviewer.

:func:`glossary_section` lists only the terms that occur in the report's other sections (their
titles, paragraphs, table captions, column headers and gate names), so the glossary grows with
the report and never defines what the reader will not meet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from kgrec.audit.context import AuditContext
from kgrec.audit.report.model import Section, Table

# term -> (words that reveal it in the report's text, definition)
GLOSSARY: dict[str, tuple[tuple[str, ...], str]] = {
    "NDCG@K": (("ndcg",), "Normalised discounted cumulative gain of the top-K list: hits count more near the top "
                          "(1/log2(position + 1)), divided by the best possible value; 0 = no hit, 1 = ideal order."),
    "Recall@K": (("recall",), "Share of a user's held-out items that appear in their top-K list."),
    "0.8 rule (group ratio)": (("user_ratio", "0.8 rule", "ratio across"),
                               "The smallest group mean of a per-user metric divided by the largest; below 0.8 the "
                               "gap is flagged, after the four-fifths rule of US employment law."),
    "Exposure share": (("exposure",), "A group's share of the position-weighted slots of all top-K lists "
                                      "(weight 1/log2(position + 1))."),
    "Exposure ratio": (("exposure_ratio", "exposure ratio", "exposure/relevance ratio"),
                       "A group's exposure share divided by its share of held-out relevant interactions: 1 means "
                       "items are shown as often as they are wanted; the weakest group's value is gated."),
    "Gini (exposure)": (("gini",), "Inequality of exposure over all items: 0 = every item shown equally, 1 = one "
                                   "item takes every slot."),
    "Long-tail coverage": (("long_tail_coverage", "long-tail coverage"),
                           "Share of the non-head (less popular) items that appear in at least one top-K list."),
    "Bootstrap CI": (("ci", "bootstrap", "interval"),
                     "A 95% confidence interval from resampling users with replacement and recomputing the value."),
    "Average treatment effect (ATE)": (("effect", "dowhy", "estimate"),
                                       "The change in the outcome caused by moving the treatment, estimated by "
                                       "DoWhy after adjusting for the confounders in the stated causal graph."),
    "Refutation test": (("refutation", "refuter"), "DoWhy re-estimates the effect after a change that should not move it (a "
                                    "random common cause, a placebo treatment, a data subset); a large move means "
                                    "the estimate is fragile."),
    "Robustness value": (("robustness value", "unobserved-confounder sensitivity", "sensitivity analysis"),
                         "Cinelli-Hazlett: how strongly a hidden confounder would have to be associated with "
                         "both treatment and outcome (share of residual variance) to explain the effect away."),
    "Counterfactual flip": (("counterfactual flip",), "Swap a user's sensitive attribute with another value, re-score with the "
                                       "same weights, and compare the top-K lists (Jaccard overlap)."),
    "IPS / SNIPS / DR": (("ips", "snips", "off-policy", "off_policy"),
                         "Off-policy estimators of a ranking's click rate from logs of another policy: inverse "
                         "propensity scoring, its self-normalised form, and doubly robust (a reward model plus an "
                         "IPS correction)."),
    "Effective sample size (ESS)": (("ess",), "How many logged events the importance weights are worth: "
                                              "(sum w)^2 / sum w^2."),
    "Integrated Gradients": (("integrated gradients", "ig steps", "attribution"),
                             "Captum's attribution of a score to its inputs: the path integral of gradients from a "
                             "baseline (every input edge removed) to the actual input."),
    "Completeness gap": (("completeness",), "How far the attributions' sum misses the score minus the baseline "
                                            "score, relative to that difference; 0 for an exact attribution."),
    "Faithfulness": (("faithful", "faithfulness"), "Removing the most-attributed inputs must lower the score more than removing "
                                    "as many random inputs; the rate is the share of explanations where it does."),
    "Calibrated re-ranking": (("calibrated re-ranking", "re-ranking"),
                              "A stage after the model (Steck 2018) that reorders each user's top candidates so that "
                              "the list's mix of item groups (e.g. popular vs long-tail) moves towards the mix of the "
                              "user's own history; strength 0 keeps the model's order, 1 ignores its scores."),
    "Weakest passing setting": (("weakest setting", "weakest passing"),
                                "The smallest re-ranking strength tried whose lists pass every item-side gate of the "
                                "plan: the least intervention that meets the exposure rules."),
    "Paired difference": (("paired",), "A difference measured on the same resampled users for both rankings, so "
                                       "user-to-user variation cancels and the CI is narrower than two separate CIs."),
    "Non-profiling ranking": (("non-profiling",), "A ranking built without any user's personal data or history "
                                                  "(DSA Art. 38), e.g. by overall popularity: every user gets the "
                                                  "same list."),
    "Mediation analysis": (("mediation", "mediated"),
                           "Splits a gap between two groups into the part that runs through intermediate factors "
                           "(here, how much history users gave the recommender and how mainstream it is) and the "
                           "part that remains; an estimate that rests on the assumption that nothing unmeasured "
                           "drives both those factors and the outcome."),
    "Natural direct effect": (("natural direct effect", "direct effect", "direct part"),
                              "The part of a group's gap that would remain if the group had the same activity and "
                              "history composition as everyone else; it points at the model, or at something "
                              "about the users that was not measured."),
    "Natural indirect effect": (("natural indirect effect", "indirect effect", "indirect part"),
                                "The part of a group's gap that runs through the mediators: how much the gap would "
                                "shrink if the group's activity and history composition matched everyone else's."),
    "Share mediated": (("share mediated",), "The indirect effect divided by the total gap; only meaningful when the "
                                            "total gap's confidence interval excludes 0."),
    "Infidelity": (("infidelity",), "Captum's check of whether the attributions predict the score change when random "
                                    "input edges are removed: the mean squared miss in units of the explanation's "
                                    "score gap (score − baseline)²; 0 is exact, lower is better."),
    "Max-sensitivity": (("max-sensitivity", "max_sensitivity"),
                        "Captum's check of how much an explanation changes when every input is moved slightly (within "
                        "±radius): the largest change of the attributions relative to their size; a linear model "
                        "gives at most the radius, lower is better."),
    "Knowledge-graph path": (("knowledge-graph path", "kg path"),
                             "A chain user item -> KG entity -> recommended item, found with networkx, shown as "
                             "the reason a history item connects to a recommendation."),
}

SCOPE_COVERS = [
    "offline accuracy of the run's ranking on its held-out test users (full ranking over all items)",
    "popularity bias and the effect of each planned sensitive attribute on what is recommended (DoWhy, with "
    "refutations and an unobserved-confounder sensitivity analysis)",
    "fairness between user groups of each sensitive attribute (and their intersections) and exposure fairness "
    "between item groups (Fairlearn MetricFrame with bootstrap CIs)",
    "explanations of sampled top-1 recommendations (Captum Integrated Gradients, knowledge-graph paths) and how "
    "faithful they are",
    "how much of each user-side accuracy gap runs through the users' activity and history composition "
    "(DoWhy mediation analysis, with refutations)",
    "a mitigation (calibrated re-ranking) swept over its strength, and rankings not based on profiling, measured "
    "on the same users as the model",
]
SCOPE_EXCLUDES = [
    "users and items outside the data set the run was trained on, and any later change of the catalogue",
    "attributes the data set does not record (fairness is measured only over the recorded ones)",
    "long-term effects of the recommendations on users or providers (feedback loops) beyond the logged traffic",
    "the security and privacy of the serving system",
]


def scope_section(ctx: AuditContext) -> Section:
    """What the audit covers and what it does not, for this run and plan."""
    plan = ctx.plan
    covers = SCOPE_COVERS + ([f"the click rate of this run on the served traffic in {ctx.exposure_log} (off-policy)"]
                             if ctx.exposure_log else [])
    paragraphs = [f"Run {ctx.run.path.name} on {ctx.run.dataset.schema.name}; plan '{plan.name}' with K = {plan.k}; "
                  f"sensitive attributes: {', '.join(plan.sensitive) or 'none'}; {len(ctx.users)} test users.",
                  "The audit covers: " + "; ".join(covers) + ".",
                  "It does not cover: " + "; ".join(SCOPE_EXCLUDES) + "."]
    return Section("scope", "Scope", paragraphs, [], [], [],
                   {"covers": covers, "excludes": SCOPE_EXCLUDES, "k": plan.k, "sensitive": list(plan.sensitive)})


def _texts(sections: Iterable[Section]) -> str:
    parts: list[str] = []
    for top in sections:
        for sec in top.walk():
            parts += [sec.title, *sec.paragraphs, *(g.name for g in sec.gates)]
            for t in sec.tables:
                parts += [t.caption, *t.columns]
    return " ".join(parts).lower()


def used_terms(sections: Iterable[Section]) -> list[str]:
    """The glossary terms whose cue words occur in ``sections``: whole words or phrases,
    case-insensitive, a plural "s" allowed ("CI" in "95% CI", not in "city")."""
    text = _texts(sections)
    return [term for term, (cues, _) in GLOSSARY.items()
            if any(re.search(rf"(?<![a-z0-9]){re.escape(c)}s?(?![a-z0-9])", text) for c in cues)]


def glossary_section(sections: Iterable[Section]) -> Section:
    """A table of every glossary term the other sections use, in the glossary's order."""
    terms = used_terms(sections)
    rows = [[t, GLOSSARY[t][1]] for t in terms]
    return Section("glossary", "Glossary", ["Every metric and estimator named in this report."],
                   [Table(["term", "meaning"], rows, "Glossary")], [], [], {t: GLOSSARY[t][1] for t in terms})

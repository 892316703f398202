"""The mediation section: is a user-side accuracy gap the model's doing, or does it come with the
users' histories?

For each of the plan's sensitive attributes, the gap in per-user NDCG@K between one group and the
rest is split (:func:`kgrec.audit.causal.mediation.mediation_effects`, DoWhy's two-stage
mediation regression) into the part that runs through what the users gave the recommender
(activity and history composition, :mod:`kgrec.metrics.mediators`, on the training split) and
the part that remains (the natural direct effect). Reported, not gated.

Choices, stated in the report:

- **treatment**: the group with the lowest mean NDCG@K among groups with at least
  ``min_group_size`` test users (all groups when none is that large), against every other user with
  a known value: the gap the fairness gate is about, for an attribute with several groups too;
- **mediators**: ``activity`` (log 1 + training interactions) and ``history_popularity`` (mean log
  1 + training popularity of the user's training items);
- **confounders**: the other sensitive attributes of the plan (e.g. age for the gender gap). Other
  user features (e.g. occupation) are left out: they may themselves be consequences of the
  attribute, and adjusting for them would hide part of the gap;
- ``n_boot`` = plan ``n_boot`` clipped to [:data:`MIN_BOOT`, :data:`MAX_BOOT`] bootstrap resamples of
  the users (a replicate is two least-squares fits, ~0.5 ms for 1,000 users, so 1,000 resamples cost
  about half a second; with 200, the noise of the percentile endpoints made 95% intervals cover the
  planted direct effect in 92.5% of 400 noise redraws of a 5,000-user world, against 94.5% for the
  analytic OLS interval; with 1,000, 96.3% against 96.7% over 300 redraws); plan
  ``refutation_simulations`` runs per refuter.

Where the data set is a synthetic world with a planted outcome (``truth.json`` ``mediation``,
:mod:`kgrec.graphs.synthetic_outcome`), the same estimator runs on that planted outcome (with the
mediators recomputed from the loaded interactions) and the report shows whether it recovers the
planted direct and indirect effects, as :func:`kgrec.audit.causal_check.truth_checks` does. That
outcome is semi-synthetic: the model's NDCG has no known truth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgrec.audit.causal_check import TRUTH_TOLERANCE
from kgrec.audit.context import AuditContext
from kgrec.audit.fairness_check import user_labels
from kgrec.audit.frames import node_covariates, slug
from kgrec.audit.report.model import Section, Table
from kgrec.errors import DataError
from kgrec.metrics.mediators import MEDIATORS, history_mediators

MIN_BOOT, MAX_BOOT = 1000, 5000
MEDIATOR_WORDS = {"activity": "activity (log 1 + training interactions)",
                  "history_popularity": "history composition (mean log popularity of the training items)"}
PLANTED = (("natural_direct_effect", "natural direct effect"), ("natural_indirect_effect", "natural indirect effect"),
           ("total_effect", "total effect"))


@dataclass
class AttributeMediation:
    """One attribute's gap: ``group`` (treated) against the rest, the per-group test users and
    mean NDCG (``groups``), and the estimate (or ``error`` when it could not be made)."""

    attribute: str
    group: str | None
    groups: dict[str, dict[str, float]]
    estimate: Any = None  # kgrec.audit.causal.mediation.MediationEstimate
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "group": self.group, "groups": self.groups, "error": self.error,
                "estimate": None if self.estimate is None else self.estimate.to_dict()}


@dataclass
class MediationResults:
    attributes: list[AttributeMediation] = field(default_factory=list)
    truth: list[dict[str, Any]] = field(default_factory=list)  # planted-effect rows (see planted_checks)
    truth_estimate: Any = None
    truth_error: str | None = None
    k: int = 10

    def of(self, attribute: str) -> AttributeMediation | None:
        """``attribute``'s decomposition, or None when it was not estimated (an intersection
        ``a × b`` is not decomposed)."""
        return next((a for a in self.attributes if a.attribute == attribute and a.estimate is not None), None)

    def to_dict(self) -> dict[str, Any]:
        return {"attributes": [a.to_dict() for a in self.attributes], "truth": self.truth,
                "truth_estimate": None if self.truth_estimate is None else self.truth_estimate.to_dict(),
                "truth_error": self.truth_error}


def lowest_group(labels: np.ndarray, values: np.ndarray, min_group_size: int) -> tuple[str, dict[str, dict]]:
    """(the group with the lowest mean ``values`` among groups of at least ``min_group_size``
    (all groups when none is), per-group ``{n, mean}``); ``labels`` None = unknown, skipped."""
    groups: dict[str, dict[str, float]] = {}
    for g in sorted({str(x) for x in labels if x is not None}):
        sel = np.array([x is not None and str(x) == g for x in labels])
        groups[g] = {"n": int(sel.sum()), "mean": float(values[sel].mean())}
    if len(groups) < 2:
        raise DataError(f"{len(groups)} group(s) with a known value; a gap needs two", field="sensitive")
    big = {g: d for g, d in groups.items() if d["n"] >= min_group_size} or groups
    return min(big, key=lambda g: (big[g]["mean"], g)), groups


def _confounders(dataset: Any, attribute: str, others: list[str], rows: np.ndarray) -> pd.DataFrame:
    """Numeric columns of the other sensitive attributes for user indices ``rows`` (constant ones dropped)."""
    user = dataset.schema.user_type
    if not others:
        return pd.DataFrame(index=range(len(rows)))
    skip = tuple(f for f in dataset.schema.nodes[user].features if f not in others)
    cov = node_covariates(dataset, user, skip=skip).iloc[rows].reset_index(drop=True)
    return cov[[c for c in cov.columns if cov[c].std() > 0]]


def mediation_frame(ctx: AuditContext, attribute: str) -> tuple[pd.DataFrame, str, dict, str, list[str]]:
    """(frame, treated group, groups, treatment column, confounder columns): one row per test user
    with a known ``attribute``; the columns are the treatment, ``activity``, ``history_popularity``,
    ``ndcg`` and the confounders."""
    run, k = ctx.run, ctx.plan.k
    labels = user_labels(run.dataset, attribute, ctx.users)
    ndcg = ctx.per_user[f"ndcg@{k}"]
    group, groups = lowest_group(labels, ndcg, ctx.plan.min_group_size)
    known = np.array([x is not None for x in labels])
    users = ctx.users[known]
    med = history_mediators(sp.csr_matrix(run.ctx.train))
    t_name = slug(f"{attribute}_{group}")
    df = pd.DataFrame({t_name: np.array([str(x) == group for x in labels[known]], dtype=np.int64),
                       **{m: med[m][users] for m in MEDIATORS}, "ndcg": ndcg[known]})
    others = [a for a in ctx.plan.sensitive if a != attribute]
    cov = _confounders(run.dataset, attribute, others, users)
    cov.columns = [c if c not in df.columns else f"{c}_confounder" for c in cov.columns]
    return pd.concat([df, cov], axis=1), group, groups, t_name, list(cov.columns)


def planted_frame(ds: Any, truth: dict[str, Any], *, sensitive: list[str],
                  interactions: sp.spmatrix | None = None) -> tuple[pd.DataFrame, str, list[str]]:
    """The planted outcome of a synthetic world (``truth["mediation"]``) joined to the treatment,
    the mediators recomputed from all the world's interactions (``interactions`` [U, I], default
    ``ds.interactions``; checked against the file's) and the ``sensitive`` attributes other than
    the treatment's, as confounders. Returns (frame, treatment column, confounder columns); raises
    DataError when the file and the data disagree."""
    spec = truth["mediation"]
    path = Path(ds.location.directory) / spec["file"]
    if not path.is_file():
        raise DataError(f"the planted outcome file is missing ({spec['file']} is listed in truth.json)",
                        file=str(path), field="mediation.file")
    planted = pd.read_csv(path, sep="\t", dtype={"user_id": str})
    index = ds.nodes[ds.schema.user_type].index()
    missing = [u for u in planted["user_id"] if u not in index]
    if missing:
        raise DataError(f"{len(missing)} planted user(s) are not in the data set (first: {missing[0]})",
                        file=str(path), field="user_id")
    rows = np.array([index[u] for u in planted["user_id"]], dtype=np.int64)
    if interactions is None:
        inter = ds.interactions
        interactions = sp.csr_matrix((np.ones(len(inter.src)), (inter.src, inter.dst)),
                                     shape=(ds.num_users, ds.num_items))
    med = history_mediators(interactions)
    for m in spec["mediators"]:
        gap = float(np.max(np.abs(med[m][rows] - planted[m].to_numpy(np.float64))))
        if gap > 1e-9:
            raise DataError(f"mediator '{m}' from the loaded interactions differs from the planted one by {gap:.3g} "
                            "(interactions missing or added)", file=str(path), field=m)
    attr, treated = spec["treatment"], spec["treated"]
    labels = user_labels(ds, attr, rows)
    t_name = slug(f"{attr}_{treated}")
    df = pd.DataFrame({t_name: np.array([x is not None and str(x) == treated for x in labels], dtype=np.int64),
                       **{m: med[m][rows] for m in spec["mediators"]}, "outcome": planted["outcome"].to_numpy()})
    others = [a for a in sensitive if a != attr]
    cov = _confounders(ds, attr, others, rows)
    return pd.concat([df, cov], axis=1), t_name, list(cov.columns)


def planted_mediation(ds: Any, truth: dict[str, Any], *, sensitive: list[str], n_boot: int, n_simulations: int,
                      seed: int, interactions: sp.spmatrix | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """(the estimate on the planted outcome, :func:`planted_checks` rows) of a synthetic world
    (``interactions``: as in :func:`planted_frame`)."""
    from kgrec.audit.causal.mediation import mediation_effects

    df, t_name, conf = planted_frame(ds, truth, sensitive=sensitive, interactions=interactions)
    est = mediation_effects(df, treatment=t_name, mediators=truth["mediation"]["mediators"], outcome="outcome",
                            confounders=conf, n_boot=n_boot, n_simulations=n_simulations, seed=seed)
    return est, planted_checks(est, truth)


def all_interactions(run: Any) -> sp.csr_matrix:
    """A run's training, validation and test interactions together, binary [U, I] (``run.dataset``
    holds the training view only). Without held-out parts (a test double): the training matrix."""
    heldout = getattr(run, "heldout", None)
    parts = [sp.csr_matrix(run.ctx.train)] + ([] if heldout is None else [heldout.valid, heldout.test])
    x = sp.csr_matrix(sum(parts[1:], parts[0]))
    x.data[:] = 1.0
    return x


def planted_checks(est: Any, truth: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{planted, true, estimate, ci_low, ci_high, covered, relative_error, recovered}`` for
    the NDE, NIE and total effect: recovered = the CI covers the truth and the relative error is
    at most ``TRUTH_TOLERANCE``."""
    out = []
    for key, _ in PLANTED:
        true, e = truth["mediation"].get(key), getattr(est, key)
        if true is None:
            continue
        rel = abs(e.estimate - true) / abs(true) if true else float("inf")
        covered = e.covers(true)
        out.append({"planted": key, "true": float(true), "estimate": e.estimate, "ci_low": e.ci_low,
                    "ci_high": e.ci_high, "covered": covered, "relative_error": rel,
                    "recovered": bool(covered and rel <= TRUTH_TOLERANCE)})
    return out


def mediation_kwargs(plan: Any) -> dict[str, int]:
    """The bootstrap and refutation settings a plan gives the mediation analysis (module docstring)."""
    return {"n_boot": min(max(plan.n_boot, MIN_BOOT), MAX_BOOT), "n_simulations": max(2, plan.refutation_simulations),
            "seed": plan.seeds[0]}


def run_mediation(ctx: AuditContext) -> MediationResults:
    """The mediation analysis of every plan sensitive attribute, and the planted-effect check;
    its time in ``ctx.timings["mediation"]``."""
    from kgrec.audit.causal.mediation import mediation_effects

    t0 = time.perf_counter()
    plan = ctx.plan
    kw = mediation_kwargs(plan)
    res = MediationResults(k=plan.k)
    for attribute in plan.sensitive:
        try:
            df, group, groups, t_name, conf = mediation_frame(ctx, attribute)
        except (DataError, ValueError) as err:  # ValueError: an attribute without groups (numeric, no bins)
            res.attributes.append(AttributeMediation(attribute, None, {}, error=getattr(err, "message", str(err))))
            continue
        item = AttributeMediation(attribute, group, groups)
        try:
            item.estimate = mediation_effects(df, treatment=t_name, mediators=MEDIATORS, outcome="ndcg",
                                              confounders=conf, **kw)
        except DataError as err:
            item.error = err.message
        res.attributes.append(item)
    truth = ctx.truth
    if truth is not None and truth.get("mediation"):
        try:
            res.truth_estimate, res.truth = planted_mediation(ctx.run.dataset, truth, sensitive=list(plan.sensitive),
                                                              interactions=all_interactions(ctx.run), **kw)
        except DataError as err:
            res.truth_error = err.message
    ctx.timings["mediation"] = time.perf_counter() - t0
    return res


def _f(x: Any, nd: int = 4) -> Any:
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else round(float(x), nd)


def _ci(e: Any, nd: int = 4) -> str:
    return f"[{_f(e.ci_low, nd)}, {_f(e.ci_high, nd)}]"


def reading(item: AttributeMediation, k: int) -> str:
    """The plain-words reading of one attribute's decomposition."""
    e = item.estimate
    te, nie, nde, share = e.total_effect, e.natural_indirect_effect, e.natural_direct_effect, e.share_mediated
    text = (f"{item.attribute}: of the NDCG@{k} gap of {_f(te.estimate)} {_ci(te)} between group '{item.group}' "
            f"and the rest, {_f(nie.estimate)} {_ci(nie)} runs through activity and history composition; "
            f"{_f(nde.estimate)} {_ci(nde)} remains (the natural direct effect).")
    if te.ci_low <= 0.0 <= te.ci_high:
        text += (" The total gap's CI covers 0, so the share mediated is not meaningful here "
                 f"({_f(share.estimate, 2)}, CI {_ci(share, 2)}).")
    else:
        text += f" Share mediated: {_f(share.estimate, 2)} {_ci(share, 2)}."
    return text


ASSUMPTIONS = (
    "How to read this: the total gap is the difference in mean per-user NDCG@K between the group and everyone "
    "else, adjusted for the other sensitive attributes. The indirect part is what the gap would shrink by if the "
    "group had the rest's activity and history composition; the direct part is what would remain: a gap the "
    "histories do not explain, which points at the model (or at something else about the users that is not "
    "measured here). The split is an estimate under assumptions that the data cannot check: (1) nothing "
    "unmeasured drives both a user's group and their NDCG, or their group and their history; (2) nothing "
    "unmeasured drives both a user's history and their NDCG (for example a taste that makes a user both very "
    "active and easy to recommend for): this is the assumption most likely to fail, and if it does the split "
    "between direct and indirect is biased; (3) the effects are linear and the same at every activity level "
    "(two-stage linear regression). The intervals are 95% percentile bootstrap intervals over users; the "
    "refutations re-estimate with a permuted group (both effects must vanish), with a random extra confounder, "
    "and on random 80% subsets (each must stay inside its interval).")


def mediation_section(ctx: AuditContext, res: MediationResults) -> Section:
    """The report section (key ``mediation``): one table per attribute, the readings, the planted check."""
    k = res.k
    paras = [f"Is a disparity the model's doing? For each sensitive attribute, the gap in per-user NDCG@{k} "
             "between the group with the lowest mean NDCG (among groups of at least "
             f"{ctx.plan.min_group_size} test users) and everyone else is split by a mediation analysis (DoWhy, "
             "two-stage linear regression) into the part that runs through what the users gave the recommender: "
             f"{' and '.join(MEDIATOR_WORDS[m] for m in MEDIATORS)}, and the part that remains. Other sensitive "
             "attributes are adjusted for; other user features are not, since they may be consequences of the "
             "attribute.", ASSUMPTIONS]
    tables = []
    for item in res.attributes:
        if item.estimate is None:
            paras.append(f"{item.attribute}: not estimated ({item.error}).")
            continue
        e = item.estimate
        paras.append(reading(item, k))
        rows = []
        for key, label in (("total_effect", "total gap"), ("natural_indirect_effect", "natural indirect effect "
                                                                                       "(through the mediators)"),
                           ("natural_direct_effect", "natural direct effect (remains)"), ("share_mediated",
                                                                                           "share mediated")):
            iv = getattr(e, key)
            refs = e.refutations.get(key, [])
            rows.append([label, _f(iv.estimate), _ci(iv), f"{sum(r.passed for r in refs)}/{len(refs)}" if refs
                         else "–"])
        for m, iv in e.indirect_by_mediator.items():
            rows.append([f"  indirect through {m}", _f(iv.estimate), _ci(iv), "–"])
        sizes = ", ".join(f"{g}: {d['n']} users, mean {_f(d['mean'])}" for g, d in item.groups.items())
        tables.append(Table(["effect", "estimate", f"{round(100 * e.ci_level)}% CI", "refutations passed"], rows,
                            f"{item.attribute}: group '{item.group}' (1) against the rest (0), n = {e.n} "
                            f"({e.n_treated} in the group); outcome per-user NDCG@{k}; confounders: "
                            f"{', '.join(e.confounders) or 'none'}; {e.n_boot} bootstrap resamples. Groups: {sizes}"))
    refs = [[item.attribute, key.replace("_", " "), r.name, "PASS" if r.passed else "FAIL", r.detail]
            for item in res.attributes if item.estimate is not None
            for key, rs in item.estimate.refutations.items() for r in rs]
    if refs:
        tables.append(Table(["attribute", "effect", "refuter", "result", "detail"], refs,
                            "Refutations of the direct and indirect effects"))
    if res.truth:
        tables.append(Table(["planted effect", "true", "estimate", "95% CI", "covered", "relative error",
                             "recovered"],
                            [[label, _f(t["true"]), _f(t["estimate"]), f"[{_f(t['ci_low'])}, {_f(t['ci_high'])}]",
                              "yes" if t["covered"] else "no", _f(t["relative_error"], 3),
                              "yes" if t["recovered"] else "no"]
                             for t in res.truth for key, label in PLANTED if key == t["planted"]],
                            "Planted effect recovered: the synthetic world's planted outcome (truth.json mediation; "
                            "semi-synthetic, since model NDCG has no known truth) against the same estimator; "
                            f"recovered = the CI covers the truth and the relative error is at most "
                            f"{TRUTH_TOLERANCE:.0%}"))
        paras.append("Validation: this data set is a synthetic world with a planted per-user outcome whose direct "
                     "effect and slopes on the same mediators are known; the same analysis run on that outcome "
                     f"recovers {sum(t['recovered'] for t in res.truth)} of {len(res.truth)} planted effects.")
    elif res.truth_error:
        paras.append(f"Planted-effect check not run: {res.truth_error}")
    return Section("mediation", "Mediation of user-side gaps", paras, tables, data=res.to_dict())

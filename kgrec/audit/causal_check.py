"""The causal section: the plan's questions through DoWhy (model → identify → estimate →
refute), a counterfactual flip of sensitive attributes, off-policy value on the Open Bandit
sample, and, where the data set has planted effects, their recovery."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgrec.audit.context import AuditContext
from kgrec.audit.frames import history_frame, item_frame, slug, user_frame

TRUTH_TOLERANCE = 0.15  # relative error allowed when checking a planted effect


@dataclass
class FlipCheck:
    """The counterfactual flip of one sensitive attribute: top-K overlap and score change, and
    whether the model declares the attribute among its inputs (``model_uses_attribute``)."""

    attribute: str
    users: int
    mean_jaccard: float
    max_abs_score_change: float
    model_uses_attribute: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CausalResults:
    estimates: list[Any] = field(default_factory=list)  # kgrec.audit.causal.CausalEstimate
    flips: list[FlipCheck] = field(default_factory=list)
    off_policy: Any = None  # kgrec.audit.obd.OBDCheck
    off_policy_error: str | None = None
    served: Any = None  # kgrec.audit.served.ServedOPE: this model on the served traffic
    truth: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def refutations(self) -> tuple[int, int]:
        tests = [r for e in self.estimates for r in e.refutations]
        return sum(r.passed for r in tests), len(tests)


def _estimate(df, *, question: str, treatment: str, outcome: str, ctx: AuditContext, method: str):
    from kgrec.audit.causal import causal_graph, estimate_effect

    confounders = [c for c in df.columns if c not in (treatment, outcome) and df[c].std() > 0]
    graph = causal_graph(treatment=treatment, outcome=outcome, confounders=confounders)
    return estimate_effect(df[[treatment, outcome, *confounders]], question=question, treatment=treatment,
                           outcome=outcome, graph=graph, method=method,
                           n_simulations=ctx.plan.refutation_simulations, seed=ctx.plan.seeds[0])


def flip_check(ctx: AuditContext, attribute: str, treated: str) -> FlipCheck:
    """Swap ``treated`` with the attribute's most common other value for every user, rebuild
    the model on the flipped inputs with the trained weights, and compare top-K lists
    (Jaccard) and scores. A model that does not read the attribute must give Jaccard 1.
    Whether it reads it is what the model declares (``Explainable.sensitive_inputs``; a model
    without the explanation protocol declares no inputs and is taken to read none)."""
    import copy

    import torch

    from kgrec.data.view import TrainingView
    from kgrec.models.base import Explainable, ModelContext, create_model
    from kgrec.models.ranking import rank
    from kgrec.rundir.load import load_state

    run = ctx.run
    ds = copy.copy(run.view.dataset)
    user_type = ds.schema.user_type
    node = copy.copy(ds.nodes[user_type])
    codes = node.features[attribute]
    vocab = node.vocab[attribute]
    t = vocab.index(treated)
    counts = np.bincount(codes[codes >= 0], minlength=len(vocab))
    counts[t] = -1
    other = int(np.argmax(counts))
    flipped = codes.copy()
    flipped[codes == t], flipped[codes == other] = other, t
    node.features = {**node.features, attribute: flipped}
    ds.nodes = {**ds.nodes, user_type: node}
    fctx = ModelContext(TrainingView(ds, run.view.train), item_text=run.ctx.item_text, user_text=run.ctx.user_text)
    model = create_model(run.config.model.name, fctx, run.config.model.params)
    load_state(model, run.model.state_dict())  # closed-form models (MostPop, EASE) hold fit-sized buffers
    model.eval()
    top = rank(model, ctx.users, ctx.plan.k, run.heldout.exclusion(run.view, "test"))
    inter = np.array([len(set(a) & set(b)) for a, b in zip(ctx.topk.tolist(), top.tolist())])
    jaccard = inter / (2 * ctx.plan.k - inter)
    with torch.no_grad():
        sample = torch.from_numpy(ctx.users[:256])
        diff = (model.full_scores(sample) - run.model.full_scores(sample)).abs().max()
    uses = isinstance(run.model, Explainable) and attribute in run.model.sensitive_inputs
    detail = ("the model reads this attribute" if uses else
              "the model is not given sensitive attributes (use_sensitive=false); the flip measures that")
    return FlipCheck(attribute, len(ctx.users), float(jaccard.mean()), float(diff), uses, detail)


def truth_checks(ctx: AuditContext) -> list[dict[str, Any]]:
    """Planted sensitive-attribute effects (synthetic worlds): the same estimator on the
    observed interactions, against ``truth.json``."""
    truth = ctx.truth
    out: list[dict[str, Any]] = []
    if truth is None:
        return out
    for q in ctx.plan.causal:
        if q.kind != "sensitive" or q.outcome != "genre_share" or q.genre != truth.get("target_genre"):
            continue
        df, label = history_frame(ctx.run.dataset, attribute=q.attribute, treated=q.treated, genre=q.genre)
        est = _estimate(df, question=f"{q.name} (data, planted)", treatment="t", outcome="outcome", ctx=ctx,
                        method=q.method)
        for key in ("sensitive_effect_on_genre_share", "sensitive_effect_on_genre_share_global"):
            true = float(truth[key])
            rel = abs(est.estimate - true) / abs(true)
            out.append({"question": q.name, "planted": key, "true": true, "estimate": est.estimate,
                        "ci_low": est.ci_low, "ci_high": est.ci_high, "relative_error": rel,
                        "covered": bool(est.ci_low <= true <= est.ci_high),
                        "recovered": bool(est.ci_low <= true <= est.ci_high and rel <= TRUTH_TOLERANCE)})
        out[-2]["estimate_detail"] = est.to_dict()
    return out


def run_causal(ctx: AuditContext) -> CausalResults:
    run, res = ctx.run, CausalResults()
    for q in ctx.plan.causal:
        t0 = time.perf_counter()
        if q.kind == "popularity":
            from kgrec.models.ranking import rank

            # every user's top-K; the test users' lists are the context's (each user ranked once)
            top_all = np.empty((run.ctx.num_users, ctx.topk.shape[1]), dtype=np.int64)
            top_all[ctx.users] = ctx.topk
            rest = np.setdiff1d(np.arange(run.ctx.num_users), ctx.users)
            if len(rest):
                top_all[rest] = rank(run.model, rest, ctx.plan.k, run.heldout.exclusion(run.view, "test"))
            df = item_frame(run.dataset, run.ctx.train, top_all, run.ctx.item_text)
            res.estimates.append(_estimate(df, question=q.name, treatment="log_popularity", outcome="log_exposure",
                                           ctx=ctx, method=q.method))
        elif q.kind == "sensitive":
            df, label = user_frame(run.dataset, run.ctx.train, ctx.topk, ctx.users, attribute=q.attribute,
                                   treated=q.treated, outcome=q.outcome, genre=q.genre)
            t_name = slug(f"{q.attribute}_{label}")
            y_name = slug(f"top{ctx.plan.k}_{q.genre}_share" if q.outcome == "genre_share" else
                           f"top{ctx.plan.k}_mean_log_popularity")
            df = df.rename(columns={"t": t_name, "outcome": y_name, "history": f"history_{y_name.split('_', 1)[1]}"})
            res.estimates.append(_estimate(df, question=q.name, treatment=t_name, outcome=y_name, ctx=ctx,
                                           method=q.method))
            spec = run.dataset.schema.nodes[run.dataset.schema.user_type].features[q.attribute]
            if spec.type == "categorical":
                res.flips.append(flip_check(ctx, q.attribute, label))
        elif q.kind == "off_policy":
            try:
                from kgrec.audit.obd import uniform_from_bts

                res.off_policy = uniform_from_bts(seed=ctx.plan.seeds[0])
            except Exception as err:  # noqa: BLE001 - a missing data set must not stop the audit
                res.off_policy_error = f"{type(err).__name__}: {err}"
        ctx.timings[f"causal:{q.name}"] = time.perf_counter() - t0
    if ctx.exposure_log is not None:
        from kgrec.audit.served import served_value

        t0 = time.perf_counter()
        res.served = served_value(ctx.exposure_log, ctx.run, n_boot=ctx.plan.n_boot, seed=ctx.plan.seeds[0])
        ctx.timings["causal:served_log"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    res.truth = truth_checks(ctx)
    ctx.timings["causal:truth"] = time.perf_counter() - t0
    return res

"""The reviewer-facing frame of the report: summary, model card, datasheet and the
reproducibility appendix."""

from __future__ import annotations

import json
from typing import Any

from kgrec.audit.context import AuditContext
from kgrec.audit.report.model import Gate, Section, Table


def summary_section(ctx: AuditContext, gates: list[Gate]) -> Section:
    run = ctx.run
    failed = [g for g in gates if not g.passed]
    verdict = (f"All {len(gates)} gates pass." if not failed else
               f"{len(failed)} of {len(gates)} gates FAIL: " + "; ".join(g.name for g in failed) + ".")
    k = ctx.plan.k
    paragraphs = [f"Audit of run {run.path.name}: model '{run.config.model.name}' trained on "
                  f"'{run.dataset.schema.name}' (seed {run.config.seed}), plan '{ctx.plan.name}' ({ctx.plan.path}).",
                  verdict,
                  f"Test accuracy at K={k} over {len(ctx.users)} users: NDCG {ctx.metrics.get(f'ndcg@{k}', float('nan')):.4f}, "
                  f"Recall {ctx.metrics.get(f'recall@{k}', float('nan')):.4f}."]
    return Section("summary", "Summary", paragraphs, [], [], [],
                   {"passed": not failed, "n_gates": len(gates), "failed": [g.name for g in failed]})


def model_card(ctx: AuditContext) -> Section:
    run = ctx.run
    info = run.record
    metric_rows = [[name, round(value, 4)] for name, value in sorted(ctx.metrics.items())
                   if isinstance(value, float)]
    paragraphs = [
        "Intended use: ranking items for users of the data set it was trained on, for research and for audit. "
        "Not intended for decisions about people, or for data from another population without re-evaluation.",
        f"Model: '{run.config.model.name}' with parameters {json.dumps(run.config.model.params) or '{}'}; objective "
        f"'{run.config.train.objective}'; best validation {run.config.train.metric} "
        f"{info.get('valid_' + run.config.train.metric, float('nan')):.4f} at epoch {info.get('best_epoch')} "
        f"({info.get('train_seconds', 0.0):.0f} s of training).",
        _training_stop(info),
        f"Re-ranking stage after the model: {run.config.rerank.label()} (the run's rerank section; the audited lists "
        "are the model's followed by this stage).",
        f"Data: {run.dataset.schema.name} — {run.dataset.schema.description}",
        "Limitations: metrics come from one random split of historical interactions (offline evaluation, "
        "popularity-biased logs); fairness is measured only over the attributes the data set records; causal "
        "estimates assume the stated graphs (no unobserved confounding beyond the sensitivity analysis); "
        "explanations attribute the model's score, not the user's true reasons.",
    ]
    return Section("model_card", "Model card", paragraphs,
                   [Table(["test metric", "value"], metric_rows, f"Test metrics at K={ctx.plan.k}")], [], [],
                   {"model": run.config.model.name, "params": run.config.model.params, "metrics": ctx.metrics,
                    "rerank": run.config.rerank.label(),
                    "train": {k: v for k, v in info.items() if k != "history"}})


def _training_stop(info: dict[str, Any]) -> str:
    """Why training stopped (train.json's stop_reason), in words; a cap is said to be one."""
    from kgrec.rundir.layout import CAPPED_STOPS, STOP_REASONS

    reason = info.get("stop_reason")
    words = STOP_REASONS.get(reason, reason or "not recorded")
    done = (f" after {info['epochs_run']} epochs" if info.get("epochs_run") is not None else
            f" after {info['steps_run']} steps" if info.get("steps_run") is not None else "")
    if reason in CAPPED_STOPS:
        return (f"Training was capped: it stopped because {words}{done}, before early stopping ended it. The model "
                "may be under-trained, and a longer training could change the results below.")
    return f"Training stopped: {words}{done}; it was not capped."


def datasheet(ctx: AuditContext) -> Section:
    run = ctx.run
    schema = run.dataset.schema
    data = run.data  # data.json: what was loaded at training time, counted over all interactions
    warnings = data.get("warnings", [])
    split = run.split
    counts = {k: data.get(k) for k in ("nodes", "edges", "interactions", "kg_triples", "linked_item_coverage")}
    paragraphs = [f"Source: {schema.description}", f"Licence: {schema.license or 'not stated'}",
                  f"Preprocessing: all interactions as implicit feedback; split '{split.config.method}' "
                  f"{split.config.ratios} (train {len(split.train)}, valid {len(split.valid)}, test {len(split.test)}).",
                  f"Rows dropped, merged or set to missing while loading: {sum(w['count'] for w in warnings)} "
                  f"in {len(warnings)} cause(s), listed below." if warnings else
                  "No row was dropped, merged or set to missing while loading."]
    tables = [Table(["file", "sha256"], [[f, h] for f, h in data.get("sha256", {}).items()], "Files and hashes"),
              Table(["file", "line", "field", "rows", "action", "reason"],
                    [[w["file"].split("/")[-1], w["line"], w["field"], w["count"], w["action"], w["reason"]]
                     for w in warnings], "Load warnings (first line of each cause)")]
    return Section("datasheet", "Datasheet", paragraphs, tables, [], [],
                   {"schema": schema.name, "license": schema.license, "sha256": data.get("sha256", {}),
                    "warnings": warnings, "summary": _jsonable(counts)})


def reproducibility(ctx: AuditContext, seconds: float) -> Section:
    run = ctx.run
    versions = json.loads((run.path / "versions.json").read_text())
    config = (run.path / "config.yaml").read_text()
    paragraphs = [f"Run directory: {run.path}", f"Seeds: training {run.config.seed}, audit {ctx.plan.seeds}",
                  f"Audit wall time: {seconds:.1f} s"]
    return Section("reproducibility", "Reproducibility appendix", paragraphs,
                   [Table(["library", "version"], [[k, str(v)] for k, v in versions.items()], "Library versions"),
                    Table(["step", "seconds"], [[k, round(v, 2)] for k, v in ctx.timings.items()], "Timings")],
                   [], [], {"versions": versions, "config": run.config.to_dict(), "plan": ctx.plan.to_dict(),
                            "timings": ctx.timings, "seconds": seconds},
                   blocks=[("Resolved run configuration (config.yaml)", config)])


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))

"""Evaluate a run directory and write ``metrics.json``, ``metrics.md``, ``per_user_SPLIT.json``
and ``topk_SPLIT.npy`` (the ranking, reused by the audit) into it, under the run's lock.

The run's own ranking is its model followed by its configured re-ranking stage (``rerank``
section). Another ranking (a non-profiling one, or another re-ranking setting) is written to
``RUN_DIR/eval/TAG/`` instead, so the files the audit reuses always describe the run as
configured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.atomic import DirLock
from kgrec.eval.evaluator import evaluate
from kgrec.rundir.load import load_run
from kgrec.rundir.write import write_json


def markdown_table(metrics: dict[str, float], title: str) -> str:
    """Rows = metric names, columns = cutoffs (``ndcg@10`` → row ndcg, column 10)."""
    rows: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        name, _, k = key.partition("@")
        rows.setdefault(name, {})[k] = value
    ks = sorted({k for r in rows.values() for k in r}, key=lambda k: int(k) if k.isdigit() else 0)
    lines = [f"### {title}", "", "| metric | " + " | ".join(f"@{k}" for k in ks) + " |",
             "|---|" + "---|" * len(ks)]
    for name, vals in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{vals[k]:.4f}" if k in vals else "" for k in ks) + " |")
    return "\n".join(lines)


def ranking_of(run: Any, ranking: str = "model", rerank: dict[str, Any] | None = None) -> tuple[Any, Any, str]:
    """(model, re-ranker or None, tag) for ``ranking`` (``model`` or one of
    :data:`kgrec.models.nonprofiling.NON_PROFILING`) with the run's ``rerank`` section updated by
    ``rerank`` (``{"rerank": {...}}`` from ``--set``; other keys are a schema error). The tag is
    ``""`` for the run as configured."""
    import dataclasses

    from kgrec.errors import SchemaError
    from kgrec.rundir.config import RerankSection, load_config

    over = dict(rerank or {})
    extra = [k for k in over if k != "rerank"]
    if extra:
        raise SchemaError(f"only rerank.* keys can be set when evaluating, got '{extra[0]}'", field="--set")
    section = run.config.rerank
    if over:
        merged = load_config(overrides={"rerank": {**dataclasses.asdict(section), **over["rerank"]}}).rerank
        section = RerankSection(**dataclasses.asdict(merged))
    if ranking == "model":
        tag = "" if section == run.config.rerank else (
            f"rerank-{section.method}-{section.strength:g}-{section.pool}-{'+'.join(section.groupings)}"
            f"-{section.head_share:g}")
        return run.model, section.build(run.dataset, run.ctx.item_counts), tag
    from kgrec.models.nonprofiling import non_profiling_model

    if over and section.active:  # the run's own stage is left out; an explicit one is an error
        raise SchemaError("a non-profiling ranking takes no re-ranking stage (it would profile the user)",
                          field="--set")
    return non_profiling_model(ranking, run.ctx), None, f"nonprofiling-{ranking}"


def evaluate_run(run_dir: str | Path, split: str = "test", ranking: str = "model",
                 rerank: dict[str, Any] | None = None) -> tuple[Path, str]:
    """Evaluate ``run_dir`` (see the module docstring); returns (metrics.json path, markdown)."""
    run = load_run(run_dir)
    model, reranker, tag = ranking_of(run, ranking, rerank)
    result = evaluate(model, run.ctx, run.heldout, split, tuple(run.config.eval.ks), reranker=reranker)
    what = run.config.model.name if ranking == "model" else f"non-profiling '{ranking}'"
    if reranker is not None:
        what += (f" + calibrated re-ranking (strength {reranker.strength:g}, pool {reranker.pool}, groupings "
                 f"{', '.join(g.name for g in reranker.groupings)})")
    with DirLock(Path(run_dir), "run directory"):
        out = Path(run_dir) / "eval" / tag if tag else Path(run_dir)
        out.mkdir(parents=True, exist_ok=True)
        return _write(run, out, split, result, what)


def _write(run: Any, run_dir: Path, split: str, result: dict[str, Any], what: str) -> tuple[Path, str]:
    path = run_dir / "metrics.json"
    data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    data[split] = result["metrics"]
    data.setdefault("slices", {})[split] = result["slices"]
    data[f"{split}_users"] = result["users"]
    for key in ("train_seconds", "seconds_to_best", "seconds_per_epoch", "best_epoch"):
        data[key] = run.record.get(key)
    data["model"] = run.config.model.name
    data["ranking"] = what
    import torch

    data["torch_threads"] = torch.get_num_threads()  # this evaluation's, not the training run's
    write_json(path, data)
    write_json(run_dir / f"per_user_{split}.json", result["per_user"])
    tmp = run_dir / f"topk_{split}.tmp.npy"
    np.save(tmp, result["topk"].astype(np.int64), allow_pickle=False)
    tmp.replace(run_dir / f"topk_{split}.npy")
    parts = [markdown_table(result["metrics"], f"{what} on {run.dataset.schema.name} ({split}, "
                                                f"{result['users']} users)")]
    slice_rows = ["", f"### slices ({split})", "", "| slice | users | ndcg@10 | recall@20 |", "|---|---|---|---|"]
    for name, sl in result["slices"].items():
        m = sl["metrics"]
        slice_rows.append(f"| {name} | {sl['users']} | {m.get('ndcg@10', float('nan')):.4f} | "
                          f"{m.get('recall@20', float('nan')):.4f} |")
    table = "\n".join(parts + slice_rows)
    (run_dir / "metrics.md").write_text(table + "\n")
    return path, table

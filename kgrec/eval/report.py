"""Evaluate a run directory and write ``metrics.json``, ``metrics.md``, ``per_user_SPLIT.json``
and ``topk_SPLIT.npy`` (the ranking, reused by the audit) into it, under the run's lock."""

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


def evaluate_run(run_dir: str | Path, split: str = "test") -> tuple[Path, str]:
    run = load_run(run_dir)
    result = evaluate(run.model, run.ctx, run.heldout, split, tuple(run.config.eval.ks))
    with DirLock(Path(run_dir), "run directory"):
        return _write(run, Path(run_dir), split, result)


def _write(run: Any, run_dir: Path, split: str, result: dict[str, Any]) -> tuple[Path, str]:
    path = run_dir / "metrics.json"
    data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    data[split] = result["metrics"]
    data.setdefault("slices", {})[split] = result["slices"]
    data[f"{split}_users"] = result["users"]
    for key in ("train_seconds", "seconds_to_best", "seconds_per_epoch", "best_epoch"):
        data[key] = run.record.get(key)
    data["model"] = run.config.model.name
    import torch

    data["torch_threads"] = torch.get_num_threads()  # this evaluation's, not the training run's
    write_json(path, data)
    write_json(run_dir / f"per_user_{split}.json", result["per_user"])
    tmp = run_dir / f"topk_{split}.tmp.npy"
    np.save(tmp, result["topk"].astype(np.int64), allow_pickle=False)
    tmp.replace(run_dir / f"topk_{split}.npy")
    parts = [markdown_table(result["metrics"], f"{run.config.model.name} on {run.dataset.schema.name} ({split}, "
                                                f"{result['users']} users)")]
    slice_rows = ["", f"### slices ({split})", "", "| slice | users | ndcg@10 | recall@20 |", "|---|---|---|---|"]
    for name, sl in result["slices"].items():
        m = sl["metrics"]
        slice_rows.append(f"| {name} | {sl['users']} | {m.get('ndcg@10', float('nan')):.4f} | "
                          f"{m.get('recall@20', float('nan')):.4f} |")
    table = "\n".join(parts + slice_rows)
    (run_dir / "metrics.md").write_text(table + "\n")
    return path, table

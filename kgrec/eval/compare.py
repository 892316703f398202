"""Compare evaluated runs: mean ± 95% CI over seeds, and paired per-user tests.

Runs of one model with different seeds form a group; ``compare`` summarises each metric of
the group by :func:`~kgrec.metrics.stats.mean_ci`, and for each seed pairs a candidate run with
the baseline run of the same split (same ``split.npz``) to test the per-user difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.errors import DataError
from kgrec.metrics.stats import mean_ci, paired_test


def _load(run: Path, split: str) -> dict[str, Any]:
    metrics = run / "metrics.json"
    if not metrics.is_file() or split not in json.loads(metrics.read_text()):
        raise DataError(f"no {split} metrics; run `kgrec evaluate {run}` first", file=str(metrics), field=split)
    per_user = json.loads((run / f"per_user_{split}.json").read_text())
    with np.load(run / "split.npz") as z:
        split_key = (z["train"].tobytes(), z["test"].tobytes())
    return {"metrics": json.loads(metrics.read_text())[split], "per_user": per_user, "split": hash(split_key)}


def compare(runs: list[str | Path], baseline: list[str | Path], *, split: str = "test",
            metrics: tuple[str, ...] = ("ndcg@10", "recall@20")) -> dict[str, Any]:
    """Summaries of both groups and paired tests of ``runs`` against ``baseline``."""
    cand = [_load(Path(r), split) for r in runs]
    base = [_load(Path(r), split) for r in baseline]
    out: dict[str, Any] = {"n_runs": len(cand), "n_baseline": len(base), "summary": {}, "paired": {}}
    for m in metrics:
        out["summary"][m] = {"runs": mean_ci([c["metrics"][m] for c in cand]),
                             "baseline": mean_ci([b["metrics"][m] for b in base])}
    for m in metrics:
        tests = []
        for c in cand:
            match = [b for b in base if b["split"] == c["split"]]
            if not match:
                continue
            if m not in c["per_user"]:
                raise DataError(f"per-user values of {m} were not saved", field=m)
            tests.append(paired_test(c["per_user"][m], match[0]["per_user"][m]))
        if not tests:
            raise DataError("no baseline run shares a split with the compared runs (train with the same seeds)",
                            field="--baseline")
        out["paired"][m] = tests
    return out


def format_comparison(result: dict[str, Any]) -> str:
    lines = ["| metric | runs (mean ± 95% CI) | baseline (mean ± 95% CI) | paired Δ per seed (p) |",
             "|---|---|---|---|"]
    for m, s in result["summary"].items():
        def fmt(x: tuple[float, float, float]) -> str:
            mean, lo, hi = x
            return f"{mean:.4f}" if np.isnan(lo) else f"{mean:.4f} ± {(hi - lo) / 2:.4f}"
        paired = "; ".join(f"{t['mean_diff']:+.4f} (p={t['t_pvalue']:.3g})" for t in result["paired"][m])
        lines.append(f"| {m} | {fmt(s['runs'])} | {fmt(s['baseline'])} | {paired} |")
    return "\n".join(lines)

"""Data-parallel training (``kgrec train --nproc N``) against one process; prints one Markdown table.

    .venv/bin/python benchmarks/ddp.py                                   # lightgcn on movielens-100k, 1 and 2 ranks
    .venv/bin/python benchmarks/ddp.py --models bprmf lightgcn --nproc 1 2 4
    .venv/bin/python benchmarks/ddp.py --set train.max_seconds=120       # cap each run's training time

Each run is ``kgrec train ... --nproc N --evaluate`` in its own process, with the same seed and
global batch (``train.batch_size``), so the ranks split every batch of the one-process run;
one torch thread per rank. Seconds per epoch include rank 0's validation (the other ranks
wait for its stop decision). Runs land in runs/bench-ddp/ (git-ignored). Nothing here is
asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="movielens-100k")
    ap.add_argument("--models", nargs="+", default=["lightgcn"])
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--out", default="runs/bench-ddp")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every run, e.g. train.max_seconds=240 (repeatable)")
    args = ap.parse_args()
    sets = [x for kv in args.set for x in ("--set", kv)]
    rows = []
    for model in args.models:
        base = None
        for n in args.nproc:
            out = Path(args.out) / f"{Path(args.data).stem}-{model}-n{n}"
            cmd = [sys.executable, "-m", "kgrec", "--threads", "1", "train", "--data", args.data, "--model", model,
                   "--seed", str(args.seed), *sets, "-o", str(out), "--overwrite", "--no-progress", "--evaluate",
                   "--nproc", str(n)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                print(f"{model} x{n}: exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                continue
            rec = json.loads((out / "train.json").read_text())
            test = json.loads((out / "metrics.json").read_text())["test"]
            ndcg = test["ndcg@10"]
            base = ndcg if base is None else base
            digests = rec.get("distributed", {}).get("param_sha256", [])
            rows.append((model, rec.get("world_size", n), rec["epochs_run"], rec["stop_reason"],
                         rec["seconds_per_epoch"], wall, ndcg, test["recall@20"], ndcg - base,
                         "yes" if len(set(digests)) <= 1 else "NO"))
            print(f"{model} x{n}: done in {wall:.0f} s", file=sys.stderr)
    print(f"\n{args.data}, seed {args.seed}, one torch thread per rank"
          + (f", {' '.join(args.set)}" if args.set else "") + "\n")
    print("| model | world size | epochs | stop | s / epoch | wall s (incl. launch, eval) | test NDCG@10 | "
          "test Recall@20 | Δ NDCG@10 vs first | ranks' params equal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m, w, e, stop, spe, wall, ndcg, rec20, d, same in rows:
        print(f"| {m} | {w} | {e} | {stop} | {spe:.3f} | {wall:.0f} | {ndcg:.4f} | {rec20:.4f} | {d:+.4f} | {same} |")


if __name__ == "__main__":
    main()

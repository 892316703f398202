"""Continual training (``kgrec update``) on a temporal protocol; prints one Markdown table.

    .venv/bin/python benchmarks/update.py                          # movielens-100k, kgrec, seed 2020
    .venv/bin/python benchmarks/update.py --model lightgcn --steps 64 200
    .venv/bin/python benchmarks/update.py --new-fractions 0 0.5    # uniform replay against half-new batches

Protocol: one global time cut (``data.split.method=temporal``, 80/10/10): the parent is
trained on the first 80% of time (early-stopped on the next 10%, its validation part), then

1. **stale**: the parent as it is;
2. **updated**: ``kgrec update`` of the parent with the next 10% (the parent's validation rows,
   written in the schema's interaction format), for each ``--steps``: the rows move to train,
   the model is warm-started and trained for that many steps (no validation is left, so no
   early stopping, and the parent's post-training choices are kept);
3. **retrained (fresh init)**: the same updated split (train = the first 90% of time) trained from a fresh
   initialisation (``kgrec update --no-warm-start``) for the parent's own budget: the steps to
   its best validation epoch (``best_epoch × steps per epoch``), which is what early stopping
   chose when it still had a validation part. No validation is left here either, so kgrec's
   post-training terms (blend, recency and prior weights, the ELSA factors) are the parent's
   in both the update and the retrain: the two rows differ in the GNN's start and budget only;
4. **retrained (full pipeline)**: ``kgrec train`` from scratch on the same data with the cut at
   81/9/10 (the same last 10% as test, checked): trained on the first 81% of time, early-stopped
   and post-trained (ELSA refitted, blend, recency and prior weights chosen) on the newest 9%;

all evaluated on the same last 10% of time (the same test rows and users, the same
masked items: the parent masks train and validation, the others train). Wall seconds: the
parent's training (``train_run``, data loading to written run) and each update or retrain
(loading the parent to written run). Runs land in runs/bench-update/ (git-ignored). Nothing
here is asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def evaluate(run: Path) -> dict:
    from kgrec.eval.report import evaluate_run

    path, _ = evaluate_run(run, split="test")
    metrics = json.loads(path.read_text())
    metrics["per_user"] = json.loads((run / "per_user_test.json").read_text())
    return metrics


def versus(metrics: dict, stale: dict) -> str:
    """Paired per-user difference in NDCG@10 against the stale model, with its 95% CI."""
    from kgrec.metrics.stats import paired_test

    a, b = metrics["per_user"], stale["per_user"]
    if a["users"] != b["users"]:
        return "other users"
    if a is b:
        return ""
    t = paired_test(a["ndcg@10"], b["ndcg@10"])
    return f"{t['mean_diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}], p={t['t_pvalue']:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="movielens-100k")
    ap.add_argument("--data-dir")
    ap.add_argument("--model", default="kgrec")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--steps", type=int, nargs="+", default=[200], help="update budgets to measure")
    ap.add_argument("--new-fractions", type=float, nargs="+", default=[0.5],
                    help="share of each update batch drawn from the new rows")
    ap.add_argument("--out", default="runs/bench-update")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    args = ap.parse_args()

    from kgrec.rundir.config import load_config, merge, parse_set
    from kgrec.rundir.load import load_run_data
    from kgrec.runtime import configure_threads
    from kgrec.train.run import train_run
    from kgrec.update.additions import write_interactions
    from kgrec.update.continual import update_run

    configure_threads(1)
    out = Path(args.out) / f"{Path(args.data).stem}-{args.model}-s{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    overrides = merge({"data": {"name": args.data, "split": {"method": "temporal", "ratios": [0.8, 0.1, 0.1]}},
                       "model": {"name": args.model}, "seed": args.seed}, parse_set(args.set))
    if args.data_dir:
        overrides["data"]["data_dir"] = args.data_dir
    cfg = load_config(None, overrides)

    rows: list[tuple[str, dict, float, str]] = []
    t0 = time.perf_counter()
    parent = train_run(cfg, out / "parent", overwrite=True, progress=False)
    parent_seconds = time.perf_counter() - t0
    record = json.loads((parent / "train.json").read_text())
    rows.append(("stale (trained on 80%)", evaluate(parent), parent_seconds,
                 f"full training, {record['epochs_run']} epoch(s), best {record['best_epoch']}"))
    print(f"parent: {parent_seconds:.1f} s, best epoch {record['best_epoch']} of {record['epochs_run']}",
          file=sys.stderr)

    rd = load_run_data(parent)
    update_file = write_interactions(out / "next-10pct.inter", rd.dataset, rd.split.valid)
    print(f"update file: {len(rd.split.valid):,} rows ({update_file})", file=sys.stderr)
    for fraction in args.new_fractions:
        for steps in args.steps:
            name = f"updated-{steps}-f{fraction:g}"
            t0 = time.perf_counter()
            run = update_run(parent, out / name, interactions=update_file, steps=steps, overwrite=True,
                             progress=False, new_fraction=fraction)
            seconds = time.perf_counter() - t0
            rows.append((f"updated (+10%, {steps} steps, new share {fraction:g})", evaluate(run), seconds,
                         "warm start, bounded steps"))
            print(f"{name}: {seconds:.1f} s", file=sys.stderr)

    from kgrec.data.sampling import PairSampler
    from kgrec.data.view import views

    parent_train = views(rd.dataset, rd.split)[0].train  # the parent's training view, as load_run builds it
    epoch_steps = len(PairSampler(parent_train, batch_size=cfg.train.batch_size, n_neg=cfg.train.n_neg,
                                  max_steps=cfg.train.max_steps_per_epoch))
    budget = max(1, int(record["best_epoch"] or 1)) * epoch_steps
    t0 = time.perf_counter()
    run = update_run(parent, out / "retrained", interactions=update_file, steps=budget, overwrite=True,
                     progress=False, new_fraction=0.0, warm=False)
    seconds = time.perf_counter() - t0
    rows.append((f"retrained (90%, fresh init, {budget} steps)", evaluate(run), seconds,
                 "fresh init, parent's budget"))

    # the full pipeline again, on the same data up to the last 10%: the newest 9% validate
    full_cfg = load_config(None, merge(overrides, {"data": {"split": {"ratios": [0.81, 0.09, 0.1]}}}))
    t0 = time.perf_counter()
    full = train_run(full_cfg, out / "retrained-full", overwrite=True, progress=False)
    seconds = time.perf_counter() - t0
    same_test = set(load_run_data(full).split.test.tolist()) == set(rd.split.test.tolist())
    full_record = json.loads((full / "train.json").read_text())
    rows.append(("retrained (full pipeline: train 81%, validate 9%)", evaluate(full), seconds,
                 f"full training, {full_record['epochs_run']} epoch(s), best {full_record['best_epoch']}"
                 + ("" if same_test else "; WARNING: other test rows")))

    print(f"\n### {args.model} on {args.data}: temporal 80/10/10, update with the next 10%, test on the last 10% "
          f"(seed {args.seed}, {rows[0][1]['test_users']} test users)\n")
    print("| model | NDCG@10 | Recall@20 | NDCG@10 vs stale (paired, 95% CI) | wall s | what the time covers |")
    print("|---|---|---|---|---|---|")
    for name, metrics, seconds, note in rows:
        m = metrics["test"]
        print(f"| {name} | {m['ndcg@10']:.4f} | {m['recall@20']:.4f} | {versus(metrics, rows[0][1])} | "
              f"{seconds:.1f} | {note} |")


if __name__ == "__main__":
    main()

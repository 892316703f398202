"""Every model on one data set with the RecBole protocol; prints one Markdown table.

    .venv/bin/python benchmarks/models.py                                  # movielens-100k, seed 2020
    .venv/bin/python benchmarks/models.py --seeds 2020 2021 2022           # mean ± 95% CI over seeds
    .venv/bin/python benchmarks/models.py --data lastfm-2k --data-dir ../shared/data/hetrec2011-lastfm-2k
    .venv/bin/python benchmarks/models.py --split cold_items --models kgrec text mostpop ease
    .venv/bin/python benchmarks/models.py --data lastfm-2k --data-dir DIR --models kgrec --set train.max_seconds=900

Protocol: all interactions as implicit feedback, per-user random 80/10/10 split (or the
chosen split), full ranking with training (and validation) items masked, embedding size 64,
early stopping on validation NDCG@10. Each (model, seed) runs in its own process so its peak
RSS is its own. Runs land in runs/bench/ (git-ignored). Nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys
from kgrec.eval.report import evaluate_run
from kgrec.rundir.config import load_config
from kgrec.train.run import train_run
job = json.loads(sys.argv[1])
cfg = load_config(overrides=job["overrides"])
run = train_run(cfg, job["out"], overwrite=True, progress=False)
evaluate_run(run, split="test")
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

MODELS = {
    "mostpop": ("mostpop", {}),
    "itemknn": ("itemknn", {}),
    "ease": ("ease", {}),
    "text": ("text", {}),
    "bprmf": ("bprmf", {}),
    "lightgcn": ("lightgcn", {}),
    "elsa": ("elsa", {}),
    "kgrec": ("kgrec", {}),
    "kgrec-lowrank": ("kgrec", {"model": {"params": {"item_item_dim": 191}}}),
    "kgrec-ease": ("kgrec", {"model": {"params": {"item_item_dim": None}}}),
    "kgrec-no-kg": ("kgrec", {"model": {"params": {"use_kg": False}}}),
    "kgrec-no-social": ("kgrec", {"model": {"params": {"use_social": False}}}),
    "kgrec-no-text": ("kgrec", {"model": {"params": {"use_text": False}}}),
    "kgrec-no-time": ("kgrec", {"model": {"params": {"use_time": False}}}),
    "kgrec-ids-only": ("kgrec", {"model": {"params": {"channels": []}}}),
    "kgrec-ips": ("kgrec", {"train": {"objective": "ips"}}),
    "kgrec-pda": ("kgrec", {"train": {"objective": "pda"}}),
    "kgrec-pda-target": ("kgrec", {"train": {"objective": "pda"}, "model": {"params": {"popularity_target": 0.25}}}),
}


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="movielens-100k")
    ap.add_argument("--data-dir")
    ap.add_argument("--split", default="random")
    ap.add_argument("--seeds", type=int, nargs="+", default=[2020])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--baseline", default="ease", help="paired per-user test of NDCG@10 against this model")
    ap.add_argument("--reuse", action="store_true",
                    help="take finished runs in --out (metrics.json present) instead of training them again")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every model, e.g. train.max_seconds=900 (repeatable)")
    args = ap.parse_args()
    from kgrec.rundir.config import parse_set

    common = parse_set(args.set)
    from kgrec.metrics.stats import mean_ci, paired_test

    rows = []
    per_user: dict[str, list[float]] = {}
    for label in args.models:
        name, extra = MODELS[label]
        results = []
        for seed in args.seeds:
            overrides = merge({"seed": seed, "model": {"name": name, "params": {}},
                               "data": {"name": args.data, "data_dir": args.data_dir,
                                        "split": {"method": args.split}}}, merge(common, extra))
            out = Path(args.out) / f"{Path(args.data).stem}-{args.split}-{label}-s{seed}"
            if args.reuse and (out / "metrics.json").is_file():
                rss_file = out / "bench_rss.json"
                rss = json.loads(rss_file.read_text())["peak_rss_mb"] if rss_file.is_file() else float("nan")
            else:
                proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps({"overrides": overrides,
                                                                                "out": str(out)})],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"{label} seed {seed} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                    continue
                rss = json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mb"]
                (out / "bench_rss.json").write_text(json.dumps({"peak_rss_mb": rss}))
            metrics = json.loads((out / "metrics.json").read_text())
            results.append((metrics, rss))
            if seed == args.seeds[0]:
                per_user[label] = json.loads((out / "per_user_test.json").read_text())["ndcg@10"]
            print(f"{label} seed {seed}: ndcg@10 {metrics['test']['ndcg@10']:.4f}", file=sys.stderr, flush=True)
        if not results:
            continue

        def stat(key: str, fmt: str = "{:.4f}", where: str | None = None) -> str:
            vals = [(m["slices"]["test"][where]["metrics"] if where else m["test"])[key] for m, _ in results]
            mean, lo, hi = mean_ci(vals)
            return fmt.format(mean) + ("" if len(vals) < 2 else f" ± {(hi - lo) / 2:.4f}")

        first = results[0][0]
        spe = first.get("seconds_per_epoch")
        base = per_user.get(args.baseline)
        if base is not None and label != args.baseline and len(base) == len(per_user[label]):
            test = paired_test(per_user[label], base)
            paired = f"{test['mean_diff']:+.4f} (p={test['t_pvalue']:.3g})"
        else:
            paired = "–"
        rows.append([label, stat("ndcg@10"), paired, stat("recall@20"), stat("ips_ndcg@10"), stat("avg_popularity@10", "{:.1f}"),
                     stat("coverage@10"), f"{first['seconds_to_best']:.1f}", "–" if spe is None else f"{spe:.2f}",
                     "–" if max(r for _, r in results) != max(r for _, r in results) else
                     f"{max(r for _, r in results):.0f}"])
        if args.split == "cold_items":
            rows[-1][4:4] = [stat("recall@20", where="cold_items"), stat("recall@20", where="cold_items_only")]
    seeds = ", ".join(map(str, args.seeds))
    print(f"\n{args.data}, split {args.split}, seeds {seeds} (± = half-width of the 95% t-interval over seeds)\n")
    print(f"Δ vs {args.baseline}: mean per-user NDCG@10 difference on seed {args.seeds[0]}, paired t-test p-value "
          f"(run the baseline first in --models)\n")
    cold = "cold Recall@20 (all items) | cold Recall@20 (cold items only) | " if args.split == "cold_items" else ""
    print(f"| model | NDCG@10 | Δ vs {args.baseline} | Recall@20 | {cold}IPS-NDCG@10 | avg pop@10 | coverage@10 "
          "| s to best | s/epoch | peak RSS MB |")
    print("|" + "---|" * (10 + 2 * bool(cold)))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

"""What each post-training part of a kgrec run contributes to its test accuracy.

    .venv/bin/python benchmarks/kgrec_parts.py RUN_DIR [--part test]

Loads a trained kgrec run and evaluates it (full ranking, training and validation items
masked) as trained, then with one part changed at a time: the GNN's blend weight ``α``
scaled by 0, 0.25, 0.5 and 2, the cold items' regressed vectors off (scale 0), the
channels' item priors off and the recency weight ``κ`` off. Prints one Markdown table with
the chosen values. A diagnostic: nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--part", default="test", choices=["valid", "test"])
    args = ap.parse_args()
    from kgrec.eval.evaluator import evaluate
    from kgrec.rundir.load import load_run

    run = load_run(args.run_dir)
    m = run.model
    if run.config.model.name != "kgrec":
        raise SystemExit(f"{args.run_dir}: a {run.config.model.name} run; this script reads kgrec's parts")

    def row(label: str) -> str:
        r = evaluate(m, run.ctx, run.heldout, args.part, [10, 20])
        met = r.get("metrics", r)
        return f"| {label} | {met['ndcg@10']:.4f} | {met['recall@20']:.4f} |"

    blend, cold, kappa = float(m.blend), float(m.cold_scale), float(m.ii_recency)
    priors = m.prior_weight.clone()
    print(f"{args.run_dir} ({args.part}): blend α = {blend:.4g}, cold scale = {cold:.4g}, κ = {kappa:.4g}, "
          f"prior weights = {[round(float(w), 4) for w in priors]}, {len(m.cold_items)} cold items\n")
    print(f"| variant | NDCG@10 | Recall@20 |\n|---|---|---|\n{row('as trained')}")
    for f in (0.0, 0.25, 0.5, 2.0):
        m.blend.fill_(blend * f)
        print(row(f"blend α × {f:g}"))
    m.blend.fill_(blend)
    m.cold_scale.fill_(0.0)
    print(row("cold items' vectors off"))
    m.cold_scale.fill_(cold)
    m.prior_weight.zero_()
    print(row("item priors off"))
    m.prior_weight.copy_(priors)
    m.ii_recency.fill_(0.0)
    print(row("recency weight κ off"))


if __name__ == "__main__":
    main()

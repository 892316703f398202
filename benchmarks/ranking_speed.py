"""Full-sort top-K for every user of a trained run: one inner product per user and item.

    .venv/bin/python benchmarks/ranking_speed.py runs/movielens-100k-kgrec [--k 10] [--repeats 5]

Times (a) building the final user and item vectors (``model.embed()``, which runs the GNN
propagation once) and (b) scoring all items for all users, masking training items and
taking the top K (``topk_from_vectors``). Prints the best and median of ``--repeats`` runs
with one torch thread (the CLI default). Nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from kgrec.models.ranking import topk_from_vectors
    from kgrec.rundir.load import load_run

    run = load_run(args.run_dir)
    model, ctx = run.model, run.ctx
    users = np.arange(ctx.num_users)
    embed_s, rank_s = [], []
    with torch.no_grad():
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            u, i = model.embed()
            t1 = time.perf_counter()
            top = topk_from_vectors(u, i, users, args.k, ctx.train)
            t2 = time.perf_counter()
            embed_s.append(t1 - t0)
            rank_s.append(t2 - t1)
    total = [a + b for a, b in zip(embed_s, rank_s)]
    print(f"{run.config.model.name} on {run.config.data.name}: {ctx.num_users} users x {ctx.num_items} items, "
          f"vector size {u.shape[1]}, top-{args.k} -> {top.shape}, torch threads {torch.get_num_threads()}")
    print("| step | best s | median s |\n|---|---|---|")
    for name, xs in (("embed (GNN propagation, once)", embed_s), ("score + mask + top-K, all users", rank_s),
                     ("total", total)):
        print(f"| {name} | {min(xs):.3f} | {statistics.median(xs):.3f} |")


if __name__ == "__main__":
    main()

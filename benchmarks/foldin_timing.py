"""Fold-in timing: a new user's vector from a history, and a new item's from its content; prints a table.

    .venv/bin/python benchmarks/foldin_timing.py runs/movielens-100k-kgrec      # the README's main run

For histories of 1, 10, 50 and 200 items (drawn from the catalogue with a fixed seed, oldest
first) it times ``FoldIn.user_vector`` (the model's own path, no retraining), and the whole
in-process request of ``Service.recommend(history=...)`` (fold-in, exact or ANN retrieval
with the history excluded, the logging policy; no HTTP, no log). For a new item it times
``FoldIn.item_vector`` from a catalogue item's text vector alone, without KG links (the
content regression over the warm items). Median and p99 over ``--calls`` calls each, on one torch
thread and one BLAS thread (as ``kgrec serve`` runs). Also checks, on the validation users,
how fold-in vectors from the training histories rank compared with the trained vectors.
Nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def timed(fn, calls: int) -> tuple[float, float]:
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t))
    return float(np.median(out)), float(np.percentile(out, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--calls", type=int, default=500)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    from kgrec.eval.evaluator import evaluate
    from kgrec.models.foldin import FoldIn
    from kgrec.rundir.load import load_run
    from kgrec.runtime import configure_threads
    from kgrec.serve.policy import PolicyConfig
    from kgrec.serve.service import ServeConfig, Service

    configure_threads(1)
    threadpool_limits(1)
    run = load_run(args.run_dir)
    t0 = time.perf_counter()
    fold = FoldIn.for_model(run.model, dataset=run.view.dataset)
    build = time.perf_counter() - t0
    service = Service(run, ServeConfig(policy=PolicyConfig("deterministic")))
    rng = np.random.default_rng(0)
    n_items = run.view.num_items
    print(f"{args.run_dir}: {run.config.model.name}, {n_items} items, vectors of "
          f"{service.user_vectors.shape[1]} dims, index {service.index.kind}; FoldIn built in {build:.2f} s\n")
    print("| what | history | median ms | p99 ms |\n|---|---|---|---|")
    for size in (1, 10, 50, 200):
        hist = rng.choice(n_items, size=size, replace=False)
        raw = [service.item_ids[i] for i in hist]
        med, p99 = timed(lambda: fold.user_vector(hist), args.calls)
        print(f"| user fold-in (`FoldIn.user_vector`) | {size} | {med:.3f} | {p99:.3f} |")
        med, p99 = timed(lambda: service.recommend(history=raw, k=10), args.calls)
        print(f"| fold-in + top-10 retrieval (`Service.recommend`) | {size} | {med:.3f} | {p99:.3f} |")
    text = run.ctx.item_text
    if text is not None:
        links = {}
        item = 0
        med, p99 = timed(lambda: fold.item_vector(text=text[item], links=links), min(args.calls, 200))
        print(f"| new item from its text vector (`FoldIn.item_vector`) | – | {med:.3f} | {p99:.3f} |")
    # quality: the validation users ranked by fold-in vectors of their training histories
    import torch

    train = run.view.train.tocsr()
    users = np.flatnonzero(np.diff(run.heldout.valid.indptr) > 0)
    folded = np.stack([fold.user_vector(train.indices[train.indptr[u]: train.indptr[u + 1]].astype(np.int64))
                       for u in users])
    trained = evaluate(run.model, run.ctx, run.heldout, "valid", [10])
    original = run.model.embed
    with torch.no_grad():
        u_all, i_all = original()
    u_new = u_all.clone()
    u_new[torch.from_numpy(users)] = torch.from_numpy(folded)
    run.model.embed = lambda *a, **k: (u_new, i_all)
    try:
        fresh = evaluate(run.model, run.ctx, run.heldout, "valid", [10])
    finally:
        run.model.embed = original
    get = lambda r: r.get("metrics", r)["ndcg@10"]  # noqa: E731
    print(f"\nvalidation NDCG@10 over {len(users)} users: trained vectors {get(trained):.4f}, fold-in vectors from "
          f"the training histories {get(fresh):.4f}")


if __name__ == "__main__":
    main()

"""Load test of ``kgrec serve`` on loopback over a synthetic catalogue of 10^6 items; prints a table.

    .venv/bin/python benchmarks/serve_load.py                         # 10^6 items, 20,000 requests, concurrency 8
    .venv/bin/python benchmarks/serve_load.py --items 100000 --requests 5000 --index flat
    .venv/bin/python benchmarks/serve_load.py --run runs/movielens-100k-kgrec --index auto   # an existing run

Setup (cached in --work): the synthetic world with ``--items`` items, ``--users`` users and
``--interactions`` interactions, and a run on it whose vectors the server indexes: by default
the ``text`` model (item vectors: the MiniLM vectors of the items' text, 384 dimensions; user
vectors: the normalised mean of their history's), which has the catalogue's content structure
and needs no training; or ``--model lightgcn`` (``--dim`` dimensions, one epoch of 4 steps:
with about two interactions per item its vectors stay close to their random initialisation,
the hard case for an ANN index). Then ``kgrec serve`` runs as its own process on
127.0.0.1 with the exposure log on (SQLite WAL, the default crash-safe mode) and the default
epsilon-greedy policy, and a bounded load is sent: ``--requests`` POST /recommend calls
(known users drawn uniformly, k = 10) from ``--concurrency`` keep-alive connections of one
asyncio client (aiohttp), stopping early after ``--max-seconds``. Latency is measured by the
client per request (so it includes the client's own share of the machine's CPU, which client
and server share); the CPU seconds the server and the client spent per request are printed too.

Recall@10 against exact search is measured in this process on the same index (same seed,
same configuration) for 1,000 users with their training items excluded, twice: by id, and
tie-aware (a returned item counts when its exact score reaches the exact 10th score, the rule
of ann-benchmarks), which is the one that matters on the text catalogue, where items with the
same title template share one vector. Nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np


def prepare(args: argparse.Namespace, work: Path) -> Path:
    if args.run:
        return Path(args.run)
    from kgrec.rundir.config import load_config
    from kgrec.train.run import train_run

    run = work / (f"run-lightgcn-{args.items}-d{args.dim}" if args.model == "lightgcn" else
                  f"run-{args.model}-{args.items}")
    if not (run / "model.safetensors").is_file():
        t0 = time.perf_counter()
        cfg = load_config(overrides={
            "data": {"name": "synthetic", "synthetic": {"n_users": args.users, "n_items": args.items,
                                                        "n_interactions": args.interactions}},
            "model": {"name": args.model, "params": {"dim": args.dim} if args.model == "lightgcn" else {}},
            "train": {"epochs": 1, "valid_users": 500, "max_steps_per_epoch": 4}})
        train_run(cfg, run, overwrite=True, progress=True)
        print(f"setup: trained {run} in {time.perf_counter() - t0:.0f} s", flush=True)
    return run


async def load(url: str, users: list[str], n: int, concurrency: int, max_seconds: float) -> tuple[list[float], int]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    queue = iter(range(n))
    deadline = time.perf_counter() + max_seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=10.0)
    async with aiohttp.ClientSession(base_url=url, connector=connector, timeout=timeout) as client:
        async def worker() -> None:
            nonlocal errors
            for i in queue:
                if time.perf_counter() > deadline:
                    return
                body = {"user_id": users[i % len(users)], "k": 10}
                t = time.perf_counter()
                try:
                    async with client.post("/recommend", json=body) as r:
                        await r.read()
                        ok = r.status == 200
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = False
                latencies.append(time.perf_counter() - t)
                errors += not ok

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children that exited (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int) -> float:
    """CPU seconds of the server and its worker processes (uvicorn forks them for --workers > 1)."""
    total = cpu_seconds(pid)
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            total += cpu_seconds(int(child))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def recall_check(run_dir: Path, index_args: dict, sample: int = 1000) -> tuple[float, float]:
    import torch

    from kgrec.rundir.load import load_run
    from kgrec.serve.index import IndexConfig, ItemIndex

    run = load_run(run_dir)
    with torch.no_grad():
        users, items = run.model.embed()
    index = ItemIndex.build(np.ascontiguousarray(items.numpy()), IndexConfig(**index_args))
    rows = np.random.default_rng(0).choice(run.view.num_users, size=min(sample, run.view.num_users), replace=False)
    train = run.view.train.tocsr()
    exclude = [train.indices[train.indptr[u]: train.indptr[u + 1]] for u in rows]
    queries = np.ascontiguousarray(users.numpy()[rows])
    return index.recall(queries, 10, exclude=exclude), index.recall(queries, 10, exclude=exclude, ties=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--interactions", type=int, default=2_000_000)
    ap.add_argument("--model", default="text", choices=("text", "lightgcn"),
                    help="the served run: text (item text vectors, 384 dims; default) or lightgcn (--dim)")
    ap.add_argument("--dim", type=int, default=256, help="LightGCN's vector size (default 256)")
    ap.add_argument("--run", help="serve this existing run instead of the synthetic catalogue (e.g. the README's "
                                   "MovieLens run with --index auto: the HTTP and logging path over a small index)")
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--index", default="ivf", choices=("auto", "flat", "ivf", "hnsw"))
    ap.add_argument("--nprobe", type=int)
    ap.add_argument("--policy", default="epsilon", choices=("epsilon", "deterministic"))
    ap.add_argument("--durable", action="store_true", help="fsync every commit")
    ap.add_argument("--workers", type=int, default=1, help="server processes (each builds its own index)")
    ap.add_argument("--work", default="runs/bench-serve")
    ap.add_argument("--no-recall", action="store_true", help="skip the recall check (it builds the index again)")
    args = ap.parse_args()
    from kgrec.serve.launch import call, start

    work = Path(args.work)
    run = prepare(args, work)
    users = [str(u) for u in json.loads((run / "idmaps.json").read_text())["user"]]
    serve_args = ["--index", args.index, "--policy", args.policy, "--log", str(work / f"log-{int(time.time())}")]
    serve_args += ["--nprobe", str(args.nprobe)] if args.nprobe else []
    serve_args += ["--durable"] if args.durable else []
    serve_args += ["--workers", str(args.workers)] if args.workers > 1 else []
    t0 = time.perf_counter()
    server = start(run, serve_args, work=work, timeout=900)
    ready = time.perf_counter() - t0
    try:
        _, health = call(server.url + "/healthz")
        for u in users[:50]:  # warm-up, not counted
            call(server.url + "/recommend", {"user_id": u, "k": 10})
        rng = np.random.default_rng(0)
        order = [users[i] for i in rng.integers(0, len(users), args.requests)]
        cpu0, own0, t1 = server_cpu(server.process.pid), sum(os.times()[:2]), time.perf_counter()
        latencies, errors = asyncio.run(load(server.url, order, args.requests, args.concurrency, args.max_seconds))
        wall = time.perf_counter() - t1
        cpu_server, cpu_client = server_cpu(server.process.pid) - cpu0, sum(os.times()[:2]) - own0
    finally:
        server.stop()
    recall = tie_recall = float("nan")
    if not args.no_recall:
        idx = {"kind": args.index, **({"nprobe": args.nprobe} if args.nprobe else {})}
        recall, tie_recall = recall_check(run, idx)
    ms = sorted(1000 * x for x in latencies)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    index = health["index"]
    print(f"\nkgrec serve over {health['items']:,} items ({index.get('dim')} dims), index {index.get('kind')} "
          f"({', '.join(f'{k} {v}' for k, v in index.items() if k in ('nlist', 'nprobe', 'hnsw_m', 'ef_search'))}), "
          f"policy {args.policy}, exposure log on{' (durable)' if args.durable else ''}; {len(ms)} requests at "
          f"concurrency {args.concurrency}, {args.workers} server process(es)\n")
    print("| requests/s | p50 ms | p95 ms | p99 ms | errors | recall@10 vs exact (ids / tie-aware) | "
          "server CPU ms/request | client CPU ms/request | index build s | server ready s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {len(ms) / wall:.0f} | {q[49]:.2f} | {q[94]:.2f} | {q[98]:.2f} | {errors} | {recall:.4f} / {tie_recall:.4f} | "
          f"{1000 * cpu_server / len(ms):.2f} | {1000 * cpu_client / len(ms):.2f} | "
          f"{index.get('build_seconds', float('nan')):.1f} | {ready:.1f} |")


if __name__ == "__main__":
    main()

"""Time and peak memory of data loading and synthetic generation (prints a Markdown table).

    .venv/bin/python benchmarks/data_load.py                # MovieLens-100k + 10^5-user world
    .venv/bin/python benchmarks/data_load.py --quick        # a 10^4-user world instead

Each measurement runs in a fresh subprocess so that its peak RSS is its own. MovieLens is
loaded from the cache (run ``kgrec data fetch movielens-100k`` first; the script does it
if needed and does not time the download). Not a test: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time, tracemalloc
import torch
torch.set_num_threads(1)
job = json.loads(sys.argv[1])
out = {}
if job["kind"] == "movielens":
    import torch_geometric  # import cost is reported separately, not in the load time
    from kgrec.graphs import load_dataset
    out["imports_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if job.get("trace"):
        tracemalloc.start()  # slows allocation-heavy code several-fold: timings come from untraced runs
    t0 = time.perf_counter()
    ds = load_dataset("movielens-100k", download_ok=False)
    t1 = time.perf_counter()
    data = ds.to_hetero()
    t2 = time.perf_counter()
    out |= {"load_s": t1 - t0, "to_hetero_s": t2 - t1, "total_s": t2 - t0,
           "py_peak_mb": tracemalloc.get_traced_memory()[1] / 2**20 if job.get("trace") else None,
           "edges": int(sum(s.edge_index.shape[1] for s in data.edge_stores))}
else:
    from kgrec.graphs.synthetic import generate_world
    t0 = time.perf_counter()
    truth = generate_world(job["out"], n_users=job["users"], n_items=job["items"],
                           n_interactions=job["interactions"], seed=0)
    out = {"total_s": time.perf_counter() - t0, "interactions": job["interactions"]}
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run(job: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(job)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10^4 users, 10^3 items, 10^5 interactions")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    subprocess.run([sys.executable, "-m", "kgrec", "data", "fetch", "movielens-100k"], check=True,
                   capture_output=True)
    rows = []
    ml = [run({"kind": "movielens"}) for _ in range(args.repeat)]
    traced = run({"kind": "movielens", "trace": True})
    best = min(ml, key=lambda r: r["total_s"])
    rows.append(("movielens-100k: cache → GraphDataset → HeteroData", f"{best['total_s']:.2f}",
                 f"load {best['load_s']:.2f} + to_hetero {best['to_hetero_s']:.2f}; min of {args.repeat}",
                 f"{max(r['peak_rss_mb'] for r in ml):.0f} (after imports: {min(r['imports_rss_mb'] for r in ml):.0f})",
                 f"{traced['py_peak_mb']:.0f}"))
    users, items, inter = (10_000, 1_000, 100_000) if args.quick else (100_000, 10_000, 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        syn = [run({"kind": "synthetic", "out": f"{tmp}/w{i}", "users": users, "items": items,
                    "interactions": inter}) for i in range(args.repeat)]
    best = min(syn, key=lambda r: r["total_s"])
    rows.append((f"synthetic world: {users:,} users × {items:,} items × {inter:,} interactions",
                 f"{best['total_s']:.2f}", f"min of {args.repeat}; max {max(r['total_s'] for r in syn):.2f}",
                 f"{max(r['peak_rss_mb'] for r in syn):.0f}", "–"))
    print("| job | seconds (best) | detail | peak RSS MB (process, incl. torch) | peak Python-traced MB |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

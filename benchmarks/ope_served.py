"""Off-policy evaluation from served logs, validated where the truth is known; prints tables.

    .venv/bin/python benchmarks/ope_served.py                       # 20 seeds, 20,000 requests each, epsilon 0.5
    .venv/bin/python benchmarks/ope_served.py --seeds 0 1 2 --requests 5000 --epsilon 0.5

Trains (or reuses, in --work) two runs on the default synthetic world: the logging model
(kgrec) and a candidate (EASE by default). For each seed, the real serving core
(:class:`kgrec.serve.service.Service`, epsilon-greedy over the whole catalogue, exposure log
in SQLite) serves a simulated population (users drawn by the world's activity shares) who
click each shown item with the world's true click probability; the candidate's click rate
per slot is estimated from that log with IPS, SNIPS and DR (95% percentile-bootstrap CIs) and
compared with its exact true rate under the click model
(:mod:`kgrec.audit.served_check`). Nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def trained(name: str, model: str, work: Path, epochs: int) -> Path:
    from kgrec.rundir.config import load_config
    from kgrec.train.run import train_run

    out = work / f"run-{name}"
    if not (out / "model.safetensors").is_file():
        cfg = load_config(overrides={"data": {"name": "synthetic"}, "model": {"name": model},
                                     "train": {"epochs": epochs}})
        train_run(cfg, out, overwrite=True, progress=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
    ap.add_argument("--requests", type=int, default=20_000, help="served lists per seed (default 20,000)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--epsilon", type=float, default=0.5)
    ap.add_argument("--candidate", default="ease", help="the candidate model (default ease)")
    ap.add_argument("--work", default="runs/bench-ope", help="runs and logs (default runs/bench-ope)")
    ap.add_argument("--n-boot", type=int, default=500)
    args = ap.parse_args()
    from kgrec.audit.served_check import validate
    from kgrec.rundir.load import load_run
    from kgrec.runtime import configure_threads

    configure_threads(1)
    work = Path(args.work)
    t0 = time.perf_counter()
    logging_run = load_run(trained("kgrec", "kgrec", work, 5))
    candidate = load_run(trained(args.candidate, args.candidate, work, 5))
    logs = work / f"logs-{int(time.time())}"
    rows, truth = validate(logging_run, candidate, seeds=args.seeds, n_requests=args.requests, k=args.k,
                           epsilon=args.epsilon, work=logs, n_boot=args.n_boot, progress=True)
    print(f"\nlogging: kgrec, epsilon-greedy (epsilon {args.epsilon}, pool = all {logging_run.view.num_items} items), "
          f"{args.requests} requests of {args.k} per seed; candidate: {args.candidate}; true click rate per slot "
          f"{truth:.4f}; {time.perf_counter() - t0:.0f} s\n")
    print("| seed | estimator | estimate | 95% CI | covers truth | ESS | logging policy's observed rate |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.seed} | {r.estimator.upper()} | {r.value:.4f} | [{r.ci_low:.4f}, {r.ci_high:.4f}] | "
              f"{'yes' if r.covered else 'NO'} | {r.ess:.0f} | {r.logging_rate:.4f} |")
    print("\n| estimator | seeds | coverage of the 95% CI | mean estimate | mean CI width | mean abs error |")
    print("|---|---|---|---|---|---|")
    for name in sorted({r.estimator for r in rows}, key=["ips", "snips", "dr"].index):
        sub = [r for r in rows if r.estimator == name]
        cover = sum(r.covered for r in sub)
        print(f"| {name.upper()} | {len(sub)} | {cover}/{len(sub)} = {cover / len(sub):.0%} | "
              f"{sum(r.value for r in sub) / len(sub):.4f} | {sum(r.ci_high - r.ci_low for r in sub) / len(sub):.4f} | "
              f"{sum(abs(r.value - truth) for r in sub) / len(sub):.4f} |")


if __name__ == "__main__":
    main()

"""Audit trained runs with the shipped plans and print what reviewers look at, with timings.

    .venv/bin/python benchmarks/audit_check.py                       # trains the two runs if missing
    .venv/bin/python benchmarks/audit_check.py --ml RUN_DIR --synthetic RUN_DIR

Trains (if not given) the default kgrec model on movielens-100k and on the synthetic world
(seed 2020), runs `kgrec audit` on each (reports/audit-check-*/), and prints: the causal
estimates with CIs and refutations, the planted effects against their estimates, the Open
Bandit off-policy estimates against the observed rate, the fairness gaps with CIs, the IG
completeness gaps, the faithfulness rate, the gates and the wall time of each audit.
Nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def ensure_run(data: str, run: str | None) -> Path:
    if run:
        return Path(run)
    out = Path("runs") / f"audit-check-{data}"
    if not (out / "model.safetensors").is_file():
        subprocess.run([sys.executable, "-m", "kgrec", "train", "--data", data, "-o", str(out), "--overwrite",
                        "--no-progress"], check=True)
    return out


def fmt(x: float | None, nd: int = 4) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def show(name: str, run: Path) -> None:
    out = Path("reports") / f"audit-check-{name}"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kgrec", "audit", str(run), "-o", str(out), "--overwrite",
                           "--no-progress"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 9):
        print(proc.stderr, file=sys.stderr)
        raise SystemExit(proc.returncode)
    r = json.loads((out / "report.json").read_text())
    print(f"\n## {name}: {run} (exit {proc.returncode}, wall {wall:.1f} s including process start)\n")
    print(proc.stdout.strip().splitlines()[-2] if "browser" in proc.stdout else "")
    c = r["causal"]["data"]
    print("\n| question | estimate | 95% CI | refutations passed | sensitivity |\n|---|---|---|---|---|")
    for e in c["estimates"]:
        ok = sum(x["passed"] for x in e["refutations"])
        rv = (e.get("sensitivity") or {}).get("robustness_value")
        print(f"| {e['question']} | {fmt(e['estimate'])} | [{fmt(e['ci_low'])}, {fmt(e['ci_high'])}] | "
              f"{ok}/{len(e['refutations'])} | {'RV ' + fmt(rv, 3) if rv is not None else '–'} |")
    if c["truth"]:
        print("\n| planted effect | true | estimate | 95% CI | rel. error | recovered |\n|---|---|---|---|---|---|")
        for t in c["truth"]:
            print(f"| {t['planted']} | {fmt(t['true'])} | {fmt(t['estimate'])} | [{fmt(t['ci_low'])}, "
                  f"{fmt(t['ci_high'])}] | {t['relative_error']:.1%} | {'yes' if t['recovered'] else 'no'} |")
    for f in c["flips"]:
        print(f"\nflip {f['attribute']}: mean top-K Jaccard {f['mean_jaccard']:.4f}, max |score change| "
              f"{f['max_abs_score_change']:.2e} ({f['detail']})")
    op = c.get("off_policy")
    if op:
        print("\n| Open Bandit | value | 95% CI | width | ESS |\n|---|---|---|---|---|")
        for e in op["estimates"]:
            print(f"| {e['name'].upper()} | {fmt(e['value'], 5)} | [{fmt(e['ci_low'], 5)}, {fmt(e['ci_high'], 5)}] | "
                  f"{fmt(e['ci_high'] - e['ci_low'], 5)} | {e['ess']:.0f} |")
        lo, hi = op["observed_ci"]
        print(f"| observed ({op['target_policy']}) | {fmt(op['observed'], 5)} | [{fmt(lo, 5)}, {fmt(hi, 5)}] | "
              f"{fmt(hi - lo, 5)} | {op['n_observed']} rows |")
    fair = r["fairness"]["data"]
    if fair["users"]:
        print("\n| fairness | difference | 95% CI | ratio | 95% CI | small groups |\n|---|---|---|---|---|---|")
        for d in fair["users"]:
            print(f"| {d['metric']} by {d['attribute']} | {fmt(d['difference'])} | [{fmt(d['difference_ci'][0])}, "
                  f"{fmt(d['difference_ci'][1])}] | {fmt(d['ratio'])} | [{fmt(d['ratio_ci'][0])}, "
                  f"{fmt(d['ratio_ci'][1])}] | {', '.join(d['flagged_small']) or '–'} |")
    for x in fair["exposure"]:
        print(f"exposure by {x['grouping']}: min exposure/relevance ratio {fmt(x['min_ratio'])}, Gini {fmt(x['gini'])}, "
              f"long-tail coverage {fmt(x['long_tail_coverage'])}")
    ex = r["explanations"]["data"]
    if ex.get("explanations"):
        deltas = [e["relative_delta"] for e in ex["explanations"]]
        print(f"\nexplanations: {len(deltas)}; completeness |δ|/|score − baseline| max {max(deltas):.2e}, "
              f"mean {sum(deltas) / len(deltas):.2e}; faithfulness rate {fmt(ex['faithfulness_rate'], 3)}")
    print("\n| gate | value | criterion | result |\n|---|---|---|---|")
    for g in r["gates"]:
        print(f"| {g['name']} | {fmt(g['value'])} | {g['op']} {g['threshold']} | {'PASS' if g['passed'] else 'FAIL'} |")
    print(f"\naudit wall time (in-process): {r['reproducibility']['data']['seconds']:.1f} s; timings "
          + ", ".join(f"{k} {v:.1f}" for k, v in r["reproducibility"]["data"]["timings"].items()))
    print(f"report: {out}/report.html, screenshot: {out}/screenshot.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ml", help="a trained movielens-100k run (default: train runs/audit-check-movielens-100k)")
    ap.add_argument("--synthetic", help="a trained synthetic run (default: train runs/audit-check-synthetic)")
    args = ap.parse_args()
    show("movielens-100k", ensure_run("movielens-100k", args.ml))
    show("synthetic", ensure_run("synthetic", args.synthetic))


if __name__ == "__main__":
    main()

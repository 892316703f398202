"""The audit's decision parts on MovieLens-100k: a candidate run audited against a baseline run,
printed as the tables a reviewer reads, with the audit's wall time.

    .venv/bin/python benchmarks/audit_decision.py                 # trains both runs if missing
    .venv/bin/python benchmarks/audit_decision.py --run RUN_DIR --baseline RUN_DIR

Trains (if not given) the default kgrec run and a LightGCN baseline on movielens-100k with the
same seed and split (runs/decision-*), runs ``kgrec audit RUN --baseline BASE`` into
``reports/decision-ml100k/`` (with the headless-browser check and its screenshot), and prints
from its ``report.json``: the gates, then every table of the comparison, mitigation,
non-profiling, mediation and recommended-actions sections, and the audit's timings. Nothing
here is asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SECTIONS = ("comparison", "mitigation", "nonprofiling", "mediation", "actions")


def ensure_run(model: str, run: str | None) -> Path:
    if run:
        return Path(run)
    out = Path("runs") / f"decision-ml100k-{model}"
    if not (out / "model.safetensors").is_file():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kgrec", "train", "--data", "movielens-100k", "--set",
                        f"model.name={model}", "-o", str(out), "--overwrite", "--no-progress", "--evaluate"],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"trained {out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return out


def cell(x: object) -> str:
    if isinstance(x, float):
        return f"{x:.4f}"
    return "–" if x is None else str(x).replace("|", "\\|")


def table(t: dict) -> str:
    lines = [f"*{t['caption']}*", "", "| " + " | ".join(t["columns"]) + " |", "|" + "---|" * len(t["columns"])]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in t["rows"]]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="candidate run (default: train kgrec)")
    ap.add_argument("--baseline", help="baseline run (default: train lightgcn)")
    ap.add_argument("--baseline-model", default="lightgcn")
    ap.add_argument("-o", "--out", default="reports/decision-ml100k")
    args = ap.parse_args()
    run, base = ensure_run("kgrec", args.run), ensure_run(args.baseline_model, args.baseline)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kgrec", "audit", str(run), "--baseline", str(base), "-o", args.out,
                           "--overwrite", "--no-progress"], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 9):
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    report = json.loads((Path(args.out) / "report.json").read_text())
    print(f"## kgrec audit {run} --baseline {base}: exit {proc.returncode}, {seconds:.1f} s wall\n")
    print(proc.stdout.strip() + "\n")
    gates = sorted(report["gates"], key=lambda g: g["passed"])
    print(table({"caption": "Gates (failed first)", "columns": ["gate", "value", "rule", "result"],
                 "rows": [[g["name"], g["value"], f"{g['op']} {g['threshold']:g}", "PASS" if g["passed"] else "FAIL"]
                          for g in gates]}) + "\n")
    for key in SECTIONS:
        sec = report.get(key)
        if sec is None:
            print(f"## {key}: not in the report\n")
            continue
        print(f"## {sec['title']}\n")
        for p in sec["paragraphs"]:
            print(p + "\n")
        for t in sec["tables"]:
            print(table(t) + "\n")
    timings = report.get("reproducibility", {}).get("data", {}).get("timings", {})
    if timings:
        print(table({"caption": "Audit timings (s)", "columns": ["step", "seconds"],
                     "rows": [[k, v] for k, v in timings.items()]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

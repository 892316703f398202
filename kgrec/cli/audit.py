"""``kgrec audit``."""

from __future__ import annotations

import argparse
import sys


def add_parser(commands: argparse._SubParsersAction, epilog: str) -> None:
    p = commands.add_parser("audit", help="causal effects, fairness and explanations of a run, as a report",
                            epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--plan", metavar="PLAN.yaml", help="audit plan (default: audit/<data set>.yaml)")
    p.add_argument("-o", "--out", metavar="REPORT_DIR", help="output directory (default reports/<run name>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report directory")
    p.add_argument("--no-browser", action="store_true", help="skip the headless-Chromium check and screenshot")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.add_argument("--exposure-log", metavar="DIR",
                   help="a kgrec serve exposure log: estimate this model's click rate on the served traffic "
                        "(IPS, SNIPS, DR) in the causal section")
    p.add_argument("--baseline", metavar="OTHER_RUN",
                   help="another run (e.g. the deployed model) audited with the same plan and compared gate by "
                        "gate and metric by metric, with paired bootstrap CIs of the differences")


def run(args: argparse.Namespace) -> int:
    from kgrec.audit.run import run_audit
    from kgrec.errors import EXIT_GATE
    from kgrec.runtime import configure_threads

    configure_threads(args.threads)  # this command's --threads, not the training run's

    outcome = run_audit(args.run_dir, plan_path=args.plan, out_dir=args.out, overwrite=args.overwrite,
                        progress=not args.no_progress, browser=not args.no_browser,
                        exposure_log=args.exposure_log, baseline=args.baseline)
    print(f"wrote {outcome.out_dir}/report.html, report.md, report.json in {outcome.seconds:.1f} s")
    if outcome.browser is not None:
        b = outcome.browser
        print(f"browser check: {'ok' if b.ok else 'FAILED'}; screenshot {b.screenshot}; "
              f"console errors: {len(b.console_errors)}")
    if outcome.failed:
        print(f"kgrec: audit gates failed ({len(outcome.failed)}): {'; '.join(outcome.failed)}", file=sys.stderr)
        return EXIT_GATE
    print("all audit gates passed")
    return 0

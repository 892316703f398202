"""``kgrec update``: continual training of a run on new interactions (:mod:`kgrec.update`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction, epilog: str) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    u = commands.add_parser(
        "update", help="continual training: warm-start a run on new users, items and interactions",
        epilog=epilog, formatter_class=fmt,
        description="Write NEW_RUN from RUN_DIR plus new interactions: the rows of an interactions file (in the\n"
                    "schema's interaction format), or the clicks, fold-in users and added items of an exposure log.\n"
                    "Held-out rows of RUN_DIR that the input repeats move to train (the temporal protocol); the\n"
                    "model is warm-started from RUN_DIR's weights and trained for --steps steps. NEW_RUN records\n"
                    "its lineage (lineage.json) and loads like any run: evaluate, audit, serve, update.")
    u.add_argument("run_dir", metavar="RUN_DIR", help="the trained (or updated) run to start from")
    src = u.add_mutually_exclusive_group(required=True)
    src.add_argument("--interactions", metavar="FILE", help="new interactions, in the schema's interaction file format")
    src.add_argument("--log", metavar="DIR", help="an exposure log of kgrec serve (read only)")
    u.add_argument("-o", "--out", required=True, metavar="NEW_RUN", help="the new run directory")
    u.add_argument("--steps", type=int, default=200, metavar="N", help="optimiser steps (default 200)")
    u.add_argument("--overwrite", action="store_true", help="replace an existing NEW_RUN")
    u.add_argument("--new-fraction", type=float, default=0.5, metavar="F",
                   help="share of each batch drawn from the added interactions, the rest from all training "
                        "interactions (default 0.5; 0: uniform over all)")
    u.add_argument("--eval-every", type=int, metavar="N",
                   help="validate every N steps when validation rows remain (default: one training epoch's steps)")
    u.add_argument("--events", default="click", metavar="E1,E2",
                   help="with --log: feedback events that count as interactions (default click)")
    u.add_argument("--no-warm-start", action="store_true",
                   help="start from a fresh initialisation instead of the parent's weights (for comparisons)")
    u.add_argument("--strict", action="store_true", help="fail (exit 8) if any input row would be dropped")
    u.add_argument("--no-progress", action="store_true", help="no progress output")
    u.add_argument("--evaluate", action="store_true", help="evaluate NEW_RUN on the test split afterwards")


def run_update(args: argparse.Namespace) -> int:
    from kgrec.update.continual import update_run

    events = [e.strip() for e in args.events.split(",") if e.strip()]
    if not events:
        from kgrec.errors import UsageError

        raise UsageError("give at least one event name", field="--events")
    path = update_run(args.run_dir, args.out, interactions=args.interactions, log_dir=args.log, steps=args.steps,
                      overwrite=args.overwrite, progress=not args.no_progress, strict=args.strict,
                      new_fraction=args.new_fraction, eval_every=args.eval_every, events=events,
                      warm=not args.no_warm_start, threads=args.threads)
    lineage = json.loads((Path(path) / "lineage.json").read_text())
    added = lineage["added"]
    print(f"{path}: updated from {args.run_dir}: {added['moved']['valid'] + added['moved']['test']:,} held-out "
          f"row(s) moved to train, {added['appended']:,} appended, {added['new_users']:,} new user(s), "
          f"{added['new_items']:,} new item(s), {added['dropped']:,} dropped; "
          f"{lineage['training']['steps_run']} step(s), {lineage['training']['stop_reason']}")
    if args.evaluate:
        from kgrec.cli.train import run_evaluate

        return run_evaluate(argparse.Namespace(run_dir=str(path), split="test", threads=args.threads))
    return 0


__all__ = ["add_parser", "run_update"]

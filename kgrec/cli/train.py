"""``kgrec train`` and ``kgrec evaluate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_parsers(commands: argparse._SubParsersAction, epilog: str) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    train = commands.add_parser("train", help="train a model into a run directory", epilog=epilog, formatter_class=fmt)
    src = train.add_mutually_exclusive_group()
    src.add_argument("--data", metavar="NAME", help="data set (schema name or YAML path); default movielens-100k")
    src.add_argument("-c", "--config", metavar="CONFIG.yaml", help="run configuration (defaults fill the rest)")
    train.add_argument("--model", metavar="NAME", help="model name (shorthand for --set model.name=NAME)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. train.lr=0.01 or model.params.dim=32 (repeatable)")
    train.add_argument("--seed", type=int, help="random seed (default 2020)")
    train.add_argument("--data-dir", metavar="DIR", help="directory with the data set's files")
    train.add_argument("-o", "--out", metavar="RUN_DIR", help="run directory (default runs/DATA-MODEL-sSEED)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.add_argument("--evaluate", action="store_true", help="evaluate on the test split after training")
    train.add_argument("--strict", action="store_true", help="fail (exit 8) if loading the data drops any row")
    train.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="generator parameter of a synthetic data set, e.g. n_users=300 (repeatable)")
    dist = train.add_argument_group("distributed training (torch.distributed, launched by torch's elastic agent)")
    dist.add_argument("--nproc", type=int, default=1, metavar="N",
                      help="ranks on this machine; the global batch train.batch_size is split across all ranks "
                           "(default 1: no launcher)")
    dist.add_argument("--nnodes", type=int, default=1, metavar="M", help="machines in the job (default 1)")
    dist.add_argument("--node-rank", type=int, default=0, metavar="K",
                      help="this machine's rank, 0..M-1; node 0 hosts the rendezvous and writes the run directory")
    dist.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                      help="node 0's address, the same on every node (default on one machine: a free port of "
                           "127.0.0.1)")
    dist.add_argument("--rdzv-id", default="kgrec", metavar="ID", help="job id on the rendezvous (default kgrec)")
    from kgrec.cli import add_allow_outside

    add_allow_outside(train)
    ev = commands.add_parser("evaluate", help="full-ranking metrics, slices and CIs of a run", epilog=epilog,
                             formatter_class=fmt)
    ev.add_argument("run_dir", metavar="RUN_DIR")
    ev.add_argument("--split", choices=("test", "valid"), default="test")
    ev.add_argument("--ranking", choices=("model", "popular", "recent"), default="model",
                    help="what ranks: the run's model (default), or a ranking not based on profiling (DSA Art. 38): "
                         "training popularity, or popularity decayed with a 30-day half-life")
    ev.add_argument("--set", action="append", default=[], metavar="rerank.KEY=VALUE",
                    help="override the run's re-ranking stage, e.g. rerank.method=calibrated rerank.strength=0.3 "
                         "(repeatable; only rerank.* keys)")
    cmp_ = commands.add_parser("compare", help="mean ± 95%% CI over seeds and paired tests against a baseline",
                               epilog=epilog, formatter_class=fmt)
    cmp_.add_argument("runs", nargs="+", metavar="RUN_DIR", help="evaluated runs of one model (one per seed)")
    cmp_.add_argument("--baseline", nargs="+", required=True, metavar="RUN_DIR",
                      help="evaluated baseline runs with the same seeds (splits are matched)")
    cmp_.add_argument("--split", choices=("test", "valid"), default="test")


def run_train(args: argparse.Namespace) -> int:
    from kgrec.rundir.config import load_config, merge, parse_set
    from kgrec.yamlio import load_yaml

    overrides: dict[str, Any] = parse_set(args.set)
    if args.data:
        overrides.setdefault("data", {})["name"] = args.data
    if args.data_dir:
        overrides.setdefault("data", {})["data_dir"] = args.data_dir
    if args.model:
        overrides.setdefault("model", {})["name"] = args.model
    if args.seed is not None:
        overrides["seed"] = args.seed
    overrides["threads"] = args.threads
    from kgrec.cli.data import parse_params

    synthetic = parse_params(args.param) or None
    if synthetic:
        overrides.setdefault("data", {})["synthetic"] = synthetic  # saved in config.yaml
    cfg = load_config(args.config, overrides)  # range-checked before anything heavy is imported
    given = merge(dict(load_yaml(args.config)) if args.config else {}, overrides)
    out = Path(args.out) if args.out else Path("runs") / f"{Path(cfg.data.name).stem}-{cfg.model.name}-s{cfg.seed}"
    options = dict(overwrite=args.overwrite, resume=args.resume, progress=not args.no_progress, strict=args.strict,
                   given=given, allow_outside_paths=args.allow_outside_paths)
    from kgrec.train.distributed import Launch

    launch = Launch(nproc=args.nproc, nnodes=args.nnodes, node_rank=args.node_rank,
                    rdzv_endpoint=args.rdzv_endpoint, rdzv_id=args.rdzv_id)
    launch.check()
    if launch.distributed:
        from kgrec.train.distributed import launch_train

        run_dir = launch_train(cfg, out, launch, debug=args.debug, **options)
        if run_dir is None:  # a node other than 0: its ranks are done, node 0 writes the run
            print(f"kgrec: node {args.node_rank}: {args.nproc} rank(s) finished; node 0 writes the run directory",
                  file=sys.stderr)
            return 0
    else:
        from kgrec.train.run import train_run

        run_dir = train_run(cfg, out, **options)
    info = json.loads((run_dir / "train.json").read_text())
    metric = info.get("metric", cfg.train.metric)
    print(f"{run_dir}: {info['model']} best valid {metric} {info[f'valid_{metric}']:.4f} at epoch "
          f"{info['best_epoch']} ({info['seconds_to_best']:.1f} s to best, {info['train_seconds']:.1f} s training)")
    from kgrec.rundir.layout import STOP_REASONS

    reason = info.get("stop_reason")
    if reason == "max_seconds":
        print(f"{run_dir}: stopped by the train.max_seconds cap ({info['max_seconds']:g} s) after "
              f"{info['epochs_run']} epoch(s), before early stopping: the model may be under-trained",
              file=sys.stderr)
    elif reason is not None:
        print(f"{run_dir}: stopped: {STOP_REASONS.get(reason, reason)} after {info['epochs_run']} epoch(s)",
              file=sys.stderr)
    if args.evaluate:
        return run_evaluate(argparse.Namespace(run_dir=str(run_dir), split="test", threads=args.threads))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from kgrec.eval.report import evaluate_run
    from kgrec.runtime import configure_threads

    configure_threads(args.threads if hasattr(args, "threads") else None)  # this command's --threads

    from kgrec.rundir.config import parse_set

    path, table = evaluate_run(args.run_dir, split=args.split, ranking=getattr(args, "ranking", "model"),
                               rerank=parse_set(getattr(args, "set", []) or []))
    print(table)
    print(f"\nwrote {path}", file=sys.stderr)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from kgrec.eval.compare import compare, format_comparison

    print(format_comparison(compare(args.runs, args.baseline, split=args.split)))
    return 0

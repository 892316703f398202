"""``kgrec serve`` and ``kgrec log export``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

CONFIG_ENV = "KGREC_SERVE_CONFIG"  # the app factory's options for --workers > 1 (JSON)


def add_parsers(commands: argparse._SubParsersAction, epilog: str) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    s = commands.add_parser("serve", help="real-time top-K over HTTP with exposure logging", epilog=epilog,
                            formatter_class=fmt, description="Serve a trained run: POST /recommend, /feedback, "
                            "/items; GET /healthz, /metrics; the OpenAPI page at /docs.")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    s.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    s.add_argument("--log", metavar="DIR", help="exposure log directory (default serve-logs/RUN_NAME)")
    s.add_argument("--no-log", action="store_true", help="keep no exposure log (no /feedback)")
    s.add_argument("--durable", action="store_true",
                   help="fsync every commit (power-loss durability, with group commit); default: crash-safe")
    s.add_argument("--policy", choices=("epsilon", "deterministic"), default="epsilon",
                   help="logging policy (default epsilon: propensities > 0 for off-policy evaluation)")
    s.add_argument("--epsilon", type=float, default=0.1, help="exploration probability (default 0.1)")
    s.add_argument("--candidates", type=int, default=50, help="the policy's candidate pool M (default 50)")
    s.add_argument("--index", choices=("auto", "flat", "ivf", "hnsw"), default="auto",
                   help="ANN index (default auto: flat up to 20,000 items, else IVF)")
    s.add_argument("--nprobe", type=int, help="IVF lists probed per query (default: the index's, 96)")
    s.add_argument("--flat-max", type=int, help="largest catalogue searched exactly under --index auto "
                                                 "(default 20,000)")
    s.add_argument("--no-rerank", action="store_true", help="rank by the index's scores, without exact re-scoring "
                                                             "(not the re-ranking stage: that is --set rerank.*)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override the run config's rerank section for this server, e.g. rerank.method=calibrated "
                        "rerank.strength=0.3 (repeatable; rerank.* keys only, validated as kgrec train --set is)")
    s.add_argument("--k-max", type=int, default=100, help="largest k a request may ask for (default 100)")
    s.add_argument("--token-file", metavar="FILE", help="bearer token (first line of FILE) for /feedback and /items")
    s.add_argument("--max-body", type=int, default=1 << 20, help="request body limit in bytes (default 1 MiB)")
    s.add_argument("--seed", type=int, default=0, help="seed of the policy's draws (default 0)")
    log = commands.add_parser("log", help="exposure logs: export", epilog=epilog, formatter_class=fmt)
    sub = log.add_subparsers(dest="log_command", metavar="SUBCOMMAND")
    ex = sub.add_parser("export", help="write an exposure log as Parquet or CSV files")
    ex.add_argument("log_dir", metavar="DIR")
    ex.add_argument("-o", "--out", required=True, metavar="OUT_DIR")
    ex.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    ex.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")


def _options(args: argparse.Namespace) -> dict:
    from kgrec.errors import UsageError

    token = None
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError) as err:
            raise UsageError(f"cannot read a token from it ({err.__class__.__name__})", file=args.token_file,
                             field="--token-file") from None
        if len(token) < 16:
            raise UsageError("the token must be at least 16 characters", file=args.token_file, field="--token-file")
    rerank = rerank_overrides(args.set)
    log_dir = None if args.no_log else (args.log or str(Path("serve-logs") / Path(args.run_dir).resolve().name))
    return {"run_dir": args.run_dir, "token": token, "max_body": args.max_body, "threads": args.threads,
            "serve": {"k_max": args.k_max, "seed": args.seed, "log_dir": log_dir, "durable": args.durable,
                      "rerank": rerank,
                      "policy": {"name": args.policy, "epsilon": args.epsilon, "candidates": args.candidates},
                      "index": {"kind": args.index, "rerank": not args.no_rerank, "threads": args.threads,
                                **{k: v for k, v in (("nprobe", args.nprobe), ("flat_max", args.flat_max))
                                   if v is not None}}}}


def rerank_overrides(pairs: list[str]) -> dict[str, Any]:
    """``--set rerank.KEY=VALUE`` pairs as the ``rerank`` overrides of :class:`ServeConfig`,
    parsed and checked by the same code as ``kgrec train --set`` (a bad key or value is its
    one-line schema error, exit 3); a key outside ``rerank`` is a usage error (exit 2)."""
    from kgrec.errors import UsageError
    from kgrec.rundir.config import load_config, parse_set

    overrides = parse_set(pairs)
    keys = [pair.partition("=")[0].strip() for pair in pairs]
    other = [key for key in keys if key.split(".")[0] != "rerank"]
    if other:
        raise UsageError(f"kgrec serve takes only rerank.* keys (the run's other settings are fixed by "
                         f"training), got '{other[0]}'", field="--set")
    if overrides:
        load_config(None, overrides)
    rerank = overrides.get("rerank", {})
    return rerank if isinstance(rerank, dict) else {}


def build(options: dict):
    """The app for ``options`` (:func:`_options`): loads the run, builds the index, opens the log."""
    from kgrec.errors import UsageError
    from kgrec.runtime import configure_threads
    from kgrec.serve.app import create_app
    from kgrec.serve.index import IndexConfig
    from kgrec.serve.policy import PolicyConfig
    from kgrec.serve.service import ServeConfig, Service

    configure_threads(options["threads"])
    from threadpoolctl import threadpool_limits

    # numpy's BLAS to the same count (faiss's threads come from IndexConfig.threads)
    threadpool_limits(options["threads"])
    o = dict(options["serve"])
    try:
        config = ServeConfig(policy=PolicyConfig(**o.pop("policy")), index=IndexConfig(**o.pop("index")), **o)
    except ValueError as err:
        raise UsageError(str(err), field="serve options") from None
    return create_app(Service.from_run(options["run_dir"], config), token=options["token"],
                      max_body=options["max_body"])


def app_from_env():
    """Uvicorn's app factory for ``--workers > 1``: each worker builds its own app (index,
    exposure-log connection) and draws its policy's randomness from the seed mixed with its
    process id, so workers do not repeat each other's draws."""
    options = json.loads(os.environ[CONFIG_ENV])
    options["serve"]["seed"] = (int(options["serve"]["seed"]) * 1_000_003 + os.getpid()) % (2**32)
    return build(options)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    options = _options(args)
    if args.workers < 1:
        from kgrec.errors import UsageError

        raise UsageError(f"--workers must be at least 1, got {args.workers}", field="--workers")
    print(f"kgrec serve: {args.run_dir} on http://{args.host}:{args.port} (docs: /docs); exposure log: "
          f"{options['serve']['log_dir'] or 'off'}", file=sys.stderr)
    if args.workers == 1:
        uvicorn.run(build(options), host=args.host, port=args.port, log_level="warning", access_log=False)
        return 0
    os.environ[CONFIG_ENV] = json.dumps(options)
    uvicorn.run("kgrec.cli.serve:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning", access_log=False)
    return 0


def run_log(args: argparse.Namespace) -> int:
    if args.log_command != "export":
        print("kgrec log: give a subcommand (export)", file=sys.stderr)
        return 2
    from kgrec.serve.export import export_log

    counts = export_log(args.log_dir, args.out, fmt=args.format, overwrite=args.overwrite)
    print(json.dumps(counts, indent=2))
    return 0

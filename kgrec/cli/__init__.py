"""The ``kgrec`` command line: a thin layer that parses arguments and calls one function.

Only the standard library is imported here, so ``kgrec --help`` is fast; each command
imports what it needs when it runs. Exit codes are listed in :mod:`kgrec.errors`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from kgrec import __version__

EXIT_CODES = """exit codes:
  0 ok    1 internal error    2 usage    3 schema error    4 data error
  5 checksum mismatch    6 fetch error (no network, no cache)    7 run dir exists
  8 --strict and rows would be dropped    9 audit gate failed (report written)
  10 run or report directory locked by another live process"""


def _add_data_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="directory holding the data set's files (overrides the schema's env var and the cache)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="generator parameter of a synthetic data set, e.g. n_users=100000 (repeatable)")
    add_allow_outside(p)


def add_allow_outside(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-outside-paths", action="store_true",
                   help="accept schema file names that are absolute or lead out of the data directory "
                        "(or set KGREC_ALLOW_OUTSIDE_PATHS=1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kgrec", description="Knowledge-graph-enhanced causal recommender with an audit suite.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"kgrec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("KGREC_THREADS", "1")),
                        help="torch threads (default 1, or $KGREC_THREADS)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    data = commands.add_parser("data", help="list, fetch, inspect and validate data sets",
                               epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_cmds = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data_cmds.add_parser("list", help="the schemas in the graphs directories")
    fetch = data_cmds.add_parser("fetch", help="download (or generate) a data set into the cache and verify it")
    fetch.add_argument("name", help="schema name or path to a schema YAML")
    _add_data_source(fetch)
    info = data_cmds.add_parser("info", help="counts per node and edge type, sparsity, linked-item coverage")
    info.add_argument("name", help="schema name or path to a schema YAML")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.add_argument("--strict", action="store_true", help="fail (exit 8) if any row would be dropped")
    _add_data_source(info)
    validate = data_cmds.add_parser("validate", help="validate a schema and, unless --schema-only, its data")
    validate.add_argument("name", metavar="SCHEMA_OR_NAME", help="schema name or path to a schema YAML")
    validate.add_argument("--schema-only", action="store_true", help="check the YAML only; read no data")
    validate.add_argument("--strict", action="store_true", help="fail (exit 8) if any row would be dropped")
    _add_data_source(validate)
    from kgrec.cli.train import add_parsers

    add_parsers(commands, EXIT_CODES)
    from kgrec.cli.audit import add_parser as add_audit

    add_audit(commands, EXIT_CODES)
    from kgrec.cli.serve import add_parsers as add_serve

    add_serve(commands, EXIT_CODES)
    from kgrec.cli.update import add_parser as add_update

    add_update(commands, EXIT_CODES)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None or (args.command == "data" and args.data_command is None):
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
    from kgrec.errors import EXIT_INTERNAL, KgrecInputError

    os.environ["KGREC_THREADS"] = str(args.threads)  # read by kgrec.runtime.configure_threads

    try:
        if args.command == "data":
            from kgrec.cli.data import run

            return run(args)
        if args.command in ("train", "evaluate", "compare"):
            from kgrec.cli import train as cmds

            return {"train": cmds.run_train, "evaluate": cmds.run_evaluate, "compare": cmds.run_compare}[
                args.command](args)
        if args.command == "audit":
            from kgrec.cli.audit import run as run_audit

            return run_audit(args)
        if args.command in ("serve", "log"):
            from kgrec.cli import serve as cmds

            return cmds.run_serve(args) if args.command == "serve" else cmds.run_log(args)
        if args.command == "update":
            from kgrec.cli.update import run_update

            return run_update(args)
        parser.error(f"unknown command {args.command}")
    except KgrecInputError as err:
        if args.debug:
            raise
        print(f"kgrec: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:
        # the reader closed the pipe (``kgrec evaluate RUN | head``): stop quietly; point stdout
        # at /dev/null so the interpreter's final flush does not raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("kgrec: interrupted", file=sys.stderr)
        return 130
    return EXIT_INTERNAL


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())

"""Training cost against world size on synthetic worlds of 10^5, 10^6 and 10^7 interactions; prints Markdown tables.

    .venv/bin/python benchmarks/scale.py                                  # kgrec on the 1e5, 1e6 and 1e7 worlds
    .venv/bin/python benchmarks/scale.py --sizes 1e5 1e6 --timeout 1800   # the two smaller worlds, 30 min each
    .venv/bin/python benchmarks/scale.py --sizes 1e5 --model lightgcn --epochs 3
    .venv/bin/python benchmarks/scale.py --sizes 5000x5000x200000         # any USERSxITEMSxINTERACTIONS world
    .venv/bin/python benchmarks/scale.py --sizes 1e7 --cache-dir ~/.cache/kgrec --out runs/bench-scale

Worlds (``--sizes``; users and items grow with the interactions, density 2.5%, 0.25% and 0.1%):

    tiny    300 users x     300 items x      5,000 interactions   (the test's world)
    1e5   2,000 users x   2,000 items x    100,000 interactions
    1e6  20,000 users x  20,000 items x  1,000,000 interactions   (target: peak training RSS <= 4 GB)
    1e7 100,000 users x 100,000 items x 10,000,000 interactions   (target: peak training RSS <= 16 GB)

Each world takes three processes, one after another, each measured on its own (wall seconds and
peak RSS from ``os.wait4``, whole process including anything it waited for):

1. generation: the ``synthetic`` data set's generator writes the world into the cache (``--cache-dir``,
   default a fresh directory beside the runs, so it is always generated and timed, and the text
   vectors are encoded afresh during training; a world already in a cache given with ``--cache-dir``
   is reported as cached);
2. training: ``kgrec train --data synthetic --param n_users=... --set train.epochs=E --set
   train.patience=P --no-progress`` (the CLI, so the benchmark does not depend on the trainer's
   internals); seconds per epoch are the median of the epochs' training-step durations in the
   run's ``train.json`` history (``epoch_seconds``; validation is its own column,
   ``valid_seconds``, as it ranks up to ``train.valid_users`` users against every item, a cost of
   O(users · items · d) rather than of the edges), seconds to best and epochs come from the same
   record;
3. vector dimension: ``load_run`` + ``model.embed()`` on the finished run (``--no-dim`` skips it).

A world whose step fails or runs past ``--timeout`` (one budget per world, for all three steps) is a
row saying so, with the error's last line; a training run killed by the timeout still reports the
epochs its checkpoint recorded. Progress goes to stderr, the tables to stdout; ``--json FILE`` also
writes the rows. The targets checked at the end: 10x interactions -> at most 12x seconds per epoch
(between consecutive worlds: growth <= 1.2 x the interaction ratio), and the peak RSS of the
1e6 and 1e7 worlds' training. Run directories and the cache live in ``--out`` (default a temporary
directory, removed at the end). Nothing here is asserted by tests except the tiny world's table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from child_step import Step, last_json, run_step  # noqa: E402  (benchmarks/child_step.py)

GB = 1024 ** 3


@dataclass(frozen=True)
class World:
    name: str
    users: int
    items: int
    interactions: int
    rss_target_gb: float | None = None


WORLDS = {w.name: w for w in (
    World("tiny", 300, 300, 5_000),
    World("1e5", 2_000, 2_000, 100_000),
    World("1e6", 20_000, 20_000, 1_000_000, 4.0),
    World("1e7", 100_000, 100_000, 10_000_000, 16.0),
)}
DEFAULT_SIZES = ["1e5", "1e6", "1e7"]
GROWTH_SLACK = 1.2       # target: seconds per epoch grow at most 1.2x as fast as the interactions (10x -> 12x)

GENERATE = r"""
import json, os, sys, time
from pathlib import Path
from kgrec.cli.data import parse_params
from kgrec.graphs import load_schema, schema_path
from kgrec.graphs.sources import cache_root, locate
schema = load_schema(schema_path("synthetic"))
params = parse_params(json.loads(sys.argv[1]))
root = cache_root() / schema.name
before = set(os.listdir(root)) if root.is_dir() else set()
t0 = time.perf_counter()
loc = locate(schema, synthetic=params)
seconds = time.perf_counter() - t0
directory = Path(loc.directory)
truth = json.loads((directory / "truth.json").read_text())
print(json.dumps({"seconds": seconds, "generated": directory.name not in before, "directory": str(directory),
                  "counts": truth.get("counts", {})}))
"""

EMBED = r"""
import json, sys, time
import torch
from kgrec.runtime import configure_threads
configure_threads(int(sys.argv[2]))
from kgrec.rundir.load import load_run
t0 = time.perf_counter()
run = load_run(sys.argv[1])
run.model.eval()
with torch.no_grad():
    users, items = run.model.embed()
print(json.dumps({"user_dim": int(users.shape[-1]), "item_dim": int(items.shape[-1]),
                  "seconds": time.perf_counter() - t0}))
"""


@dataclass
class Row:
    world: World
    model: str
    status: str = "ok"
    users: int | None = None
    items: int | None = None
    interactions: int | None = None
    gen: Step | None = None
    gen_cached: bool = False
    train: Step | None = None
    epochs: int | None = None
    stop_reason: str | None = None
    sec_per_epoch: float = float("nan")
    valid_seconds: float = float("nan")  # median seconds of one early-stopping validation
    sec_to_best: float = float("nan")
    train_seconds: float = float("nan")
    dim: str = "–"
    growth: float = float("nan")
    growth_of: float = float("nan")   # the interaction ratio the growth is measured against
    notes: list[str] = field(default_factory=list)


def log(t0: float, msg: str) -> None:
    print(f"[scale {time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def epoch_seconds(history: list[dict[str, Any]]) -> list[float]:
    """Durations of the trained epochs: the differences of the history's cumulative ``seconds``
    (an ``epoch_seconds`` field, if a trainer records one, is taken as it is)."""
    epochs = [h for h in history if h.get("loss") is not None and h.get("seconds") is not None]
    if epochs and all("epoch_seconds" in h for h in epochs):
        return [float(h["epoch_seconds"]) for h in epochs]
    out, prev = [], 0.0
    for h in epochs:
        out.append(float(h["seconds"]) - prev)
        prev = float(h["seconds"])
    return out


def parse_size(spec: str) -> World:
    if spec in WORLDS:
        return WORLDS[spec]
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)", spec.replace("_", "").replace(",", ""))
    if not m:
        raise argparse.ArgumentTypeError(f"unknown size {spec!r}: one of {', '.join(WORLDS)} or USERSxITEMSxINTERACTIONS")
    users, items, inter = map(int, m.groups())
    return World(spec, users, items, inter)


def bench_world(world: World, args: argparse.Namespace, root: Path, cache: Path, t0: float) -> Row:
    row = Row(world, args.model)
    wdir = root / world.name
    wdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KGREC_CACHE_DIR": str(cache), "KGREC_THREADS": str(args.threads)}
    params = [f"n_users={world.users}", f"n_items={world.items}", f"n_interactions={world.interactions}",
              *args.param]
    deadline = time.perf_counter() + args.timeout
    label = f"{world.name} ({world.users:,} users x {world.items:,} items x {world.interactions:,} interactions)"

    log(t0, f"{label}: generating")
    row.gen = gen = run_step([sys.executable, "-c", GENERATE, json.dumps(params)], env, wdir, "generate",
                             deadline - time.perf_counter())
    info = last_json(gen.stdout) if gen.ok else None
    if info is None:
        row.status = ("generation timed out" if gen.timed_out else "generation failed") + f": {gen.error()}"
        log(t0, f"{world.name}: {row.status}")
        return row
    row.gen_cached = not info["generated"]
    counts = info.get("counts", {})
    row.users, row.items, row.interactions = counts.get("users"), counts.get("items"), counts.get("interactions")
    log(t0, f"{world.name}: {'found in the cache' if row.gen_cached else 'generated'} in {gen.seconds:.1f} s "
            f"(peak RSS {gen.rss / GB:.2f} GB)")

    run_dir = wdir / "run"
    cmd = [sys.executable, "-m", "kgrec", "--threads", str(args.threads), "train", "--data", "synthetic",
           "--model", args.model, "--seed", str(args.seed), *[x for p in params for x in ("--param", p)],
           "--set", f"train.epochs={args.epochs}", "--set", f"train.patience={args.patience}",
           *[x for kv in args.set for x in ("--set", kv)], "-o", str(run_dir), "--overwrite", "--no-progress"]
    log(t0, f"{world.name}: training {args.model} (at most {args.epochs} epochs)")
    row.train = tr = run_step(cmd, env, wdir, "train", deadline - time.perf_counter())
    if "[kgrec.synthetic" in tr.stderr:
        row.notes.append("training regenerated the world")
    record_path = run_dir / "train.json"
    if tr.ok and record_path.is_file():
        record = json.loads(record_path.read_text())
        history = record.get("history", [])
        row.epochs, row.stop_reason = record.get("epochs_run"), record.get("stop_reason")
        row.sec_to_best = float(record.get("seconds_to_best", math.nan))
        row.train_seconds = float(record.get("train_seconds", math.nan))
        data_path = run_dir / "data.json"
        if data_path.is_file():
            data = json.loads(data_path.read_text())
            nodes = data.get("nodes", {})
            row.users, row.items = nodes.get("user", row.users), nodes.get("item", row.items)
            row.interactions = data.get("interactions", row.interactions)
    else:
        history = []
        ckpt = Path(f"{run_dir}.partial") / "checkpoint.json"
        if ckpt.is_file():   # a killed run: the epochs its last checkpoint recorded
            try:
                state = json.loads(ckpt.read_text()).get("state", {})
                history = state.get("history", [])
                row.epochs = state.get("epoch")
                row.sec_to_best = float(state.get("seconds_to_best", math.nan)) if state.get("best_epoch", -1) > 0 \
                    else math.nan
                row.train_seconds = float(state.get("elapsed", math.nan))
            except (ValueError, AttributeError):
                history = []
        if tr.timed_out:
            row.status = f"training timed out after {tr.seconds:.0f} s" + (
                f" ({row.epochs} epoch(s) checkpointed, run unfinished)" if row.epochs else "")
        else:
            row.status = f"training failed (exit {tr.rc}): {tr.error()}"
    durations = epoch_seconds(history)
    valids = [float(h["valid_seconds"]) for h in history if h.get("valid_seconds") is not None]
    if valids:
        row.valid_seconds = statistics.median(valids)
    if durations:
        row.sec_per_epoch = statistics.median(durations)
    elif tr.ok and history:           # closed form: one fit, no epochs
        row.sec_per_epoch = math.nan
        row.notes.append("closed-form fit")
    log(t0, f"{world.name}: {row.status if row.status != 'ok' else 'trained'}; {fmt(row.epochs)} epoch(s) recorded, "
            f"{fmt(row.sec_per_epoch, '.3f')} s/epoch, {tr.seconds:.1f} s wall, peak RSS {tr.rss / GB:.2f} GB")
    if not tr.ok or args.no_dim:
        return row

    log(t0, f"{world.name}: loading the run for its vectors")
    emb = run_step([sys.executable, "-c", EMBED, str(run_dir), str(args.threads)], env, wdir, "embed",
                   deadline - time.perf_counter())
    dims = last_json(emb.stdout) if emb.ok else None
    if dims is None:
        row.dim = "timeout" if emb.timed_out else "error"
        row.notes.append(f"vectors: {emb.error()}")
    else:
        u, i = dims["user_dim"], dims["item_dim"]
        row.dim = str(i) if u == i else f"{u} / {i}"
        log(t0, f"{world.name}: vectors of {row.dim} dims ({emb.seconds:.1f} s, peak RSS {emb.rss / GB:.2f} GB)")
    return row


def fmt(x: float | int | None, spec: str = ",") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(x, spec)


def print_tables(rows: list[Row], args: argparse.Namespace) -> None:
    print(f"\nmodel {args.model}, seed {args.seed}, {args.threads} torch thread(s), at most {args.epochs} epochs "
          f"(patience {args.patience})" + (f", {' '.join(args.set)}" if args.set else "")
          + (f", generator {' '.join(args.param)}" if args.param else "") + "\n")
    print("| world | users | items | interactions | model | epochs | s / epoch (median) | growth of s / epoch "
          "| s / validation | s to best | train s (wall) | peak RSS GB (train) | dim | gen s | peak RSS GB (gen) "
          "| status |")
    print("|" + "---|" * 16)
    for r in rows:
        growth = "–" if not math.isfinite(r.growth) else f"{r.growth:.2f}x (interactions {r.growth_of:.3g}x)"
        gen_s = "–" if r.gen is None else ("cached" if r.gen_cached else fmt(r.gen.seconds, ".1f"))
        status = r.status + (f" ({'; '.join(r.notes)})" if r.notes else "")
        if r.stop_reason:
            status = f"{status}, stop: {r.stop_reason}"
        print("| " + " | ".join([
            r.world.name, fmt(r.users), fmt(r.items), fmt(r.interactions), r.model, fmt(r.epochs),
            fmt(r.sec_per_epoch, ".3f"), growth, fmt(r.valid_seconds, ".2f"), fmt(r.sec_to_best, ".1f"),
            "–" if r.train is None else fmt(r.train.seconds, ".1f"),
            "–" if r.train is None else fmt(r.train.rss / GB, ".2f"), r.dim,
            gen_s, "–" if r.gen is None else fmt(r.gen.rss / GB, ".2f"), status.replace("|", "/")]) + " |")
    checks = []
    for prev, r in zip(rows, rows[1:]):
        if math.isfinite(r.growth):
            limit = GROWTH_SLACK * r.growth_of
            checks.append((f"s / epoch {prev.world.name} -> {r.world.name}: {r.growth:.2f}x <= {limit:.3g}x",
                           r.growth <= limit))
    for r in rows:
        if r.world.rss_target_gb is not None and r.train is not None and math.isfinite(r.train.rss):
            gb = r.train.rss / GB
            met = ("yes" if r.train.ok else "not known: the run did not finish") if gb <= r.world.rss_target_gb \
                else "NO"
            checks.append((f"peak training RSS {r.world.name}: {gb:.2f} GB <= {r.world.rss_target_gb:g} GB", met))
    if checks:
        print("\n| target | met |\n|---|---|")
        for text, ok in checks:
            print(f"| {text} | {ok if isinstance(ok, str) else 'yes' if ok else 'NO'} |")


def main(argv: list[str] | None = None) -> int:
    worlds_help = "\n".join(f"  {w.name:<5} {w.users:>9,} users x {w.items:>9,} items x {w.interactions:>12,} "
                            "interactions" + (f" (peak RSS target {w.rss_target_gb:g} GB)" if w.rss_target_gb else "")
                            for w in WORLDS.values())
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="worlds:\n" + worlds_help)
    ap.add_argument("--sizes", nargs="+", type=parse_size, default=[WORLDS[s] for s in DEFAULT_SIZES],
                    metavar="SIZE", help=f"worlds: {', '.join(WORLDS)} or USERSxITEMSxINTERACTIONS "
                                         f"(default {' '.join(DEFAULT_SIZES)})")
    ap.add_argument("--model", default="kgrec")
    ap.add_argument("--epochs", type=int, default=5, help="cap on epochs per world (train.epochs; default 5)")
    ap.add_argument("--patience", type=int, default=2,
                    help="evaluations without improvement before stopping (train.patience; default 2)")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of every child process (default 1)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every training run, e.g. train.batch_size=8192 (repeatable)")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="extra generator parameter for every world, e.g. seed=1 (repeatable)")
    ap.add_argument("--timeout", type=float, default=3600.0,
                    help="seconds per world for generation, training and loading together (default 3600)")
    ap.add_argument("--out", help="directory for the worlds' run directories and logs (default: a temporary "
                                  "directory, removed at the end)")
    ap.add_argument("--cache-dir", help="KGREC_CACHE_DIR of the children (default OUT/cache, so every world is "
                                        "generated and timed; give the kgrec cache to reuse worlds)")
    ap.add_argument("--no-dim", action="store_true", help="skip loading each run for its vector dimension")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    if args.epochs < 1 or args.patience < 1 or args.threads < 1:
        ap.error("--epochs, --patience and --threads must be at least 1")
    worlds = sorted(args.sizes, key=lambda w: (w.interactions, w.users * w.items))
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="kgrec-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache_dir).expanduser() if args.cache_dir else root / "cache"
    t0 = time.perf_counter()
    rows: list[Row] = []
    try:
        for world in worlds:
            try:
                row = bench_world(world, args, root, cache, t0)
            except Exception as err:  # a broken world is a row, not the end of the benchmark
                row = Row(world, args.model, status=f"benchmark error: {type(err).__name__}: {err}")
                log(t0, f"{world.name}: {row.status}")
            if rows and math.isfinite(row.sec_per_epoch) and math.isfinite(rows[-1].sec_per_epoch):
                prev = rows[-1]
                row.growth = row.sec_per_epoch / prev.sec_per_epoch
                row.growth_of = (row.interactions or world.interactions) / (prev.interactions or prev.world.interactions)
            rows.append(row)
    finally:
        if not args.out:
            shutil.rmtree(root, ignore_errors=True)
    print_tables(rows, args)
    if args.json:
        Path(args.json).write_text(json.dumps([row_json(r) for r in rows], indent=2) + "\n")
    return 0


def row_json(r: Row) -> dict[str, Any]:
    def num(x: Any) -> Any:
        return None if isinstance(x, float) and not math.isfinite(x) else x

    return {"world": r.world.name, "users": r.users, "items": r.items, "interactions": r.interactions,
            "model": r.model, "status": r.status, "notes": r.notes, "epochs": r.epochs, "stop_reason": r.stop_reason,
            "seconds_per_epoch": num(r.sec_per_epoch), "growth": num(r.growth), "interaction_ratio": num(r.growth_of),
            "seconds_to_best": num(r.sec_to_best), "train_seconds": num(r.train_seconds),
            "train_wall_seconds": None if r.train is None else num(r.train.seconds),
            "train_peak_rss_bytes": None if r.train is None else num(r.train.rss), "dim": r.dim,
            "generation_cached": r.gen_cached, "generation_seconds": None if r.gen is None else num(r.gen.seconds),
            "generation_peak_rss_bytes": None if r.gen is None else num(r.gen.rss)}


if __name__ == "__main__":
    sys.exit(main())

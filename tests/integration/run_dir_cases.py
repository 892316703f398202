"""Hardening cases for run directories, run through the real CLI (``python -m kgrec``).

Shared by ``tests/integration/test_run_dir_hardening.py`` (which asserts on them) and
``benchmarks/run_dir_cases.py`` (which prints the command, exit code, time and message of
each). Every case gets a fresh temporary directory and the module's small finished run.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WORLD = ["--set", "data.name=synthetic", "--set", "data.split.seed=1"]
LONG = ["--set", "train.epochs=300", "--set", "train.patience=300", "--no-progress"]


@dataclass
class Outcome:
    """What one case ran, and what it printed (``stderr`` of the command under test)."""

    command: list[str]
    returncode: int
    stderr: str
    seconds: float
    facts: dict[str, object] = field(default_factory=dict)  # what a case checked besides the message

    def error_lines(self) -> list[str]:
        """The ``kgrec:`` error lines (load warnings, also ``kgrec:``-prefixed, left out)."""
        return [ln for ln in self.stderr.splitlines() if ln.startswith("kgrec:") and not ln.startswith("kgrec: warning:")]


def kgrec(args: list[str], env: dict[str, str], *, timeout: float = 300) -> Outcome:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kgrec", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, check=False, timeout=timeout)
    return Outcome(["kgrec", *args], proc.returncode, proc.stderr, time.perf_counter() - t0)


def train_small(out: Path, env: dict[str, str]) -> None:
    """A small finished LightGCN run (2 epochs, dim 8, on the default synthetic world)."""
    proc = kgrec(["train", "--model", "lightgcn", *WORLD, "--set", "train.epochs=2", "--set", "model.params.dim=8",
                  "-o", str(out), "--no-progress"], env)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)


def interrupted(target: Path, env: dict[str, str], *, keep_running: bool) -> subprocess.Popen:
    """Start a long BPR-MF training into ``target`` and wait for its first checkpoint; kill
    it unless ``keep_running``."""
    proc = subprocess.Popen([sys.executable, "-m", "kgrec", "train", "--model", "bprmf", *WORLD, *LONG, "-o",
                             str(target)], env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    marker = target.with_name(target.name + ".partial") / "checkpoint.json"
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    if not keep_running:
        proc.kill()
        proc.wait()
    return proc


class _Payload:
    """Unpickling this runs ``touch MARKER``: the proof that nothing unpickles it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


Runner = Callable[[Path, dict[str, str], Path], Outcome]


@dataclass(frozen=True)
class Case:
    id: str
    exit_code: int
    needles: tuple[str, ...]  # substrings of the one-line error (or of stderr, for exit 0)
    run: Runner


def _second_writer(extra: list[str]) -> Runner:
    def run(tmp: Path, env: dict[str, str], finished: Path) -> Outcome:
        target = tmp / "busy"
        first = interrupted(target, env, keep_running=True)
        try:
            out = kgrec(["train", "--model", "bprmf", *WORLD, *LONG, "-o", str(target), *extra], env)
            out.facts = {"first_writer_still_running": first.poll() is None, "first_pid": first.pid}
        finally:
            first.kill()
            first.wait()
        return out
    return run


def _stale_lock(tmp: Path, env: dict[str, str], finished: Path) -> Outcome:
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp / "run.lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "started": "then"}))
    out = kgrec(["train", "--model", "mostpop", *WORLD, "-o", str(tmp / "run"), "--no-progress"], env)
    out.facts = {"lock_left": (tmp / "run.lock").exists(), "finished": (tmp / "run" / "train.json").is_file()}
    return out


def _pickle_resume(as_tensors: bool) -> Runner:
    def run(tmp: Path, env: dict[str, str], finished: Path) -> Outcome:
        marker = tmp / "PWNED"
        payload = pickle.dumps(_Payload(marker))
        partial = tmp / "evil.partial"
        shutil.copytree(finished, partial)
        if as_tensors:
            (partial / "checkpoint.json").write_text(json.dumps({"format": 1, "sha256": "0" * 64}))
            (partial / "checkpoint.safetensors").write_bytes(payload)
        else:
            (partial / "checkpoint.pt").write_bytes(payload)
        out = kgrec(["train", "--model", "lightgcn", *WORLD, "-o", str(tmp / "evil"), "--resume"], env)
        out.facts = {"payload_ran": marker.exists()}
        return out
    return run


def _corrupt(edit: Callable[[Path, Path], None], command: str = "evaluate") -> Runner:
    """Edit a copy of the finished run (``edit(run_dir, marker)``), then evaluate or audit it."""
    def run(tmp: Path, env: dict[str, str], finished: Path) -> Outcome:
        marker = tmp / "PWNED"
        run_dir = tmp / finished.name
        shutil.copytree(finished, run_dir)
        edit(run_dir, marker)
        args = ["evaluate", str(run_dir)] if command == "evaluate" else \
            ["audit", str(run_dir), "-o", str(tmp / "report"), "--no-browser"]
        out = kgrec(args, env)
        out.facts = {"payload_ran": marker.exists(), "report_left": (tmp / "report").exists(),
                     "partial_left": (tmp / "report.partial").exists()}
        return out
    return run


def _pickled_weights(run_dir: Path, marker: Path) -> None:
    (run_dir / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker)))


def _truncate(name: str, keep: int) -> Callable[[Path, Path], None]:
    return lambda r, _: (r / name).write_bytes((r / name).read_bytes()[:keep])


def _other_dim(r: Path, _: Path) -> None:
    (r / "config.yaml").write_text((r / "config.yaml").read_text().replace("dim: 8", "dim: 16"))


def _audit_without_plan(tmp: Path, env: dict[str, str], finished: Path) -> Outcome:
    run_dir = tmp / "tiny-run"
    proc = kgrec(["train", "--data", str(FIXTURES / "tiny.yaml"), "--data-dir", str(FIXTURES / "tiny"), "--model",
                  "mostpop", "-o", str(run_dir), "--no-progress"], env)
    assert proc.returncode == 0, proc.stderr
    out = kgrec(["audit", str(run_dir), "-o", str(tmp / "rep")], env)
    out.facts = {"report_left": (tmp / "rep").exists(), "partial_left": (tmp / "rep.partial").exists()}
    return out


def _resume_other_options(tmp: Path, env: dict[str, str], finished: Path) -> Outcome:
    interrupted(tmp / "r", env, keep_running=False)
    return kgrec(["train", "--model", "bprmf", *WORLD, *LONG, "-o", str(tmp / "r"), "--resume", "--set",
                  "train.lr=0.05"], env)


def _max_seconds(tmp: Path, env: dict[str, str], finished: Path) -> Outcome:
    out = kgrec(["train", "--model", "bprmf", *WORLD, "--set", "train.epochs=500", "--set", "train.patience=500",
                 "--set", "train.max_seconds=0.5", "-o", str(tmp / "capped"), "--no-progress"], env)
    out.facts = json.loads((tmp / "capped" / "train.json").read_text()) if out.returncode == 0 else {}
    return out


def _warnings(strict: bool) -> Runner:
    def run(tmp: Path, env: dict[str, str], finished: Path) -> Outcome:
        data = tmp / "tiny"
        shutil.copytree(FIXTURES / "tiny", data)
        with open(data / "ratings.tsv", "a") as f:
            f.write("u_ghost\ti1\t5\t999\n")  # line 20: a user that does not exist
        out = kgrec(["train", "--data", str(FIXTURES / "tiny.yaml"), "--data-dir", str(data), "--model", "mostpop",
                     "--no-progress", "-o", str(tmp / "w"), *(["--strict"] if strict else [])], env)
        out.facts = {"run_left": (tmp / "w").exists(), "partial_left": (tmp / "w.partial").exists()}
        return out
    return run


def _threads(tmp: Path, env: dict[str, str], finished: Path) -> Outcome:
    run_dir = tmp / finished.name
    shutil.copytree(finished, run_dir)
    out = kgrec(["--threads", "2", "evaluate", str(run_dir)], env)
    out.facts = {"torch_threads": json.loads((run_dir / "metrics.json").read_text()).get("torch_threads")}
    return out


def _closed_pipe(tmp: Path, env: dict[str, str], finished: Path) -> Outcome:
    """``kgrec evaluate RUN | head``: the reader is gone before anything is printed."""
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "kgrec", "evaluate", str(finished)], env={**os.environ, **env},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    err = child.stderr.read().decode()
    code = child.wait(timeout=300)
    return Outcome(["kgrec", "evaluate", str(finished), "|", "head"], code, err, time.perf_counter() - t0)


def _config(args: list[str], yaml_text: str | None = None) -> Runner:
    """A run config value out of range: refused before anything is loaded."""
    def run(tmp: Path, env: dict[str, str], finished: Path) -> Outcome:
        extra = list(args)
        if yaml_text is not None:
            (tmp / "bad.yaml").write_text(yaml_text)
            extra = ["-c", str(tmp / "bad.yaml"), *extra]
        out = kgrec(["train", *extra, "-o", str(tmp / "x")], env)
        out.facts = {"run_left": (tmp / "x").exists(), "partial_left": (tmp / "x.partial").exists()}
        return out
    return run


CASES: list[Case] = [
    Case("config: batch size 0 (--set)", 3, ("--set", "field 'train.batch_size'", "must be a positive integer"),
         _config(["--set", "train.batch_size=0"])),
    Case("config: metric name (YAML file, line)", 3, ("bad.yaml:3", "field 'train.metric'"),
         _config([], "seed: 1\ntrain:\n  metric: NDCG@10\n")),
    Case("config: split ratios not summing to 1", 3, ("field 'data.split.ratios'",),
         _config(["--set", "data.split.ratios=[0.8, 0.1, 0.2]"])),
    Case("second writer into a run being trained", 10, ("is being written by pid", "busy.lock"),
         _second_writer(["--overwrite"])),
    Case("--resume of a run being trained", 10, ("is being written by pid",), _second_writer(["--resume"])),
    Case("stale lock (its pid is gone)", 0, ("note: breaking a stale lock",), _stale_lock),
    Case("pickle payload as checkpoint.pt, --resume", 4, ("nothing to resume",), _pickle_resume(False)),
    Case("pickle payload as checkpoint.safetensors, --resume", 4, ("checkpoint.safetensors", "sha256"),
         _pickle_resume(True)),
    Case("pickle payload as model.safetensors, evaluate", 4, ("model.safetensors",), _corrupt(_pickled_weights)),
    Case("truncated weights, evaluate", 4, ("model.safetensors",), _corrupt(_truncate("model.safetensors", 100))),
    Case("empty weights, evaluate", 4, ("model.safetensors", "empty"),
         _corrupt(lambda r, _: (r / "model.safetensors").write_bytes(b""))),
    Case("truncated weights, audit", 4, ("model.safetensors",),
         _corrupt(_truncate("model.safetensors", 100), "audit")),
    Case("missing split, evaluate", 4, ("split.npz", "missing"), _corrupt(lambda r, _: (r / "split.npz").unlink())),
    Case("truncated split, evaluate", 4, ("split.npz",), _corrupt(_truncate("split.npz", 50))),
    Case("missing train.json, evaluate", 4, ("train.json", "missing"),
         _corrupt(lambda r, _: (r / "train.json").unlink())),
    Case("data.json not JSON, evaluate", 4, ("data.json", "not valid JSON"),
         _corrupt(lambda r, _: (r / "data.json").write_text("{not json"))),
    Case("config does not match the weights, evaluate", 4, ("model.safetensors", "shape"), _corrupt(_other_dim)),
    Case("audit with no plan for the data set", 3, ("no audit plan for data set 'tiny'",), _audit_without_plan),
    Case("--resume with a different option", 2, ("--resume", "train.lr (saved 0.001, given 0.05)"),
         _resume_other_options),
    Case("training stopped by train.max_seconds", 0, ("stopped by the train.max_seconds cap (0.5 s)",), _max_seconds),
    Case("train prints the loader's warnings", 0, ("warning:", "ratings.tsv:20"), _warnings(False)),
    Case("train --strict with a dropped row", 8, ("strict mode", "ratings.tsv:20"), _warnings(True)),
    Case("--threads 2 evaluate", 0, (), _threads),
    Case("evaluate into a closed pipe", 0, (), _closed_pipe),
]

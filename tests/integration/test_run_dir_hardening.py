"""Run directories through the real CLI: locks against concurrent writers, no pickle, corrupt
or incomplete runs, --resume with other options, stop reasons, load warnings, --threads,
and a closed stdout pipe."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORLD = ["--set", "data.name=synthetic", "--set", "data.split.seed=1"]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def kgrec(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kgrec", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, check=False, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("kgrec:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return {"KGREC_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, env) -> Path:
    """A small finished LightGCN run (2 epochs on the default synthetic world)."""
    run = tmp_path_factory.mktemp("runs") / "lgcn"
    proc = kgrec("train", "--model", "lightgcn", *WORLD, "--set", "train.epochs=2", "--set", "model.params.dim=8",
                 "-o", str(run), "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    return run


def copy_of(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / run.name
    shutil.copytree(run, out)
    return out


# ----------------------------------------------------------------------------- concurrent writers
def test_second_writer_is_refused_at_once_and_stale_locks_are_broken(tmp_path, env) -> None:
    target = tmp_path / "busy"
    args = ["train", "--model", "bprmf", *WORLD, "--set", "train.epochs=300", "--set", "train.patience=300",
            "--no-progress", "-o", str(target)]
    first = subprocess.Popen([sys.executable, "-m", "kgrec", *args], env={**os.environ, **env},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = tmp_path / "busy.lock"
    try:
        deadline = time.time() + 120
        while not (tmp_path / "busy.partial" / "checkpoint.json").exists() and time.time() < deadline:
            time.sleep(0.1)
        assert lock.is_file() and json.loads(lock.read_text())["pid"] == first.pid
        for extra in (["--overwrite"], ["--resume"]):
            t0 = time.perf_counter()
            second = kgrec(*args, *extra, env=env)
            one_line_error(second, 10, f"pid {first.pid}", "busy.lock")
            assert time.perf_counter() - t0 < 15  # refused before any data is loaded
        assert first.poll() is None  # the first writer was not disturbed
    finally:
        first.kill()
        first.wait()
    assert not target.exists()  # killed before finishing: nothing half-written in place
    # the killed writer's lock is stale: the next run breaks it, says so, and finishes
    done = kgrec("train", "--model", "mostpop", *WORLD, "-o", str(target), "--no-progress", env=env)
    assert done.returncode == 0, done.stderr
    assert "breaking a stale lock" in done.stderr and not lock.exists()
    assert json.loads((target / "train.json").read_text())["model"] == "mostpop"


# ----------------------------------------------------------------------------- no pickle
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_in_the_run_directory_is_never_executed(tmp_path, env, finished) -> None:
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_Payload(marker))
    # 1. an old-style checkpoint.pt: --resume does not read it
    target = tmp_path / "evil"
    partial = tmp_path / "evil.partial"
    shutil.copytree(finished, partial)
    (partial / "checkpoint.pt").write_bytes(payload)
    proc = kgrec("train", "--model", "lightgcn", *WORLD, "-o", str(target), "--resume", env=env)
    one_line_error(proc, 4, "nothing to resume")
    # 2. a checkpoint whose tensor file is a pickle: rejected by its hash, never unpickled
    (partial / "checkpoint.json").write_text(json.dumps({"format": 1, "sha256": "0" * 64}))
    (partial / "checkpoint.safetensors").write_bytes(payload)
    proc = kgrec("train", "--model", "lightgcn", *WORLD, "-o", str(target), "--resume", env=env)
    one_line_error(proc, 4, "checkpoint.safetensors", "sha256")
    # 3. weights replaced by a pickle: evaluate refuses them as unreadable
    run = copy_of(finished, tmp_path)
    (run / "model.safetensors").write_bytes(payload)
    one_line_error(kgrec("evaluate", str(run), env=env), 4, "model.safetensors")
    assert not marker.exists()


def test_no_pickle_loader_in_the_package() -> None:
    """No code path of kgrec can unpickle: no pickle/torch.load/allow_pickle=True anywhere."""
    package = Path(__file__).resolve().parents[2] / "kgrec"
    offenders = []
    for path in package.rglob("*.py"):
        text = path.read_text()
        for needle in ("import pickle", "torch.load(", "allow_pickle=True", "pickle.load", "joblib.load", "np.load(allow_pickle"):
            if needle in text:
                offenders.append(f"{path.relative_to(package)}: {needle}")
    assert offenders == []


# ----------------------------------------------------------------------------- corrupt run directories
CORRUPTIONS = {
    "truncated weights": (lambda r: (r / "model.safetensors").write_bytes((r / "model.safetensors").read_bytes()[:100]),
                          "model.safetensors"),
    "empty weights": (lambda r: (r / "model.safetensors").write_bytes(b""), "model.safetensors"),
    "missing split": (lambda r: (r / "split.npz").unlink(), "split.npz"),
    "truncated split": (lambda r: (r / "split.npz").write_bytes((r / "split.npz").read_bytes()[:50]), "split.npz"),
    "missing train record": (lambda r: (r / "train.json").unlink(), "train.json"),
    "broken data record": (lambda r: (r / "data.json").write_text("{not json"), "data.json"),
    "config does not match the weights": (
        lambda r: (r / "config.yaml").write_text((r / "config.yaml").read_text().replace("dim: 8", "dim: 16")),
        "model.safetensors"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_run_directory_is_a_data_error_naming_the_file(tmp_path, env, finished, case) -> None:
    corrupt, name = CORRUPTIONS[case]
    run = copy_of(finished, tmp_path)
    corrupt(run)
    one_line_error(kgrec("evaluate", str(run), env=env), 4, name)


def test_audit_of_a_corrupt_run_leaves_no_partial_report(tmp_path, env, finished) -> None:
    run = copy_of(finished, tmp_path)
    (run / "model.safetensors").write_bytes(b"\0" * 10)
    out = tmp_path / "report"
    one_line_error(kgrec("audit", str(run), "-o", str(out), "--no-browser", env=env), 4, "model.safetensors")
    assert not out.exists() and not (tmp_path / "report.partial").exists()


def test_audit_without_a_plan_fails_before_loading(tmp_path, env) -> None:
    run = tmp_path / "tiny-run"
    proc = kgrec("train", "--data", str(FIXTURES / "tiny.yaml"), "--data-dir", str(FIXTURES / "tiny"), "--model",
                 "mostpop", "-o", str(run), "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "rep"
    t0 = time.perf_counter()
    one_line_error(kgrec("audit", str(run), "-o", str(out), env=env), 3, "no audit plan for data set 'tiny'")
    assert time.perf_counter() - t0 < 10
    assert not out.exists() and not (tmp_path / "rep.partial").exists()


# ----------------------------------------------------------------------------- resume, stop reason, warnings
def test_resume_with_other_options_says_so(tmp_path, env) -> None:
    target = tmp_path / "r"
    args = ["train", "--model", "bprmf", *WORLD, "--set", "train.epochs=300", "--set", "train.patience=300",
            "--no-progress", "-o", str(target)]
    proc = subprocess.Popen([sys.executable, "-m", "kgrec", *args], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (tmp_path / "r.partial" / "checkpoint.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    again = kgrec(*args, "--resume", "--set", "train.lr=0.05", env=env)
    one_line_error(again, 2, "--resume", "train.lr (saved 0.001, given 0.05)")


def test_max_seconds_stop_is_announced_and_recorded(tmp_path, env) -> None:
    run = tmp_path / "capped"
    proc = kgrec("train", "--model", "bprmf", *WORLD, "--set", "train.epochs=500", "--set", "train.patience=500",
                 "--set", "train.max_seconds=0.5", "-o", str(run), "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "stopped by the train.max_seconds cap (0.5 s)" in proc.stderr
    record = json.loads((run / "train.json").read_text())
    assert record["stop_reason"] == "max_seconds" and record["epochs_run"] < 500


def test_train_prints_load_warnings_and_strict_exits_8(tmp_path, env) -> None:
    data = tmp_path / "tiny"
    shutil.copytree(FIXTURES / "tiny", data)
    with open(data / "ratings.tsv", "a") as f:
        f.write("u_ghost\ti1\t5\t999\n")
    base = ["train", "--data", str(FIXTURES / "tiny.yaml"), "--data-dir", str(data), "--model", "mostpop",
            "--no-progress"]
    proc = kgrec(*base, "-o", str(tmp_path / "a"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "warning:" in proc.stderr and "ratings.tsv:20" in proc.stderr
    one_line_error(kgrec(*base, "-o", str(tmp_path / "b"), "--strict", env=env), 8, "ratings.tsv:20")
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()


# ----------------------------------------------------------------------------- --threads, pipes
def test_evaluate_uses_its_own_threads_and_survives_a_closed_pipe(tmp_path, env, finished) -> None:
    run = copy_of(finished, tmp_path)
    proc = kgrec("--threads", "2", "evaluate", str(run), env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "metrics.json").read_text())["torch_threads"] == 2
    # the reader goes away before anything is printed (``kgrec evaluate RUN | head``)
    child = subprocess.Popen([sys.executable, "-m", "kgrec", "evaluate", str(run)], env={**os.environ, **env},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err

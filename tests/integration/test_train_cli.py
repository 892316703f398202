"""kgrec train / evaluate end to end through the CLI, on a small synthetic world."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from cli import kgrec  # noqa: E402  (tests/integration/cli.py)

WORLD = ["--set", "data.name=synthetic"]


def test_train_evaluate_and_refuse_overwrite(tmp_path, env) -> None:
    run = tmp_path / "run"
    proc = kgrec("train", "--model", "lightgcn", *WORLD, "--set", "train.epochs=3", "--seed", "5", "-o", str(run),
                 "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    for name in ("config.yaml", "schema.yaml", "data.json", "split.npz", "idmaps.json", "model.safetensors",
                 "train.json", "versions.json"):
        assert (run / name).is_file(), name
    assert not (tmp_path / "run.partial").exists()
    assert "seed: 5" in (run / "config.yaml").read_text()
    assert json.loads((run / "versions.json").read_text())["torch"].startswith("2.")
    ev = kgrec("evaluate", str(run), env=env)
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["ndcg@10"] <= 1.0 and "recall@20" in metrics["test"]
    assert metrics["train_seconds"] > 0
    assert "group=A" in metrics["slices"]["test"] and "| ndcg |" in (run / "metrics.md").read_text()
    again = kgrec("train", "--model", "lightgcn", *WORLD, "-o", str(run), env=env)
    assert again.returncode == 7 and "--overwrite" in again.stderr


def test_same_seed_gives_identical_weights(tmp_path, env) -> None:
    outs = []
    for name in ("a", "b"):
        proc = kgrec("train", "--model", "bprmf", *WORLD, "--set", "train.epochs=2", "-o", str(tmp_path / name),
                     "--no-progress", env=env)
        assert proc.returncode == 0, proc.stderr
        outs.append((tmp_path / name / "model.safetensors").read_bytes())
    assert outs[0] == outs[1]


def test_resume_continues_an_interrupted_run(tmp_path, env) -> None:
    """Kill training after its first checkpoint; --resume finishes it with the same weights
    as an uninterrupted run (RNG states are checkpointed)."""
    args = ["train", "--model", "bprmf", *WORLD, "--set", "train.epochs=30", "--set", "train.patience=100",
            "--no-progress"]
    full = kgrec(*args, "-o", str(tmp_path / "full"), env=env)
    assert full.returncode == 0, full.stderr
    target = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "kgrec", *args, "-o", str(target)], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "cut.partial" / "checkpoint.json"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    if target.exists():
        pytest.skip("training finished before it could be interrupted")
    resumed = kgrec(*args, "-o", str(target), "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert (target / "model.safetensors").read_bytes() == (tmp_path / "full" / "model.safetensors").read_bytes()


def test_bad_config_key_exit_code(env) -> None:
    proc = kgrec("train", "--set", "train.learning_rate=0.1", env=env)
    assert proc.returncode == 3 and "field 'train.learning_rate'" in proc.stderr and "lr" in proc.stderr


def test_cold_item_split_reports_cold_slice(tmp_path, env) -> None:
    run = tmp_path / "cold"
    proc = kgrec("train", "--model", "ease", *WORLD, "--set", "data.split.method=cold_items", "-o", str(run),
                 "--evaluate", "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    cold = metrics["slices"]["test"]["cold_items"]
    assert cold["users"] > 0
    # EASE has no signal for items without training interactions (they score 0)
    assert cold["metrics"]["recall@20"] < metrics["test"]["recall@20"] / 5


def test_compare_seeds_against_a_baseline(tmp_path, env) -> None:
    runs: dict[str, list[str]] = {"ease": [], "mostpop": []}
    for model in runs:
        for seed in (1, 2):
            out = tmp_path / f"{model}-{seed}"
            proc = kgrec("train", "--model", model, *WORLD, "--seed", str(seed), "-o", str(out), "--evaluate",
                         "--no-progress", env=env)
            assert proc.returncode == 0, proc.stderr
            runs[model].append(str(out))
    proc = kgrec("compare", *runs["ease"], "--baseline", *runs["mostpop"], env=env)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| ndcg@10"))
    assert row.count("(p=") == 2 and " ± " in row
    mismatched = kgrec("compare", runs["ease"][0], "--baseline", runs["mostpop"][1], env=env)
    assert mismatched.returncode == 4 and "shares a split" in mismatched.stderr

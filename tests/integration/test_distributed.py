"""``kgrec train --nproc 2``: two ranks (gloo, CPU) against one, end to end through the CLI."""

from __future__ import annotations

import json

import pytest
from cli import kgrec  # noqa: E402  (tests/integration/cli.py)

#: a small synthetic world, passed as generator parameters (kgrec evaluate must rebuild it)
WORLD = ["--set", "data.name=synthetic", "--param", "n_users=400", "--param", "n_items=200",
         "--param", "n_interactions=8000", "--param", "seed=2"]
TRAIN = ["--set", "train.batch_size=512", "--set", "train.lr=0.01", "--set", "train.epochs=12",
         "--seed", "7", "--no-progress"]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return {"KGREC_CACHE_DIR": str(tmp_path_factory.mktemp("cache")), "KGREC_THREADS": "1"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, env) -> dict:
    """bprmf and lightgcn, each trained on 1 rank and on 2 ranks and evaluated."""
    root = tmp_path_factory.mktemp("runs")
    out = {"root": root}
    for model in ("bprmf", "lightgcn"):
        for n in (1, 2):
            run = root / f"{model}-{n}"
            extra = [] if n == 1 else ["--nproc", str(n)]
            proc = kgrec("train", "--model", model, *WORLD, *TRAIN, *extra, "-o", str(run), "--evaluate", env=env)
            assert proc.returncode == 0, proc.stderr[-3000:]
            out[model, n] = run
    return out


@pytest.mark.parametrize("model", ["bprmf", "lightgcn"])
def test_two_ranks_match_one_rank(runs, model: str) -> None:
    one, two = runs[model, 1], runs[model, 2]
    m1 = json.loads((one / "metrics.json").read_text())["test"]
    m2 = json.loads((two / "metrics.json").read_text())["test"]
    assert abs(m1["ndcg@10"] - m2["ndcg@10"]) <= 0.005, (m1["ndcg@10"], m2["ndcg@10"])
    assert m2["ndcg@10"] > 0.02  # it learned something
    r1 = json.loads((one / "train.json").read_text())
    r2 = json.loads((two / "train.json").read_text())
    assert r1["world_size"] == 1 and r2["world_size"] == 2 and "distributed" not in r1
    assert r2["distributed"]["global_batch_size"] == 512 and r2["distributed"]["backend"] == "gloo"
    digests = r2["distributed"]["param_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]  # the ranks' parameters are identical
    assert r2["epochs_run"] == r1["epochs_run"] and r2["stop_reason"] == r1["stop_reason"]
    # the same global batches: the epoch losses agree to float rounding
    for h1, h2 in zip(r1["history"], r2["history"]):
        assert h2["loss"] == pytest.approx(h1["loss"], rel=1e-4)


def test_one_run_directory_no_lock_and_the_world_is_saved(runs) -> None:
    root = runs["root"]
    assert sorted(p.name for p in root.iterdir()) == sorted(f"{m}-{n}" for m in ("bprmf", "lightgcn") for n in (1, 2))
    run = runs["bprmf", 2]
    data = json.loads((run / "data.json").read_text())
    assert data["nodes"]["user"] == 400 and data["nodes"]["item"] == 200  # the --param world, rebuilt by evaluate
    assert (run / "metrics.json").is_file() and not (run / "checkpoint.json").exists()


def test_errors_of_a_rank_are_one_line_and_an_exit_code(runs, env) -> None:
    run = runs["bprmf", 2]
    proc = kgrec("train", "--model", "bprmf", *WORLD, *TRAIN, "--nproc", "2", "-o", str(run), env=env)
    assert proc.returncode == 7, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"kgrec: run directory exists: {run}: field '-o': already exists; "
                                                "pass --overwrite to replace it"]
    bad = kgrec("train", "--model", "bprmf", "--set", "data.name=synthetic", "--param", "n_users=5", "--nproc", "2",
                "-o", str(runs["root"].parent / "bad"), "--no-progress", env=env)
    assert bad.returncode == 3 and bad.stderr.strip().count("\n") == 0 and "n_users" in bad.stderr
    assert not (runs["root"].parent / "bad.lock").exists()
    usage = kgrec("train", "--nnodes", "2", env=env)
    assert usage.returncode == 2 and "--rdzv-endpoint" in usage.stderr

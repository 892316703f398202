"""``evaluate_run(ranking=..., rerank=...)`` and ``kgrec evaluate --ranking/--set rerank.*``: other
rankings are written under ``RUN/eval/TAG/`` and never touch the run's own metrics and top-k."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kgrec.errors import SchemaError
from kgrec.eval.report import evaluate_run, ranking_of
from kgrec.models.rerank import ALPHA, popularity_grouping, targets

REPO = Path(__file__).resolve().parents[3]
OWN = ("metrics.json", "metrics.md", "per_user_test.json", "topk_test.npy")  # what the audit reuses


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A BPR-MF run (2 epochs) on a small synthetic world, not evaluated: (run dir, cache dir)."""
    from kgrec.rundir.config import load_config
    from kgrec.train.run import train_run

    root = tmp_path_factory.mktemp("ranking-choice")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGREC_CACHE_DIR", str(root / "cache"))
        cfg = load_config(overrides={"data": {"name": "synthetic", "synthetic": {
            "n_users": 300, "n_items": 150, "n_interactions": 4000, "seed": 4}}, "model": {"name": "bprmf"},
            "train": {"epochs": 2}})
        train_run(cfg, root / "run", overwrite=True, progress=False)
    return root / "run", root / "cache"


@pytest.fixture()
def cache(trained, monkeypatch) -> Path:
    monkeypatch.setenv("KGREC_CACHE_DIR", str(trained[1]))
    return trained[1]


@pytest.fixture(scope="module")
def evaluated(trained):
    """A copy of the run evaluated as configured: (run dir, {file: bytes} of its own outputs)."""
    run = trained[0].parent / "evaluated"
    shutil.copytree(trained[0], run)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGREC_CACHE_DIR", str(trained[1]))
        path, _ = evaluate_run(run)
    assert path == run / "metrics.json"
    return run, {name: (run / name).read_bytes() for name in OWN}


def assert_untouched(run: Path, own: dict[str, bytes]) -> None:
    for name, data in own.items():
        assert (run / name).read_bytes() == data, name


def mean_kl(topk: np.ndarray, users: np.ndarray, run) -> float:
    """Mean over users of KL(p_u ‖ smoothed head/tail mix of the list) (the calibration error)."""
    g = popularity_grouping(run.ctx.item_counts, run.config.rerank.head_share)
    p = targets(g, run.ctx.train[users])
    q = np.stack([np.bincount(g.codes[row], minlength=2) / len(row) for row in topk])
    q = (1 - ALPHA) * q + ALPHA * p
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.where(p > 0, p * np.log(p / q), 0.0).sum(1).mean())


def test_non_profiling_rankings_write_under_eval_and_leave_the_run_alone(trained, cache, tmp_path) -> None:
    from kgrec.rundir.load import load_run

    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    path, table = evaluate_run(run, ranking="popular")
    assert path == run / "eval" / "nonprofiling-popular" / "metrics.json" and path.is_file()
    for name in OWN:
        assert not (run / name).exists(), name  # a fresh run stays unevaluated
    data = json.loads(path.read_text())
    assert "test" in data and "non-profiling 'popular'" in data["ranking"] and "non-profiling 'popular'" in table
    # the list is the training popularity order, seen items left out: counts never increase
    loaded = load_run(run)
    counts = loaded.ctx.item_counts
    topk = np.load(path.parent / "topk_test.npy")
    assert (np.diff(counts[topk], axis=1) <= 0).all()
    users = np.flatnonzero(np.diff(loaded.heldout.test.indptr) > 0)
    exclude = loaded.heldout.exclusion(loaded.ctx.view, "test")
    assert not np.take_along_axis(exclude[users].toarray(), topk, axis=1).any()
    # then the run's own evaluation, and a second ranking that must not touch it
    evaluate_run(run)
    own = {name: (run / name).read_bytes() for name in OWN}
    path, _ = evaluate_run(run, ranking="recent")
    assert path == run / "eval" / "nonprofiling-recent" / "metrics.json"
    assert "non-profiling 'recent'" in json.loads(path.read_text())["ranking"]
    assert_untouched(run, own)
    assert json.loads((run / "metrics.json").read_text())["ranking"] == "bprmf"


def test_rerank_override_writes_its_own_tag(evaluated, cache) -> None:
    from kgrec.rundir.load import load_run

    run, own = evaluated
    model_topk = np.load(run / "topk_test.npy")
    path, table = evaluate_run(run, rerank={"rerank": {"method": "calibrated", "strength": 0.5}})
    assert path == run / "eval" / "rerank-calibrated-0.5-100-popularity-0.2" / "metrics.json"
    assert_untouched(run, own)
    data = json.loads(path.read_text())
    assert data["ranking"] == "bprmf + calibrated re-ranking (strength 0.5, pool 100, groupings popularity)"
    reranked = np.load(path.parent / "topk_test.npy")
    assert reranked.shape == model_topk.shape and not np.array_equal(reranked, model_topk)
    # re-ranking draws from the model's top 100 and leaves the lists better calibrated
    loaded = load_run(run)
    users = np.flatnonzero(np.diff(loaded.heldout.test.indptr) > 0)
    from kgrec.models.ranking import rank

    exclude = loaded.heldout.exclusion(loaded.ctx.view, "test")
    pool = rank(loaded.model, users, 100, exclude)
    for row, p in zip(reranked, pool):
        assert set(row.tolist()) <= set(p.tolist()) and len(set(row.tolist())) == len(row)
    assert mean_kl(reranked, users, loaded) < mean_kl(model_topk, users, loaded)
    # strength 0 is the model's own ranking, under its own tag
    path0, _ = evaluate_run(run, rerank={"rerank": {"method": "calibrated", "strength": 0}})
    assert path0 == run / "eval" / "rerank-calibrated-0-100-popularity-0.2" / "metrics.json"
    np.testing.assert_array_equal(np.load(path0.parent / "topk_test.npy"), model_topk)
    assert json.loads(path0.read_text())["test"] == json.loads(own["metrics.json"])["test"]
    assert_untouched(run, own)


def test_only_rerank_keys_can_be_set(evaluated, cache) -> None:
    run, own = evaluated
    with pytest.raises(SchemaError, match="only rerank") as err:
        evaluate_run(run, rerank={"train": {"epochs": 3}})
    assert err.value.field == "--set" and "'train'" in err.value.message
    with pytest.raises(SchemaError, match="rerank.strength"):
        evaluate_run(run, rerank={"rerank": {"strength": 1.5}})
    with pytest.raises(SchemaError, match="rerank"):
        evaluate_run(run, rerank={"rerank": {"method": "mmr"}})
    assert_untouched(run, own)
    assert not (run / "eval").exists() or not any((run / "eval").rglob("*mmr*"))


def test_non_profiling_ranking_takes_no_reranker(evaluated, cache) -> None:
    run, own = evaluated
    with pytest.raises(SchemaError, match="non-profiling") as err:
        evaluate_run(run, ranking="popular", rerank={"rerank": {"method": "calibrated", "strength": 0.5}})
    assert err.value.field == "--set"
    # an inactive stage is no re-ranking at all
    path, _ = evaluate_run(run, ranking="popular", rerank={"rerank": {"method": "calibrated", "strength": 0.0}})
    assert path == run / "eval" / "nonprofiling-popular" / "metrics.json"
    assert_untouched(run, own)


def test_ranking_of_tags(evaluated, cache) -> None:
    from kgrec.rundir.load import load_run

    run = load_run(evaluated[0])
    model, reranker, tag = ranking_of(run)
    assert (model, reranker, tag) == (run.model, None, "")
    _, reranker, tag = ranking_of(run, rerank={"rerank": {"method": "calibrated", "strength": 0.25, "pool": 30}})
    assert tag == "rerank-calibrated-0.25-30-popularity-0.2" and (reranker.strength, reranker.pool) == (0.25, 30)
    _, reranker, tag = ranking_of(run, rerank={"rerank": {}})
    assert (reranker, tag) == (None, "")  # an empty override is the run as configured


def test_different_rerank_settings_get_different_tags(evaluated, cache) -> None:
    from kgrec.rundir.load import load_run

    run = load_run(evaluated[0])
    base = {"method": "calibrated", "strength": 0.5}
    tags = {ranking_of(run, rerank={"rerank": {**base, **extra}})[2]
            for extra in ({}, {"groupings": ["provider"]}, {"groupings": ["popularity", "genre"]}, {"head_share": 0.1})}
    assert tags == {"rerank-calibrated-0.5-100-popularity-0.2", "rerank-calibrated-0.5-100-provider-0.2",
                    "rerank-calibrated-0.5-100-popularity+genre-0.2", "rerank-calibrated-0.5-100-popularity-0.1"}


def test_cli_bad_rerank_value_is_a_one_line_schema_error(trained) -> None:
    run, cache_dir = trained
    proc = subprocess.run([sys.executable, "-m", "kgrec", "evaluate", str(run), "--set", "rerank.strength=2"],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "KGREC_CACHE_DIR": str(cache_dir)})
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("kgrec: schema error") and "rerank.strength" in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (run / "metrics.json").exists() and not (run / "eval").exists()

"""kgrec.update.continual.update_run in process, on the tiny world: the updated run loads with
load_run and evaluates, keeps its lineage, chains, and refuses bad input with the documented
errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kgrec.errors import ChecksumError, DataError, RunExistsError, StrictModeError, UsageError
from kgrec.rundir.load import load_run, load_run_data
from kgrec.update.additions import write_interactions
from kgrec.update.continual import update_run

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="module")
def parent(tmp_path_factory) -> Path:
    from kgrec.rundir.config import load_config
    from kgrec.train.run import train_run

    cfg = load_config(None, {"data": {"name": str(FIXTURES / "tiny.yaml"), "data_dir": str(FIXTURES / "tiny")},
                             "model": {"name": "lightgcn", "params": {"dim": 8}},
                             "train": {"epochs": 3, "batch_size": 8}})
    return train_run(cfg, tmp_path_factory.mktemp("runs") / "parent", progress=False)


def valid_plus_new(parent: Path, path: Path) -> Path:
    """The parent's validation rows, then a new user's and a new item's rows."""
    rd = load_run_data(parent)
    write_interactions(path, rd.dataset, rd.split.valid)
    with open(path, "a") as fh:
        fh.write("u9\ti1\t5\t500\nu9\ti9\t4\t510\nu1\ti9\t3\t520\n")
    return path


def test_update_writes_a_run_that_loads_and_evaluates(parent, tmp_path) -> None:
    from kgrec.eval.report import evaluate_run

    before = load_run(parent)
    out = update_run(parent, tmp_path / "new", interactions=valid_plus_new(parent, tmp_path / "add.tsv"), steps=7,
                     progress=False)
    run = load_run(out)
    assert run.dataset.nodes["user"].ids.tolist() == [*before.dataset.nodes["user"].ids.tolist(), "u9"]
    assert run.dataset.nodes["item"].ids.tolist() == [*before.dataset.nodes["item"].ids.tolist(), "i9"]
    assert len(run.split.valid) == 0 and len(run.split.test) == len(before.split.test)
    assert len(run.split.train) == len(before.split.train) + len(before.split.valid) + 3
    assert run.view.train.shape == (before.view.num_users + 1, before.view.num_items + 1)
    record = json.loads((out / "train.json").read_text())
    assert record["steps_run"] == 7 and record["stop_reason"] == "steps"  # no validation left: exactly --steps
    assert record["post_training"].startswith("parent's") and "valid_ndcg@10" not in record
    lineage = json.loads((out / "lineage.json").read_text())
    assert lineage["parent"]["path"] == str(parent.resolve())
    assert lineage["parent"]["data_sha256"] == json.loads((parent / "data.json").read_text())["sha256"]
    assert lineage["added"]["moved"] == {"valid": len(before.split.valid), "test": 0}
    assert lineage["added"]["appended"] == 3 and lineage["added"]["new_users"] == 1
    assert lineage["warm_start"]["rows"] == {"emb.weight": "users+items"}
    data = json.loads((out / "data.json").read_text())
    assert data["additions"]["interactions"] == 3 and data["interactions"] == len(run.split.train) + len(
        run.split.test)
    path, table = evaluate_run(out)
    metrics = json.loads(path.read_text())
    assert 0.0 <= metrics["test"]["ndcg@10"] <= 1.0 and "ndcg" in table


def test_update_keeps_validation_and_validates_on_it(parent, tmp_path) -> None:
    add = tmp_path / "add.tsv"
    add.write_text("user_id\titem_id\trating\tts\nu9\ti1\t5\t500\nu9\ti2\t4\t510\n")
    out = update_run(parent, tmp_path / "new", interactions=add, steps=6, eval_every=2, progress=False)
    record = json.loads((out / "train.json").read_text())
    assert record["post_training"] == "after_fit on validation"
    # three validations, fewer than train.patience (10): all the steps run
    assert record["stop_reason"] == "steps" and record["steps_run"] == 6 and 0 <= record["best_step"] <= 6
    steps = [h["step"] for h in record["history"]]
    assert steps[0] == 0 and set(steps[1:]) <= {2, 4, 6} and "ndcg@10" in record["history"][-1]
    assert isinstance(record["valid_ndcg@10"], float) and len(load_run(out).split.valid) > 0


def test_warm_start_copies_the_parent_and_no_warm_start_does_not(parent, tmp_path) -> None:
    add = tmp_path / "add.tsv"
    add.write_text("user_id\titem_id\trating\tts\nu9\ti1\t5\t500\n")
    old = load_run(parent).model.emb.weight
    u0 = load_run(parent).view.num_users
    # one Adam step moves a weight by about lr (0.001): the warm start is what remains
    warm = update_run(parent, tmp_path / "warm", interactions=add, steps=1, progress=False)
    cold = update_run(parent, tmp_path / "cold", interactions=add, steps=1, progress=False, warm=False)
    w_warm, w_cold = load_run(warm).model.emb.weight, load_run(cold).model.emb.weight
    assert (w_warm[:u0] - old[:u0]).abs().max() < 0.05 < (w_cold[:u0] - old[:u0]).abs().max()


def test_updates_chain_and_stay_self_contained(parent, tmp_path) -> None:
    first = tmp_path / "a.tsv"
    first.write_text("user_id\titem_id\trating\tts\nu9\ti1\t5\t500\n")
    second = tmp_path / "b.tsv"
    second.write_text("user_id\titem_id\trating\tts\nu9\ti2\t5\t600\nu10\ti9\t4\t610\n")
    a = update_run(parent, tmp_path / "a", interactions=first, steps=2, progress=False)
    b = update_run(a, tmp_path / "b", interactions=second, steps=2, progress=False)
    run = load_run(b)
    assert run.dataset.nodes["user"].ids.tolist()[-2:] == ["u9", "u10"]
    assert json.loads((b / "additions.json").read_text())["interactions"]["user"] == ["u9", "u9", "u10"]
    lineage = json.loads((b / "lineage.json").read_text())
    assert lineage["parent"]["path"] == str(a.resolve())
    assert [x["path"] for x in lineage["ancestors"]] == [str(parent.resolve())]
    import shutil

    shutil.rmtree(a)  # lineage is a record, not a dependency
    assert load_run(b).view.num_users == run.view.num_users


def test_errors(parent, tmp_path) -> None:
    add = tmp_path / "add.tsv"
    add.write_text("user_id\titem_id\trating\tts\nu9\ti1\t5\t500\n")
    existing = tmp_path / "exists"
    existing.mkdir()
    with pytest.raises(RunExistsError) as err:
        update_run(parent, existing, interactions=add, progress=False)
    assert err.value.exit_code == 7
    with pytest.raises(UsageError):
        update_run(parent, parent, interactions=add, overwrite=True, progress=False)
    with pytest.raises(UsageError):
        update_run(parent, tmp_path / "x", progress=False)
    with pytest.raises(UsageError):
        update_run(parent, tmp_path / "x", interactions=add, steps=0, progress=False)
    bad = tmp_path / "bad.tsv"
    bad.write_text("user_id\titem_id\trating\tts\nu9\ti1\t5\t500\nu9\ti2\t5\tlater\n")
    with pytest.raises(DataError) as err:
        update_run(parent, tmp_path / "x", interactions=bad, progress=False)
    assert (err.value.file, err.value.line, err.value.field) == (str(bad), 3, "ts")
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()
    dup = tmp_path / "dup.tsv"
    rd = load_run_data(parent)
    write_interactions(dup, rd.dataset, rd.split.train[:2])
    with pytest.raises(DataError, match="nothing to add"):
        update_run(parent, tmp_path / "x", interactions=dup, progress=False)
    with pytest.raises(StrictModeError) as err:
        update_run(parent, tmp_path / "x", interactions=dup, strict=True, progress=False)
    assert err.value.exit_code == 8


def test_a_changed_additions_file_is_refused(parent, tmp_path) -> None:
    add = tmp_path / "add.tsv"
    add.write_text("user_id\titem_id\trating\tts\nu9\ti1\t5\t500\n")
    out = update_run(parent, tmp_path / "new", interactions=add, steps=1, progress=False)
    path = out / "additions.json"
    data = json.loads(path.read_text())
    data["interactions"]["timestamp"][0] = 501.0
    path.write_text(json.dumps(data))
    with pytest.raises(ChecksumError) as err:
        load_run(out)
    assert err.value.file == str(path) and err.value.exit_code == 5
    (out / "additions.json").unlink()
    with pytest.raises(DataError, match="missing"):
        load_run(out)


def test_closed_form_models_are_refitted(tmp_path) -> None:
    from kgrec.rundir.config import load_config
    from kgrec.train.run import train_run

    cfg = load_config(None, {"data": {"name": str(FIXTURES / "tiny.yaml"), "data_dir": str(FIXTURES / "tiny")},
                             "model": {"name": "mostpop"}})
    parent = train_run(cfg, tmp_path / "pop", progress=False)
    add = tmp_path / "add.tsv"
    add.write_text("user_id\titem_id\trating\tts\n" + "".join(f"u{k}\ti6\t5\t{500 + k}\n" for k in range(10, 20)))
    out = update_run(parent, tmp_path / "new", interactions=add, progress=False)
    run = load_run(out)
    record = json.loads((out / "train.json").read_text())
    assert record["stop_reason"] == "closed_form" and run.view.num_users == 15
    scores = run.model.full_scores(torch.tensor([0]))[0]
    assert int(torch.argmax(scores)) == run.dataset.nodes["item"].index()["i6"]  # the new clicks count
    assert np.isfinite(scores.numpy()).all()

"""kgrec update end to end through the CLI on a small synthetic world: from an interactions
file (the temporal protocol: the parent's validation part) and from an exposure log written
with kgrec.serve.log.ExposureLog (no server)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli import REPO, kgrec  # noqa: E402  (tests/integration/cli.py)

WORLD = ["--data", "synthetic", "--param", "n_users=200", "--param", "n_items=100", "--param", "n_interactions=1500"]


@pytest.fixture(scope="module")
def parent(tmp_path_factory, env) -> Path:
    run = tmp_path_factory.mktemp("runs") / "parent"
    proc = kgrec("train", *WORLD, "--set", "data.split.method=temporal", "--set", "train.epochs=2", "-o", str(run),
                 "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    return run


def tensors(path: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("kgrec: ") and "warning" not in line]


def test_update_from_the_parents_validation_part(parent, tmp_path, env, monkeypatch) -> None:
    monkeypatch.setenv("KGREC_CACHE_DIR", env["KGREC_CACHE_DIR"])  # the CLI's cache, for the synthetic world
    from kgrec.rundir.load import load_run_data
    from kgrec.update.additions import write_interactions

    rd = load_run_data(parent)
    path = write_interactions(tmp_path / "valid.tsv", rd.dataset, rd.split.valid)
    with open(path, "a") as fh:  # a new user, a repeat of a training pair
        first = rd.dataset.interactions.subset(rd.split.train[:1])
        u, i = rd.dataset.nodes["user"].ids[first.src[0]], rd.dataset.nodes["item"].ids[first.dst[0]]
        fh.write(f"newcomer\ti3\t1.0\t1704060400\n{u}\t{i}\t1.0\t{float(first.timestamp[0])!r}\n")
    out = tmp_path / "updated"
    proc = kgrec("update", str(parent), "--interactions", str(path), "-o", str(out), "--steps", "5", env=env)
    assert proc.returncode == 0, proc.stderr
    n_valid = len(rd.split.valid)
    assert f"{n_valid:,} held-out row(s) moved to train, 1 appended, 1 new user(s)" in proc.stdout
    assert "1 dropped" in proc.stdout and "already a training interaction" in proc.stderr  # counted, printed
    assert "update kgrec" in proc.stderr  # progress
    record = json.loads((out / "train.json").read_text())
    assert record["steps_run"] == 5 and record["stop_reason"] == "steps"
    # no validation left: the post-training choices are the parent's, the GNN moved
    old, new = tensors(parent / "model.safetensors"), tensors(out / "model.safetensors")
    for name in ("blend", "ii_recency", "prior_weight", "cold_scale"):
        assert np.array_equal(old[name], new[name]), name
    emb = "channels.ids.user_emb.weight"
    assert new[emb].shape[0] == old[emb].shape[0] + 1 and not np.array_equal(new[emb][:-1], old[emb])
    lineage = json.loads((out / "lineage.json").read_text())
    assert lineage["split"] == {"train": len(rd.split.train) + n_valid + 1, "valid": 0, "test": len(rd.split.test)}
    assert lineage["source"]["kind"] == "interactions" and lineage["source"]["sha256"]
    ev = kgrec("evaluate", str(out), env=env)
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["ndcg@10"] <= 1.0 and metrics["test_users"] > 0
    again = kgrec("update", str(parent), "--interactions", str(path), "-o", str(out), env=env)
    assert again.returncode == 7 and "--overwrite" in again.stderr and len(error_lines(again.stderr)) == 1


def test_bad_interactions_file_is_one_line_exit_4(parent, tmp_path, env) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("user_id\titem_id\trating\ttimestamp\nu1\ti2\t1.0\t1704060400\nu1\ti3\t1.0\tnot-a-time\n")
    out = tmp_path / "never"
    proc = kgrec("update", str(parent), "--interactions", str(bad), "-o", str(out), env=env)
    assert proc.returncode == 4, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and f"{bad}:3" in lines[0] and "field 'timestamp'" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists() and not Path(f"{out}.partial").exists()
    wrong = tmp_path / "wrong.tsv"
    wrong.write_text("user\titem\nu1\ti2\n")
    proc = kgrec("update", str(parent), "--interactions", str(wrong), "-o", str(out), env=env)
    assert proc.returncode == 4 and f"{wrong}:1" in proc.stderr and "columns" in proc.stderr
    proc = kgrec("update", str(parent), "-o", str(out), env=env)
    assert proc.returncode == 2  # neither --interactions nor --log


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "import sys\nfrom kgrec.cli import main\ntry:\n    main(['update', "
                           "'--help'])\nexcept SystemExit:\n    pass\nprint('heavy', [m for m in ('torch', 'pandas', "
                           "'numpy') if m in sys.modules])"], capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0 and "--interactions" in proc.stdout and "heavy []" in proc.stdout, proc.stdout
    assert time.perf_counter() - t0 < 10


def test_update_from_an_exposure_log(parent, tmp_path, env, monkeypatch) -> None:
    monkeypatch.setenv("KGREC_CACHE_DIR", env["KGREC_CACHE_DIR"])
    from kgrec.rundir.load import load_run_data
    from kgrec.serve.log import Exposure, ExposureLog, Feedback, ServedRequest

    idmaps = json.loads((parent / "idmaps.json").read_text())
    users, all_items = idmaps["user"], idmaps["item"]
    inter = load_run_data(parent).dataset.interactions
    seen = set(inter.dst[inter.src == 0].tolist())  # users[0]'s items, in any part of the split
    items = [raw for k, raw in enumerate(all_items) if k not in seen]  # items users[0] never had
    now = 1704100000.0

    def served(rid, ts, user, shown, history=None):
        return ServedRequest(request_id=rid, ts=ts, user_id=user, history=history, policy="epsilon-greedy",
                             items=[Exposure(p, item, None, None, 0.5) for p, item in enumerate(shown)])

    log_dir = tmp_path / "log"
    with ExposureLog.open(log_dir) as log:
        log.set_meta("run_dir", str(parent))
        log.log_item("fresh-item", {"item_id": "fresh-item", "text": "A brand new documentary about rivers",
                                    "links": None})
        log.log_request(served("r1", now, users[0], [items[0], items[1], "fresh-item"]))
        log.log_feedback(Feedback(request_id="r1", item_id=items[1], event="click", ts=now + 5))
        log.log_feedback(Feedback(request_id="r1", item_id="fresh-item", event="click", ts=now + 6))
        log.log_request(served("r2", now + 10, None, [items[2], items[3]], history=[items[4], items[5], "gone"]))
        log.log_feedback(Feedback(request_id="r2", item_id=items[3], event="click", ts=now + 12))
        log.log_request(served("r3", now + 20, users[1], ["ghost"]))
        log.log_feedback(Feedback(request_id="r3", item_id="ghost", event="click", ts=now + 21))
    out = tmp_path / "from-log"
    proc = kgrec("update", str(parent), "--log", str(log_dir), "-o", str(out), "--steps", "3", "--no-progress",
                 env=env)
    assert proc.returncode == 0, proc.stderr
    assert "dropped 1 row(s): click on an item neither in the run nor added while serving" in proc.stderr
    assert "dropped 1 row(s): history item neither in the run nor added while serving" in proc.stderr
    new_ids = json.loads((out / "idmaps.json").read_text())
    assert new_ids["user"] == [*users, "log:r2"] and new_ids["item"] == [*all_items, "fresh-item"]
    lineage = json.loads((out / "lineage.json").read_text())
    assert lineage["added"]["appended"] == 5 and lineage["added"]["texts_encoded"] == 1
    assert lineage["source"]["meta"]["run_dir"] == str(parent) and lineage["source"]["fold_in_users"] == 1
    text = tensors(out / "text.safetensors")["item_text"]
    assert text.shape[0] == len(all_items) + 1 and np.linalg.norm(text[-1]) > 0.5  # encoded, not a zero row
    additions = json.loads((out / "additions.json").read_text())
    rows = list(zip(additions["interactions"]["user"], additions["interactions"]["item"]))
    assert rows == [(users[0], items[1]), (users[0], "fresh-item"), ("log:r2", items[4]), ("log:r2", items[5]),
                    ("log:r2", items[3])]
    assert additions["item_text"] == ["A brand new documentary about rivers"]
    ev = kgrec("evaluate", str(out), env=env)
    assert ev.returncode == 0, ev.stderr
    strict = kgrec("update", str(parent), "--log", str(log_dir), "-o", str(tmp_path / "strict"), "--strict",
                   "--no-progress", env=env)
    assert strict.returncode == 8 and not (tmp_path / "strict").exists()

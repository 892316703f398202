"""Run directories through the real CLI (cases in ``run_dir_cases.py``): locks against
concurrent writers, no pickle, corrupt or incomplete runs, --resume with other options,
stop reasons, load warnings, --threads, and a closed stdout pipe. Each error is one line
with its documented exit code and no traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from run_dir_cases import CASES, Case, train_small  # tests/integration/, on sys.path through conftest.py


@pytest.fixture(scope="module")
def finished(tmp_path_factory, env) -> Path:
    run = tmp_path_factory.mktemp("runs") / "lgcn"
    train_small(run, env)
    return run


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, tmp_path, env, finished) -> None:
    out = case.run(tmp_path, env, finished)
    assert out.returncode == case.exit_code, out.stderr
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, out.stderr
    if case.exit_code != 0:
        lines = out.error_lines()
        assert len(lines) == 1, out.stderr
        text = lines[0]
    else:
        text = out.stderr
    for needle in case.needles:
        assert needle in text, text
    facts = out.facts
    assert not facts.get("payload_ran"), "a pickle payload was executed"
    assert not facts.get("report_left") and not facts.get("partial_left"), facts
    if "first_writer_still_running" in facts:
        assert facts["first_writer_still_running"] and f"pid {facts['first_pid']}" in text
        assert out.seconds < 15  # refused at once, before loading data
    if case.id.startswith("stale lock"):
        assert facts == {"lock_left": False, "finished": True}
    if case.id.startswith("training stopped"):
        assert facts["stop_reason"] == "max_seconds" and facts["epochs_run"] < 500
    if case.id.startswith(("train --strict", "config:")):
        assert not facts["run_left"]
    if case.id.startswith("--threads"):
        assert facts["torch_threads"] == 2
    if case.id.startswith("audit with no plan"):
        assert out.seconds < 10  # checked before the run is loaded


def test_no_pickle_loader_in_the_package() -> None:
    """No code path of kgrec can unpickle: no pickle/torch.load/allow_pickle=True anywhere."""
    package = Path(__file__).resolve().parents[2] / "kgrec"
    offenders = []
    for path in package.rglob("*.py"):
        text = path.read_text()
        for needle in ("import pickle", "torch.load(", "allow_pickle=True", "pickle.load", "joblib.load"):
            if needle in text:
                offenders.append(f"{path.relative_to(package)}: {needle}")
    assert offenders == []

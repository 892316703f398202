"""Fixtures of the integration tests (the CLI helper is ``cli.kgrec``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # cli.py and the case tables beside the tests


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """A fresh cache directory per test module."""
    return {"KGREC_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, env) -> Path:
    """A kgrec run on the default synthetic world (4 epochs), trained through the CLI."""
    from cli import kgrec

    run = tmp_path_factory.mktemp("runs") / "synthetic-kgrec"
    proc = kgrec("train", "--data", "synthetic", "--set", "train.epochs=4", "-o", str(run), "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    return run

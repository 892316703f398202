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

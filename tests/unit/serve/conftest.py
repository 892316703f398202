"""A small trained run for the serving tests (``trained``)."""

from __future__ import annotations

import pytest


def trained(tmp_path_factory, model: str):
    """A ``model`` run (2 epochs) on a small synthetic world, loaded."""
    from kgrec.rundir.config import load_config
    from kgrec.rundir.load import load_run
    from kgrec.train.run import train_run

    root = tmp_path_factory.mktemp(f"svc-{model}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGREC_CACHE_DIR", str(root / "cache"))
        cfg = load_config(overrides={"data": {"name": "synthetic", "synthetic": {
            "n_users": 300, "n_items": 150, "n_interactions": 4000, "seed": 4}}, "model": {"name": model},
            "train": {"epochs": 2}})
        train_run(cfg, root / "run", overwrite=True, progress=False)
        return load_run(root / "run")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A kgrec run (content path: item text and KG links)."""
    return trained(tmp_path_factory, "kgrec")


@pytest.fixture(scope="module")
def lightgcn_run(tmp_path_factory):
    """A LightGCN run: it folds in users but has no content path for new items."""
    return trained(tmp_path_factory, "lightgcn")

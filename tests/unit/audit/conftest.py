"""Fixtures of the audit unit tests."""

from __future__ import annotations

import pytest
import torch

from kgrec.data import SplitConfig, make_split
from kgrec.models import create_model
from kgrec.rundir.config import load_config
from kgrec.train.run import build_context
from kgrec.train.trainer import fit


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A kgrec model trained 3 epochs on a small synthetic world: (dataset, context, model)."""
    from kgrec.graphs import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGREC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        ds = load_dataset("synthetic", synthetic={"n_users": 250, "n_items": 80, "n_interactions": 1500, "seed": 4})
    cfg = load_config(overrides={"model": {"name": "kgrec"}, "train": {"epochs": 3}})
    ctx, heldout = build_context(cfg, ds, make_split(ds, SplitConfig(seed=0)), progress=False)
    torch.manual_seed(0)
    model = create_model("kgrec", ctx)
    fit(model, ctx, heldout, cfg, progress=False)
    model.eval()
    return ds, ctx, model

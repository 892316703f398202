"""Every registered model honours the one contract: scores are inner products of embed()."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.data import SplitConfig, make_split
from kgrec.errors import SchemaError
from kgrec.models import MODELS, create_model
from kgrec.models.debias import Objective, ips_weights
from kgrec.rundir.config import load_config
from kgrec.train.run import build_context
from kgrec.train.trainer import fit


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from kgrec.graphs import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGREC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return load_dataset("synthetic", synthetic={"n_users": 300, "n_items": 120, "n_interactions": 3000, "seed": 1})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_scores_are_inner_products(small, name: str) -> None:
    cfg = load_config(overrides={"train": {"epochs": 2}, "model": {"name": name}})
    ctx, heldout = build_context(cfg, small, make_split(small, SplitConfig(seed=0)), progress=False)
    torch.manual_seed(0)
    model = create_model(name, ctx)
    fit(model, ctx, heldout, cfg, progress=False)
    model.eval()
    with torch.no_grad():
        users, items = model.embed()
        assert users.shape[0] == ctx.num_users and items.shape[0] == ctx.num_items
        u = torch.tensor([0, 5, 7, 5])
        full = model.full_scores(u)
        assert full.shape == (4, ctx.num_items)
        i = torch.tensor([3, 3, 10, 60])
        assert torch.allclose(model.score(u, i), full[torch.arange(4), i], atol=1e-5)
        # batch = single: a user's row does not depend on who else is in the batch
        assert torch.allclose(full[1], model.full_scores(torch.tensor([5]))[0], atol=1e-5)
        assert torch.equal(full[1], full[3])


def test_unknown_model_and_params_are_schema_errors(small) -> None:
    ctx, _ = build_context(load_config(), small, make_split(small), progress=False)
    with pytest.raises(SchemaError, match="did you mean 'lightgcn'"):
        create_model("lightgnc", ctx)
    with pytest.raises(SchemaError, match="no parameter 'dims'"):
        create_model("lightgcn", ctx, {"dims": 3})
    with pytest.raises(SchemaError, match="expects int"):
        create_model("lightgcn", ctx, {"layers": "two"})


def test_ips_weights_positive_clipped_self_normalised() -> None:
    counts = np.array([500, 50, 5, 1, 0])
    w = ips_weights(counts, gamma=0.5, clip=0.05)
    assert np.all(w > 0)
    assert np.isclose(np.sum(w * counts), counts.sum())  # sums to the sample size
    assert w[3] == w[4] == pytest.approx(w.max())  # rare items hit the clip, not infinity
    assert w[0] < w[1] < w[2]


def test_pda_objective_uses_popularity() -> None:
    obj = Objective("pda", np.array([100, 1]), gamma=1.0)
    pos, neg = torch.tensor([0.5]), torch.tensor([[0.5]])
    # same raw scores: the popular positive is preferred after popularity conditioning
    assert obj(pos, neg, torch.tensor([0]), torch.tensor([[1]])) < obj(pos, neg, torch.tensor([1]), torch.tensor([[0]]))
    with pytest.raises(SchemaError):
        Objective("ipw", np.array([1]))

"""The kgrec item-item term under the debiasing objectives, and the PDA popularity target."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.data import SplitConfig, make_split
from kgrec.models import create_model
from kgrec.models.debias import Objective, ips_weights, popularity_share
from kgrec.models.side import item_item_with_side
from kgrec.rundir.config import load_config
from kgrec.train.run import build_context


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from kgrec.graphs import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGREC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        ds = load_dataset("synthetic", synthetic={"n_users": 250, "n_items": 80, "n_interactions": 1500, "seed": 3})
    cfg = load_config(overrides={"model": {"name": "kgrec"}})
    return build_context(cfg, ds, make_split(ds, SplitConfig(seed=0)), progress=False)[0]


def _fitted(ctx, kind: str, **params):
    torch.manual_seed(0)
    model = create_model("kgrec", ctx, params)
    model.objective = Objective(kind, ctx.item_counts, gamma=0.5)
    model._fit_item_item(ctx, lambda m: 0.0)
    return model


@pytest.mark.parametrize("rank", [None, 16], ids=["ease", "low-rank"])
def test_pda_divides_each_item_column_by_its_popularity_factor(setup, rank):
    plain, pda = _fitted(setup, "bpr", item_item_dim=rank), _fitted(setup, "pda", item_item_dim=rank)
    factor = torch.from_numpy(popularity_share(setup.item_counts) ** 0.5).float().unsqueeze(1)
    torch.testing.assert_close(pda.ii_item * factor, plain.ii_item, rtol=1e-4, atol=1e-6)
    assert torch.equal(pda.ii_in, plain.ii_in)


def test_ips_fits_on_the_weighted_matrix_and_weights_user_histories(setup):
    ips = _fitted(setup, "ips", item_item_dim=None)
    w = np.sqrt(ips_weights(setup.item_counts, 0.5, 0.01))
    np.testing.assert_allclose(ips.ii_in.numpy(), w, rtol=1e-6)
    expected = item_item_with_side(setup.train @ np.diag(w), ips.ii_side, ips.item_item_reg, ips.side_weight)
    np.testing.assert_allclose(ips.ii_item.numpy(), expected.T, rtol=1e-4, atol=1e-6)
    plain = _fitted(setup, "bpr", item_item_dim=None)
    assert not torch.allclose(ips.ii_item, plain.ii_item)


def test_low_rank_ips_weights_histories_and_changes_the_factors(setup):
    ips, plain = _fitted(setup, "ips", item_item_dim=16), _fitted(setup, "bpr", item_item_dim=16)
    np.testing.assert_allclose(ips.ii_in.numpy(), np.sqrt(ips_weights(setup.item_counts, 0.5, 0.01)), rtol=1e-6)
    assert ips.ii_item.shape == (setup.num_items, 16)
    torch.testing.assert_close(ips.ii_item.norm(dim=1), torch.ones(setup.num_items))  # unit rows of A
    assert not torch.allclose(ips.ii_item, plain.ii_item)


def test_popularity_target_scales_item_vectors_by_share_power(setup):
    model = _fitted(setup, "pda", popularity_target=0.25)
    model.after_fit(setup, lambda m: 0.0)
    users, items = model.embed()
    model.item_scale.fill_(1.0)
    _, unscaled = model.embed()
    share = torch.from_numpy(popularity_share(setup.item_counts) ** 0.25).float().unsqueeze(1)
    torch.testing.assert_close(items, unscaled * share, rtol=1e-5, atol=1e-7)

"""The synthetic world's true click model: it regenerates exactly the latents the world's
clicks were sampled with, and the refactor that shares them left the world files unchanged."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kgrec.graphs import synthetic_click as sc
from kgrec.graphs import synthetic_world as sw
from kgrec.graphs.synthetic import ClickModel, click_model, generate_world, world_params

SMALL = dict(n_users=300, n_items=200, n_interactions=3000, seed=7)
# friendless users (avg_friends * n_users = 4 ties), more genres than dimensions, a negative b_click
ODD = dict(n_users=400, n_items=120, n_interactions=2000, n_genres=20, dim=8, avg_friends=0.01, social_alpha=0.6,
           quality_on_click=-1.0, n_creators=30, seed=11)

# sha256 of every file generate_world wrote for these parameters *before* the latent sampling
# was moved into synthetic_click.sample_latents (shared with click_model). A world is a pure
# function of its parameters and seed, so any change in what is drawn from which stream, or in
# what order, changes these bytes. (They also pin numpy's Generator streams and pandas' TSV
# formatting: numpy 2.4 / pandas 3.1 when recorded; a dependency upgrade that changes them is
# a change of the worlds too, and needs new digests deliberately.)
GOLDEN = {
    "small": (SMALL, {
        "interactions.tsv": "7ee7d2dd9b47d9d6095b9ae59471d8100c078fbee6a350f293a3c0fdb710412a",
        "item_kg.tsv": "8c8db9f4cb748aea27aae67453d1f56549c053c5cdeaee314382bd28f6b13e99",
        "items.tsv": "35c1a50fd5b75ad4a7c997ccd05f27a08c22b14948610a0a157ea8c5303d0d0f",
        "kg.tsv": "d410eff62dc6d8cc3dd9dcc3c3f7949c856eafd489dfc69945108554b1be707f",
        "social.tsv": "c63b154c07e2a53dd0a3543148aecf1639ce07bbbf9831adbebd17012486e7ea",
        "truth.json": "ed3ba6a6ec878ff9e4272027da6e51dfd80d05e75543166f233c50a216daef00",
        "users.tsv": "65b59a746208ac8bedcce3541d1f4a6aafc5754eb00cdf1b83919d08124e88fb",
    }),
    "odd": (ODD, {
        "interactions.tsv": "d0e60d867ccd1c0bdf012def5dba4db0a4d0589eb3307bcf1fea1c6f18f0d515",
        "item_kg.tsv": "3f1992b6f64d2a9d8356a329a0e7e8f62c54c31c4dab66a83d1e4c5c0b5bcbb3",
        "items.tsv": "401a0e5e98dd5f118a42e9b391b0dbed8027658506f583fb4ece8fba243ef25f",
        "kg.tsv": "542ef6fe285d9b19e97af0c96f028154326b9a87b2e50a6e68f444a5dee50f18",
        "social.tsv": "91a516b742b35b19255e8586696624dea4708252c4eb1fc312f87d2b244faf4f",
        "truth.json": "f627f73afb8dc419f9175f8417af90809df31b326a1bc1812eb9c6d4887a5863",
        "users.tsv": "cc986d7de79261825f8bf8714ffb57c437dedd2b431431d1fce5df0515547439",
    }),
}


@pytest.fixture(scope="module", params=sorted(GOLDEN))
def world(request, tmp_path_factory) -> tuple[str, dict, Path, dict]:
    params, _ = GOLDEN[request.param]
    out = tmp_path_factory.mktemp(request.param) / "w"
    return request.param, params, out, generate_world(out, **params)


def _pairs(users: np.ndarray, items: np.ndarray) -> set[tuple[str, str]]:
    return {(f"u{u}", f"i{i}") for u, i in zip(users.tolist(), items.tolist())}


def _observed(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "interactions.tsv", sep="\t", dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False)


def test_world_files_match_golden_digests(world):
    name, _, out, _ = world
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}
    assert digests == GOLDEN[name][1]


def test_click_model_replays_the_worlds_clicks(world):
    """The generator's exposure + click stream, replayed with the model's latents and
    probability, gives exactly the written interactions and exposure count."""
    _, params, out, truth = world
    model = click_model(params)
    assert model.b0 == truth["click_intercept"]
    users, items, exposures = model.sample_interactions(sc.streams(params["seed"])["click"],
                                                        params["n_interactions"])
    assert exposures == truth["exposures"]
    inter = _observed(out)
    assert _pairs(users, items) == set(zip(inter["user_id"], inter["item_id"]))
    assert len(users) == len(inter)


def test_replay_fails_without_the_social_latents():
    """The replay is a sharp check: clicks sampled with the users' own theta (not theta') differ."""
    v = world_params(SMALL)
    lat = sc.sample_latents(v, sc.streams(v["seed"]))
    right = sc.model_of(lat, v["quality_on_click"])
    wrong = ClickModel(lat.theta, right.phi, right.offset, right.b0, right.activity, right.pi, right.bias)
    a = right.sample_interactions(sc.streams(v["seed"])["click"], v["n_interactions"])
    b = wrong.sample_interactions(sc.streams(v["seed"])["click"], v["n_interactions"])
    assert _pairs(*a[:2]) != _pairs(*b[:2])


def test_probability_semantics(world):
    """Mean P(click) over fresh exposures (u ~ activity, i ~ pi) is the calibrated TARGET_CTR;
    observed clicked pairs are much likelier clicks than exposures drawn the same way."""
    _, params, out, _ = world
    model = click_model(params)
    assert model.activity.dtype == np.float64 and model.activity.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(123)
    n = 200_000
    u, i = sw.categorical(rng, model.activity, n), sw.categorical(rng, model.pi, n)
    p_exposed = model.probability(u, i).astype(np.float64)
    assert p_exposed.mean() == pytest.approx(sw.TARGET_CTR, abs=0.01)
    inter = _observed(out)
    cu = inter["user_id"].str[1:].astype(np.int64).to_numpy()
    ci = inter["item_id"].str[1:].astype(np.int64).to_numpy()
    p_clicked = model.probability(cu, ci).astype(np.float64)
    se = np.hypot(p_clicked.std() / np.sqrt(len(p_clicked)), p_exposed.std() / np.sqrt(n))
    assert p_clicked.mean() - p_exposed.mean() > 10 * se


def test_click_model_from_truth_params_and_defaults(world):
    _, params, _, truth = world
    model, again = click_model(params), click_model(truth["params"])
    for field in ("theta", "phi", "offset", "activity", "pi", "bias"):
        assert np.array_equal(getattr(model, field), getattr(again, field)), field
    assert model.b0 == again.b0
    assert model.theta.dtype == model.phi.dtype == model.offset.dtype == np.float32
    assert model.theta.shape == (params["n_users"], params.get("dim", 16))
    assert model.phi.shape[0] == model.offset.shape[0] == params["n_items"]
    # the model built from the spec's fields alone: bias rounded from float32, at most one ulp off
    bare = ClickModel(model.theta, model.phi, model.offset, model.b0, model.activity)
    assert np.allclose(bare.bias, model.bias, rtol=0, atol=1e-6)
    default = json.loads(json.dumps(world_params()))
    assert default["n_users"] == 1000 and default["n_items"] == 500 and default["seed"] == 0


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="unknown synthetic parameter"):
        click_model(n_user=10)
    with pytest.raises(ValueError, match="n_users"):
        click_model({"n_users": 5})


def test_probability_matrix_equals_probability_on_pairs():
    model = click_model(SMALL)
    users = np.array([0, 5, 17, 17, 299, 42, 3])
    cols = np.array([199, 0, 3, 3, 150])
    full = model.probability_matrix(users, cells=1000)      # 5 rows per chunk: several chunks
    assert full.shape == (len(users), model.n_items) and full.dtype == np.float32
    uu, ii = np.repeat(users, model.n_items), np.tile(np.arange(model.n_items), len(users))
    np.testing.assert_allclose(full, model.probability(uu, ii).reshape(full.shape), rtol=0, atol=1e-6)
    sub = model.probability_matrix(users, cols)
    np.testing.assert_allclose(sub, model.probability(users[:, None], cols[None, :]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(sub, full[:, cols], rtol=0, atol=1e-6)
    assert model.probability_matrix(np.array([], dtype=np.int64)).shape == (0, model.n_items)

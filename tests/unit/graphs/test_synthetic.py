"""The synthetic world generator: file formats, invariants, determinism and planted effects."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from kgrec.graphs.synthetic import FILES, TIME_START, generate_world

SMALL = dict(n_users=300, n_items=200, n_interactions=3000)


def _read(directory: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(directory / name, sep="\t", dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("world") / "w"
    truth = generate_world(out, seed=0, **SMALL)
    return out, truth


@pytest.fixture(scope="module")
def tables(world) -> dict[str, pd.DataFrame]:
    return {name: _read(world[0], name) for name in FILES}


def test_files_exist_with_exact_headers(world):
    out, truth = world
    for name, columns in FILES.items():
        with open(out / name, encoding="utf-8") as fh:
            assert fh.readline() == "\t".join(columns) + "\n", name
    assert json.loads((out / "truth.json").read_text(encoding="utf-8")) == json.loads(json.dumps(truth))


def test_row_counts_match_truth(world, tables):
    counts = world[1]["counts"]
    expected = {"users.tsv": "users", "items.tsv": "items", "item_kg.tsv": "item_kg_triples",
                "kg.tsv": "kg_triples", "social.tsv": "social_pairs", "interactions.tsv": "interactions"}
    for name, key in expected.items():
        lines = (world[0] / name).read_text(encoding="utf-8").count("\n") - 1
        assert lines == len(tables[name]) == counts[key], name
    assert counts["users"] == SMALL["n_users"] and counts["items"] == SMALL["n_items"]
    entities = set(tables["item_kg.tsv"]["entity_id"])
    assert counts["entities"] == len(entities)


def test_interactions_unique_exact_and_typed(tables):
    inter = tables["interactions.tsv"]
    assert len(inter) == SMALL["n_interactions"]
    assert not inter.duplicated(["user_id", "item_id"]).any()
    assert set(inter["rating"]) == {"1.0"}
    ts = inter["timestamp"].astype(np.int64)
    assert (inter["timestamp"] == ts.astype(str)).all()
    assert ts.min() >= TIME_START and ts.max() < TIME_START + 365 * 86400
    per_user = inter.groupby("user_id").size()
    assert len(per_user) > 0.8 * SMALL["n_users"]          # most users are active ...
    assert per_user.max() > 4 * per_user.median()           # ... with heavy-tailed activity


def test_social_symmetric_without_self_loops(world, tables):
    social = tables["social.tsv"]
    pairs = set(zip(social["user_id"], social["friend_id"]))
    assert len(pairs) == len(social)
    assert all((b, a) in pairs for a, b in pairs)
    assert not (social["user_id"] == social["friend_id"]).any()
    assert len(social) / SMALL["n_users"] == pytest.approx(8.0, abs=0.05)   # avg_friends default
    assert world[1]["social_homophily"] > 0.03


def test_referenced_ids_exist(world, tables):
    users, items = set(tables["users.tsv"]["user_id"]), set(tables["items.tsv"]["item_id"])
    assert users == {f"u{k}" for k in range(SMALL["n_users"])}
    assert items == {f"i{k}" for k in range(SMALL["n_items"])}
    inter, social, ikg, kg = (tables[n] for n in ("interactions.tsv", "social.tsv", "item_kg.tsv", "kg.tsv"))
    assert set(inter["user_id"]) <= users and set(inter["item_id"]) <= items
    assert set(social["user_id"]) <= users and set(social["friend_id"]) <= users
    assert set(ikg["item_id"]) <= items
    assert set(ikg["relation"]) == {"has_genre", "made_by", "has_topic"}
    entities = set(ikg["entity_id"])
    assert set(kg["head_id"]) <= entities and set(kg["tail_id"]) <= entities
    assert set(kg["relation"]) <= {"works_in", "related_to", "associated_with"} and len(kg) > 0
    prefixes = {"has_genre": "genre:", "made_by": "creator:", "has_topic": "topic:"}
    assert all(e.startswith(prefixes[r]) for r, e in zip(ikg["relation"], ikg["entity_id"]))
    per_item = ikg.groupby("item_id")["relation"].value_counts().unstack(fill_value=0)
    assert (per_item["has_genre"] == 1).all() and (per_item["made_by"] == 1).all()
    assert per_item["has_topic"].between(1, 3).all()
    missing = len(items) - len(per_item)
    assert missing == world[1]["counts"]["items_without_kg"] and 1 <= missing <= 25
    genres = dict(zip(tables["items.tsv"]["item_id"], tables["items.tsv"]["genre"]))
    linked = ikg[ikg["relation"] == "has_genre"]
    assert all(e == f"genre:{genres[i]}" for i, e in zip(linked["item_id"], linked["entity_id"]))
    assert f"genre:{world[1]['target_genre']}" in entities


def test_user_and_item_columns(tables):
    users, items = tables["users.tsv"], tables["items.tsv"]
    assert set(users["group"]) == {"A", "B"}
    assert 0.28 < (users["group"] == "B").mean() < 0.52
    age = users["age"].astype(int)
    assert age.between(16, 70).all() and (users["age"] == age.astype(str)).all()
    assert items["provider"].str.fullmatch(r"p\d+").all() and items["genre"].nunique() > 1
    assert items["title"].str.fullmatch(r"[A-Z][a-z]+ [a-z ]+ of [a-z]+ and [a-z]+").all()
    assert items["critic_score"].str.fullmatch(r"-?\d+(\.\d{1,4})?").all()


def test_same_seed_is_byte_identical_other_seed_differs(world, tmp_path):
    again, other = tmp_path / "again", tmp_path / "other"
    generate_world(again, seed=0, **SMALL)
    generate_world(other, seed=1, **SMALL)
    for name in [*FILES, "truth.json"]:
        assert (again / name).read_bytes() == (world[0] / name).read_bytes(), name
    assert (other / "interactions.tsv").read_bytes() != (again / "interactions.tsv").read_bytes()
    assert (other / "items.tsv").read_bytes() != (again / "items.tsv").read_bytes()


def test_planted_confounding_is_visible(tmp_path):
    truth = generate_world(tmp_path / "c", n_users=2000, n_items=300, n_interactions=12000, seed=0)
    assert truth["popularity_elasticity"] == pytest.approx(1.0, abs=1e-6)
    assert truth["naive_popularity_elasticity"] > truth["popularity_elasticity"] + 0.03
    assert truth["naive_popularity_elasticity_expected"] > 1.05
    assert truth["adjusted_popularity_elasticity"] < truth["naive_popularity_elasticity"]


def test_no_quality_on_popularity_no_confounding(tmp_path):
    truth = generate_world(tmp_path / "c", quality_on_popularity=0.0, seed=0, **SMALL)
    assert truth["naive_popularity_elasticity_expected"] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("seed", [0, 1])
def test_sensitive_effect_sign(tmp_path, seed):
    shifted = generate_world(tmp_path / "s", seed=seed, **SMALL)
    assert shifted["sensitive_effect_on_genre_share"] > 0.01
    assert shifted["sensitive_effect_on_genre_share_global"] > shifted["sensitive_effect_on_genre_share"]
    none = generate_world(tmp_path / "n", sensitive_shift=0.0, seed=seed, **SMALL)
    assert abs(none["sensitive_effect_on_genre_share"]) < 0.01
    assert abs(none["sensitive_effect_on_genre_share_global"]) < 0.01
    assert none["target_genre"] == shifted["target_genre"]


def test_truth_records_params(world):
    truth = world[1]
    for key in ("social_alpha", "sensitive_shift", "quality_on_popularity", "quality_on_click"):
        assert truth[key] == truth["params"][key]
    assert truth["seed"] == 0 and truth["params"]["n_interactions"] == SMALL["n_interactions"]
    assert all(math.isfinite(truth[k]) for k in ("sensitive_effect_on_genre_share", "popularity_elasticity",
                                                 "naive_popularity_elasticity", "click_intercept"))


@pytest.mark.parametrize("bad", [
    {"n_users": 10}, {"n_users": 10 ** 7}, {"n_users": 300.5}, {"n_users": True}, {"n_items": 5},
    {"n_interactions": 0}, {"n_interactions": 10_000}, {"n_genres": 1}, {"n_creators": 0},
    {"n_providers": 0}, {"dim": 1}, {"avg_friends": -1.0}, {"avg_friends": 0.0}, {"avg_friends": 100.0},
    {"social_alpha": 1.5}, {"sensitive_shift": float("nan")}, {"quality_on_click": "0.5"}, {"seed": -1},
])
def test_bad_params_raise(tmp_path, bad):
    params = {**SMALL, "n_items": 50, **bad}
    with pytest.raises(ValueError):
        generate_world(tmp_path / "bad", **params)
    assert not (tmp_path / "bad").exists()


SCHEMA = """\
name: synth
description: a synthetic world
license: CC0
source: {}
files:
%(files)s
nodes:
  user: {file: users.tsv, id: user_id, features: {group: {type: categorical}, age: {type: numeric, min: 0, max: 120}},
         sensitive: [group]}
  item: {file: items.tsv, id: item_id, text: "{title}", features: {title: {type: text},
         genre: {type: categorical}, provider: {type: categorical}, critic_score: {type: numeric, min: -20, max: 20}}}
  entity: {}
edges:
  clicked: {src: user, dst: item, role: interaction, file: interactions.tsv, duplicates: error,
            columns: {src: user_id, dst: item_id, weight: rating, timestamp: timestamp}}
  friend: {src: user, dst: user, role: social, file: social.tsv, duplicates: error,
           columns: {src: user_id, dst: friend_id}}
  item_kg: {src: item, dst: entity, role: link, file: item_kg.tsv,
            columns: {src: item_id, relation: relation, dst: entity_id}}
  kg: {src: entity, dst: entity, role: kg, file: kg.tsv, columns: {src: head_id, relation: relation, dst: tail_id}}
"""


def test_loads_with_the_schema_loader(world, tmp_path):
    from kgrec.graphs import load_dataset

    files = "\n".join(f"  {n}: {{format: tsv, columns: [{', '.join(c)}]}}" for n, c in FILES.items())
    (tmp_path / "synth.yaml").write_text(SCHEMA % {"files": files}, encoding="utf-8")
    ds = load_dataset(tmp_path / "synth.yaml", data_dir=world[0])
    counts = world[1]["counts"]
    assert ds.warnings == []
    assert len(ds.nodes["user"].ids) == counts["users"] and len(ds.nodes["item"].ids) == counts["items"]
    assert len(ds.nodes["entity"].ids) == counts["entities"]
    assert len(ds.edges[("user", "clicked", "item")].src) == counts["interactions"]
    assert len(ds.edges[("user", "friend", "user")].src) == counts["social_pairs"]
    assert sum(len(ds.edges[("item", r, "entity")].src) for r in ("has_genre", "made_by", "has_topic")) \
        == counts["item_kg_triples"]


def _sample_clicks_reference(rng, theta, items, activity, quality_on_click, b0, n_interactions, max_batch):
    """sample_clicks as first written: de-duplicate the concatenation of every batch each round."""
    from kgrec.graphs import synthetic_world as sw

    n_items = len(items.quality)
    pi = np.exp(items.log_pi)
    offset = (quality_on_click * items.quality + b0).astype(np.float32)
    keys = np.empty(0, np.int64)
    exposures, yield_rate = 0, sw.TARGET_CTR
    while True:
        need = n_interactions - len(keys)
        m = int(min(max_batch, max(4096, need / max(yield_rate, 1e-3) * 1.15)))
        u = sw.categorical(rng, activity, m)
        i = sw.categorical(rng, pi, m)
        click = rng.random(m) < sw.sigmoid(sw.click_logits(theta, u, items.phi, i, offset))
        before = len(keys)
        keys = np.concatenate([keys, u[click] * n_items + i[click]])
        keep = sw.first_unique(keys)
        if len(keep) >= n_interactions:
            exposures += int(np.flatnonzero(click)[keep[n_interactions - 1] - before]) + 1
            keys = keys[keep[:n_interactions]]
            return keys // n_items, keys % n_items, exposures
        keys = keys[keep]
        exposures += m
        yield_rate = max((len(keys) - before) / m, 1e-4)


@pytest.mark.parametrize("max_batch, n", [(500, 2500), (3000, 2900), (1 << 22, 3000)])
def test_sample_clicks_batched_dedup_matches_whole_dedup(max_batch, n):
    """Testing each batch against the kept keys (linear in the batch) keeps exactly the pairs, the order
    and the exposure count of de-duplicating everything each round, over many rounds in a dense world."""
    from kgrec.graphs import synthetic_world as sw

    rng = np.random.default_rng(5)
    dirs = sw.genre_directions(rng, 4, 8)
    items = sw.sample_items(rng, 60, 10, 3, dirs, 0.8)
    theta = rng.standard_normal((100, 8)).astype(np.float32)
    activity = sw.cap_activity(rng.lognormal(0.0, 1.0, 100), 0.3 * 60 / n)
    got = sw.sample_clicks(np.random.default_rng(9), theta, items, activity, 0.5, -0.5, n, max_batch=max_batch)
    want = _sample_clicks_reference(np.random.default_rng(9), theta, items, activity, 0.5, -0.5, n, max_batch)
    assert got[2] == want[2]
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    pairs = got[0] * 60 + got[1]
    assert len(np.unique(pairs)) == len(pairs) == n


# --- the planted mediation outcome ---------------------------------------------------------------------------------

# sha256 of every file generate_world(seed=0, **SMALL) wrote before the mediation parameters (activity_on_sensitive,
# mediation_direct, mediation_noise) and the "outcome" stream existed: at their defaults the world is unchanged.
BEFORE_MEDIATION = {
    "interactions.tsv": "11adcdf2a0d456092abfb7b87e2393f203a5ff01786afcca2aa5d245f7b2d47d",
    "item_kg.tsv": "c1a76f6fc1493e214deec69578a7fb0bbde20381cd6d1d407296751c70f8f720",
    "items.tsv": "21a2c95a8166e08d9e29e2395994ee73cdf92050863abc9bd4108bf3cbedc44b",
    "kg.tsv": "23c38fea1852c8152ae5aa799dd7c5b259d8857479bd613a05fd71e4e8823513",
    "social.tsv": "97e4551f934f334dee32843355632cb93c910d9895b8ffd09df9390625707fee",
    "truth.json": "b51dc56b5e9351270fdd2af7f8ff2f5ac879b7a32102a6d195fb926fcc5fd77a",
    "users.tsv": "48bc22bc39d00d8fb696119e26ff59bcdfb49bbc5396c67fb492fd888fbdb68a",
}
PLANTED = dict(activity_on_sensitive=-0.5, mediation_direct=-0.03)


def test_default_world_is_unchanged_by_the_mediation_parameters(world):
    import hashlib

    out, truth = world
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())} == BEFORE_MEDIATION
    assert "mediation" not in truth and "outcome_users" not in truth["counts"]
    assert not set(truth["params"]) & {"activity_on_sensitive", "mediation_direct", "mediation_noise"}
    assert list(truth["files"]) == list(FILES)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("planted") / "w"
    return out, generate_world(out, seed=0, **SMALL, **PLANTED)


def test_planted_world_writes_the_outcome_and_its_truth(planted):
    from kgrec.graphs import synthetic_outcome as so
    from kgrec.metrics.mediators import history_mediators

    out, truth = planted
    with open(out / so.FILE, encoding="utf-8") as fh:
        assert fh.readline() == "\t".join(so.COLUMNS) + "\n"
    assert truth["files"][so.FILE] == list(so.COLUMNS)
    y = pd.read_csv(out / so.FILE, sep="\t")
    users, inter = _read(out, "users.tsv"), _read(out, "interactions.tsv")
    assert len(y) == truth["counts"]["outcome_users"] == truth["counts"]["users_with_interactions"]
    assert set(y["user_id"]) == set(inter["user_id"])
    # the file's mediators are kgrec.metrics.mediators' definition on interactions.tsv
    uid = {u: k for k, u in enumerate(users["user_id"])}
    iid = {i: k for k, i in enumerate(_read(out, "items.tsv")["item_id"])}
    x = sp.csr_matrix((np.ones(len(inter)), (inter["user_id"].map(uid), inter["item_id"].map(iid))),
                      shape=(len(uid), len(iid)))
    med = history_mediators(x)
    rows = y["user_id"].map(uid).to_numpy()
    for m in ("activity", "history_popularity"):
        np.testing.assert_allclose(y[m], med[m][rows], rtol=0, atol=1e-12)
    # truth: NDE = delta, NIE = sum_j gamma_j (gap of m_j between B and A), TE = NDE + NIE
    t = truth["mediation"]
    s = (users.set_index("user_id").loc[y["user_id"], "group"] == "B").to_numpy()
    gaps = {m: y[m][s].mean() - y[m][~s].mean() for m in t["mediators"]}
    assert t["natural_direct_effect"] == -0.03 and t["semi_synthetic"] is True
    assert t["natural_indirect_effect"] == pytest.approx(sum(so.SLOPES[m] * gaps[m] for m in gaps), abs=1e-12)
    assert t["total_effect"] == pytest.approx(t["natural_direct_effect"] + t["natural_indirect_effect"], abs=1e-15)
    assert t["mediator_gap"]["activity"] < -0.1       # group B is less active (activity_on_sensitive < 0)
    # the outcome is the planted equation plus N(0, noise_sd^2) noise
    resid = y["outcome"] - (so.INTERCEPT - 0.03 * s + sum(so.SLOPES[m] * y[m] for m in gaps))
    assert abs(resid.mean()) < 0.01 and resid.std() == pytest.approx(t["noise_sd"], rel=0.1)


def test_planting_the_outcome_alone_changes_no_other_file(world, tmp_path):
    out = tmp_path / "p"
    truth = generate_world(out, seed=0, mediation_direct=0.0, **SMALL)
    for name in FILES:
        assert (out / name).read_bytes() == (world[0] / name).read_bytes(), name
    assert truth["mediation"]["natural_direct_effect"] == 0.0
    shifted = generate_world(tmp_path / "s", seed=0, activity_on_sensitive=-1.0, **SMALL)
    assert (tmp_path / "s" / "interactions.tsv").read_bytes() != (world[0] / "interactions.tsv").read_bytes()
    assert shifted["params"]["activity_on_sensitive"] == -1.0 and "mediation" not in shifted


def test_activity_shift_reaches_the_click_model(planted):
    """click_model applies the same activity shift: it replays the planted world's clicks."""
    from kgrec.graphs import synthetic_click as sc
    from kgrec.graphs.synthetic import click_model, world_params

    out, truth = planted
    v = world_params(truth["params"])
    assert v["activity_on_sensitive"] == -0.5 and v["mediation_direct"] == -0.03
    model = click_model(truth["params"])
    users, items, exposures = model.sample_interactions(sc.streams(0)["click"], SMALL["n_interactions"])
    inter = _read(out, "interactions.tsv")
    assert exposures == truth["exposures"]
    assert {(f"u{u}", f"i{i}") for u, i in zip(users.tolist(), items.tolist())} == set(zip(inter["user_id"],
                                                                                          inter["item_id"]))


@pytest.mark.parametrize("bad", [{"activity_on_sensitive": float("nan")}, {"activity_on_sensitive": 6.0},
                                 {"mediation_direct": 2.0}, {"mediation_direct": "0.1"}, {"mediation_noise": -0.1}])
def test_bad_mediation_params_raise(tmp_path, bad):
    with pytest.raises(ValueError):
        generate_world(tmp_path / "bad", **SMALL, **bad)

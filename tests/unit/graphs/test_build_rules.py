"""Values are never changed silently (kgrec/graphs/build.py): non-finite and negative weights and
timestamps, social self-loops, ids that differ only by whitespace or would collide as numbers,
trailing NULs, and a multicategorical ``sep`` that never occurs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.errors import LoadWarning
from kgrec.graphs import load_dataset

MINI = """name: mini
source: {}
files:
  ratings.tsv: {format: tsv}
  friends.tsv: {format: tsv}
  items.tsv: {format: tsv}
nodes:
  user: {}
  item:
    file: items.tsv
    id: item_id
    features:
      tags: {type: multicategorical, sep: "%(sep)s"}
edges:
  rated:
    src: user
    dst: item
    role: interaction
    file: ratings.tsv
    columns: {src: user_id, dst: item_id, weight: rating, timestamp: ts}
%(range)s  friend:
    src: user
    dst: user
    role: %(role)s
    file: friends.tsv
    columns: {src: a, dst: b}
"""
RATINGS = ["u1\ti1\t5\t100", "u2\ti1\t4\t110", "u3\ti2\t3\t120"]
ITEMS = ["i1\tjazz|bebop", "i2\trock"]


def mini(tmp_path: Path, *, ratings: list[str] = RATINGS, friends: list[str] = ("u1\tu2",),
         items: list[str] = ITEMS, sep: str = "|", weight_range: str | None = None, role: str = "social"):
    """Write and load a small schema with a file-less user type; returns the data set."""
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "ratings.tsv").write_text("user_id\titem_id\trating\tts\n" + "".join(f"{r}\n" for r in ratings))
    (data / "friends.tsv").write_text("a\tb\n" + "".join(f"{r}\n" for r in friends))
    (data / "items.tsv").write_text("item_id\ttags\n" + "".join(f"{r}\n" for r in items))
    rng = f"    weight_range: {weight_range}\n" if weight_range else ""
    (tmp_path / "mini.yaml").write_text(MINI % {"sep": sep, "range": rng, "role": role})
    return load_dataset(tmp_path / "mini.yaml", data_dir=data)


def only(ds, action: str = "dropped") -> LoadWarning:
    assert len(ds.warnings) == 1, ds.warnings
    w = ds.warnings[0]
    assert w.action == action, w
    return w


def test_mini_world_is_clean(tmp_path: Path) -> None:
    ds = mini(tmp_path)
    assert ds.warnings == [] and len(ds.interactions) == 3


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "1e400", "-1e999"])
@pytest.mark.parametrize("column", ["rating", "ts"])
def test_non_finite_weight_or_timestamp_is_dropped(tmp_path: Path, column: str, value: str) -> None:
    row = ["u9", "i2", "2", "130"]
    row[2 if column == "rating" else 3] = value
    ds = mini(tmp_path, ratings=[*RATINGS, "\t".join(row)])
    w = only(ds)
    assert (w.line, w.field, w.count) == (5, column, 1) and w.reason == f"not finite (first: '{value}')"
    assert len(ds.interactions) == 3 and np.isfinite(ds.interactions.weight).all()


def test_weight_beyond_float32_is_dropped(tmp_path: Path) -> None:
    ds = mini(tmp_path, ratings=[*RATINGS, "u9\ti2\t1e39\t130", "u8\ti2\t-4e38\t130"])
    w = only(ds)
    assert (w.line, w.count) == (5, 2) and "beyond the float32 range" in w.reason and "'1e39'" in w.reason
    assert np.isfinite(ds.interactions.weight).all()


def test_negative_weight_is_dropped_unless_the_range_allows_it(tmp_path: Path) -> None:
    rows = [*RATINGS, "u9\ti2\t-1\t130", "u8\ti1\t-0.5\t140"]
    w = only(mini(tmp_path / "no-range", ratings=rows))
    assert (w.line, w.field, w.count) == (5, "rating", 2) and w.reason.startswith("negative weight")
    ds = mini(tmp_path / "signed", ratings=rows, weight_range="[-1, 5]")
    assert ds.warnings == [] and sorted(ds.interactions.weight.tolist()) == [-1.0, -0.5, 3.0, 4.0, 5.0]
    w = only(mini(tmp_path / "unsigned", ratings=rows, weight_range="[0, 5]"))
    assert w.count == 2 and "outside weight_range [0, 5]" in w.reason


def test_negative_timestamp_is_dropped_and_zero_kept(tmp_path: Path) -> None:
    ds = mini(tmp_path, ratings=[*RATINGS, "u9\ti2\t2\t-5", "u8\ti2\t2\t0", "u7\ti2\t2\t-0"])
    w = only(ds)
    assert (w.line, w.field, w.count) == (5, "ts", 1) and w.reason == "negative timestamp (first: '-5')"
    assert len(ds.interactions) == 5


def test_social_self_loop_is_dropped(tmp_path: Path) -> None:
    ds = mini(tmp_path, friends=["u1\tu2", "u3\tu3", "u2\tu2"])
    w = only(ds)
    assert (w.line, w.field, w.count) == (3, "a/b", 2) and "self-loop" in w.reason
    assert len(ds.edges[("user", "friend", "user")]) == 1


def test_self_loop_of_another_role_is_kept(tmp_path: Path) -> None:
    ds = mini(tmp_path, friends=["u1\tu2", "u3\tu3"], role="other")
    assert ds.warnings == [] and len(ds.edges[("user", "friend", "user")]) == 2


def test_ids_are_exact_strings(tmp_path: Path) -> None:
    """'7', '07', '7.0', 'nan' and '7\\x00' are five users, none merged and none lost."""
    ids = ["7", "07", "7.0", "nan", "7\x00"]
    ds = mini(tmp_path, ratings=[f"{u}\ti1\t3\t1" for u in ids], friends=["7\t07"])
    assert ds.warnings == []
    assert ds.nodes["user"].ids.tolist() == ids


def test_trailing_nul_in_a_node_file_id_is_kept(tmp_path: Path) -> None:
    ds = mini(tmp_path, items=[*ITEMS, "i1\x00\tpop"], ratings=[*RATINGS, "u1\ti1\x00\t3\t1"])
    assert ds.warnings == []
    assert ds.nodes["item"].ids.tolist() == ["i1", "i2", "i1\x00"] and len(ds.interactions) == 4


def test_whitespace_twin_in_a_node_file_is_dropped(tmp_path: Path) -> None:
    ds = mini(tmp_path, items=[" i2\tpop", *ITEMS, "i1 \tfolk"])
    w = only(ds)
    assert (w.line, w.field, w.count) == (2, "item_id", 2) and "' i2'" in w.reason
    assert "equal to another but for surrounding whitespace" in w.reason
    assert ds.nodes["item"].ids.tolist() == ["i1", "i2"]


def test_unicode_normalisation_twin_is_dropped(tmp_path: Path) -> None:
    """'é' composed (NFC) and decomposed (e + U+0301) read the same: the decomposed one goes."""
    ds = mini(tmp_path, ratings=[*RATINGS, "caf\u00e9\ti1\t3\t1", "cafe\u0301\ti2\t3\t1"])
    w = only(ds)
    assert (w.line, w.field, w.count) == (6, "user_id", 1) and "Unicode normalisation" in w.reason
    assert "caf\u00e9" in ds.nodes["user"].ids.tolist() and "cafe\u0301" not in ds.nodes["user"].ids.tolist()


def test_whitespace_twins_from_edges_are_dropped(tmp_path: Path) -> None:
    """A node type without a file: ' u1' and 'u1 ' next to 'u1' are dropped with their rows."""
    ds = mini(tmp_path, ratings=[" u1\ti2\t3\t1", *RATINGS], friends=["u1\tu2", "u2\tu1 "])
    by_file = {Path(w.file).name: w for w in ds.warnings}
    assert set(by_file) == {"ratings.tsv", "friends.tsv"}
    assert (by_file["ratings.tsv"].line, by_file["ratings.tsv"].field) == (2, "user_id")
    assert (by_file["friends.tsv"].line, by_file["friends.tsv"].field) == (3, "b")
    assert "u1" in ds.nodes["user"].ids.tolist() and " u1" not in ds.nodes["user"].ids.tolist()
    assert len(ds.interactions) == 3 and len(ds.edges[("user", "friend", "user")]) == 1


def test_padded_ids_without_a_twin_are_kept(tmp_path: Path) -> None:
    ds = mini(tmp_path, ratings=[" u1\ti2\t3\t1", "u2 \ti1\t4\t2"], friends=[" u1\tu2 "])
    assert ds.warnings == [] and ds.nodes["user"].ids.tolist() == [" u1", "u2 "]


@pytest.mark.parametrize("items, sep, count", [
    (["i1\tjazz|bebop", "i2\trock", "i3\tfolk|pop"], ";", 2),    # '|' but never ';'
    (["i1\tjazz bebop", "i2\trock"], "|", 1),                   # whitespace but never '|'
    (["i1\tjazz,bebop", "i2\trock;pop"], " ", 2),               # ',' and ';' but never ' '
])
def test_sep_that_never_occurs_is_not_split(tmp_path: Path, items: list[str], sep: str, count: int) -> None:
    ds = mini(tmp_path, items=items, sep=sep, ratings=["u1\ti1\t5\t1"])
    w = only(ds, "not split")
    assert (w.line, w.field, w.count) == (2, "tags", count) and f"sep {sep!r} never occurs" in w.reason
    assert ds.nodes["item"].vocab["tags"] == sorted(v.split("\t")[1] for v in items)
    assert str(w).startswith(f"warning: {w.file}:2: field 'tags': not split {count:,} row(s): ")


@pytest.mark.parametrize("items, sep", [
    (["i1\tjazz", "i2\trock"], "|"),                             # single tokens: normal
    (["i1\tjazz|bebop", "i2\trock"], "|"),                       # sep occurs
    (["i1\t", "i2\t "], "|"),                                    # all missing (counted as such)
    (["i1\t jazz ", "i2\trock"], "|"),                           # surrounding spaces only
])
def test_sep_check_stays_quiet(tmp_path: Path, items: list[str], sep: str) -> None:
    ds = mini(tmp_path, items=items, sep=sep, ratings=["u1\ti1\t5\t1"])
    assert all(w.action != "not split" for w in ds.warnings), ds.warnings


def test_numeric_feature_not_finite_is_set_to_missing(tiny_copy) -> None:
    schema, data = tiny_copy
    lines = (data / "users.tsv").read_text().splitlines()
    lines[2] = lines[2].replace("\t35\t", "\t1e400\t")
    lines[3] = lines[3].replace("\t51\t", "\tinf\t")
    (data / "users.tsv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(schema, data_dir=data)
    w = only(ds, "set to missing")
    assert (w.line, w.field, w.count) == (3, "age", 2) and w.reason == "not finite (first: '1e400')"
    assert np.isnan(ds.nodes["user"].features["age"][[1, 2]]).all()

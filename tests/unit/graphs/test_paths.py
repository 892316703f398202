"""Data file paths stay inside the data directory (kgrec/graphs/paths.py), unless allowed; a
directory, a symlink loop or a special file where a data file belongs has its own DataError."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kgrec.errors import EXIT_DATA, EXIT_SCHEMA, DataError, SchemaError
from kgrec.graphs import load_dataset, load_schema
from kgrec.graphs.paths import ALLOW_ENV, lexical_escape, outside_paths_allowed


def _line(path: Path, text: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if text in ln)


def _rename_file(schema: Path, old: str, new: str) -> int:
    """Rename data file ``old`` to ``new`` in the schema (key and references); returns the key's line."""
    schema.write_text(schema.read_text().replace(f"  {old}: {{", f"  {new}: {{").replace(f"file: {old}", f"file: {new}"))
    return _line(schema, f"  {new}: {{")


@pytest.mark.parametrize("name, why", [
    ("x.tsv", None), ("sub/x.tsv", None), ("sub/../x.tsv", None), ("./x.tsv", None), ("a/b/../../x", None),
    ("../x.tsv", "climbs out"), ("sub/../../x.tsv", "climbs out"), ("..", "climbs out"), ("a\\..\\..\\x", "climbs out"),
    ("/etc/passwd", "absolute"), ("\\\\server\\share\\x", "absolute"), ("C:\\data\\x.tsv", "absolute"),
    ("C:x.tsv", "absolute"),
])
def test_lexical_escape(name: str, why: str | None) -> None:
    got = lexical_escape(name)
    assert (got is None) if why is None else (got is not None and why in got)


def test_env_variable_allows(monkeypatch) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    assert not outside_paths_allowed() and outside_paths_allowed(True)
    for value, allowed in (("1", True), ("true", True), ("YES", True), ("0", False), ("", False)):
        monkeypatch.setenv(ALLOW_ENV, value)
        assert outside_paths_allowed() is allowed


@pytest.mark.parametrize("new, why", [("../friends.tsv", "climbs out of the data directory with '..'"),
                                      ("ABS", "is an absolute path")])
def test_outside_name_is_a_schema_error_at_parse_time(tiny_copy, monkeypatch, new: str, why: str) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    schema, data = tiny_copy
    outside = data.parent / "friends.tsv"
    shutil.copy(data / "friends.tsv", outside)
    new = str(outside) if new == "ABS" else new
    line = _rename_file(schema, "friends.tsv", new)
    with pytest.raises(SchemaError) as info:
        load_schema(schema)  # --schema-only already refuses it
    err = info.value
    assert (err.exit_code, err.file, err.line, err.field) == (EXIT_SCHEMA, str(schema), line, f"files.{new}")
    assert why in err.message and ALLOW_ENV in err.message
    # explicitly allowed: by keyword, or by the environment variable
    ds = load_dataset(schema, data_dir=data, allow_outside_paths=True)
    assert len(ds.edges[("user", "friend", "user")]) > 0
    monkeypatch.setenv(ALLOW_ENV, "1")
    assert load_dataset(schema, data_dir=data).nodes.keys() == ds.nodes.keys()


def test_symlink_out_of_the_data_directory(tiny_copy, monkeypatch) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    schema, data = tiny_copy
    elsewhere = data.parent / "elsewhere"
    elsewhere.mkdir()
    shutil.move(data / "kg.tsv", elsewhere / "kg.tsv")
    (data / "kg.tsv").symlink_to(Path("..") / "elsewhere" / "kg.tsv")
    load_schema(schema)  # the name itself is fine
    with pytest.raises(SchemaError) as info:
        load_dataset(schema, data_dir=data)
    err = info.value
    assert (err.file, err.line, err.field) == (str(schema), _line(schema, "  kg.tsv: {"), "files.kg.tsv")
    assert "through a symlink" in err.message and "outside the data directory" in err.message
    assert len(load_dataset(schema, data_dir=data, allow_outside_paths=True).edge_types("kg")) == 3


def test_symlink_inside_and_symlinked_data_directory_are_fine(tiny_copy) -> None:
    schema, data = tiny_copy
    (data / "store").mkdir()
    shutil.move(data / "kg.tsv", data / "store" / "kg.tsv")
    (data / "kg.tsv").symlink_to(Path("store") / "kg.tsv")
    link = data.parent / "link-to-data"
    link.symlink_to(data)
    assert load_dataset(schema, data_dir=link).warnings == []


def test_subdirectory_file_names_are_inside(tiny_copy) -> None:
    schema, data = tiny_copy
    (data / "sub").mkdir()
    shutil.move(data / "links.tsv", data / "sub" / "links.tsv")
    _rename_file(schema, "links.tsv", "sub/../sub/links.tsv")
    assert load_dataset(schema, data_dir=data).warnings == []


@pytest.mark.parametrize("kind, message", [("directory", "is a directory"), ("loop", "symlink loop"),
                                           ("fifo", "is not a regular file"), ("dangling", "file not found")])
def test_not_a_regular_file(tiny_copy, kind: str, message: str) -> None:
    schema, data = tiny_copy
    target = data / "links.tsv"
    target.unlink()
    if kind == "directory":
        target.mkdir()
    elif kind == "loop":
        target.symlink_to("links.tsv")
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(target)
    else:
        target.symlink_to("gone.tsv")
    with pytest.raises(DataError) as info:
        load_dataset(schema, data_dir=data)
    err = info.value
    assert (err.exit_code, err.file, err.field) == (EXIT_DATA, str(target), "files.links.tsv")
    assert message in err.message and (kind == "dangling" or "file not found" not in err.message)


def test_data_dir_that_is_a_file(tiny_copy) -> None:
    schema, data = tiny_copy
    with pytest.raises(DataError, match="data directory is not a directory"):
        load_dataset(schema, data_dir=data / "users.tsv")


@pytest.mark.parametrize("kind, message", [("directory", "is a directory, not a schema file"),
                                           ("loop", "schema file is a symlink loop"),
                                           ("dangling", "schema file not found")])
def test_schema_path_that_is_not_a_file(tmp_path: Path, kind: str, message: str) -> None:
    from kgrec.graphs import schema_path

    path = tmp_path / "tiny.yaml"
    if kind == "directory":
        path.mkdir()
    elif kind == "loop":
        path.symlink_to("tiny.yaml")
    else:
        path.symlink_to("gone.yaml")
    with pytest.raises(SchemaError) as info:
        schema_path(path)
    assert info.value.file == str(path) and info.value.message == message

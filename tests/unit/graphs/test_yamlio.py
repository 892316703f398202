"""Bounded YAML loading (kgrec/yamlio.py): aliases, deep nesting and control characters are
SchemaErrors with the line, fast; line-aware LineDict/LineList trees are unchanged."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kgrec.errors import EXIT_SCHEMA, SchemaError
from kgrec.yamlio import MAX_DEPTH, LineDict, LineList, load_yaml

REPO = Path(__file__).resolve().parents[3]
SHIPPED = sorted([*(REPO / "graphs").glob("*.yaml"), *(REPO / "audit").glob("*.yaml"),
                  REPO / "kgrec" / "configs" / "default.yaml"])


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _error(tmp_path: Path, text: str | bytes, name: str = "x.yaml") -> SchemaError:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(SchemaError) as info:
        load_yaml(path)
    assert info.value.exit_code == EXIT_SCHEMA
    assert info.value.file == str(path)
    return info.value


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_yaml_needs_no_aliases(path: Path) -> None:
    """Every YAML file the project ships loads under the bounded loader."""
    assert isinstance(load_yaml(path), dict)


def test_billion_laughs_is_refused_at_once(tmp_path: Path) -> None:
    start = time.perf_counter()
    err = _error(tmp_path, billion_laughs())
    assert time.perf_counter() - start < 0.5
    assert (err.line, err.field) == (2, "a1[0]")
    assert "YAML alias '*a0' is not allowed" in str(err)


@pytest.mark.parametrize("text, line, field", [
    ("base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n", 3, "c.<<"),       # a merge key is an alias too
    ("a: 1\nb: *nowhere\n", 2, "b"),                               # undefined: refused the same way
    ("a:\n  - &x 1\n  - *x\n", 3, "a[1]"),
])
def test_aliases_are_refused_with_line_and_field(tmp_path: Path, text: str, line: int, field: str) -> None:
    err = _error(tmp_path, text)
    assert (err.line, err.field) == (line, field)
    assert f"x.yaml:{line}: field '{field}'" in str(err)


def test_an_anchor_without_alias_is_harmless(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("a: &x 1\nb: 2\n")
    assert load_yaml(tmp_path / "x.yaml") == {"a": 1, "b": 2}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_deep_flow_nesting_is_refused_without_recursion_error(tmp_path: Path, depth: int) -> None:
    start = time.perf_counter()
    err = _error(tmp_path, "ok: 1\nx: " + "[" * depth + "]" * depth + "\n")
    assert time.perf_counter() - start < 2
    assert err.line == 2 and err.field == "x[0][0][0]...[0][0]"
    assert f"nesting deeper than {MAX_DEPTH} levels" in str(err)


def test_deep_block_nesting_names_the_line(tmp_path: Path) -> None:
    text = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5)) + "  " * (MAX_DEPTH + 5) + "v\n"
    err = _error(tmp_path, text)
    assert err.line == MAX_DEPTH + 1
    assert err.field.startswith("k0.k1.k2.k3...")


def test_nesting_at_the_limit_loads(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("x: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n")
    value = load_yaml(tmp_path / "x.yaml")["x"]
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []


@pytest.mark.parametrize("raw, line, what", [
    (b"a: 1\nb: x\x00y\n", 2, "a NUL character (\\x00) at column 5"),
    (b"a: 1\n\nc: \"x\x00\"\n", 3, "a NUL character (\\x00) at column 6"),
    (b"\x00", 1, "a NUL character (\\x00) at column 1"),
    (b"a: 1\nb: \x07\n", 2, "control character U+0007 at column 4"),
])
def test_control_characters_name_the_line(tmp_path: Path, raw: bytes, line: int, what: str) -> None:
    err = _error(tmp_path, raw)
    assert err.line == line and what in err.message


def test_escaped_nul_in_a_quoted_scalar_is_data(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text('a: "x\\0y"\n')
    assert load_yaml(tmp_path / "x.yaml") == {"a": "x\x00y"}


def test_a_directory_is_not_a_yaml_file(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(SchemaError, match="is a directory"):
        load_yaml(tmp_path / "d.yaml")


def test_line_aware_trees_are_kept(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("a: 1\nb:\n  c: [1, 2]\n  d:\n    - x\n    - y\n")
    tree = load_yaml(tmp_path / "x.yaml")
    assert isinstance(tree, LineDict) and isinstance(tree["b"], LineDict)
    assert tree.line_of("a") == 1 and tree.line_of("b") == 2 and tree["b"].line_of("d") == 4
    assert isinstance(tree["b"]["d"], LineList) and tree["b"]["d"].line_of(1) == 6


def test_billion_laughs_in_a_schema_is_a_schema_error(tmp_path: Path) -> None:
    from kgrec.graphs import load_schema

    text = (REPO / "tests" / "fixtures" / "tiny.yaml").read_text() + "citation: " + "[" * 9 + "]" * 9 + "\n"
    text = text.replace("name: tiny", "name: &n tiny") + "x: *n\n"
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    with pytest.raises(SchemaError) as info:
        load_schema(path)
    assert info.value.field == "x" and info.value.line == len(text.splitlines())

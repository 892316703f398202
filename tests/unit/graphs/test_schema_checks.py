"""Schema checks: the name matches the file name, and ``source`` entries are typed (each a
SchemaError with the line and the field, at ``--schema-only`` time)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kgrec.errors import SchemaError
from kgrec.graphs import load_dataset, load_schema

REPO = Path(__file__).resolve().parents[3]
TINY = REPO / "tests" / "fixtures" / "tiny.yaml"


def _write(tmp_path: Path, text: str, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _line(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


@pytest.mark.parametrize("path", sorted([*(REPO / "graphs").glob("*.yaml"), *(REPO / "tests" / "fixtures").glob("*.yaml")]),
                         ids=lambda p: p.name)
def test_shipped_and_fixture_names_match_their_files(path: Path) -> None:
    assert load_schema(path).name == path.stem


@pytest.mark.parametrize("file_name", ["tiny2.yaml", "Tiny.yaml", "tiny.yml.yaml"])
def test_name_must_match_the_file_name(tmp_path: Path, file_name: str) -> None:
    text = TINY.read_text()
    with pytest.raises(SchemaError) as info:
        load_schema(_write(tmp_path, text, file_name))
    err = info.value
    assert (err.line, err.field, err.exit_code) == (_line(text, "name: tiny"), "name", 3)
    assert f"name 'tiny' does not match the file name '{file_name}'" in err.message
    assert f"write 'name: {Path(file_name).stem}'" in err.message


def test_name_is_checked_after_the_content(tmp_path: Path) -> None:
    """A wrong key is reported first: the name check comes last."""
    text = TINY.read_text().replace("    weight_range: [1, 5]", "    wieght_range: [1, 5]")
    with pytest.raises(SchemaError, match="unknown key 'wieght_range'"):
        load_schema(_write(tmp_path, text, "other.yaml"))


def test_run_directory_copy_is_loaded_with_the_recorded_name(tmp_path: Path) -> None:
    """``RUN_DIR/schema.yaml`` is loaded with the name the run recorded, not its file name."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(TINY, run / "schema.yaml")
    assert load_schema(run / "schema.yaml", name="tiny").name == "tiny"
    with pytest.raises(SchemaError, match="name 'tiny' is not the data set's recorded name 'other'"):
        load_schema(run / "schema.yaml", name="other")
    with pytest.raises(SchemaError, match="does not match the file name 'schema.yaml'"):
        load_schema(run / "schema.yaml")


@pytest.mark.parametrize("source, field, message", [
    ("  pip: {requirement: x==1, sha256: 5}", "source.pip.sha256", "expected str, got 5"),
    ("  pip: {requirement: [x==1]}", "source.pip.requirement", "expected str"),
    ("  pip: {requirement: '  '}", "source.pip.requirement", "'requirement' is empty"),
    ("  pip: {sha256: " + "a" * 64 + "}", "source.pip.requirement", "missing required key 'requirement'"),
    ("  url: 5", "source.url", "expected a mapping, got int"),
    ("  url: [http://example.org/x.zip]", "source.url", "expected a mapping, got list"),
    ("  url: {href: 5}", "source.url.href", "expected str, got 5"),
    ("  url: {href: http://example.org/x.zip, sha256: ABC}", "source.url.sha256", "64 lowercase hex digits"),
    ("  url: {href: http://example.org/x.zip, prefix: 3}", "source.url.prefix", "expected str"),
    ("  synthetic: [1, 2]", "source.synthetic", "expected a mapping, got list"),
    ("  synthetic: {n_users: [1, 2]}", "source.synthetic.n_users", "expected a number, string or boolean"),
    ("  env: [A]", "source.env", "expected str"),
])
def test_source_entries_are_typed(tmp_path: Path, source: str, field: str, message: str) -> None:
    text = TINY.read_text().replace("  env: KGREC_TINY_DIR", source)
    with pytest.raises(SchemaError) as info:
        load_schema(_write(tmp_path, text))
    err = info.value
    assert (err.field, err.line) == (field, _line(text, source.strip()[:6]))
    assert message in err.message


@pytest.mark.parametrize("old, new, field, message", [
    ("  users.tsv: {format: tsv}", "  users.tsv: [tsv]", "files.users.tsv", "expected a mapping, got list"),
    ("FILES", "files: [users.tsv, items.tsv]", "files", "expected a mapping, got list"),
    ("entities: {neighbors: linked_to, field: name, top: 2}", "entities: {neighbors: [linked_to], field: name}",
     "nodes.item.derived.entities.neighbors", "expected str"),
])
def test_mapping_and_string_types(tmp_path: Path, old: str, new: str, field: str, message: str) -> None:
    text = TINY.read_text()
    text = re.sub(r"^files:\n(  .*\n)+", new + "\n", text, flags=re.M) if old == "FILES" else text.replace(old, new, 1)
    with pytest.raises(SchemaError) as info:
        load_schema(_write(tmp_path, text))
    assert info.value.field == field and message in info.value.message
    assert info.value.line == _line(text, new.splitlines()[0].strip())


def test_unknown_synthetic_parameter_names_its_line(tmp_path: Path) -> None:
    text = (REPO / "graphs" / "synthetic.yaml").read_text().replace("n_users: 1000", "n_userz: 1000")
    path = _write(tmp_path, text, "synthetic.yaml")
    with pytest.raises(SchemaError) as info:
        load_dataset(path)
    assert (info.value.field, info.value.line) == ("source.synthetic.n_userz", _line(text, "n_userz"))
    assert "unknown synthetic parameter 'n_userz'" in info.value.message


@pytest.mark.parametrize("label, ok", [("title", True), ("genres", False), ("year", False), ("nope", False)])
def test_label_names_a_text_or_categorical_feature(tmp_path: Path, label: str, ok: bool) -> None:
    needle = '    text: "{title} ({year}): {genres}. About {entities}."'
    text = TINY.read_text().replace(needle, f"{needle}\n    label: {label}", 1)
    if ok:
        assert load_schema(_write(tmp_path, text)).nodes["item"].label == "title"
        return
    with pytest.raises(SchemaError) as info:
        load_schema(_write(tmp_path, text))
    assert info.value.field == "nodes.item.label" and "text or categorical feature" in info.value.message
    assert info.value.line == _line(text, f"label: {label}")

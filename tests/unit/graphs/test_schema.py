"""Schemas: shipped ones load; metadata mirrors the schema; YAML-only extensions work."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from kgrec.errors import SchemaError
from kgrec.graphs import list_schemas, load_dataset, load_schema
from kgrec.graphs.dataset import reverse_type
from kgrec.yamlio import dump_yaml, load_yaml

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("path", sorted((REPO / "graphs").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_schemas_validate(path: Path) -> None:
    schema = load_schema(path)
    assert schema.name == path.stem
    assert schema.interaction.role == "interaction"
    assert schema.user_type != schema.item_type


def test_registry_lists_shipped_schemas() -> None:
    names = set(list_schemas())
    assert {"movielens-100k", "lastfm-2k", "ciaodvd"} <= names


def test_metadata_mirrors_schema(tiny) -> None:
    data = tiny.to_hetero()
    node_types, edge_types = data.metadata()
    assert node_types == list(tiny.schema.nodes) == ["user", "item", "entity"]
    assert (edge_types, node_types) == (tiny.metadata()[1], tiny.metadata()[0])
    expected = {("user", "rated", "item"), ("item", "rev_rated", "user"), ("user", "friend", "user"),
                ("item", "linked_to", "entity"), ("entity", "rev_linked_to", "item")}
    for rel in ("genre", "influenced", "played_with"):  # KG relation types come from the data
        expected |= {("entity", rel, "entity"), ("entity", f"rev_{rel}", "entity")}
    assert set(edge_types) == expected
    assert ("user", "rev_friend", "user") not in edge_types  # reverse: false is respected


def test_loaded_tensors_match_files(tiny) -> None:
    data = tiny.to_hetero()
    users, items = tiny.nodes["user"].index(), tiny.nodes["item"].index()
    ei = data["user", "rated", "item"].edge_index
    assert ei.shape == (2, 18)
    assert (ei[0, 0].item(), ei[1, 0].item()) == (users["u1"], items["i1"])
    assert data["user", "rated", "item"].edge_weight[0].item() == 5.0
    rev = data["item", "rev_rated", "user"].edge_index
    assert np.array_equal(rev.numpy(), ei.flip(0).numpy())
    assert data["user"].age.tolist() == [23.0, 35.0, 51.0, 19.0, 44.0]
    assert tiny.nodes["user"].vocab["gender"] == ["F", "M"]
    assert data["item"].genres.shape == (6, 6)


def test_text_templates_and_derived_neighbours(tiny) -> None:
    assert tiny.nodes["item"].text[0] == "Blue Train (1957): jazz, bebop. About John Coltrane."
    assert tiny.nodes["item"].text[5] == "Alone in the Dark (1992): game. About ."
    assert tiny.nodes["user"].text[1] == "likes rock"
    assert tiny.nodes["entity"].text is None


def test_new_relation_type_is_a_yaml_edit(tiny_copy) -> None:
    """Copy a schema, add an edge type in YAML only: it shows in metadata() and tensors."""
    schema_path, data_dir = tiny_copy
    (data_dir / "similar.tsv").write_text("a\tb\ni1\ti2\ni3\ti4\ni4\ti3\n")
    raw = yaml.safe_load(schema_path.read_text())
    raw["files"]["similar.tsv"] = {"format": "tsv"}
    raw["edges"]["similar_to"] = {"src": "item", "dst": "item", "role": "kg", "file": "similar.tsv",
                                  "columns": {"src": "a", "dst": "b"}, "reverse": True}
    schema_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    ds = load_dataset(schema_path, data_dir=data_dir)
    data = ds.to_hetero()
    assert ("item", "similar_to", "item") in data.metadata()[1]
    assert ("item", "rev_similar_to", "item") in data.metadata()[1]
    items = ds.nodes["item"].index()
    got = data["item", "similar_to", "item"].edge_index.t().tolist()
    assert got == [[items["i1"], items["i2"]], [items["i3"], items["i4"]], [items["i4"], items["i3"]]]


def test_new_node_and_relation_type_on_real_data(tmp_path, movielens) -> None:
    """On MovieLens: a new node type (occupation) and relation (works_as), YAML only."""
    raw = yaml.safe_load((REPO / "graphs" / "movielens-100k.yaml").read_text())
    raw["nodes"]["occupation"] = {}
    raw["edges"]["works_as"] = {"src": "user", "dst": "occupation", "file": "ml-100k.user",
                                "columns": {"src": "user_id", "dst": "occupation"}}
    raw["name"] = "movielens-occupations"  # a schema's name is its file name
    path = tmp_path / "movielens-occupations.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    ds = load_dataset(path, data_dir=movielens.location.directory)
    data = ds.to_hetero()
    assert "occupation" in data.metadata()[0]
    assert ("user", "works_as", "occupation") in data.metadata()[1]
    assert data["occupation"].num_nodes == 21
    assert data["user", "works_as", "occupation"].edge_index.shape == (2, 943)


def test_yaml_round_trip(tmp_path) -> None:
    src = REPO / "graphs" / "movielens-100k.yaml"
    once = load_yaml(src)
    rt = tmp_path / src.name  # the same file name, so the schema's name still matches it
    rt.write_text(dump_yaml(once))
    again = load_yaml(rt)
    assert again == once
    def no_lines(schema):
        return {k: replace(v, line=None) for k, v in schema.edges.items()}

    assert no_lines(load_schema(rt)) == no_lines(load_schema(src))
    assert load_schema(rt).nodes == load_schema(src).nodes


def test_schema_errors_name_line_and_field(tmp_path) -> None:
    bad = tmp_path / "tiny.yaml"
    text = (REPO / "tests" / "fixtures" / "tiny.yaml").read_text().replace("    weight_range: [1, 5]",
                                                                         "    wieght_range: [1, 5]")
    bad.write_text(text)
    with pytest.raises(SchemaError) as err:
        load_schema(bad)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "wieght_range" in l)
    assert err.value.line == line
    assert err.value.field == "edges.rated.wieght_range"
    assert "did you mean 'weight_range'" in str(err.value)


def test_reverse_type_naming() -> None:
    assert reverse_type(("user", "rated", "item")) == ("item", "rev_rated", "user")

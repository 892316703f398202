"""Property 2 of graph schemas: a valid world loads without loss (issue 5, invariant 11).

Node ids, edges (with weights and timestamps), feature values and ``metadata()`` /
``to_hetero().metadata()`` equal a naive reference reading of the files, with no warning;
plus checks of single behaviours over random worlds (reverse-type clashes, trailing NULs,
templates without fields, ids that would collide as numbers).
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from kgrec.errors import KgrecInputError
from kgrec.graphs import load_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from schema_outcomes import pick  # noqa: E402
from schema_reference import expected_metadata, loaded_edges, reference  # noqa: E402
from schema_world import NO_SHRINK, SLOW_OK, World, node_spec, worlds  # noqa: E402


@SLOW_OK
@given(world=worlds())
def test_valid_world_loads_without_loss(world: World) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        schema_path, data_dir = world.write(Path(tmp))
        ds = load_dataset(schema_path, data_dir=data_dir)
    assert ds.warnings == []
    ref_ids, ref_edges = reference(world)
    assert list(ds.nodes) == list(world.schema["nodes"])
    for n, node in ds.nodes.items():
        if "file" in node_spec(world, n):
            assert node.ids.tolist() == ref_ids[n], n
        else:
            assert sorted(node.ids.tolist()) == sorted(ref_ids[n]), n
    assert loaded_edges(ds) == ref_edges
    nodes_meta, edges_meta = ds.metadata()
    assert nodes_meta == list(world.schema["nodes"])
    assert Counter(edges_meta) == expected_metadata(world)
    for n in world.schema["nodes"]:
        spec = node_spec(world, n)
        for f, fs in spec.get("features", {}).items():
            written, got = world.tables[spec["file"]].column(f), ds.nodes[n].features[f]
            if fs["type"] == "categorical":
                assert [ds.nodes[n].vocab[f][c] for c in got] == written, (n, f)
            elif fs["type"] == "numeric":
                assert got.tolist() == np.array([float(v) for v in written]).astype(np.float32).tolist(), (n, f)
            elif fs["type"] == "multicategorical":
                vocab = np.array(ds.nodes[n].vocab[f], dtype=object)
                assert [set(vocab[row > 0]) for row in got] == [set(v.split(fs["sep"])) for v in written], (n, f)
            else:
                assert got.tolist() == written, (n, f)
        if spec.get("text") is not None:
            assert len(ds.nodes[n].text) == ds.nodes[n].num
    hetero = ds.to_hetero()
    assert Counter(hetero.metadata()[1]) == Counter(edges_meta)
    for et in ds.edges:
        assert hetero[et].edge_index.shape == (2, len(ds.edges[et]))
    assert {n: hetero[n].num_nodes for n in hetero.node_types} == {n: t.num for n, t in ds.nodes.items()}


@NO_SHRINK
@given(world=worlds())
def test_reverse_type_clash_is_rejected(world: World) -> None:
    inter = next(e for e, spec in world.schema["edges"].items() if spec.get("role") == "interaction")
    spec = world.schema["edges"][inter]
    spec["reverse"] = True
    world.schema["edges"][f"rev_{inter}"] = {"src": spec["dst"], "dst": spec["src"], "file": spec["file"],
                                             "columns": {"src": spec["columns"]["dst"], "dst": spec["columns"]["src"]}}
    with tempfile.TemporaryDirectory() as tmp:
        schema_path, data_dir = world.write(Path(tmp))
        try:
            ds = load_dataset(schema_path, data_dir=data_dir)
        except KgrecInputError as err:
            assert err.exit_code == 4 and "clashes with the reverse" in str(err) and err.field.endswith(".reverse")
            return
    raise AssertionError(f"the clash was accepted: {Counter(ds.metadata()[1])}")


def _string_slots(world: World) -> list[tuple[str, str]]:
    return [(n, f) for n in world.schema["nodes"] for f, fs in node_spec(world, n).get("features", {}).items()
            if fs["type"] in ("text", "categorical")]


@NO_SHRINK
@given(world=worlds(), data=st.data())
def test_trailing_nul_is_kept(world: World, data) -> None:
    """A trailing NUL survives in categories and text (numpy's fixed-width str dtype dropped it)."""
    assume(_string_slots(world))
    n, f = pick(data, _string_slots(world), "feature")
    t = world.tables[node_spec(world, n)["file"]]
    t.rows[0][t.columns.index(f)] = "x\x00"
    with tempfile.TemporaryDirectory() as tmp:
        schema_path, data_dir = world.write(Path(tmp))
        node = load_dataset(schema_path, data_dir=data_dir).nodes[n]
    values = node.features[f]
    first = node.vocab[f][values[0]] if f in node.vocab else values[0]
    assert first == "x\x00"


@NO_SHRINK
@given(world=worlds())
def test_template_without_fields_is_formatted(world: World) -> None:
    bare = [n for n in world.schema["nodes"] if "file" in node_spec(world, n)
            and not node_spec(world, n).get("features") and not node_spec(world, n).get("derived")]
    assume(bare)
    world.schema["nodes"][bare[0]]["text"] = "an {{x}}"
    with tempfile.TemporaryDirectory() as tmp:
        schema_path, data_dir = world.write(Path(tmp))
        node = load_dataset(schema_path, data_dir=data_dir).nodes[bare[0]]
    assert node.text == ["an {x}"] * node.num

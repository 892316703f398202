"""Property 1 of graph schemas: YAML round trips (issue 5, invariant 11).

``dump_yaml`` → ``load_yaml`` returns the dict; block and flow YAML parse to the same
:class:`~kgrec.graphs.schema.Schema`, equal to a naive reading of the dict, with
``EdgeSpec.line`` at the edge's key; the datasets built from both have the same
``metadata()``. Worlds come from ``schema_world.py``.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kgrec.graphs import load_dataset, load_schema
from kgrec.yamlio import dump_yaml, load_yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from schema_reference import dict_summary, schema_summary, yaml_line  # noqa: E402
from schema_world import NO_SHRINK, SLOW_OK, World, worlds  # noqa: E402


@SLOW_OK
@given(world=worlds(tricky_text=True))
def test_schema_yaml_round_trips(world: World) -> None:
    d = world.schema
    block = dump_yaml(d)
    flow = yaml.safe_dump(d, default_flow_style=True, sort_keys=False, allow_unicode=True, width=1 << 30)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        schema_path, data_dir = world.write(root)
        (root / "flow").mkdir()
        flow_path = root / "flow" / world.schema_file  # the same file name: a schema's name is its file name
        flow_path.write_text(flow, encoding="utf-8")
        loaded = load_yaml(schema_path)
        assert loaded == d
        assert dump_yaml(loaded) == block
        s_block, s_flow = load_schema(schema_path), load_schema(flow_path)
        assert schema_summary(s_block) == dict_summary(d)
        norm = {n: replace(e, line=None) for n, e in s_block.edges.items()}
        assert replace(s_flow, path=schema_path, edges={n: replace(e, line=None) for n, e in s_flow.edges.items()}) \
            == replace(s_block, edges=norm)
        for n, e in s_block.edges.items():
            assert e.line == yaml_line(block, ["edges", n]), n
        ds_block = load_dataset(schema_path, data_dir=data_dir)
        ds_flow = load_dataset(flow_path, data_dir=data_dir)
        assert ds_block.metadata() == ds_flow.metadata()
        assert ds_block.summary()["edges"] == ds_flow.summary()["edges"]


@NO_SHRINK
@given(text=st.tuples(st.text(max_size=10), st.sampled_from(["\x85", "\u2028", "\u2029"]), st.text(max_size=5))
       .map("".join))
def test_yaml_line_break_characters_round_trip(text: str) -> None:
    """NEL, LS and PS, which YAML reads as line breaks, survive dump and load."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.yaml"
        path.write_text(dump_yaml({"description": text}), encoding="utf-8")
        assert load_yaml(path) == {"description": text}

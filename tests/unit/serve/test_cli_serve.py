"""``kgrec serve --set rerank.*``: parsed and checked as ``kgrec train --set`` is, before the
run is loaded; a bad value is one line and exit 3, a key outside ``rerank`` exit 2."""

from __future__ import annotations

import pytest

from kgrec.cli import build_parser, main


def options(*argv: str) -> dict:
    from kgrec.cli.serve import _options

    return _options(build_parser().parse_args(["serve", "RUN", "--no-log", *argv]))


def test_set_rerank_overrides_reach_the_serve_config():
    serve = options("--set", "rerank.method=calibrated", "--set", "rerank.strength=0.3")["serve"]
    assert serve["rerank"] == {"method": "calibrated", "strength": 0.3}
    assert options()["serve"]["rerank"] == {}


@pytest.mark.parametrize("pair,code,words", [
    ("rerank.strength=2", 3, "schema error: --set: field 'rerank.strength': must be a number in [0, 1], got 2"),
    ("rerank.method=steck", 3, "field 'rerank.method': must be one of none, calibrated"),
    ("rerank.nope=1", 3, "field 'rerank.nope': unknown key 'nope'"),
    ("rerank.pool=0", 3, "field 'rerank.pool'"),
    ("train.lr=0.1", 2, "usage error: field '--set': kgrec serve takes only rerank.* keys"),
    ("model.params.dim=8", 2, "got 'model.params.dim'"),
    ("rerank.strength", 3, "expected KEY=VALUE"),
])
def test_bad_set_is_one_line_and_its_exit_code(run, capsys, pair, code, words):
    assert main(["serve", str(run.path), "--no-log", "--set", pair]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err


def test_an_unknown_grouping_is_a_schema_error_at_start(run):
    from kgrec.errors import SchemaError
    from kgrec.serve.service import ServeConfig, Service

    with pytest.raises(SchemaError, match="unknown re-ranking grouping 'no_such_feature'") as err:
        Service(run, ServeConfig(rerank={"method": "calibrated", "strength": 0.5, "groupings": ["no_such_feature"]}))
    assert err.value.field == "rerank.groupings"

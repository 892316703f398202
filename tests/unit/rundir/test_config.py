"""Run configuration: packaged YAML defaults, overrides, and located errors."""

from __future__ import annotations

import pytest
import yaml

from kgrec.errors import SchemaError
from kgrec.rundir.config import RunConfig, default_config_path, load_config, parse_scalar, parse_set


def test_packaged_yaml_matches_dataclass_defaults() -> None:
    """The documented YAML and the dataclasses must not drift apart."""
    assert load_config() == RunConfig()
    assert set(yaml.safe_load(default_config_path().read_text())) == set(RunConfig().to_dict())


def test_overrides_nest_and_parse_numbers() -> None:
    cfg = load_config(overrides=parse_set(["train.lr=1e-2", "model.params.dim=32", "eval.ks=[5, 10]"]))
    assert cfg.train.lr == 0.01 and cfg.model.params == {"dim": 32} and cfg.eval.ks == [5, 10]
    assert parse_scalar("1e-5") == 1e-5 and parse_scalar("7") == 7 and parse_scalar("null") is None


def test_yaml_file_errors_name_line_and_field(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("seed: 1\ntrain:\n  epochs: 3\n  learning_rate: 0.1\n")
    with pytest.raises(SchemaError) as err:
        load_config(path)
    assert (err.value.line, err.value.field) == (4, "train.learning_rate")
    path.write_text("train:\n  epochs: many\n")
    with pytest.raises(SchemaError, match="expected int"):
        load_config(path)


def test_split_seed_defaults_to_run_seed() -> None:
    assert load_config(overrides={"seed": 7}).split_seed == 7
    assert load_config(overrides={"seed": 7, "data": {"split": {"seed": 3}}}).split_seed == 3

"""Range checks of the run configuration: each rule fails with exit 3, the file, the line and the field."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kgrec.errors import EXIT_SCHEMA, SchemaError
from kgrec.rundir import config as config_module
from kgrec.rundir.config import RunConfig, load_config, parse_set
from kgrec.rundir.config_rules import ACCURACY_METRICS, OBJECTIVES, RERANKERS, RULES, SPLIT_METHODS, check_ranges

# (dotted field, a bad value as YAML text); every rule of the table has at least one
BAD: list[tuple[str, str]] = [
    ("seed", "-1"), ("seed", str(2**63)),
    ("threads", "0"),
    ("data.name", "''"),
    ("data.split.method", "shuffled"),
    ("data.split.ratios", "[0.8, 0.1]"), ("data.split.ratios", "[0.8, 0.3, -0.1]"),
    ("data.split.ratios", "[0.5, 0.3, 0.3]"), ("data.split.ratios", "[0, 0.5, 0.5]"),
    ("data.split.ratios", "[.nan, 0.1, 0.1]"), ("data.split.ratios", "[.inf, 0.1, 0.1]"),
    ("data.split.cold_fraction", "0"), ("data.split.cold_fraction", "1"), ("data.split.cold_fraction", ".nan"),
    ("data.split.seed", "-3"),
    ("model.name", "' '"),
    ("train.epochs", "0"),
    ("train.lr", "0"), ("train.lr", "-0.1"), ("train.lr", "11"), ("train.lr", ".nan"), ("train.lr", ".inf"),
    ("train.batch_size", "0"),
    ("train.max_steps_per_epoch", "0"), ("train.max_steps_per_epoch", "-1"),
    ("train.n_neg", "0"),
    ("train.objective", "hinge"),
    ("train.gamma", "-0.5"), ("train.gamma", ".inf"),
    ("train.ips_clip", "0"), ("train.ips_clip", "1.5"),
    ("train.temperature", "0"), ("train.temperature", ".nan"),
    ("train.patience", "0"),
    ("train.eval_every", "0"),
    ("train.metric", "ndcg"), ("train.metric", "ndcg@0"), ("train.metric", "ndcg@010"), ("train.metric", "NDCG@10"),
    ("train.metric", "gini@10"), ("train.metric", "ips_ndcg@10"), ("train.metric", "auc@10"),
    ("train.metric", "ndcg@10x"),
    ("train.max_seconds", "0"), ("train.max_seconds", ".inf"),
    ("train.valid_users", "0"), ("train.valid_users", "-3"),
    ("rerank.method", "fair"), ("rerank.strength", "1.5"), ("rerank.strength", "-0.1"), ("rerank.pool", "0"),
    ("rerank.head_share", "1"), ("rerank.groupings", "[]"), ("rerank.groupings", "['']"),
    ("eval.ks", "[]"), ("eval.ks", "[10, 0]"), ("eval.ks", "[10, 10]"), ("eval.ks", "[-5]"),
    ("text.model", "''"),
    ("text.batch_size", "0"),
    ("text.max_length", "7"), ("text.max_length", "513"),
    ("text.lora_settings.r", "0"),
    ("text.lora_settings.alpha", "0"),
    ("text.lora_settings.dropout", "1"), ("text.lora_settings.dropout", "-0.1"),
    ("text.lora_settings.steps", "0"),
    ("text.lora_settings.batch_size", "1"),
    ("text.lora_settings.lr", "0"), ("text.lora_settings.lr", ".nan"),
    ("text.lora_settings.temperature", "0"),
    ("text.lora_settings.max_length", "4"),
    ("text.lora_settings.seed", "-1"),
]

# boundary values that are fine
GOOD: list[tuple[str, str]] = [
    ("seed", "0"), ("data.split.ratios", "[1, 0, 0]"), ("data.split.ratios", "[0.7, 0.2, 0.1]"),
    ("data.split.seed", "null"), ("data.split.seed", "0"), ("data.split.method", "cold_users"),
    ("train.lr", "10"), ("train.gamma", "0"), ("train.ips_clip", "1"), ("train.objective", "pda"),
    ("train.metric", "map@5"), ("train.metric", "recall@100"), ("train.max_seconds", "null"),
    ("train.max_seconds", "0.5"), ("train.valid_users", "null"), ("train.max_steps_per_epoch", "null"), ("eval.ks", "[5]"), ("eval.ks", "[20, 10]"), ("text.max_length", "8"),
    ("text.max_length", "512"), ("text.lora_settings.dropout", "0"), ("text.lora_settings.batch_size", "2"),
    ("model.params", "{dim: 16, dropout: 0.5, dims: [1, 2]}"),
    ("rerank.strength", "0"), ("rerank.strength", "1"), ("rerank.method", "calibrated"),
    ("rerank.groupings", "[popularity, provider]"),
]


def write_config(tmp_path, field: str, value: str) -> tuple[str, int]:
    """A YAML file that sets ``field`` to ``value`` below a few other keys; returns (path, its line)."""
    lines = ["# a run configuration", "threads: 1"] if field != "threads" else ["# a run configuration"]
    parts = field.split(".")
    if parts[0] != "train":
        lines += ["train:", "  epochs: 3"]
    for depth, part in enumerate(parts[:-1]):
        lines.append("  " * depth + f"{part}:")
    lines.append("  " * (len(parts) - 1) + f"{parts[-1]}: {value}")
    path = tmp_path / "run.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path), len(lines)


def test_every_rule_has_a_failing_case() -> None:
    covered = {field for field, _ in BAD} | {"model.params.**"}
    assert covered == {rule.field for rule in RULES}


@pytest.mark.parametrize(("field", "value"), BAD, ids=[f"{f}={v}" for f, v in BAD])
def test_bad_value_in_file_names_file_line_and_field(tmp_path, field: str, value: str) -> None:
    path, line = write_config(tmp_path, field, value)
    with pytest.raises(SchemaError) as err:
        load_config(path)
    e = err.value
    assert (e.exit_code, e.file, e.line, e.field) == (EXIT_SCHEMA, path, line, field)
    assert str(e).startswith(f"schema error: {path}:{line}: field '{field}': must be ")
    assert "\n" not in str(e)


@pytest.mark.parametrize(("field", "value"), GOOD, ids=[f"{f}={v}" for f, v in GOOD])
def test_boundary_values_load(tmp_path, field: str, value: str) -> None:
    path, _ = write_config(tmp_path, field, value)
    load_config(path)


def test_message_wording(tmp_path) -> None:
    path, line = write_config(tmp_path, "train.batch_size", "0")
    with pytest.raises(SchemaError) as err:
        load_config(path)
    assert str(err.value) == f"schema error: {path}:{line}: field 'train.batch_size': must be a positive integer, got 0"


def test_ks_on_several_lines_names_the_key_line(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("seed: 1\neval:\n  ks:\n    - 10\n    - 0\n")
    with pytest.raises(SchemaError) as err:
        load_config(path)
    assert (err.value.line, err.value.field) == (3, "eval.ks")


@pytest.mark.parametrize(("params", "field", "line"), [
    ("    dim: .nan\n", "model.params.dim", 4),
    ("    dims: [1, .inf]\n", "model.params.dims[1]", 4),
    ("    dims:\n      - 1\n      - -.inf\n", "model.params.dims[1]", 6),
    ("    sub:\n      a: 1\n      b: .nan\n", "model.params.sub.b", 6),
])
def test_nan_or_inf_in_model_params(tmp_path, params: str, field: str, line: int) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("seed: 1\nmodel:\n  params:\n" + params)
    with pytest.raises(SchemaError) as err:
        load_config(path)
    assert (err.value.exit_code, err.value.line, err.value.field) == (EXIT_SCHEMA, line, field)


@pytest.mark.parametrize(("pair", "field", "got"), [
    ("train.batch_size=0", "train.batch_size", "0"),
    ("train.lr=nan", "train.lr", "nan"),
    ("train.max_seconds=inf", "train.max_seconds", "inf"),
    ("train.gamma=-inf", "train.gamma", "-inf"),
    ("data.split.ratios=[0.5, 0.5, 0.5]", "data.split.ratios", "[0.5, 0.5, 0.5]"),
    ("train.metric=coverage@10", "train.metric", "'coverage@10'"),
    ("eval.ks=[10, 10]", "eval.ks", "[10, 10]"),
    ("text.lora_settings.dropout=1.0", "text.lora_settings.dropout", "1.0"),
    ("model.params.dim=nan", "model.params.dim", "nan"),
    ("seed=-1", "seed", "-1"),
])
def test_bad_override_names_set_without_line(pair: str, field: str, got: str) -> None:
    with pytest.raises(SchemaError) as err:
        load_config(overrides=parse_set([pair]))
    e = err.value
    assert (e.exit_code, e.file, e.line, e.field) == (EXIT_SCHEMA, "--set", None, field)
    assert str(e).startswith(f"schema error: --set: field '{field}': must be ") and str(e).endswith(f", got {got}")


def test_good_override_over_file(tmp_path) -> None:
    path, _ = write_config(tmp_path, "train.lr", "0.01")
    cfg = load_config(path, parse_set(["train.batch_size=1", "text.lora_settings.lr=1e-4"]))
    assert (cfg.train.lr, cfg.train.batch_size, cfg.text.lora_settings.lr) == (0.01, 1, 1e-4)


def test_default_config_loads_and_passes_every_rule() -> None:
    cfg = load_config()
    assert cfg == RunConfig()
    check_ranges(cfg.to_dict(), None)


def test_broken_default_names_the_default_file(tmp_path, monkeypatch) -> None:
    text = config_module.default_config_path().read_text().replace("  patience: 10 ", "  patience: 0  ")
    assert "patience: 0" in text
    bad = tmp_path / "default.yaml"
    bad.write_text(text)
    monkeypatch.setattr(config_module, "default_config_path", lambda: bad)
    with pytest.raises(SchemaError) as err:
        load_config()
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.startswith("  patience:"))
    assert (err.value.file, err.value.line, err.value.field) == (str(bad), line, "train.patience")


def test_merged_check_without_lines() -> None:
    cfg = RunConfig().to_dict()
    cfg["train"]["epochs"] = 0
    with pytest.raises(SchemaError) as err:
        check_ranges(cfg, None)
    assert str(err.value) == "schema error: field 'train.epochs': must be a positive integer, got 0"


# ---------------------------------------------------------------- the copied registries stay in step

def test_split_methods_match_splits() -> None:
    from kgrec.data.splits import SPLIT_METHODS as real

    assert SPLIT_METHODS == real


def test_objectives_match_debias() -> None:
    from kgrec.models.debias import OBJECTIVES as real

    assert OBJECTIVES == real


def test_rerankers_match_rerank() -> None:
    from kgrec.models.rerank import RERANKERS as real

    assert RERANKERS == real


def test_accuracy_metrics_match_registry() -> None:
    from kgrec.metrics.ranking import METRICS

    early_stopping = {name for name, m in METRICS.items() if m.higher_is_better and m.needs == {"hits"}}
    assert set(ACCURACY_METRICS) == early_stopping


def test_loading_a_config_does_not_import_torch() -> None:
    code = ("import sys; from kgrec.rundir.config import load_config, parse_set; load_config();"
            "assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr

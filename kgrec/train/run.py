"""Train a configured model into a run directory, and load a run back."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgrec.data.splits import Split, SplitConfig, make_split
from kgrec.graphs import GraphDataset, load_dataset
from kgrec.models.base import ModelContext, Recommender, create_model
from kgrec.runtime import configure_threads, seed_everything
from kgrec.train import rundir
from kgrec.train.config import RunConfig, load_config
from kgrec.train.trainer import TrainState, fit


@dataclass
class Run:
    """A trained run loaded back from its directory."""

    path: Path
    config: RunConfig
    dataset: GraphDataset
    ctx: ModelContext
    model: Recommender
    train_info: dict[str, Any]


def split_config(cfg: RunConfig) -> SplitConfig:
    s = cfg.data.split
    return SplitConfig(method=s.method, ratios=tuple(s.ratios), cold_fraction=s.cold_fraction, seed=cfg.split_seed)


def build_context(cfg: RunConfig, dataset: GraphDataset, split: Split, progress: bool = True,
                  run_dir: Path | None = None) -> ModelContext:
    """The model context, with text vectors if the model needs them. With ``text.lora``, the
    item vectors come from the LoRA-adapted encoder: loaded from ``run_dir/text_lora`` when
    present, otherwise fine-tuned now and saved there."""
    ctx = ModelContext.build(dataset, split)
    import kgrec.models  # noqa: F401
    from kgrec.models.base import MODELS

    cls = MODELS.get(cfg.model.name)
    if cls is not None and cls.needs_text:
        from kgrec.text import TextEncoderConfig, encode_texts

        tcfg = TextEncoderConfig(model=cfg.text.model, batch_size=cfg.text.batch_size, max_length=cfg.text.max_length)
        for role, attr in ((dataset.schema.item_type, "item_text"), (dataset.schema.user_type, "user_text")):
            texts = dataset.nodes[role].text
            if texts is not None:
                setattr(ctx, attr, encode_texts(texts, tcfg, progress=progress))
        if cfg.text.lora and dataset.nodes[dataset.schema.item_type].text is not None:
            ctx.item_text = _lora_item_text(cfg, dataset, ctx, run_dir, progress)
    return ctx


def _lora_item_text(cfg: RunConfig, dataset: GraphDataset, ctx: ModelContext, run_dir: Path | None,
                    progress: bool) -> np.ndarray:
    import json

    from kgrec.text import resolve_model_path
    from kgrec.text.lora import finetune

    if run_dir is None:
        raise ValueError("text.lora needs a run directory for the adapter")
    out = run_dir / "text_lora"
    if (out / "item_text.npy").is_file():
        return np.load(out / "item_text.npy")
    texts = list(dataset.nodes[dataset.schema.item_type].text)
    vectors, stats = finetune(texts, ctx.train, resolve_model_path(cfg.text.model), cfg.text.lora_settings, out,
                              progress=progress)
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    return vectors


def train_run(cfg: RunConfig, run_dir: str | Path, *, overwrite: bool = False, resume: bool = False,
              progress: bool = True) -> Path:
    """Train ``cfg`` into ``run_dir`` (atomically: ``RUN_DIR.partial`` is renamed at the end)."""
    run_dir = Path(run_dir)
    work = rundir.prepare(run_dir, overwrite=overwrite, resume=resume)
    if resume:
        cfg = load_config(work / "config.yaml")
    configure_threads(cfg.threads)
    seed_everything(cfg.seed)
    dataset = load_dataset(cfg.data.name, data_dir=cfg.data.data_dir)
    split = Split.load(work / "split.npz") if resume else make_split(dataset, split_config(cfg))
    ctx = build_context(cfg, dataset, split, progress, work)
    model = create_model(cfg.model.name, ctx, cfg.model.params)
    state, opt_state, rng = None, None, np.random.default_rng(cfg.seed)
    if resume:
        ckpt = torch.load(work / "checkpoint.pt", weights_only=False)
        missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
        if unexpected or set(missing) - set(model.fit_buffers):
            raise RuntimeError(f"checkpoint does not match the model: missing {missing}, unexpected {unexpected}")
        state, opt_state = ckpt["state"], ckpt["optimizer"]
        rng.bit_generator.state = ckpt["rng"]
        torch.set_rng_state(ckpt["torch_rng"])
    else:
        rundir.write_static(work, cfg.to_dict(), dataset, split)

    def checkpoint(st: TrainState, opt: torch.optim.Optimizer, gen: np.random.Generator) -> None:
        tmp = work / "checkpoint.pt.tmp"
        weights = {k: v for k, v in model.state_dict().items() if k not in model.fit_buffers}
        torch.save({"model": weights, "optimizer": opt.state_dict(), "state": st,
                    "rng": gen.bit_generator.state, "torch_rng": torch.get_rng_state()}, tmp)
        tmp.replace(work / "checkpoint.pt")

    start = time.perf_counter()
    state = fit(model, ctx, cfg, state=state, optimizer_state=opt_state, rng=rng, on_epoch=checkpoint,
                progress=progress)
    rundir.save_weights(model, work / "model.safetensors")
    epochs = [h for h in state.history if h.get("loss") is not None]
    rundir.write_json(work / "train.json", {
        "model": cfg.model.name, "best_epoch": state.best_epoch, "epochs_run": state.epoch,
        f"valid_{cfg.train.metric}": state.final_metric, f"valid_{cfg.train.metric}_during_training": state.best_metric,
        "train_seconds": state.elapsed,
        "seconds_to_best": state.seconds_to_best,
        "seconds_per_epoch": state.elapsed / max(len(epochs), 1) if epochs else None,
        "wall_seconds": time.perf_counter() - start, "history": state.history})
    rundir.finish(work, run_dir)
    return run_dir


def load_run(run_dir: str | Path, *, progress: bool = False) -> Run:
    """Rebuild config, data (hash-checked), split, context and weights from a run directory."""
    import json

    from kgrec.errors import DataError

    run_dir = Path(run_dir)
    if not (run_dir / "model.safetensors").is_file():
        raise DataError("not a finished kgrec run directory (no model.safetensors)", file=str(run_dir),
                        field="RUN_DIR")
    cfg = load_config(run_dir / "config.yaml")
    configure_threads(cfg.threads)
    dataset = load_dataset(run_dir / "schema.yaml", data_dir=cfg.data.data_dir)  # the run's own schema copy
    rundir.check_data(run_dir, dataset)
    split = Split.load(run_dir / "split.npz")
    ctx = build_context(cfg, dataset, split, progress, run_dir)
    model = create_model(cfg.model.name, ctx, cfg.model.params)
    rundir.load_weights(model, run_dir / "model.safetensors")
    model.eval()
    return Run(run_dir, cfg, dataset, ctx, model, json.loads((run_dir / "train.json").read_text()))

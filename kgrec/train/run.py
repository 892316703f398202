"""Train a configured model into a run directory (read back with :func:`kgrec.rundir.load_run`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from kgrec.data.splits import Split, SplitConfig, make_split
from kgrec.data.view import HeldOut, TrainingView, views
from kgrec.errors import ChecksumError, DataError, UsageError, report_warnings
from kgrec.graphs import GraphDataset, load_dataset
from kgrec.models.base import MODELS, ModelContext, create_model
from kgrec.rundir.write import RunWriter
from kgrec.rundir import checkpoint as ckpt_format
from kgrec.rundir.layout import SPLIT, TEXT
from kgrec.rundir.load import load_config_of, load_split, load_text
from kgrec.runtime import configure_threads, seed_everything
from kgrec.rundir.config import RunConfig
from kgrec.train.trainer import TrainState, fit

if TYPE_CHECKING:
    from kgrec.train.comm import Comm


def split_config(cfg: RunConfig) -> SplitConfig:
    s = cfg.data.split
    return SplitConfig(method=s.method, ratios=tuple(s.ratios), cold_fraction=s.cold_fraction, seed=cfg.split_seed)


def encode_text(cfg: RunConfig, view: TrainingView, progress: bool = True,
                lora_dir: Path | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Item and user text vectors for models that read text (``None`` where there is no
    text). With ``text.lora`` the item vectors come from the LoRA-adapted encoder, fine-tuned
    on the training view and saved in ``lora_dir``."""
    import kgrec.models  # noqa: F401  (registers the models)

    cls = MODELS.get(cfg.model.name)
    if cls is None or not cls.needs_text:
        return None, None
    from kgrec.text import encode_texts

    ds = view.dataset
    tcfg = cfg.text.encoder()
    out: list[np.ndarray | None] = []
    for role in (ds.schema.item_type, ds.schema.user_type):
        texts = ds.nodes[role].text
        out.append(None if texts is None else encode_texts(texts, tcfg, progress=progress))
    item_text, user_text = out
    if cfg.text.lora and item_text is not None:
        if lora_dir is None:
            raise ValueError("text.lora needs a directory for the adapter")
        item_text = _lora_item_text(cfg, view, lora_dir, progress)
    return item_text, user_text


def build_context(cfg: RunConfig, dataset: GraphDataset, split: Split, progress: bool = True,
                  lora_dir: Path | None = None) -> tuple[ModelContext, HeldOut]:
    """The model context (training view and text vectors) and the held-out parts of ``split``."""
    view, heldout = views(dataset, split)
    item_text, user_text = encode_text(cfg, view, progress, lora_dir)
    return ModelContext(view, item_text=item_text, user_text=user_text), heldout


def _lora_item_text(cfg: RunConfig, view: TrainingView, out: Path, progress: bool) -> np.ndarray:
    import json

    from kgrec.text import resolve_model_path
    from kgrec.text.lora import finetune

    texts = list(view.dataset.nodes[view.dataset.schema.item_type].text)
    vectors, stats = finetune(texts, view.train, resolve_model_path(cfg.text.model), cfg.text.lora_settings, out,
                              progress=progress)
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    return vectors


def resume_conflicts(saved: dict[str, Any], given: dict[str, Any], prefix: str = "") -> list[str]:
    """Keys of ``given`` (the options passed with ``--resume``) whose value differs from the
    saved config's (``threads`` may differ: it does not change results)."""
    out: list[str] = []
    for key, value in given.items():
        path = f"{prefix}{key}"
        if path == "threads":
            continue
        old = saved.get(key) if isinstance(saved, dict) else None
        if isinstance(value, dict) and isinstance(old, dict) and key != "params":
            out += resume_conflicts(old, value, path + ".")
        elif _norm(old) != _norm(value):
            out.append(f"{path} (saved {old!r}, given {value!r})")
    return out


def _norm(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return [_norm(v) for v in x]
    if isinstance(x, dict):
        return {k: _norm(v) for k, v in x.items()}
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x


def train_run(cfg: RunConfig, run_dir: str | Path, *, overwrite: bool = False, resume: bool = False,
              progress: bool = True, strict: bool = False, given: dict[str, Any] | None = None,
              allow_outside_paths: bool = False, synthetic: dict[str, Any] | None = None,
              comm: Comm | None = None) -> Path | None:
    """Train ``cfg`` into ``run_dir`` (atomically, under its lock: ``RUN_DIR.partial`` is
    renamed at the end). With ``resume``, the saved config is used and any option in
    ``given`` that differs from it is refused. ``allow_outside_paths`` lets the schema name
    data files outside its data directory (recorded in ``data.json`` for loading the run).
    ``synthetic``: generator parameters of a synthetic data set (``kgrec train --param``).

    With ``comm`` this is one rank of a distributed run (:mod:`kgrec.train.distributed`):
    rank 0 does all of the above and returns the run directory; the other ranks open no
    run directory, receive the configuration, split and text vectors from rank 0, train
    their shards and return ``None``."""
    if comm is not None and not comm.is_main:
        _follow(comm, allow_outside_paths=allow_outside_paths, synthetic=synthetic)
        return None
    with RunWriter(run_dir, overwrite=overwrite, resume=resume) as writer:
        work = writer.work
        if resume:
            saved = load_config_of(work)
            conflicts = resume_conflicts(saved.to_dict(), given or {})
            if conflicts:
                raise UsageError("--resume continues the saved configuration, but these options differ from it: "
                                 + "; ".join(conflicts) + ". Drop them, or start a new run with --overwrite",
                                 file=str(work / "config.yaml"), field="--resume")
            cfg = saved
        if comm is not None:
            comm.broadcast(cfg)
            if not _trainable(cfg):
                comm = None  # closed form: fitted here alone; the other ranks have returned
        configure_threads(cfg.threads)
        seed_everything(cfg.seed)
        synthetic = synthetic_of(cfg, synthetic)
        dataset = load_dataset(cfg.data.name, data_dir=cfg.data.data_dir, allow_outside_paths=allow_outside_paths,
                               synthetic=synthetic)
        if comm is not None:
            comm.barrier()  # rank 0 has generated or fetched the data; the others read it now
        _check_synthetic(dataset, synthetic)
        report_warnings(dataset.warnings, strict=strict)
        split = load_split(work / SPLIT) if resume else make_split(dataset, split_config(cfg))
        view, heldout = views(dataset, split)
        if not resume:
            writer.write_static(cfg.to_dict(), dataset, split, allow_outside_paths=allow_outside_paths)
        if resume and (work / TEXT).is_file():  # the vectors the interrupted run trained with
            item_text, user_text = load_text(work, True)
        else:
            item_text, user_text = encode_text(cfg, view, progress, work / "text_lora")
            writer.write_text(item_text, user_text)
        ctx = ModelContext(view, item_text=item_text, user_text=user_text)
        model = create_model(cfg.model.name, ctx, cfg.model.params)
        state, opt_state, rng = None, None, np.random.default_rng(cfg.seed)
        if resume:
            state, opt_state = _restore(writer, model, rng)
        if comm is not None:
            comm.broadcast({"sha256": dataset.location.sha256, "split": split, "text": (item_text, user_text),
                            "epoch": state.epoch if state is not None else 0, "optimizer": opt_state,
                            "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()})

        def checkpoint(st: TrainState, opt: torch.optim.Optimizer, gen: np.random.Generator) -> None:
            tensors, meta = st.pack()
            tensors.update({f"model.{k}": v for k, v in model.state_dict().items() if k not in model.fit_buffers})
            opt_tensors, opt_meta = ckpt_format.pack_optimizer(opt.state_dict())
            tensors.update(opt_tensors)
            tensors["torch_rng"] = torch.get_rng_state()
            writer.save_checkpoint(tensors, {"state": meta, "optimizer": opt_meta, "rng": gen.bit_generator.state})

        start = time.perf_counter()
        state = fit(model, ctx, heldout, cfg, state=state, optimizer_state=opt_state, rng=rng, on_epoch=checkpoint,
                    progress=progress, comm=comm)
        writer.save_weights(model)
        epochs = [h for h in state.history if h.get("loss") is not None]
        metric = cfg.train.metric
        record = {
            "model": cfg.model.name, "best_epoch": state.best_epoch, "epochs_run": state.epoch,
            "stop_reason": state.stop_reason, "max_seconds": cfg.train.max_seconds,
            f"valid_{metric}": state.final_metric, f"valid_{metric}_during_training": state.best_metric,
            "train_seconds": state.elapsed,
            "seconds_to_best": state.seconds_to_best,
            "seconds_per_epoch": state.elapsed / max(len(epochs), 1) if epochs else None,
            "wall_seconds": time.perf_counter() - start, "world_size": 1 if comm is None else comm.world_size}
        if comm is not None:
            record["distributed"] = {"backend": comm.backend, "global_batch_size": cfg.train.batch_size,
                                     "param_sha256": comm.digests}
        writer.write_record({**record, "history": state.history})
        return writer.finish()


def _follow(comm: Comm, *, allow_outside_paths: bool, synthetic: dict[str, Any] | None) -> None:
    """A rank other than 0: the same steps as rank 0's, in the same order of collectives,
    without a run directory."""
    cfg: RunConfig = comm.broadcast()
    if not _trainable(cfg):
        return  # rank 0 fits a closed-form model alone
    configure_threads(cfg.threads)
    seed_everything(cfg.seed)
    synthetic = synthetic_of(cfg, synthetic)
    comm.barrier()  # rank 0 loads (and may generate or fetch) the data first
    dataset = load_dataset(cfg.data.name, data_dir=cfg.data.data_dir, allow_outside_paths=allow_outside_paths,
                           synthetic=synthetic)
    _check_synthetic(dataset, synthetic)
    shared = comm.broadcast()
    mine = dataset.location.sha256
    differ = sorted(k for k in set(mine) | set(shared["sha256"]) if mine.get(k) != shared["sha256"].get(k))
    if differ:
        raise ChecksumError(f"this rank's data files differ from rank 0's ({', '.join(differ[:3])}): every node "
                            "must hold the same data set", file=str(dataset.location.directory),
                            field=f"sha256.{differ[0]}")
    view, heldout = views(dataset, shared["split"])
    item_text, user_text = shared["text"]
    ctx = ModelContext(view, item_text=item_text, user_text=user_text)
    model = create_model(cfg.model.name, ctx, cfg.model.params)
    rng = np.random.default_rng(cfg.seed)
    rng.bit_generator.state = shared["rng"]
    torch.set_rng_state(shared["torch_rng"])
    fit(model, ctx, heldout, cfg, state=TrainState(epoch=shared["epoch"]), optimizer_state=shared["optimizer"],
        rng=rng, progress=False, comm=comm)


def _trainable(cfg: RunConfig) -> bool:
    import kgrec.models  # noqa: F401  (registers the models)

    cls = MODELS.get(cfg.model.name)
    return cls is None or cls.trainable  # an unknown name fails in create_model on every rank


def synthetic_of(cfg: RunConfig, given: dict[str, Any] | None) -> dict[str, Any] | None:
    """The synthetic generator parameters of a run: ``cfg.data.synthetic`` (saved in
    ``config.yaml``, so ``kgrec evaluate`` regenerates the same world, sha256-checked), else
    those given."""
    if cfg.data.synthetic:
        return dict(cfg.data.synthetic)
    return dict(given) if given else None


def _check_synthetic(dataset: GraphDataset, synthetic: dict[str, Any] | None) -> None:
    if synthetic and dataset.schema.source.synthetic is None:
        raise UsageError(f"--param sets generator parameters of a synthetic data set, but '{dataset.schema.name}' "
                         "is not one", field="--param")


def _restore(writer: RunWriter, model, rng: np.random.Generator) -> tuple[TrainState, dict[str, Any]]:
    """State, optimizer state and RNGs from the pickle-free checkpoint."""
    tensors, meta = writer.load_checkpoint()
    path = str(writer.work / ckpt_format.CHECKPOINT_TENSORS)
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
        state = TrainState.unpack(tensors, meta["state"])
        opt_state = ckpt_format.unpack_optimizer(tensors, meta["optimizer"])
        rng.bit_generator.state = meta["rng"]
        torch.set_rng_state(tensors["torch_rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise DataError(f"checkpoint does not fit the run's model ({type(err).__name__}: {err})", file=path,
                        field="checkpoint") from None
    if unexpected or set(missing) - set(model.fit_buffers):
        raise DataError(f"checkpoint does not match the model: missing {sorted(missing)[:3]}, unexpected "
                        f"{sorted(unexpected)[:3]}", file=path, field="checkpoint")
    return state, opt_state

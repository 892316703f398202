"""The run directory: the contract between training and everything after it.

Layout (written to ``RUN_DIR.partial/`` and renamed into place when training ends)::

    config.yaml        the resolved configuration
    schema.yaml        a copy of the data set's schema
    data.json          schema name, data file sha256s, load warnings, counts
    split.npz          train/valid/test indices (+ cold-start sets)
    idmaps.json        raw ids per node type, in index order
    model.safetensors  weights and buffers
    train.json         best epoch, validation metric, timings, per-epoch history
    versions.json      Python, platform and library versions
    checkpoint.pt      (only in RUN_DIR.partial) resumable state for --resume
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from kgrec.errors import ChecksumError, DataError, RunExistsError
from kgrec.yamlio import dump_yaml

LIBRARIES = ("kgrec", "torch", "torch-geometric", "transformers", "numpy", "scipy", "pandas", "networkx", "dowhy",
             "fairlearn", "captum", "safetensors")


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    out["torch_threads"] = str(torch.get_num_threads())
    return out


def partial_dir(run_dir: Path) -> Path:
    return run_dir.with_name(run_dir.name + ".partial")


def prepare(run_dir: Path, *, overwrite: bool, resume: bool) -> Path:
    """Check the target and return the working directory (``RUN_DIR.partial``)."""
    work = partial_dir(run_dir)
    if run_dir.exists() and not overwrite:
        raise RunExistsError("already exists; pass --overwrite to replace it", file=str(run_dir), field="-o")
    if resume:
        if not (work / "checkpoint.pt").is_file():
            raise DataError("nothing to resume: no checkpoint from an interrupted run", file=str(work),
                            field="--resume")
        return work
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    return work


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return x.tolist()
    if hasattr(x, "__dataclass_fields__"):
        return asdict(x)
    return str(x)


def write_static(work: Path, cfg_dict: dict[str, Any], dataset, split) -> None:
    """Files fixed at the start of training: config, schema copy, data hashes, split, id maps."""
    (work / "config.yaml").write_text(dump_yaml(cfg_dict))
    shutil.copyfile(dataset.schema.path, work / "schema.yaml")
    summary = dataset.summary()
    write_json(work / "data.json", {"schema": dataset.schema.name, "schema_path": str(dataset.schema.path),
                                    "sha256": summary["files"], "origin": summary["origin"],
                                    "warnings": summary["warnings"], "nodes": summary["nodes"],
                                    "interactions": summary["interactions"]})
    split.save(work / "split.npz")
    write_json(work / "idmaps.json", {name: table.ids.tolist() for name, table in dataset.nodes.items()})
    write_json(work / "versions.json", versions())


def save_weights(model: torch.nn.Module, path: Path) -> None:
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, path)


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load safetensors into ``model``, resizing buffers that closed-form models fill in ``fit``."""
    tensors = load_file(str(path))
    for name, tensor in tensors.items():
        owner, _, attr = name.rpartition(".")
        module = model.get_submodule(owner) if owner else model
        if attr in module._buffers and module._buffers[attr].shape != tensor.shape:
            module._buffers[attr] = torch.empty_like(tensor)
    model.load_state_dict(tensors, strict=True)


def finish(work: Path, run_dir: Path) -> None:
    """Drop the resume checkpoint and move the finished run into place."""
    (work / "checkpoint.pt").unlink(missing_ok=True)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    os.replace(work, run_dir)


def check_data(run_dir: Path, dataset) -> None:
    """The data files must hash as they did at training time."""
    recorded = json.loads((run_dir / "data.json").read_text())["sha256"]
    now = dataset.summary()["files"]
    for name, digest in recorded.items():
        if now.get(name) != digest:
            raise ChecksumError(f"data file changed since training (sha256 {now.get(name)} vs {digest})",
                                file=str(run_dir / "data.json"), field=f"sha256.{name}")

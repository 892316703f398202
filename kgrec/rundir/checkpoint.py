"""Resumable training state without pickle.

A checkpoint is two files in ``RUN_DIR.partial``: ``checkpoint.safetensors`` (every tensor:
model weights, the best weights so far, the optimizer's moment buffers, torch's RNG state
as uint8) and ``checkpoint.json`` (counters, history, the NumPy bit-generator state, the
optimizer's param groups, and the sha256 of the tensor file). Loading checks the hash, so a
tensor file from another checkpoint, a truncated file or a crafted one is a
:class:`~kgrec.errors.DataError` (exit 4), and neither file can run code: safetensors holds
raw arrays and JSON holds plain values.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import Tensor

from kgrec.errors import DataError
from kgrec.graphs.sources import sha256_file
from kgrec.rundir.layout import CHECKPOINT_META, CHECKPOINT_TENSORS

FORMAT = 1


def pack_optimizer(state: dict[str, Any], prefix: str = "optimizer") -> tuple[dict[str, Tensor], dict[str, Any]]:
    """A ``torch.optim`` state dict as (tensors, JSON-able meta)."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in state["state"].items():
        for key, value in per_param.items():
            if isinstance(value, Tensor):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars,
                     "params": [str(i) for i in state["state"]]}


def unpack_optimizer(tensors: dict[str, Tensor], meta: dict[str, Any], prefix: str = "optimizer") -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(i): dict(meta["scalars"].get(i, {})) for i in meta["params"]}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save(work: Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Write both files atomically (the JSON last, naming the tensor file's hash)."""
    from safetensors.torch import save_file

    tmp = work / (CHECKPOINT_TENSORS + ".tmp")
    save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, work / CHECKPOINT_TENSORS)
    body = {"format": FORMAT, "sha256": sha256_file(work / CHECKPOINT_TENSORS), **meta}
    tmp_meta = work / (CHECKPOINT_META + ".tmp")
    tmp_meta.write_text(json.dumps(body))
    os.replace(tmp_meta, work / CHECKPOINT_META)


def load(work: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save`; anything else is a DataError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta_path, tensor_path = work / CHECKPOINT_META, work / CHECKPOINT_TENSORS
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise DataError("nothing to resume: no checkpoint from an interrupted run", file=str(work),
                        field="--resume") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"unreadable checkpoint ({err})", file=str(meta_path), field="checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"not a kgrec checkpoint of format {FORMAT}", file=str(meta_path), field="format")
    if not tensor_path.is_file():
        raise DataError("missing (the checkpoint is incomplete)", file=str(tensor_path), field="checkpoint")
    if sha256_file(tensor_path) != meta.get("sha256"):
        raise DataError("does not match checkpoint.json (sha256 differs): truncated, replaced or from another "
                        "checkpoint", file=str(tensor_path), field="sha256")
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(f"unreadable tensors ({err})", file=str(tensor_path), field="checkpoint") from None
    return tensors, meta


def remove(work: Path) -> None:
    for name in (CHECKPOINT_TENSORS, CHECKPOINT_META):
        (work / name).unlink(missing_ok=True)

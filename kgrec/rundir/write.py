"""Writing a run directory: atomically, under its lock, never mixing two runs.

:class:`RunWriter` wraps :class:`kgrec.atomic.AtomicDir` (``RUN_DIR.partial`` renamed into
place by :meth:`RunWriter.finish`; kept on failure so ``--resume`` can continue it) and
writes each file of :mod:`kgrec.rundir.layout`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.atomic import AtomicDir
from kgrec.rundir import checkpoint
from kgrec.rundir.layout import ADDITIONS, CHECKPOINT_META, CONFIG, DATA, IDMAPS, LINEAGE, RECORD, SCHEMA, SPLIT, \
    TEXT, VERSIONS, WEIGHTS, versions
from kgrec.yamlio import dump_yaml


def write_json(path: Path, data: Any, *, compact: bool = False) -> None:
    """JSON written through a temporary file and :func:`os.replace` (``compact``: no
    indentation, for long columns)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    text = json.dumps(data, separators=(",", ":"), default=_jsonable) if compact else \
        json.dumps(data, indent=2, default=_jsonable)
    tmp.write_text(text)
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return x.tolist()
    if hasattr(x, "__dataclass_fields__"):
        return asdict(x)
    return str(x)


def save_tensors(tensors: dict[str, Any], path: Path) -> None:
    from safetensors.torch import save_file

    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


class RunWriter:
    """``with RunWriter(run_dir, overwrite=..., resume=...) as w:`` … ``w.finish()``."""

    def __init__(self, run_dir: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.resume = resume
        self._atomic = AtomicDir(self.run_dir, overwrite=overwrite, resume=resume, keep_partial=True,
                                 resume_marker=CHECKPOINT_META)
        self.work = self._atomic.work

    def __enter__(self) -> RunWriter:
        self._atomic.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._atomic.__exit__(*exc)

    def write_static(self, cfg_dict: dict[str, Any], dataset, split, *, allow_outside_paths: bool = False,
                     additions: dict[str, Any] | None = None, schema_path: str | None = None) -> None:
        """Files fixed at the start of training: config, schema copy, data hashes, split, id maps.

        ``additions`` (``kgrec update``): the rows added to the schema's data set, written to
        ``additions.json`` with its sha256 and counts in ``data.json`` (format:
        :mod:`kgrec.rundir.load`); ``dataset`` already holds them. ``schema_path``: where the
        schema came from, when ``dataset.schema.path`` is another run's copy."""
        work = self.work
        (work / CONFIG).write_text(dump_yaml(cfg_dict))
        shutil.copyfile(dataset.schema.path, work / SCHEMA)
        summary = dataset.summary()
        extra: dict[str, Any] = {}
        if additions is not None:
            write_json(work / ADDITIONS, additions, compact=True)
            from kgrec.graphs.sources import sha256_file

            extra["additions"] = {"file": ADDITIONS, "sha256": sha256_file(work / ADDITIONS),
                                  "users": len(additions["users"]), "items": len(additions["items"]),
                                  "interactions": len(additions["interactions"]["user"])}
        write_json(work / DATA, {"schema": dataset.schema.name,
                                 "schema_path": schema_path or str(dataset.schema.path),
                                 "sha256": summary["files"], "origin": summary["origin"],
                                 "warnings": summary["warnings"], "nodes": summary["nodes"],
                                 "edges": summary["edges"], "interactions": summary["interactions"],
                                 "kg_triples": summary["kg_triples"],
                                 "linked_item_coverage": summary["linked_item_coverage"],
                                 "allow_outside_paths": bool(allow_outside_paths), **extra})
        split.save(work / SPLIT)
        write_json(work / IDMAPS, {name: table.ids.tolist() for name, table in dataset.nodes.items()})
        write_json(work / VERSIONS, versions())

    def write_text(self, item_text: np.ndarray | None, user_text: np.ndarray | None) -> None:
        """The text vectors the model trains with, so loading the run never re-encodes."""
        import torch

        tensors = {name: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
                   for name, v in (("item_text", item_text), ("user_text", user_text)) if v is not None}
        if tensors:
            save_tensors(tensors, self.work / TEXT)

    def save_checkpoint(self, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
        checkpoint.save(self.work, tensors, meta)

    def load_checkpoint(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return checkpoint.load(self.work)

    def save_weights(self, model) -> None:
        save_tensors(dict(model.state_dict()), self.work / WEIGHTS)

    def write_record(self, record: dict[str, Any]) -> None:
        write_json(self.work / RECORD, record)

    def write_lineage(self, lineage: dict[str, Any]) -> None:
        """``lineage.json`` of a run written by ``kgrec update``."""
        write_json(self.work / LINEAGE, lineage)

    def finish(self) -> Path:
        """Drop the resume checkpoint and move the finished run into place."""
        checkpoint.remove(self.work)
        return self._atomic.commit()

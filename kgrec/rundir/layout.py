"""The files of a run directory, and the library versions recorded in it.

Layout (written to ``RUN_DIR.partial/`` under ``RUN_DIR.lock`` and renamed into place when
training ends; see :mod:`kgrec.atomic`)::

    config.yaml             the resolved configuration
    schema.yaml             a copy of the data set's schema
    data.json               schema name, data file sha256s, load warnings, counts
    split.npz               train/valid/test indices (+ cold-start sets)
    idmaps.json             raw ids per node type, in index order
    text.safetensors        the text vectors the model was trained with (models that read text)
    model.safetensors       weights and buffers
    train.json              best epoch, validation metric, stop reason, timings, history
    versions.json           Python, platform and library versions
    checkpoint.safetensors  (only in RUN_DIR.partial) tensors of the resumable state
    checkpoint.json         (only in RUN_DIR.partial) counters, RNG states, optimizer scalars
    additions.json          (only in a run written by ``kgrec update``) every user, item and
                            interaction added to the schema's data set since it was loaded, all
                            updates of the lineage together (format: :mod:`kgrec.rundir.load`,
                            :func:`~kgrec.rundir.load.apply_additions`); its sha256 is in
                            ``data.json`` under ``additions``
    lineage.json            (only in a run written by ``kgrec update``) the parent run, its data
                            hashes, what this update added and dropped, and how each tensor of
                            the model was warm-started

Nothing in a run directory is a pickle: tensors are safetensors, everything else JSON,
YAML or ``.npz`` read with ``allow_pickle=False``.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata

CONFIG = "config.yaml"
SCHEMA = "schema.yaml"
DATA = "data.json"
SPLIT = "split.npz"
IDMAPS = "idmaps.json"
TEXT = "text.safetensors"
WEIGHTS = "model.safetensors"
RECORD = "train.json"
# train.json's stop_reason values, in words; the capped ones (training ended by a limit, not by
# convergence) are CAPPED_STOPS
STOP_REASONS = {"closed_form": "fitted in closed form", "epochs": "train.epochs reached",
                "early_stopping": "early stopping (train.patience evaluations without improvement)",
                "max_seconds": "train.max_seconds reached", "steps": "the update's --steps reached"}
CAPPED_STOPS = ("epochs", "max_seconds", "steps")
VERSIONS = "versions.json"
CHECKPOINT_TENSORS = "checkpoint.safetensors"
CHECKPOINT_META = "checkpoint.json"
ADDITIONS = "additions.json"
LINEAGE = "lineage.json"
ADDITIONS_FORMAT = "kgrec-additions"
ADDITIONS_VERSION = 1

#: files every finished run directory holds (``text.safetensors`` only for text models)
REQUIRED = (CONFIG, SCHEMA, DATA, SPLIT, IDMAPS, WEIGHTS, RECORD, VERSIONS)

LIBRARIES = ("kgrec", "torch", "torch-geometric", "transformers", "numpy", "scipy", "pandas", "networkx", "dowhy",
             "fairlearn", "captum", "safetensors")


def versions() -> dict[str, str]:
    import torch

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    out["torch_threads"] = str(torch.get_num_threads())
    return out

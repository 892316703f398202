"""Loading a finished run directory: every file validated, the exact trained model rebuilt.

Evaluation, the audit and every later consumer read runs through :func:`load_run` and the
model protocol only. A missing, empty, truncated or inconsistent file is a
:class:`~kgrec.errors.DataError` (exit 4) naming it; data files that changed since
training are a :class:`~kgrec.errors.ChecksumError` (exit 5). The text vectors come from
the run directory, so loading never runs the text encoder.

A run written by ``kgrec update`` also holds ``additions.json`` (sha256 in ``data.json``):
the users, items and interactions added to the schema's data set, by raw id. Loading builds
the data set from the schema as for any run, checks the data files' hashes, then appends
them (:func:`apply_additions`: new ids at the end of their node tables in the recorded order,
new rows at the end of the interactions), and checks the id maps and the split against the
result. The file is JSON (exact strings and floats, no pickle)::

    {"format": "kgrec-additions", "version": 1,
     "base": {"interactions": N, "users": U, "items": I},   # the schema's data set it extends
     "users": [new raw user ids], "items": [new raw item ids],
     "item_text": [text or null per new item],              # only where the items have text
     "interactions": {"user": [raw ids], "item": [raw ids],
                      "timestamp": [floats] or null, "weight": [floats] or null}}
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.data.splits import Split
from kgrec.data.view import HeldOut, TrainingView, views
from kgrec.errors import ChecksumError, DataError, KgrecInputError
from kgrec.graphs import GraphDataset
from kgrec.graphs.sources import sha256_file
from kgrec.models.base import ModelContext, Recommender
from kgrec.rundir.layout import (ADDITIONS, ADDITIONS_FORMAT, ADDITIONS_VERSION, CONFIG, DATA, IDMAPS, RECORD,
                                  REQUIRED, SCHEMA, SPLIT, TEXT, WEIGHTS)


@dataclass
class Run:
    """A trained run loaded back from its directory.

    ``view`` is the leak-free training view (what the model saw); ``heldout`` the
    validation and test parts; ``split`` the row indices and split settings (no
    interactions); ``record`` is ``train.json``, ``data`` is ``data.json``.
    """

    path: Path
    config: Any  # kgrec.rundir.config.RunConfig
    view: TrainingView
    heldout: HeldOut
    split: Split
    ctx: ModelContext
    model: Recommender
    record: dict[str, Any]
    data: dict[str, Any]

    @property
    def dataset(self) -> GraphDataset:
        """The training view's data set (training interactions only)."""
        return self.view.dataset


def read_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DataError("missing from the run directory", file=str(path), field=path.name) from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"unreadable ({err})", file=str(path), field=path.name) from None
    try:
        return json.loads(text)
    except ValueError as err:
        raise DataError(f"not valid JSON ({err.args[0]})", file=str(path), line=getattr(err, "lineno", None),
                        field=path.name) from None


def check_files(run_dir: Path) -> None:
    """Every required file is present and not empty."""
    if not run_dir.is_dir():
        raise DataError("not a directory", file=str(run_dir), field="RUN_DIR")
    if not (run_dir / WEIGHTS).exists() and not (run_dir / CONFIG).exists():
        raise DataError("not a finished kgrec run directory (no model.safetensors, no config.yaml)",
                        file=str(run_dir), field="RUN_DIR")
    for name in REQUIRED:
        path = run_dir / name
        if not path.is_file():
            raise DataError("missing from the run directory", file=str(path), field=name)
        if path.stat().st_size == 0:
            raise DataError("empty file in the run directory", file=str(path), field=name)


def load_config_of(run_dir: Path) -> Any:
    """The run's saved configuration; a config that does not load is a corrupt run (exit 4)."""
    from kgrec.rundir.config import load_config

    path = run_dir / CONFIG
    if not path.is_file():
        raise DataError("missing from the run directory", file=str(path), field=CONFIG)
    try:
        return load_config(path)
    except KgrecInputError as err:
        raise DataError(f"the run's saved config does not load: {err.message}", file=err.file or str(path),
                        line=err.line, field=err.field or CONFIG) from None


def load_split(path: Path) -> Split:
    try:
        split = Split.load(path)
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise DataError(f"unreadable or truncated split ({type(err).__name__}: {err})", file=str(path),
                        field=SPLIT) from None
    return split


def check_hashes(run_dir: Path, dataset: GraphDataset, data: dict[str, Any]) -> None:
    """The data files hash as they did at training time."""
    recorded = data.get("sha256")
    if not isinstance(recorded, dict):
        raise DataError("has no 'sha256' mapping", file=str(run_dir / DATA), field="sha256")
    now = dataset.summary()["files"]
    for name, digest in recorded.items():
        if now.get(name) != digest:
            raise ChecksumError(f"data file changed since training (sha256 {now.get(name)} vs {digest})",
                                file=str(run_dir / DATA), field=f"sha256.{name}")


def check_data(run_dir: Path, dataset: GraphDataset, split: Split) -> None:
    """The split and id maps fit the data set (whose hashes :func:`check_hashes` checked)."""
    idmaps = read_json(run_dir / IDMAPS)
    for name, table in dataset.nodes.items():
        if not isinstance(idmaps, dict) or idmaps.get(name) != table.ids.tolist():
            raise DataError(f"id map of node type '{name}' does not match the data set", file=str(run_dir / IDMAPS),
                            field=name)
    n = len(dataset.interactions)
    for part in ("train", "valid", "test"):
        idx = getattr(split, part)
        if idx.dtype.kind not in "iu" or (len(idx) and (idx.min() < 0 or idx.max() >= n)):
            raise DataError(f"split part '{part}' indexes rows outside the {n:,} interactions",
                            file=str(run_dir / SPLIT), field=part)
    if not len(split.train):
        raise DataError("the split has no training rows", file=str(run_dir / SPLIT), field="train")


def read_additions(run_dir: Path, data: dict[str, Any]) -> dict[str, Any] | None:
    """``additions.json`` of an updated run (None for a run without additions), its sha256
    checked against ``data.json``."""
    entry = data.get("additions")
    if entry is None:
        return None
    path = run_dir / ADDITIONS
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise DataError("'additions' must be a mapping with the sha256 of additions.json", file=str(run_dir / DATA),
                        field="additions")
    if not path.is_file():
        raise DataError("missing from the run directory: the rows this run added to its data set", file=str(path),
                        field=ADDITIONS)
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise ChecksumError(f"changed since the run was written (sha256 {digest} vs {entry['sha256']})",
                            file=str(path), field=ADDITIONS)
    return read_json(path)


def apply_additions(dataset: GraphDataset, additions: dict[str, Any], path: str | Path) -> GraphDataset:
    """The data set with ``additions`` (the ``additions.json`` format in the module
    docstring) appended; a file that does not fit the data set is a DataError naming it."""
    from kgrec.graphs.dataset import EdgeTable

    path = str(path)

    def fail(message: str, field: str) -> DataError:
        return DataError(message, file=path, field=field)

    if not isinstance(additions, dict) or additions.get("format") != ADDITIONS_FORMAT:
        raise fail(f"not a kgrec additions file (format {ADDITIONS_FORMAT!r})", "format")
    if additions.get("version") != ADDITIONS_VERSION:
        raise fail(f"version {additions.get('version')!r}, this kgrec reads {ADDITIONS_VERSION}", "version")
    base = additions.get("base") or {}
    have = {"interactions": len(dataset.interactions), "users": dataset.num_users, "items": dataset.num_items}
    for key, n in have.items():
        if base.get(key) != n:
            raise fail(f"made for a data set of {base.get(key)} {key}, but the schema's data set has {n:,}",
                       f"base.{key}")
    new: dict[str, list[str]] = {}
    for key, ntype in (("users", dataset.schema.user_type), ("items", dataset.schema.item_type)):
        ids = additions.get(key)
        if not isinstance(ids, list) or not all(isinstance(x, str) and x for x in ids):
            raise fail("must be a list of non-empty raw ids", key)
        clash = set(ids) & set(dataset.nodes[ntype].ids.tolist())
        if clash or len(set(ids)) != len(ids):
            raise fail(f"new {ntype} ids must be new and distinct (e.g. {sorted(clash)[:1] or 'a repeat'})", key)
        new[key] = ids
    text = additions.get("item_text")
    if text is not None and (not isinstance(text, list) or len(text) != len(new["items"])
                             or not all(t is None or isinstance(t, str) for t in text)):
        raise fail("must be a list with one text (or null) per new item", "item_text")
    rows = additions.get("interactions")
    if not isinstance(rows, dict) or not isinstance(rows.get("user"), list) or not isinstance(rows.get("item"), list):
        raise fail("must hold the lists 'user' and 'item'", "interactions")
    n = len(rows["user"])
    inter = dataset.interactions
    columns: dict[str, np.ndarray | None] = {}
    for key, present in (("timestamp", inter.timestamp is not None), ("weight", inter.weight is not None)):
        values = rows.get(key)
        if not present:
            if values is not None:
                raise fail(f"the data set's interactions have no {key}, but the additions do", f"interactions.{key}")
            columns[key] = None
            continue
        if not isinstance(values, list) or len(values) != n or \
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise fail(f"needs one number per row ({n:,} rows)", f"interactions.{key}")
        columns[key] = np.asarray(values, dtype=np.float64)
    if len(rows["item"]) != n:
        raise fail(f"'user' has {n:,} rows but 'item' {len(rows['item']):,}", "interactions.item")
    index = {}
    for key, ntype, added in (("user", dataset.schema.user_type, new["users"]),
                              ("item", dataset.schema.item_type, new["items"])):
        idx = dataset.nodes[ntype].index()
        base_n = len(idx)
        idx.update((raw, base_n + k) for k, raw in enumerate(added))
        found = np.fromiter((idx.get(r, -1) if isinstance(r, str) else -1 for r in rows[key]), dtype=np.int64,
                            count=n)
        if (found < 0).any():
            first = int(np.flatnonzero(found < 0)[0])
            raise fail(f"row {first}: {ntype} {rows[key][first]!r} is neither in the data set nor added",
                       f"interactions.{key}")
        index[key] = found
    table = EdgeTable(index["user"], index["item"],
                      None if columns["weight"] is None else columns["weight"].astype(np.float32),
                      columns["timestamp"])
    return dataset.with_additions(new["users"], new["items"], table, text)


def load_text(run_dir: Path, needs_text: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The text vectors saved at training time (``text.safetensors``)."""
    if not needs_text:
        return None, None
    path = run_dir / TEXT
    if not path.is_file():
        return None, None  # the data set has no text: the model was trained without it
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(f"unreadable text vectors ({err})", file=str(path), field=TEXT) from None
    get = tensors.get
    return (None if get("item_text") is None else get("item_text").numpy(),
            None if get("user_text") is None else get("user_text").numpy())


def load_weights(model: Recommender, path: Path) -> None:
    """Load safetensors into ``model``, resizing buffers that closed-form models fill in
    ``fit``; weights that do not fit the configured model are a DataError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(f"unreadable or truncated weights ({err})", file=str(path), field=WEIGHTS) from None
    load_state(model, tensors, file=str(path))


def load_state(model: Recommender, tensors: dict[str, Any], *, file: str | None = None) -> None:
    """``model.load_state_dict(tensors)``, first resizing the buffers that closed-form models
    fill in ``fit`` (a fresh model holds them empty); tensors that do not fit the configured
    model are a DataError (naming ``file`` when given)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise DataError(f"weights do not match the config's model '{model.name}' (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]})", file=file, field=WEIGHTS)
    for name, tensor in tensors.items():
        owner, _, attr = name.rpartition(".")
        module = model.get_submodule(owner) if owner else model
        if attr in module._buffers and module._buffers[attr].shape != tensor.shape:
            module._buffers[attr] = tensor.new_empty(tensor.shape)
        elif expected[name].shape != tensor.shape:
            raise DataError(f"weight '{name}' has shape {tuple(tensor.shape)} but the config's model needs "
                            f"{tuple(expected[name].shape)}", file=file, field=WEIGHTS)
    model.load_state_dict(tensors, strict=True)


@dataclass
class RunData:
    """What :func:`load_run` reads before it builds the model: the saved configuration,
    ``data.json``, ``train.json``, the whole data set the run was trained on (all its
    interactions, held-out ones included, additions applied; hash-checked) and the split.

    Only writers of a new run (``kgrec update``) need the held-out rows; everything else reads
    :class:`Run`, whose view holds the training interactions only."""

    path: Path
    config: Any  # kgrec.rundir.config.RunConfig
    data: dict[str, Any]
    record: dict[str, Any]
    dataset: GraphDataset
    split: Split
    additions: dict[str, Any] | None = None


def load_run_data(run_dir: str | Path) -> RunData:
    """Config, records, data set (hash-checked, with the run's additions) and split of a run."""
    from kgrec.graphs import load_dataset

    run_dir = Path(run_dir)
    check_files(run_dir)
    cfg = load_config_of(run_dir)
    data = read_json(run_dir / DATA)
    record = read_json(run_dir / RECORD)
    name = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(name, str):
        raise DataError("has no 'schema' name", file=str(run_dir / DATA), field="schema")
    dataset = load_dataset(run_dir / SCHEMA, data_dir=cfg.data.data_dir, schema_name=name,  # the run's schema copy
                           allow_outside_paths=bool(data.get("allow_outside_paths", False)),
                           synthetic=dict(cfg.data.synthetic) or None)
    check_hashes(run_dir, dataset, data)
    additions = read_additions(run_dir, data)
    if additions is not None:
        dataset = apply_additions(dataset, additions, run_dir / ADDITIONS)
    split = load_split(run_dir / SPLIT)
    check_data(run_dir, dataset, split)
    return RunData(run_dir, cfg, data, record, dataset, split, additions)


def load_run(run_dir: str | Path, *, loaded: RunData | None = None) -> Run:
    """Rebuild config, data (hash-checked), split, training view, text vectors and weights
    (``loaded``: what :func:`load_run_data` already read of this run)."""
    from kgrec.models.base import MODELS, create_model

    rd = loaded if loaded is not None else load_run_data(run_dir)
    run_dir, cfg, data, record, dataset, split = rd.path, rd.config, rd.data, rd.record, rd.dataset, rd.split
    view, heldout = views(dataset, split)
    import kgrec.models  # noqa: F401  (registers the models)

    cls = MODELS.get(cfg.model.name)
    needs_text = bool(cls is not None and cls.needs_text)
    has_text = any(dataset.nodes[t].text is not None for t in (dataset.schema.item_type, dataset.schema.user_type))
    if needs_text and has_text and not (run_dir / TEXT).is_file():
        raise DataError("missing from the run directory: the text vectors the model was trained with",
                        file=str(run_dir / TEXT), field=TEXT)
    item_text, user_text = load_text(run_dir, needs_text)
    for vectors, n, what in ((item_text, dataset.num_items, "item_text"), (user_text, dataset.num_users, "user_text")):
        if vectors is not None and len(vectors) != n:
            raise DataError(f"'{what}' has {len(vectors):,} rows but the data set {n:,} nodes",
                            file=str(run_dir / TEXT), field=what)
    ctx = ModelContext(view, item_text=item_text, user_text=user_text)
    model = create_model(cfg.model.name, ctx, cfg.model.params)
    load_weights(model, run_dir / WEIGHTS)
    model.eval()
    return Run(run_dir, cfg, view, heldout, split, ctx, model, record, data)

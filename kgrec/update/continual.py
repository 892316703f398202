"""Continual training: a new run directory from a trained one plus new data, in bounded time.

:func:`update_run` (``kgrec update``):

1. **Load the parent** through :mod:`kgrec.rundir.load` (hash-checked; its own additions
   applied if it is itself an update).
2. **Add** the new users, items and interactions (:mod:`kgrec.update.additions`): held-out
   rows of the parent that the input repeats move to train, other new rows are appended, and
   everything dropped is counted and printed (``--strict``: exit 8 instead).
3. **The updated split**: train = the parent's train ∪ moved ∪ appended rows; valid and test
   = the parent's minus the moved rows (:meth:`kgrec.data.splits.Split.updated`).
4. **Warm start** (:func:`warm_start`): the model is built for the new context (more users
   and items), then every parameter and persistent buffer of the parent whose shape matches
   is copied. A tensor whose dimensions count users, items, or users then items (LightGCN's
   one table), the others keeping their size, gets the parent's entries at their old indices
   (new ids come last, so old indices are stable; LightGCN's item block moves down by the
   number of new users; an [I, I] item-item matrix gets its old block) and keeps its fresh
   initialisation in the new rows; anything else stays fresh. What happened to each tensor
   is in ``lineage.json`` (``warm_start``: copied, by rows with the layout, fresh with the
   reason). Buffers that a model recomputes from the data (adjacency, warm masks, recency)
   are rebuilt from the new training view. The optimiser starts fresh (Adam moments are not
   saved in a finished run, and the parameter set changed shape).
5. **Bounded training** (:func:`kgrec.train.trainer.fit_steps`): exactly ``steps`` optimiser
   steps, each on a batch of the size training uses (``train.batch_size``, grown to
   ``E / train.max_steps_per_epoch`` on large data, so a step costs what a training step
   costs). Each batch mixes replay and new data: a ``new_fraction`` share (default 0.5) of
   its rows is drawn from the interactions this update added to train (moved and appended
   rows, cycled in random order), the rest from all training interactions (cycled in random
   order), with negatives drawn as in training. Why: drawing from the new rows alone forgets
   (the model drifts to the new period), drawing uniformly from all rows spends most of a
   short budget on what the parent already fits (10% new rows get a tenth of the steps).
   ``new_fraction=0`` is uniform over all training interactions.
6. **After training**: if the updated split still has validation users, the usual early
   stopping on validation applies within the step budget (validated every ``eval_every``
   steps, default one training epoch's steps) and the model's ``after_fit`` runs as after
   training (kgrec refits its ELSA term, early-stopped on validation with at most
   ``lowrank.fit_elsa``'s 30 epochs of at most 64 steps, and chooses its blend, recency and
   prior weights). If validation is empty (the temporal protocol: the update is the parent's
   validation part) nothing can be chosen: exactly ``steps`` steps are taken and
   ``after_fit`` does not run, so its buffers (kgrec's blend, recency and prior weights, ELSA
   factors, cold-item scale) keep the parent's values, copied as above (new items get the
   fresh values: no ELSA factor, weight 1). kgrec's ELSA user side ``x_u A`` is computed from
   the updated histories, so new interactions reach its item-item scores without a refit.
   Closed-form models (``ease``, ``itemknn``, ...) are refitted in closed form instead.
7. **Write** ``NEW_RUN`` atomically under its lock (:class:`kgrec.rundir.write.RunWriter`):
   the parent's config, the schema copy, ``additions.json`` (all rows added since the
   schema's data set, the parent's additions included: the new run is self-contained),
   ``data.json`` (base data hashes, the additions' sha256, load and update warnings), the new
   split and id maps, text vectors (the parent's rows, then zeros for new users and items
   without text and, for items added while serving with text, vectors from the run's text
   encoder), weights, ``train.json`` and ``lineage.json`` (parent path, its data and weight
   hashes, what was added and dropped, the warm start, the training budget and outcome).

Why this design: the run directory stays the one contract (``load_run`` reads an updated run
like a trained one, so evaluate, audit, serve and a further update need no change), no run
needs its parent to load (lineage is a record, not a dependency), and the cost of an update
is a fixed number of training steps plus one load and write, whatever the size of the
parent's training history.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.errors import DataError, LoadWarning, UsageError, report_warnings
from kgrec.graphs.sources import sha256_file
from kgrec.update.additions import Plan, additions_payload, plan_additions
from kgrec.update.sources import AddedItems, RawRows, read_exposure_log, read_interactions

DEFAULT_STEPS = 200
DEFAULT_NEW_FRACTION = 0.5


# -- warm start --------------------------------------------------------------------------------


def row_layout(old: int, new: int, old_counts: tuple[int, int], new_counts: tuple[int, int]) -> str | None:
    """How a tensor's first dimension of ``old`` rows (parent) and ``new`` rows (new model)
    is indexed: ``users``, ``items``, ``users+items`` (users then items, LightGCN's table), or
    None (not by users or items). ``old_counts``/``new_counts``: (users, items)."""
    (u0, i0), (u1, i1) = old_counts, new_counts
    if (old, new) == (u0, u1):
        return "users"  # the same copy as "items" when both counts coincide
    if (old, new) == (i0, i1):
        return "items"
    if (old, new) == (u0 + i0, u1 + i1):
        return "users+items"
    return None


def _blocks(layout: str, old: int, old_counts: tuple[int, int], new_counts: tuple[int, int]
            ) -> list[tuple[slice, slice]]:
    """(source, target) index ranges of one dimension: the old rows in their new places."""
    (u0, _), (u1, _) = old_counts, new_counts
    if layout == "users+items":
        return [(slice(0, u0), slice(0, u0)), (slice(u0, old), slice(u1, u1 + old - u0))]
    return [(slice(0, old), slice(0, old))]  # same size, or users / items: the leading rows


@torch.no_grad()
def warm_start(model: torch.nn.Module, parent: dict[str, torch.Tensor], old_counts: tuple[int, int],
               new_counts: tuple[int, int], only: Sequence[str] | None = None) -> dict[str, Any]:
    """Copy the parent's tensors into ``model`` in place (module docstring, step 4); returns
    ``{"copied": [names], "rows": {name: layout}, "fresh": {name: why}}``. A tensor is copied
    in part when each dimension either kept its size or counts users, items or users then
    items (an [I, I] item-item matrix gets its old block, ``"items×items"``); the new entries
    keep their fresh initialisation. ``only``: copy only these state keys."""
    import itertools

    report: dict[str, Any] = {"copied": [], "rows": {}, "fresh": {}}
    for name, target in model.state_dict().items():
        src = parent.get(name)
        if only is not None and name not in only:
            report["fresh"][name] = "not copied (fresh initialisation asked for)"
            continue
        if src is None:
            report["fresh"][name] = "not in the parent's weights"
            continue
        if tuple(src.shape) == tuple(target.shape):
            target.copy_(src)
            report["copied"].append(name)
            continue
        layouts = None
        if src.dim() == target.dim() >= 1:
            layouts = [None if a != b and (lay := row_layout(a, b, old_counts, new_counts)) is None
                       else ("same" if a == b else lay) for a, b in zip(src.shape, target.shape)]
        if layouts is None or None in layouts:
            report["fresh"][name] = f"shape {tuple(src.shape)} in the parent, {tuple(target.shape)} now"
            continue
        per_dim = [_blocks(lay, a, old_counts, new_counts) for lay, a in zip(layouts, src.shape)]
        for combo in itertools.product(*per_dim):
            target[tuple(t for _, t in combo)].copy_(src[tuple(s_ for s_, _ in combo)])
        report["rows"][name] = "×".join(lay for lay in layouts if lay != "same")
    return report


# -- batches -------------------------------------------------------------------------------------


def _cycle(rows: np.ndarray, rng: np.random.Generator) -> Iterator[int]:
    while True:
        yield from rows[rng.permutation(len(rows))].tolist()


def replay_batches(train: sp.csr_matrix, new_pairs: tuple[np.ndarray, np.ndarray], *, batch_size: int, n_neg: int,
                   max_steps: int | None, new_fraction: float, rng: np.random.Generator
                   ) -> tuple[Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]], int, int]:
    """Endless ``(users, pos, neg)`` batches (module docstring, step 5), the batch size and
    the steps of one training epoch. ``new_pairs``: (users, items) this update added."""
    from kgrec.data.sampling import PairSampler

    sampler = PairSampler(train, batch_size=batch_size, n_neg=n_neg, max_steps=max_steps)
    size = sampler.batch_size
    keys = sampler.users * sampler.num_items + sampler.items
    new_keys = np.unique(np.asarray(new_pairs[0], np.int64) * sampler.num_items + np.asarray(new_pairs[1], np.int64))
    new_rows = np.flatnonzero(np.isin(keys, new_keys))
    n_new = int(round(new_fraction * size)) if len(new_rows) else 0
    n_new = min(n_new, size)

    def gen() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        every = _cycle(np.arange(len(keys)), rng)
        fresh = _cycle(new_rows, rng) if n_new else None
        while True:
            idx = [next(every) for _ in range(size - n_new)]
            if fresh is not None:
                idx += [next(fresh) for _ in range(n_new)]
            rows = np.asarray(idx, dtype=np.int64)
            users = sampler.users[rows]
            yield users, sampler.items[rows], sampler.negatives(users, rng)

    return gen(), size, len(sampler)


# -- text vectors of new nodes -----------------------------------------------------------------


def extend_text(cfg: Any, vectors: np.ndarray | None, texts: Sequence[str | None], progress: bool
                ) -> tuple[np.ndarray | None, list[LoadWarning], int]:
    """The parent's text vectors with one row per new node appended: zeros (no text; the
    text channel then adds only its bias) or, for a text, its vector from the run's encoder
    (not with a LoRA-adapted encoder: those rows stay zero, counted). Returns the vectors,
    warnings and how many texts were encoded."""
    if vectors is None:
        return None, [], 0
    extra = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    wanted = [k for k, t in enumerate(texts) if t]
    warnings: list[LoadWarning] = []
    if wanted and cfg.text.lora:
        warnings.append(LoadWarning("text.safetensors", None, "items.payload.text",
                                    "this run's item vectors come from a LoRA-adapted encoder; added items' text "
                                    "cannot be encoded the same way (zero vectors)", len(wanted), "set to missing"))
        wanted = []
    if wanted:
        from kgrec.text import encode_texts

        encoded = encode_texts([texts[k] for k in wanted], cfg.text.encoder(), progress=progress)
        extra[wanted] = encoded.astype(np.float32)
    return np.concatenate([np.asarray(vectors, np.float32), extra]), warnings, len(wanted)


# -- the update ------------------------------------------------------------------------------------


def _say(progress: bool, text: str) -> None:
    if progress:
        print(f"kgrec update: {text}", file=sys.stderr, flush=True)


def update_run(run_dir: str | Path, out: str | Path, *, interactions: str | Path | None = None,
               log_dir: str | Path | None = None, steps: int = DEFAULT_STEPS, overwrite: bool = False,
               progress: bool = True, strict: bool = False, new_fraction: float = DEFAULT_NEW_FRACTION,
               eval_every: int | None = None, events: Sequence[str] = ("click",), warm: bool = True,
               threads: int | None = None) -> Path:
    """Write ``out`` from the run ``run_dir`` plus the rows of ``interactions`` (a file in the
    schema's interaction format) or of ``log_dir`` (an exposure log), trained for ``steps``
    steps (module docstring). ``warm=False`` starts from a fresh initialisation instead
    (for comparisons; the post-training buffers are still the parent's when there is no
    validation). Returns the new run directory."""
    from kgrec.atomic import check_target
    from kgrec.data.view import views
    from kgrec.models.base import ModelContext, create_model
    from kgrec.rundir.layout import LINEAGE, WEIGHTS
    from kgrec.rundir.load import load_run, load_run_data, read_json
    from kgrec.rundir.write import RunWriter
    from kgrec.runtime import configure_threads, seed_everything
    from kgrec.train.trainer import fit_steps

    t_start = time.perf_counter()
    run_dir, out = Path(run_dir), Path(out)
    if (interactions is None) == (log_dir is None):
        raise UsageError("give exactly one of --interactions FILE and --log DIR", field="--interactions")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UsageError(f"must be an integer >= 1, got {steps!r}", field="--steps")
    if not 0.0 <= float(new_fraction) <= 1.0:
        raise UsageError(f"must be in [0, 1], got {new_fraction!r}", field="--new-fraction")
    if eval_every is not None and (isinstance(eval_every, bool) or eval_every < 1):
        raise UsageError(f"must be an integer >= 1, got {eval_every!r}", field="--eval-every")
    if out.resolve() == run_dir.resolve():
        raise UsageError("NEW_RUN must differ from RUN_DIR (the parent stays as it is)", file=str(out), field="-o")
    check_target(out, overwrite=overwrite)  # exit 7 before anything is loaded
    configure_threads(threads)

    _say(progress, f"loading {run_dir}")
    parent_data = load_run_data(run_dir)
    parent = load_run(run_dir, loaded=parent_data)
    cfg = parent.config
    dataset, split = parent_data.dataset, parent_data.split
    schema = dataset.schema
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    # 1. what is added
    added_items = AddedItems()
    if interactions is not None:
        rows, read_warnings = read_interactions(interactions, schema)
        source: dict[str, Any] = {"kind": "interactions", "path": str(Path(interactions).resolve()),
                                  "sha256": sha256_file(Path(interactions))}
    else:
        rows, added_items, read_warnings, read = read_exposure_log(
            log_dir, users=set(dataset.nodes[schema.user_type].ids.tolist()),
            items=set(dataset.nodes[schema.item_type].ids.tolist()), events=events)
        source = {"kind": "log", "path": str(Path(log_dir).resolve()), **read}
    plan = plan_additions(dataset, split, rows, added_items)
    plan.warnings[:0] = read_warnings
    text_vectors = parent.ctx.item_text, parent.ctx.user_text
    item_text, text_warnings, encoded = extend_text(cfg, text_vectors[0], plan.item_text, progress)
    user_text, _, _ = extend_text(cfg, text_vectors[1], [None] * len(plan.new_users), progress)
    plan.warnings.extend(text_warnings)
    report_warnings(plan.warnings, strict=strict)
    if not len(plan.appended) and not len(plan.moved) and not plan.new_items:
        raise DataError(f"nothing to add: {plan.read:,} row(s) read, {plan.dropped:,} dropped (see the warnings)",
                        file=str(interactions or log_dir), field="--interactions" if interactions else "--log")
    _say(progress, f"{plan.read:,} row(s) read: {plan.moved_from['valid']:,} moved from valid, "
                   f"{plan.moved_from['test']:,} from test, {len(plan.appended):,} appended, {plan.dropped:,} dropped; "
                   f"{len(plan.new_users):,} new user(s), {len(plan.new_items):,} new item(s)")

    # 2. the updated data set, split, view and model
    n_before = len(dataset.interactions)
    new_dataset = dataset.with_additions(plan.new_users, plan.new_items, plan.table, plan.item_text)
    new_dataset.warnings = [LoadWarning(**w) for w in parent_data.data.get("warnings", [])] + plan.warnings
    new_split = split.updated(new_dataset, plan.moved, np.arange(n_before, len(new_dataset.interactions)))
    view, heldout = views(new_dataset, new_split)
    ctx = ModelContext(view, item_text=item_text, user_text=user_text)
    model = create_model(cfg.model.name, ctx, cfg.model.params)
    old_counts = (dataset.num_users, dataset.num_items)
    new_counts = (new_dataset.num_users, new_dataset.num_items)
    from kgrec.train.validation import validation_users

    validated = len(validation_users(heldout)) > 0
    if not model.trainable:
        start = {"copied": [], "rows": {}, "fresh": {k: "closed form: fitted on the updated training view"
                                                     for k in model.state_dict()}}
    else:
        only = None if warm else ([k for k in model.state_dict() if k in model.fit_buffers] if not validated else [])
        start = warm_start(model, parent.model.state_dict(), old_counts, new_counts, only=only)

    # 3. bounded training
    new_users_idx = plan.table.src
    moved_table = dataset.interactions.subset(plan.moved)
    new_pairs = (np.concatenate([moved_table.src, new_users_idx]), np.concatenate([moved_table.dst, plan.table.dst]))
    batches, batch_size, epoch_steps = replay_batches(
        ctx.train, new_pairs, batch_size=cfg.train.batch_size, n_neg=cfg.train.n_neg,
        max_steps=cfg.train.max_steps_per_epoch, new_fraction=float(new_fraction), rng=rng)
    every = eval_every or epoch_steps

    base = (parent_data.additions or {}).get("base") or {"interactions": n_before, "users": old_counts[0],
                                                         "items": old_counts[1]}
    payload = additions_payload(new_dataset, plan, parent_data.additions, base)
    with RunWriter(out, overwrite=overwrite) as writer:
        writer.write_static(cfg.to_dict(), new_dataset, new_split,
                            allow_outside_paths=bool(parent_data.data.get("allow_outside_paths", False)),
                            additions=payload, schema_path=parent_data.data.get("schema_path"))
        writer.write_text(item_text, user_text)
        _say(progress, f"training {steps} step(s) of {batch_size:,} rows ({new_fraction:g} of each batch new), "
                       + (f"validated every {every} step(s)" if validated else
                          "no validation rows left: no early stopping, the parent's post-training choices kept"))
        state = fit_steps(model, ctx, heldout, cfg, batches, steps, eval_every=every, progress=progress)
        writer.save_weights(model)
        metric = cfg.train.metric
        post = ("after_fit on validation" if validated and model.trainable else
                "closed form" if not model.trainable else "parent's (no validation: after_fit not run)")
        record: dict[str, Any] = {
            "model": cfg.model.name, "update": True, "parent": str(run_dir.resolve()),
            "steps": steps, "steps_run": state.steps, "best_step": state.best_step, "best_epoch": None,
            "epochs_run": None, "stop_reason": state.stop_reason, "max_seconds": cfg.train.max_seconds,
            "batch_size": batch_size, "new_fraction": float(new_fraction), "eval_every": every,
            "warm_start": warm, "post_training": post,
            "train_seconds": state.elapsed, "seconds_to_best": state.seconds_to_best,
            "after_fit_seconds": state.after_fit_seconds, "seconds_per_epoch": None,
            "world_size": 1}
        if state.validated:
            record[f"valid_{metric}"] = state.final_metric
            record[f"valid_{metric}_during_training"] = state.best_metric
            record[f"valid_{metric}_warm_start"] = state.warm_metric
        parent_lineage = read_json(run_dir / LINEAGE) if (run_dir / LINEAGE).is_file() else None
        ancestors = [] if parent_lineage is None else [parent_lineage["parent"], *parent_lineage.get("ancestors", [])]
        lineage = {
            "format": "kgrec-lineage", "version": 1,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "parent": {"path": str(run_dir.resolve()), "model": cfg.model.name,
                       "data_sha256": parent_data.data.get("sha256"),
                       "additions_sha256": (parent_data.data.get("additions") or {}).get("sha256"),
                       "weights_sha256": sha256_file(run_dir / WEIGHTS),
                       "split": {k: int(len(getattr(split, k))) for k in ("train", "valid", "test")}},
            "ancestors": ancestors,
            "source": source,
            "added": {**plan.summary(), "new_user_ids": plan.new_users[:20], "new_item_ids": plan.new_items[:20],
                      "texts_encoded": encoded},
            "split": {k: int(len(getattr(new_split, k))) for k in ("train", "valid", "test")},
            "warm_start": start,
            "training": {k: record[k] for k in ("steps", "steps_run", "stop_reason", "batch_size", "new_fraction",
                                                "eval_every", "warm_start", "post_training")},
        }
        record["wall_seconds"] = time.perf_counter() - t_start
        writer.write_record({**record, "history": state.history})
        writer.write_lineage(lineage)
        path = writer.finish()
    _say(progress, f"wrote {path} ({state.steps} step(s), {state.stop_reason}; {len(start['copied'])} tensor(s) "
                   f"copied, {len(start['rows'])} by rows, {len(start['fresh'])} fresh) in "
                   f"{time.perf_counter() - t_start:.1f} s")
    return path


__all__ = ["DEFAULT_NEW_FRACTION", "DEFAULT_STEPS", "Plan", "RawRows", "replay_batches", "row_layout", "update_run",
           "warm_start"]

"""The training loop: pairwise batches, validation, early stopping, resumable state.

The loop only iterates ``sampler.epoch(rng)`` and calls ``model.loss(batch)``, so a
mini-batch loader over sampled subgraphs can be added without rewriting it. With a
:class:`~kgrec.train.comm.Comm` (``kgrec train --nproc N``) each rank trains on its
shard of every global batch (``sampler.shards``) and the gradients are summed over the ranks;
rank 0 alone validates and decides when to stop, and broadcasts the decision.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from kgrec.data.sampling import PairSampler
from kgrec.data.view import HeldOut
from kgrec.models.base import Batch, ModelContext, Recommender
from kgrec.models.debias import Objective
from kgrec.rundir.config import RunConfig
from kgrec.train.validation import validation_score

if TYPE_CHECKING:
    from kgrec.train.comm import Comm



@dataclass
class TrainState:
    """Everything needed to resume: counters, the best weights so far, and the history."""

    epoch: int = 0
    best_epoch: int = -1
    best_metric: float = float("-inf")
    final_metric: float | None = None  # after after_fit (e.g. a blend chosen on validation)
    bad_evals: int = 0
    elapsed: float = 0.0
    seconds_to_best: float = 0.0
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None  # closed_form | epochs | early_stopping | max_seconds

    def pack(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON-able counters) for a pickle-free checkpoint."""
        tensors = {f"best.{k}": v for k, v in (self.best_state or {}).items()}
        meta = {k: getattr(self, k) for k in ("epoch", "best_epoch", "final_metric", "bad_evals", "elapsed",
                                              "seconds_to_best", "history", "stop_reason")}
        meta["best_metric"] = None if self.best_metric == float("-inf") else self.best_metric
        meta["has_best"] = self.best_state is not None
        return tensors, meta

    @classmethod
    def unpack(cls, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> TrainState:
        best = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")}
        fields = {k: meta[k] for k in ("epoch", "best_epoch", "final_metric", "bad_evals", "elapsed",
                                       "seconds_to_best", "history", "stop_reason")}
        return cls(**fields, best_metric=float("-inf") if meta["best_metric"] is None else meta["best_metric"],
                   best_state=best if meta["has_best"] else None)


def make_objective(cfg: RunConfig, ctx: ModelContext) -> Objective:
    return Objective(cfg.train.objective, ctx.item_counts, gamma=cfg.train.gamma, clip=cfg.train.ips_clip,
                     temperature=cfg.train.temperature)


def _step(model: Any, opt: torch.optim.Optimizer, users: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    """One optimiser step on the batch's loss; returns the loss."""
    batch = Batch(torch.from_numpy(users), torch.from_numpy(pos), torch.from_numpy(neg))
    opt.zero_grad(set_to_none=True)
    loss = model.loss(batch)
    loss.backward()
    opt.step()
    return loss.item()


def fit(model: Recommender, ctx: ModelContext, heldout: HeldOut, cfg: RunConfig, *, state: TrainState | None = None,
        optimizer_state: dict | None = None, rng: np.random.Generator | None = None,
        on_epoch: Callable[[TrainState, torch.optim.Optimizer, np.random.Generator], None] | None = None,
        progress: bool = True, comm: Comm | None = None) -> TrainState:
    """Train ``model`` on the training view (or fit it in closed form), early-stopped on
    ``heldout.valid``, and load its best validation weights.

    ``on_epoch`` is called after each epoch with the state, optimiser and generator (the
    run directory uses it to write a resumable checkpoint). ``state.stop_reason`` says why
    training ended.

    ``comm`` (a trainable model on several ranks): every rank runs the same epochs on its
    shard of each global batch; rank 0 validates, keeps the best weights and broadcasts
    each epoch's stop decision; the other ranks return right after the last epoch (their
    state holds only the counters), rank 0 goes on to ``after_fit`` as in one process.
    """
    state = state or TrainState()

    def validate(m: Recommender) -> float:
        return validation_score(m, ctx, heldout, cfg.train.metric, max_users=cfg.train.valid_users, seed=cfg.seed)

    if not model.trainable:
        start = time.perf_counter()
        model.fit(ctx)
        state.elapsed = state.seconds_to_best = time.perf_counter() - start
        state.best_metric = state.final_metric = validate(model)
        state.best_epoch, state.epoch, state.stop_reason = 0, 1, "closed_form"
        state.history.append({"epoch": 0, "loss": None, cfg.train.metric: state.best_metric,
                              "seconds": state.elapsed})
        return state
    model.objective = make_objective(cfg, ctx)
    rng = rng or np.random.default_rng(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    sampler = PairSampler(ctx.train, batch_size=cfg.train.batch_size, n_neg=cfg.train.n_neg,
                          max_steps=cfg.train.max_steps_per_epoch)
    main = comm is None or comm.is_main
    if comm is not None:
        comm.broadcast_parameters(model)  # rank 0's start (the same seed gives the same one anyway)
    bar = tqdm(total=cfg.train.epochs, initial=state.epoch, desc=f"train {model.name}", unit="epoch",
               disable=not (progress and main), file=sys.stderr, dynamic_ncols=True)
    while state.epoch < cfg.train.epochs:
        t0 = time.perf_counter()
        model.train()
        total, n = 0.0, 0
        if comm is None:
            for users, pos, neg in sampler.epoch(rng):
                total += _step(model, opt, users, pos, neg) * len(users)
                n += len(users)
        else:
            total, n = _sharded_epoch(model, opt, sampler, rng, comm)
        state.epoch += 1
        record: dict[str, Any] = {"epoch": state.epoch, "loss": total / max(n, 1),
                                  "epoch_seconds": time.perf_counter() - t0}  # the training steps alone
        if not main:
            state.elapsed += time.perf_counter() - t0
        elif state.epoch % cfg.train.eval_every == 0 or state.epoch == cfg.train.epochs:
            t_valid = time.perf_counter()
            metric = validate(model)
            record[cfg.train.metric] = metric
            record["valid_seconds"] = time.perf_counter() - t_valid
            state.elapsed += time.perf_counter() - t0
            if metric > state.best_metric:
                state.best_metric, state.best_epoch, state.bad_evals = metric, state.epoch, 0
                state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()
                                    if k not in model.fit_buffers}
                state.seconds_to_best = state.elapsed
            else:
                state.bad_evals += 1
        else:
            state.elapsed += time.perf_counter() - t0
        record["seconds"] = state.elapsed
        state.history.append(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.4f}", best=f"{state.best_metric:.4f}@{state.best_epoch}")
        if on_epoch is not None:
            on_epoch(state, opt, rng)
        reason = None
        if state.bad_evals >= cfg.train.patience:
            reason = "early_stopping"
        elif cfg.train.max_seconds is not None and state.elapsed >= cfg.train.max_seconds:
            reason = "max_seconds"
        if comm is not None:
            reason = comm.broadcast(reason)  # rank 0's decision: all ranks stop together
        if reason is not None:
            state.stop_reason = reason
            break
    bar.close()
    if state.stop_reason is None:
        state.stop_reason = "epochs"
    if comm is not None:
        comm.check_parameters(model)
        if not main:
            return state
    if state.best_state is not None:
        model.load_state_dict(state.best_state, strict=not model.fit_buffers)
    model.after_fit(ctx, validate)
    state.final_metric = validate(model)
    return state


def _sharded_epoch(model: Recommender, opt: torch.optim.Optimizer, sampler: PairSampler, rng: np.random.Generator,
                   comm: Comm) -> tuple[float, int]:
    """One epoch on this rank's shards. Each rank's mean loss is weighted by its share of the
    global batch and the gradients are summed over the ranks, so the step is the one a single
    process takes on the whole batch: losses that are means over the batch's rows (BPR, its
    IPS and PDA forms, sampled softmax, RecBole's L2 term divided by the batch size) add up
    exactly. Returns the epoch's (loss sum, rows) over all ranks."""
    params = [p for p in model.parameters() if p.requires_grad]
    total, n = 0.0, 0
    for users, pos, neg, n_global in sampler.shards(rng, comm.rank, comm.world_size):
        opt.zero_grad(set_to_none=True)
        if len(users):
            batch = Batch(torch.from_numpy(users), torch.from_numpy(pos), torch.from_numpy(neg))
            loss = model.loss(batch)
            (loss * (len(users) / n_global)).backward()
            total += loss.item() * len(users)
            n += len(users)
        comm.all_reduce_grads(params)
        opt.step()
    total, rows = comm.all_sum([total, float(n)])
    return total, int(rows)


@dataclass
class StepState:
    """The outcome of :func:`fit_steps`: steps taken, the best validation point, the history."""

    steps: int = 0
    best_step: int = -1
    best_metric: float = float("-inf")
    warm_metric: float | None = None  # validation before the first step (the warm start's)
    final_metric: float | None = None  # after after_fit
    bad_evals: int = 0
    elapsed: float = 0.0
    seconds_to_best: float = 0.0
    after_fit_seconds: float = 0.0
    validated: bool = False  # False: no validation users, so no early stopping and no after_fit
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None  # steps | early_stopping | max_seconds | closed_form


def fit_steps(model: Recommender, ctx: ModelContext, heldout: HeldOut, cfg: RunConfig,
              batches: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]], steps: int, *, eval_every: int,
              progress: bool = True) -> StepState:
    """Bounded training (``kgrec update``): at most ``steps`` optimizer steps of a fresh Adam
    (``cfg.train.lr``) on the batches ``(users, pos, neg)`` that ``batches`` yields, from the
    weights ``model`` already holds.

    With validation users (``heldout.valid`` not empty) the model is validated every
    ``eval_every`` steps and after the last; training stops early after ``cfg.train.patience``
    validations without improvement (or at ``cfg.train.max_seconds``), the best validated
    weights (the warm start's included: ``best_step`` 0) are loaded and ``model.after_fit`` runs as in :func:`fit`. Without validation
    users exactly ``steps`` steps are taken (only ``max_seconds`` stops earlier), nothing is
    chosen on validation and ``after_fit`` does not run: the buffers it fits keep the values
    the model holds (the parent's, after a warm start). A closed-form model is fitted instead
    (``stop_reason`` ``closed_form``)."""
    from kgrec.train.validation import validation_users

    state = StepState(validated=len(validation_users(heldout)) > 0)

    def validate(m: Recommender) -> float:
        return validation_score(m, ctx, heldout, cfg.train.metric, max_users=cfg.train.valid_users, seed=cfg.seed)

    metric_name = cfg.train.metric
    if not model.trainable:
        start = time.perf_counter()
        model.fit(ctx)
        state.elapsed = state.seconds_to_best = time.perf_counter() - start
        state.stop_reason = "closed_form"
        if state.validated:
            state.final_metric = state.best_metric = validate(model)
        return state
    model.objective = make_objective(cfg, ctx)
    if state.validated:
        state.warm_metric = validate(model)
        state.history.append({"step": 0, "loss": None, metric_name: state.warm_metric, "seconds": 0.0})
        # the warm start competes: if no step improves on it, its weights are the ones restored
        state.best_metric, state.best_step = state.warm_metric, 0
        state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()
                            if k not in model.fit_buffers}
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    bar = tqdm(total=steps, desc=f"update {model.name}", unit="step", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    total, n, t0 = 0.0, 0, time.perf_counter()
    for step in range(1, steps + 1):
        users, pos, neg = next(batches)
        model.train()
        total += _step(model, opt, users, pos, neg) * len(users)
        n += len(users)
        state.steps = step
        bar.update(1)
        if step % eval_every == 0 or step == steps:
            record: dict[str, Any] = {"step": step, "loss": total / max(n, 1)}
            total, n = 0.0, 0
            if state.validated:
                t_valid = time.perf_counter()
                metric = validate(model)
                record[metric_name] = metric
                record["valid_seconds"] = time.perf_counter() - t_valid
                if metric > state.best_metric:
                    state.best_metric, state.best_step, state.bad_evals = metric, step, 0
                    state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()
                                        if k not in model.fit_buffers}
                    state.seconds_to_best = time.perf_counter() - t0
                else:
                    state.bad_evals += 1
            record["seconds"] = time.perf_counter() - t0
            state.history.append(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}",
                            **({"best": f"{state.best_metric:.4f}@{state.best_step}"} if state.validated else {}))
            if state.validated and state.bad_evals >= cfg.train.patience:
                state.stop_reason = "early_stopping"
                break
        if cfg.train.max_seconds is not None and time.perf_counter() - t0 >= cfg.train.max_seconds:
            state.stop_reason = "max_seconds"
            break
    bar.close()
    state.elapsed = time.perf_counter() - t0
    state.stop_reason = state.stop_reason or "steps"
    if not state.validated:
        state.seconds_to_best, state.best_step = state.elapsed, state.steps
    if state.best_state is not None:
        model.load_state_dict(state.best_state, strict=not model.fit_buffers)
        state.best_state = None
    model.eval()
    if state.validated:
        t_after = time.perf_counter()
        model.after_fit(ctx, validate)
        state.after_fit_seconds = time.perf_counter() - t_after
        state.final_metric = validate(model)
    return state

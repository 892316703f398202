r"""Off-policy evaluation of a candidate model from what ``kgrec serve`` logged.

The exposure log (:mod:`kgrec.serve.log`) holds, for every served list, each shown item
``a`` at position ``k`` with the logging policy's marginal propensity ``π₀(a at k | x)``
(:mod:`kgrec.serve.policy`) and the reward ``r`` (1 if the item drew a logged ``click``).
The candidate policy is the candidate run's deterministic top-``K`` for the same request
(``K`` = the logged list's length): for a known user their run vector with their training
items excluded, for a fold-in request the candidate's fold-in of the logged history with
those items excluded. So ``π_t(a at k | x) = 1[c_k(x) = a]``.

The estimand is the candidate's click rate per shown slot on the logged traffic,

.. math::
    V(π_t) = \frac{1}{K} E_x \sum_k E[r \mid x, c_k(x), k],

estimated per exposure row (the item-position model: a slot's click depends on the item
shown there and its position, not on the rest of the list) by IPS, SNIPS and DR
(:func:`kgrec.audit.offpolicy.off_policy_value`, ESS, optional clipping), with
percentile-bootstrap CIs that resample whole requests (a request's slots share a user and a
list, so they are not independent draws). DR's reward model is the smoothed click rate per
(item, position) (:func:`kgrec.audit.obd.click_model`), cross-fitted over two folds of
requests. The logging policy's own rate is the mean reward of the same rows, with a Wilson
interval (which treats slots as independent).

Unbiased only where the logging policy had support: a candidate's item outside the logging
policy's candidate pool (``epsilon``'s top ``M``) was never shown at that position (its
propensity there was 0), and its clicks are missing from every estimate; serve with a pool
that covers the catalogue (``--candidates`` at least the number of items) to evaluate any
model. :attr:`ServedOPE.matched_rows` counts the rows where the candidate agrees with
what was shown. A ``deterministic`` logging policy has no exploration, and the notes say so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.audit.obd import cross_fitted
from kgrec.audit.offpolicy import OPEEstimate, off_policy_value, wilson


@dataclass(frozen=True)
class ServedOPE:
    """The candidate's estimated click rate per slot and the logging policy's observed one."""

    estimates: list[OPEEstimate]
    logging_rate: float
    logging_ci: tuple[float, float]
    requests: int
    exposures: int
    matched_rows: int
    skipped_requests: int
    policies: list[str]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["estimates"] = [e.to_dict() for e in self.estimates]
        out["logging_ci"] = list(self.logging_ci)
        return out


def candidate_lists(run: Any, requests: Any, lengths: dict[str, int]) -> tuple[dict[str, list[str]], int]:
    """The candidate run's top-K raw item ids per logged request (``K = lengths[id]``) and the
    number of requests it cannot score (a user unknown to it and no history)."""
    import json

    import torch

    from kgrec.models.foldin import FoldIn, NotSupported
    from kgrec.serve.index import IndexConfig, ItemIndex

    schema = run.dataset.schema
    user_index = {str(u): k for k, u in enumerate(run.dataset.nodes[schema.user_type].ids.tolist())}
    item_ids = [str(i) for i in run.dataset.nodes[schema.item_type].ids.tolist()]
    item_index = {i: k for k, i in enumerate(item_ids)}
    with torch.no_grad():
        users, items = run.model.embed()
    index = ItemIndex.build(np.ascontiguousarray(items.numpy(), dtype=np.float32), IndexConfig(kind="flat"))
    try:
        fold = FoldIn.for_model(run.model)
    except NotSupported:
        fold = None
    train = run.view.train.tocsr()
    queries, excludes, ids, skipped = [], [], [], 0
    user_vectors = users.numpy()
    for rid, user, history in zip(requests.request_id, requests.user_id, requests.history):
        if isinstance(user, str) and user in user_index:
            u = user_index[user]
            queries.append(user_vectors[u])
            excludes.append(train.indices[train.indptr[u]: train.indptr[u + 1]].astype(np.int64))
        elif isinstance(history, str) and fold is not None:
            hist = np.asarray([item_index[str(h)] for h in json.loads(history) if str(h) in item_index],
                              dtype=np.int64)
            queries.append(fold.user_vector(hist))
            excludes.append(np.unique(hist))
        else:
            skipped += 1
            continue
        ids.append(rid)
    out: dict[str, list[str]] = {}
    k_max = max(lengths.values(), default=1)
    for start in range(0, len(ids), 1024):
        chunk = slice(start, start + 1024)
        top, _ = index.search(np.asarray(queries[chunk], dtype=np.float32), k_max, exclude=excludes[chunk])
        for rid, row in zip(ids[chunk], top):
            out[rid] = [item_ids[i] for i in row[: lengths[rid]] if i >= 0]
    return out, skipped


def served_value(log_dir: str | Path, run: Any, *, events: tuple[str, ...] = ("click",), clip: float | None = None,
                 ci_level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> ServedOPE:
    """Estimate ``run``'s click rate per slot from the exposure log in ``log_dir`` (see the
    module docstring)."""
    from kgrec.serve.log import ExposureLog

    with ExposureLog.open(log_dir, create=False, readonly=True) as log, log.snapshot() as snap:
        bandit, requests = snap.bandit_feedback(events), snap.requests()
    notes: list[str] = []
    if bandit.empty:
        raise ValueError(f"{log_dir}: the exposure log has no exposures")
    lengths = bandit.groupby("request_id").position.max().add(1).astype(int).to_dict()
    lists, skipped = candidate_lists(run, requests, lengths)
    if skipped:
        notes.append(f"{skipped} logged request(s) left out: their user is unknown to the candidate run and they "
                     "carry no history")
    # in serving order (request ids are random), so folds and bootstrap resamples are reproducible
    rows = bandit[bandit.request_id.isin(lists.keys())].sort_values(["ts", "request_id", "position"], kind="stable")
    chosen = [lists[r][p] if p < len(lists[r]) else None for r, p in zip(rows.request_id, rows.position)]
    action = rows.action.astype(str).to_numpy()
    target = np.array([c == a for c, a in zip(chosen, action)], dtype=float)
    reward = rows.reward.to_numpy(dtype=float)
    pscore = rows.pscore.to_numpy(dtype=float)
    position = rows.position.to_numpy(dtype=np.int64)
    policies = sorted(set(rows.policy.astype(str)))
    if np.all(pscore >= 1.0):
        notes.append("the logging policy was deterministic (every propensity 1): the estimates see only the "
                     "slots where the candidate agrees with it, so they are not an estimate of its click rate")
    q_logged, q_target = _reward_model(rows.request_id.to_numpy(), action, chosen, position, reward, seed)
    estimates = off_policy_value(reward=reward, logging_propensity=pscore, target_propensity=target,
                                 reward_model=(q_logged, q_target), clip=clip, ci_level=ci_level, n_boot=n_boot,
                                 seed=seed, groups=rows.request_id.to_numpy())
    observed = float(reward.mean())  # the logging policy, on the same requests as the estimates
    return ServedOPE(estimates, observed, wilson(int(reward.sum()), len(reward), ci_level),
                     requests=len(lists), exposures=len(rows), matched_rows=int(target.sum()), skipped_requests=skipped,
                     policies=policies, notes=notes)


def _reward_model(request: np.ndarray, action: np.ndarray, chosen: list[str | None], position: np.ndarray,
                  reward: np.ndarray, seed: int, folds: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``(q̂(a_i, p_i), q̂(c_{p_i}, p_i))``, the table of :func:`kgrec.audit.obd.click_model`
    fit on the other fold of requests for each row."""
    names = {a: k for k, a in enumerate(sorted(set(action) | {c for c in chosen if c is not None}))}
    logged = np.array([names[a] for a in action], dtype=np.int64)
    target = np.array([names.get(c, -1) if c is not None else -1 for c in chosen], dtype=np.int64)
    first = {r: k for k, r in enumerate(dict.fromkeys(request))}  # requests numbered in row order
    req = np.array([first[r] for r in request], dtype=np.int64)
    fold = np.random.default_rng(seed).permutation(len(first))[req] % folds

    def chosen_q(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
        t = target[rows]
        return np.where(t >= 0, table[np.maximum(t, 0), position[rows]], 0.0)  # no item: no click

    return cross_fitted(fold, item=logged, position=position, click=reward, n_items=len(names),
                        n_positions=int(position.max()) + 1, target=chosen_q)

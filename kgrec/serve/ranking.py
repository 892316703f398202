"""What orders the logging policy's pool in ``kgrec serve``, before its draw.

* ``personalised`` (default): the model's top candidates from the index (the user's own items
  excluded), then, when the run config's ``rerank`` section (or the server's ``--set
  rerank.*``) makes it active, the calibrated re-ranking stage
  (:class:`kgrec.models.rerank.CalibratedReranker`) with the user's items as their profile.
  The index retrieves ``max(policy pool, rerank.pool)`` candidates; the re-ranker orders the
  first ``policy pool`` of them; the policy draws from that order, so the logged propensities
  stay exact (its first ``K`` are the greedy list).
* ``popular`` / ``recent`` (:data:`kgrec.models.nonprofiling.NON_PROFILING`): rankings not
  based on profiling (EU DSA Art. 38): one order of the trained catalogue, computed once at
  start, the same for every request. ``user_id`` and ``history`` are not used, so no item is
  excluded for having been seen (excluding them would make the list depend on the user's
  history), and the re-ranker does not run (its target is the user's profile). Items added
  while serving are not in these lists (they have no training interactions).

A data set without interaction timestamps has no ``recent`` ranking: the server starts
without it, ``/healthz`` lists it under ``rankings_unavailable`` with the reason, and a request
for it is a 422 naming ``ranking``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.errors import SchemaError
from kgrec.models.nonprofiling import NON_PROFILING, non_profiling_model
from kgrec.models.rerank import CalibratedReranker, Grouping

PERSONALISED = "personalised"
RANKINGS = (PERSONALISED, *NON_PROFILING)


@dataclass(frozen=True)
class FixedList:
    """A non-profiling ranking's top ``depth`` items: indices int64 and scores float32, best first."""

    ids: np.ndarray
    scores: np.ndarray


def fixed_rankings(ctx: Any, depth: int) -> tuple[dict[str, FixedList], dict[str, str]]:
    """Each non-profiling ranking of ``ctx``'s training data (ties: the lower item index
    first), and those this data set cannot give, with the reason."""
    lists: dict[str, FixedList] = {}
    missing: dict[str, str] = {}
    for kind in NON_PROFILING:
        try:
            model = non_profiling_model(kind, ctx)
        except SchemaError as err:  # e.g. "recent" without timestamps
            missing[kind] = err.message
            continue
        with torch.no_grad():
            _, items = model.embed()
        score = items[:, 0].double().numpy()
        order = np.argsort(-score, kind="stable")[:depth]
        lists[kind] = FixedList(order.astype(np.int64), score[order].astype(np.float32))
    return lists, missing


def serving_rerank(section: Any, overrides: Mapping[str, Any] | None) -> Any:
    """The run config's ``rerank`` section with this server's ``overrides`` (``--set rerank.KEY``),
    validated as ``kgrec train --set`` is (a :class:`~kgrec.errors.SchemaError` naming the key)."""
    if not overrides:
        return section
    from kgrec.rundir.config import load_config

    return load_config(None, {"rerank": {**dataclasses.asdict(section), **dict(overrides)}}).rerank


def _grown(grouping: Grouping, n_items: int) -> Grouping:
    """``grouping`` over ``n_items`` items: those added while serving have no training
    interactions (popularity: ``tail``) and no feature values (the ``missing`` group)."""
    extra = n_items - len(grouping.codes)
    if extra <= 0:
        return grouping
    names = grouping.names
    if grouping.name == "popularity":  # head/tail by training counts
        code = names.index("tail")
    else:
        missing = f"{grouping.name}=missing"
        names = names if missing in names else (*names, missing)
        code = names.index(missing)
    codes = np.concatenate([grouping.codes, np.full(extra, code, dtype=np.int64)])
    return Grouping(grouping.name, codes, tuple(names))


def covering(reranker: CalibratedReranker, n_items: int) -> CalibratedReranker:
    """``reranker``, or one whose groupings also cover the items added since (see :func:`_grown`)."""
    if all(len(g.codes) >= n_items for g in reranker.groupings):
        return reranker
    grown = [_grown(g, n_items) for g in reranker.groupings]
    priors = None if reranker.priors is None else [  # a new "missing" group has no training share
        np.concatenate([p, np.zeros(g.n_groups - len(p))]) for p, g in zip(reranker.priors, grown)]
    return CalibratedReranker(grown, strength=reranker.strength, pool=reranker.pool, priors=priors)


def rerank_pool(reranker: CalibratedReranker, ids: np.ndarray, scores: np.ndarray, profile: np.ndarray,
                m: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``m`` of the calibrated order of the retrieved ``ids`` (best first, no
    padding) with their model ``scores``; ``profile``: the user's item indices (their target).
    ``reranker`` covers every index in ``ids`` and ``profile``."""
    n_items = len(reranker.groupings[0].codes)
    rows = np.zeros(len(profile), dtype=np.int64)
    history = sp.csr_matrix((np.ones(len(profile)), (rows, np.asarray(profile, dtype=np.int64))), shape=(1, n_items))
    order = reranker.rerank(ids[None, :], scores[None, :], history, m)[0]
    where = {int(i): j for j, i in enumerate(ids.tolist())}
    pos = np.fromiter((where[int(i)] for i in order), dtype=np.int64, count=len(order))
    return ids[pos], scores[pos]

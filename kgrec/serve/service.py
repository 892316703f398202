"""The serving core, without HTTP: a trained run's vectors in an ANN index, fold-in of
unseen users, the logging policy, and the exposure log.

:class:`Service` is what :mod:`kgrec.serve.app` wraps; tests and benchmarks can drive it
directly. Raw ids are those of the run's id maps (``idmaps.json``), compared as strings (a
JSON ``42`` and ``"42"`` name the same id). In the ``personalised`` ranking, items a known
user interacted with in the run's training view are never recommended to them; for a fold-in
user, their history's items are excluded. What orders the policy's pool (the re-ranking stage,
the non-profiling rankings ``popular`` and ``recent``) is in :mod:`kgrec.serve.ranking`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgrec.errors import KgrecInputError, UsageError
from kgrec.serve.checks import is_int
from kgrec.serve.index import IndexConfig, ItemIndex
from kgrec.serve.log import Exposure, ExposureLog, Feedback, ServedRequest
from kgrec.serve.policy import PolicyConfig, draw
from kgrec.serve.ranking import PERSONALISED, RANKINGS, covering, fixed_rankings, rerank_pool, serving_rerank

EVENTS = ("click", "consume", "purchase", "dismiss", "rating")


class NotFound(KgrecInputError):
    """An id the service does not know (HTTP 404)."""


class Invalid(KgrecInputError):
    """A request the service understands but cannot satisfy (HTTP 422)."""


class Conflict(KgrecInputError):
    """A new item whose id exists already (HTTP 409)."""


@dataclass(frozen=True)
class ServeConfig:
    """Serving options: the largest ``k`` a request may ask for (default 100), the logging
    policy, the index, the seed of the policy's draws, the exposure log directory
    (``None``: no log, for tests of the ranking alone) with its durability, and ``rerank``:
    overrides of the run config's ``rerank`` section for this server (``{"method":
    "calibrated", "strength": 0.3}``; empty: the run's own)."""

    k_max: int = 100
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    seed: int = 0
    log_dir: str | None = None
    durable: bool = False
    rerank: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not is_int(self.k_max, 1):
            raise UsageError(f"k_max must be an integer >= 1, got {self.k_max!r}", field="--k-max")
        if not isinstance(self.rerank, dict):
            raise UsageError(f"rerank must be a mapping of rerank.* keys, got {self.rerank!r}", field="--set")


@dataclass(frozen=True)
class Shown:
    """One served list: raw item ids, scores and propensities, best first (its 1-based
    :attr:`positions`; the log stores them 0-based, as Open Bandit Pipeline does)."""

    request_id: str
    items: list[str]
    scores: list[float]
    pscores: list[float]
    policy: str
    explored: bool
    folded_in: bool
    ranking: str = PERSONALISED
    rerank: str = "none"

    @property
    def positions(self) -> list[int]:
        return list(range(1, len(self.items) + 1))

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "policy": self.policy, "explored": self.explored,
                "folded_in": self.folded_in, "ranking": self.ranking, "rerank": self.rerank,
                "items": [{"item_id": i, "score": s, "position": p, "propensity": q}
                          for i, s, p, q in zip(self.items, self.scores, self.positions, self.pscores)]}


class Service:
    """See the module docstring. Build with :meth:`from_run`."""

    def __init__(self, run: Any, config: ServeConfig) -> None:
        from kgrec.models.foldin import FoldIn, NotSupported

        self.run, self.config = run, config
        self.run_id = str(Path(run.path).resolve())
        schema = run.dataset.schema
        self.user_ids = [str(u) for u in run.dataset.nodes[schema.user_type].ids.tolist()]
        self.item_ids = [str(i) for i in run.dataset.nodes[schema.item_type].ids.tolist()]
        self.user_index = {u: k for k, u in enumerate(self.user_ids)}
        self.item_index = {i: k for k, i in enumerate(self.item_ids)}
        self.train = run.view.train.tocsr()
        with torch.no_grad():
            users, items = run.model.embed()
        self.user_vectors = np.ascontiguousarray(users.numpy(), dtype=np.float32)
        self.index = ItemIndex.build(np.ascontiguousarray(items.numpy(), dtype=np.float32), config.index)
        try:
            self.fold_in: Any = FoldIn.for_model(run.model, dataset=run.view.dataset)
        except NotSupported as err:
            self.fold_in, self.fold_in_error = None, str(err)
        section = serving_rerank(run.config.rerank, config.rerank)
        self.reranker = section.build(run.dataset, run.ctx.item_counts)  # None when off
        self.rerank_label = section.label()
        self.fixed, self.unavailable = fixed_rankings(run.ctx, depth=config.policy.pool(config.k_max))
        self.rng = np.random.default_rng(config.seed)
        self.log = ExposureLog.open(config.log_dir, durable=config.durable) if config.log_dir else None
        if self.log is not None:
            self.log.set_meta("run_dir", self.run_id)
            self.log.set_meta("model", run.config.model.name)
            self.log.set_meta("policy", repr(config.policy.params()))
            self.log.set_meta({"rerank": self.rerank_label, "rankings": self.rankings()})
        self.started = time.time()

    @classmethod
    def from_run(cls, run_dir: str | Path, config: ServeConfig = ServeConfig()) -> Service:
        from kgrec.rundir.load import load_run

        return cls(load_run(run_dir), config)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    # --- requests -------------------------------------------------------------------------
    def query(self, user_id: Any = None, history: list[Any] | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
        """The query vector [D], the item indices to exclude, and whether it was folded in."""
        if history is not None:
            if self.fold_in is None:
                raise Invalid(f"this model cannot fold in a history: {self.fold_in_error}", field="history")
            items = self.items_of(history, "history")
            late = [h for h, i in zip(history, items) if i >= self.fold_in.num_items]
            if late:  # the fold-in's state covers the trained catalogue only
                raise Invalid(f"item {late[0]!r} was added after training and cannot be in a fold-in history yet",
                              field="history")
            return self.fold_in.user_vector(items), np.unique(items), True
        if user_id is None:
            raise Invalid("give a known user_id, or a history of item ids for a new user", field="user_id")
        u = self.user_index.get(str(user_id))
        if u is None:
            raise NotFound(f"unknown user {user_id!r}; for a new user send their history instead",
                           field="user_id")
        seen = self.train.indices[self.train.indptr[u]: self.train.indptr[u + 1]].astype(np.int64)
        return self.user_vectors[u], seen, False

    def items_of(self, raw: list[Any], where: str) -> np.ndarray:
        """Item indices of raw ids; :class:`Invalid` naming every unknown id."""
        index = [self.item_index.get(str(i)) for i in raw]
        unknown = [r for r, k in zip(raw, index) if k is None]
        if unknown:
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            shown = ", ".join(repr(u) for u in unknown[:5]) + more
            raise Invalid(f"{len(unknown)} unknown item id(s): {shown}", field=where)
        return np.asarray(index, dtype=np.int64)

    def check_k(self, k: Any) -> int:
        if not is_int(k, 1, self.config.k_max):
            raise Invalid(f"k must be an integer from 1 to {self.config.k_max}, got {k!r}", field="k")
        return k

    def check_ranking(self, ranking: Any) -> str:
        """``ranking`` if this server can serve it; :class:`Invalid` naming ``ranking`` otherwise."""
        if not isinstance(ranking, str) or ranking not in RANKINGS:
            raise Invalid(f"ranking must be one of {', '.join(RANKINGS)}, got {ranking!r}", field="ranking")
        if ranking in self.unavailable:
            raise Invalid(f"this server has no {ranking!r} ranking: {self.unavailable[ranking]}", field="ranking")
        return ranking

    def rankings(self) -> list[str]:
        return [r for r in RANKINGS if r not in self.unavailable]

    def rank(self, user_id: Any = None, history: list[Any] | None = None, k: int = 10,
             ranking: str = PERSONALISED) -> tuple[np.ndarray, np.ndarray, bool, str]:
        """The policy's candidate pool for a request: item indices and scores, best first,
        whether the user was folded in, and the label of the re-ranker that ran."""
        k, ranking = self.check_k(k), self.check_ranking(ranking)
        pool = self.config.policy.pool(k)
        if ranking != PERSONALISED:  # the same list for everyone: no user data read, none excluded
            fixed = self.fixed[ranking]
            return fixed.ids[:pool], fixed.scores[:pool], False, "none"
        vector, seen, folded = self.query(user_id, history)
        depth = pool if self.reranker is None else max(pool, self.reranker.pool)
        ids, scores = self.index.search(vector[None, :], depth, exclude=[seen])
        keep = ids[0] >= 0
        ids, scores = ids[0][keep], scores[0][keep]
        if self.reranker is None:
            return ids, scores, folded, "none"
        self.reranker = covering(self.reranker, self.index.ntotal)  # items added since: grouped too
        ids, scores = rerank_pool(self.reranker, ids, scores, seen, pool)
        return ids, scores, folded, self.rerank_label

    def served(self, user_id: Any = None, history: list[Any] | None = None, k: int = 10,
               context: dict[str, Any] | None = None, ranking: str = PERSONALISED) -> tuple[Shown, ServedRequest]:
        """The list shown for a request and its log record (not yet written). A non-profiling
        ``ranking`` logs ``user_id`` and ``history`` as sent (they were not used)."""
        ids, scores, folded, rerank = self.rank(user_id, history, k, ranking)
        slate = draw(self.config.policy, len(ids), k, self.rng)
        request_id = uuid.uuid4().hex
        chosen = ids[slate.order]
        raw = [self.item_ids[i] for i in chosen]
        score = [float(s) for s in scores[slate.order]]
        pscore = [float(p) for p in slate.pscore]
        shown = Shown(request_id, raw, score, pscore, self.config.policy.name, slate.explored, folded, ranking, rerank)
        keep_user = user_id is not None and not folded
        keep_history = history is not None and (folded or ranking != PERSONALISED)
        record = ServedRequest(
            request_id=request_id, ts=time.time(), user_id=str(user_id) if keep_user else None,
            history=[str(h) for h in history] if keep_history else None, context=context or {},
            policy=self.config.policy.name, policy_params=self.config.policy.params(), k=k, run_id=self.run_id,
            ranking=ranking, rerank=rerank,
            items=[Exposure(position=p, item_id=i, item_index=int(x), score=s, pscore=q)
                   for p, (i, x, s, q) in enumerate(zip(raw, chosen, score, pscore))])
        return shown, record

    def recommend(self, user_id: Any = None, history: list[Any] | None = None, k: int = 10,
                  context: dict[str, Any] | None = None, ranking: str = PERSONALISED) -> Shown:
        """Serve one list; returns only after its exposures are committed to the log."""
        shown, record = self.served(user_id, history, k, context, ranking)
        if self.log is not None:
            self.log.log_request(record)
        return shown

    def feedback_record(self, request_id: Any, item_id: Any, event: Any = "click", value: float = 1.0,
                        ts: float | None = None) -> Feedback:
        if event not in EVENTS:
            raise Invalid(f"event must be one of {', '.join(EVENTS)}, got {event!r}", field="event")
        if self.log is None:
            raise Invalid("this server keeps no exposure log, so it cannot take feedback", field="request_id")
        return Feedback(request_id=str(request_id), item_id=str(item_id), event=event, value=float(value),
                        ts=time.time() if ts is None else float(ts))

    # --- new items ------------------------------------------------------------------------
    def new_item(self, item_id: Any, text: str | None = None, links: dict[str, list[Any]] | None = None
                 ) -> tuple[int, np.ndarray]:
        """The index and vector of a new item from its content (not yet added; the index is
        the one :meth:`commit_item` assigns if no other item is committed first)."""
        item_id = str(item_id)
        if item_id in self.item_index:
            raise Conflict(f"item {item_id!r} exists already", field="item_id")
        if self.fold_in is None:
            raise Invalid(f"this model has no content path for new items: {self.fold_in_error}", field="text")
        if text is None and not links:
            raise Invalid("a new item needs its text or its KG links", field="text")
        vector_text = self._encode(text) if text is not None else None
        item_links = self._links(links or {})
        try:
            vector = self.fold_in.item_vector(text=vector_text, links=item_links)
        except ValueError as err:  # NotSupported too: e.g. a model without a content path
            raise Invalid(f"this model cannot place a new item from this content: {err}", field="text") from None
        return len(self.item_ids), vector

    def add_item(self, item_id: Any, text: str | None = None, links: dict[str, list[Any]] | None = None) -> int:
        """Add a new item to the index (retrievable at once); returns its index."""
        _, vector = self.new_item(item_id, text, links)
        return self.commit_item(str(item_id), vector)

    def commit_item(self, item_id: str, vector: np.ndarray) -> int:
        """Add a new item's vector (from :meth:`new_item`) to the index; returns its index."""
        index = len(self.item_ids)
        self.index.add(np.asarray(vector, dtype=np.float32)[None, :])
        self.item_index[item_id] = index
        self.item_ids.append(item_id)
        return index

    def _encode(self, text: str) -> np.ndarray:
        cfg = self.run.config.text
        if cfg.lora:
            raise Invalid("this run's item text vectors come from a LoRA-adapted encoder; new items' text cannot "
                          "be encoded the same way here", field="text")
        from kgrec.text import encode_texts

        return encode_texts([text], cfg.encoder(), progress=False)[0]

    def _links(self, links: dict[str, list[Any]]) -> dict[str, list[int]]:
        """Relation-path name → target node indices, from raw target ids."""
        targets = {name: t for name, (t, _) in self.fold_in.link_relations().items()} if self.fold_in else {}
        out: dict[str, list[int]] = {}
        for name, raw in links.items():
            if name not in targets:
                known = ", ".join(sorted(targets)) or "none"
                raise Invalid(f"unknown relation path {name!r} (this model's: {known})", field=f"links.{name}")
            nodes = self.run.dataset.nodes[targets[name]]
            index = {str(i): k for k, i in enumerate(nodes.ids.tolist())}
            missing = [r for r in raw if str(r) not in index]
            if missing:
                raise Invalid(f"{len(missing)} unknown {targets[name]} id(s) in links.{name}: {missing[0]!r}",
                              field=f"links.{name}")
            out[name] = [index[str(r)] for r in raw]
        return out

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "run_dir": self.run_id, "model": self.run.config.model.name,
                "items": self.index.ntotal, "users": len(self.user_ids), "index": self.index.describe(),
                "policy": self.config.policy.params(), "fold_in": self.fold_in is not None,
                "rerank": self.rerank_label, "rankings": self.rankings(), "rankings_unavailable": self.unavailable,
                "log": self.config.log_dir, "uptime_seconds": time.time() - self.started}

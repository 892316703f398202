"""The one model contract, the context models are built from, and the registry.

Every model, baselines included, is a :class:`Recommender`:

- ``embed() -> (user_vectors [U, d], item_vectors [I, d])``: final representations;
- ``loss(batch) -> Tensor``: the training objective on a :class:`Batch` (trainable models);
- ``score(users, items) -> [B]``: ``<u, i>`` for aligned index pairs;
- ``full_scores(users) -> [len(users), I]``: one matrix product, ``U[users] @ I.T``.

Because scoring is an inner product, top-K over all items is a single GEMM, and ranking,
evaluation, audit and serving rely on this protocol alone. Closed-form models (MostPop,
ItemKNN, EASE) set ``trainable = False`` and implement :meth:`Recommender.fit`.
A new model is one file plus ``@register("name")``.

Models that explain themselves also declare the second protocol, :class:`Explainable`
(``class M(Recommender, Explainable)``): the inputs of one score as maskable edges and
channels. The audit checks ``isinstance(model, Explainable)`` and reads a model through
these two protocols alone.
"""

from __future__ import annotations

import abc

from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from torch import Tensor, nn

from kgrec.errors import SchemaError
from kgrec.models.debias import Objective

if TYPE_CHECKING:
    from kgrec.data.view import TrainingView
    from kgrec.graphs.dataset import GraphDataset
    from kgrec.models.masks import Channel, EdgeMasks, ScalarChannel


@dataclass
class Batch:
    """Training triples: ``users [B]``, ``pos [B]`` and ``neg [B, n_neg]`` item indices."""

    users: Tensor
    pos: Tensor
    neg: Tensor


@dataclass
class ModelContext:
    """What a model may see: the leak-free training view and the text vectors.

    ``view`` (:class:`~kgrec.data.view.TrainingView`) holds the data set with its training
    interactions only; ``train`` is their binary CSR matrix [U, I]. Side information
    (``item_text``, ``user_text``: float32 [N, d_text]) is filled in when a model asks for
    it. No held-out pair is reachable from a context.
    """

    view: TrainingView
    item_text: np.ndarray | None = None
    user_text: np.ndarray | None = None

    @property
    def dataset(self) -> GraphDataset:
        """The training view's data set (its interaction table holds training rows only)."""
        return self.view.dataset

    @property
    def train(self) -> sp.csr_matrix:
        return self.view.train

    @property
    def num_users(self) -> int:
        return self.view.num_users

    @property
    def num_items(self) -> int:
        return self.view.num_items

    @property
    def item_counts(self) -> np.ndarray:
        """Training interactions per item, int64 [I]."""
        return self.view.item_counts


class Recommender(nn.Module, abc.ABC):
    """Base class of every model (see the module docstring for the contract)."""

    name: ClassVar[str] = ""
    trainable: ClassVar[bool] = True
    #: buffers that ``after_fit`` computes from the trained weights; per-epoch checkpoints skip them
    fit_buffers: ClassVar[tuple[str, ...]] = ()
    needs_text: ClassVar[bool] = False

    def __init__(self, ctx: ModelContext) -> None:
        super().__init__()
        self.num_users = ctx.num_users
        self.num_items = ctx.num_items
        self.objective = Objective("bpr")

    def pair_loss(self, pos: Tensor, neg: Tensor, batch: Batch) -> Tensor:
        """The configured objective (BPR, IPS-BPR or PDA) on [B] and [B, n_neg] scores."""
        return self.objective(pos, neg, batch.pos, batch.neg)

    def fit(self, ctx: ModelContext) -> None:
        """Closed-form fitting; trainable models are fitted by the trainer instead."""
        raise TypeError(f"{type(self).__name__} is trained by kgrec.train, not fitted in closed form")

    def after_fit(self, ctx: ModelContext, score: Callable[[Recommender], float]) -> None:
        """Hook after training has loaded the best weights; ``score(model)`` gives the
        validation metric (used, e.g., to pick a blend weight). Default: nothing."""

    @abc.abstractmethod
    def embed(self) -> tuple[Tensor, Tensor]:
        """Final ``(user_vectors [U, d], item_vectors [I, d])``."""

    def loss(self, batch: Batch) -> Tensor:
        raise TypeError(f"{type(self).__name__} has no training loss")

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        u, i = self.embed()
        return (u[users] * i[items]).sum(-1)

    def full_scores(self, users: Tensor) -> Tensor:
        u, i = self.embed()
        return u[users] @ i.T


@dataclass(frozen=True)
class KGRelation:
    """One knowledge-graph relation path an :class:`Explainable` model reads: its ``name``
    (the schema's relation, or two of them for a two-hop path), the node type it reaches
    (``target``) and its learned share of the model's KG signal (``weight``, summing to 1
    over the paths; None for a model that learns no such weight)."""

    name: str
    target: str
    weight: float | None = None


class Explainable(abc.ABC):
    """The explanation protocol: the score of one (user, item) pair as a differentiable
    function of multipliers on the inputs that feed it (:mod:`kgrec.models.masks`).

    A model declares it by inheriting it next to :class:`Recommender`; the audit checks
    ``isinstance(model, Explainable)`` and uses nothing else of the model but the members
    below and the :class:`Recommender` contract.

    - :attr:`mask_channels`: the channels :meth:`pair_score` can mask: the edge channels it
      has, in the order of :data:`kgrec.models.masks.EDGE_CHANNELS` (always ``"history"``),
      then the names of its :meth:`scalar_channels`;
    - :meth:`scalar_channels`: the channels masked by one multiplier per score (text,
      attributes, time, ...), each with a label and a description for the report, so an
      explanation picks up a new channel with no change to the audit;
    - :meth:`kg_relations`: the KG relation paths, indexed like ``EdgeMasks.kg`` and the
      ``k`` of :meth:`kg_row` (empty without the ``"kg"`` channel);
    - :attr:`sensitive_inputs`: the sensitive user attributes (schema feature names) the
      model reads as inputs (empty: it reads none);
    - :meth:`history_items`, :meth:`friend_row`, :meth:`kg_row`: the edges that the entries of
      the ``history``, ``friends`` and ``kg[k]`` masks stand for, in mask order;
    - :meth:`pair_score`: the score with the masks applied. All-one masks (or ``None``)
      give the trained score ``embed()[0][user] · embed()[1][item]``; all zeros is the
      "nothing known" baseline.
    """

    @property
    @abc.abstractmethod
    def mask_channels(self) -> tuple[Channel, ...]:
        """The maskable channels this model has (edge channels first, then scalar ones)."""

    @abc.abstractmethod
    def scalar_channels(self) -> tuple[ScalarChannel, ...]:
        """The scalar channels, in ``mask_channels`` order (``EdgeMasks.scalars`` keys)."""

    @property
    @abc.abstractmethod
    def sensitive_inputs(self) -> frozenset[str]:
        """Sensitive user attributes among the model's inputs (empty when it reads none)."""

    @abc.abstractmethod
    def kg_relations(self) -> list[KGRelation]:
        """The KG relation paths, in mask order (``EdgeMasks.kg[k]`` masks ``kg_row(k, ·)``)."""

    @abc.abstractmethod
    def history_items(self, user: int) -> np.ndarray:
        """The user's training items, ascending, int64 [H] (the ``history`` mask's order)."""

    @abc.abstractmethod
    def friend_row(self, user: int) -> tuple[Tensor, Tensor]:
        """The user's social ties: (friend indices int64 [F], weights float32 [F]); only
        called when ``"friends"`` is a mask channel."""

    @abc.abstractmethod
    def kg_row(self, k: int, item: int) -> tuple[Tensor, Tensor]:
        """The item's edges along relation path ``k``: (target node indices int64 [E_k],
        weights float32 [E_k])."""

    @abc.abstractmethod
    def pair_score(self, user: int, item: int, masks: EdgeMasks | None = None) -> Tensor:
        """The 0-d score of ``(user, item)`` with ``masks`` applied (differentiable in them)."""


def l2_reg(*tensors: Tensor) -> Tensor:
    """RecBole's EmbLoss: sum of squared L2 norms, divided by the batch size."""
    return sum(t.pow(2).sum() for t in tensors) / tensors[0].shape[0]


MODELS: dict[str, type[Recommender]] = {}


def register(name: str):
    def wrap(cls: type[Recommender]) -> type[Recommender]:
        cls.name = name
        MODELS[name] = cls
        return cls
    return wrap


def create_model(name: str, ctx: ModelContext, params: dict[str, Any] | None = None) -> Recommender:
    """Instantiate a registered model; unknown names or parameters are schema errors."""
    import inspect
    import typing

    import kgrec.models  # noqa: F401  (registers the built-in models)

    if name not in MODELS:
        import difflib

        hint = difflib.get_close_matches(name, list(MODELS), n=1)
        raise SchemaError(f"unknown model '{name}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
                          + f"; known: {', '.join(sorted(MODELS))}", field="model.name")
    cls = MODELS[name]
    params = dict(params or {})
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "ctx"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise SchemaError(f"model '{name}' has no parameter '{unknown[0]}' (it takes: {', '.join(sorted(accepted))})",
                          field=f"model.params.{unknown[0]}")
    sig = inspect.signature(cls.__init__)
    hints = typing.get_type_hints(cls.__init__)
    for key, value in params.items():
        default = sig.parameters[key].default
        if value is None and type(None) in typing.get_args(hints.get(key)):
            continue  # an optional parameter set to null
        if isinstance(default, bool) or default is None or isinstance(value, bool):
            ok = default is None or isinstance(value, type(default))
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and (isinstance(default, float) or isinstance(value, int))
            params[key] = type(default)(value) if ok else value
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise SchemaError(f"model '{name}' parameter '{key}' expects {type(default).__name__}, got {value!r}",
                              field=f"model.params.{key}")
    return cls(ctx, **params)

"""The channel contract: one source of evidence of the kgrec model.

A channel builds itself from the schema and the training view (:meth:`Channel.build`
returns ``None`` when the data has nothing for it), adds its ego terms to the user and item
representations before propagation (:meth:`Channel.user`, :meth:`Channel.item`, both
``[N, d] -> [N, d]``, applied in registry order), declares the explanation masks it reads
(:meth:`Channel.scalar_channels`, or one of the edge channels of
:data:`kgrec.models.masks.EDGE_CHANNELS`) and the content it gives cold items
(:meth:`Channel.item_content`). For a user or an item outside training (fold-in,
:mod:`kgrec.models.foldin`) it adds the terms it can compute from a history or from a new
item's content (:meth:`Channel.fold_in_user`, :meth:`Channel.fold_in_item` and the rows of
its content and history weights); the defaults add nothing. Its parameters are its own (it is an ``nn.Module``), so its
weights are saved under ``channels.<name>.`` in the run's ``model.safetensors``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp
from torch import Tensor, nn

from kgrec.models.masks import EdgeMasks, ScalarChannel, scale_row

if TYPE_CHECKING:
    from kgrec.models.base import ModelContext


@dataclass(frozen=True)
class ChannelSettings:
    """What every channel may read of the model's configuration.

    Args:
        dim: the ego dimension ``d``.
        init_std: normal init std of embeddings (default 0.1).
        id_dropout: probability of dropping an ID embedding in a training step (default 0.1).
        use_sensitive: feed sensitive user attributes too (default False).
        max_paths: most KG relation paths kept, by edge count (default 8).
        time_decay: the time channel's recency decay per position in a user's history
            (default 0.9: the k-th most recent item weighs ``0.9^k``).
    """

    dim: int
    init_std: float = 0.1
    id_dropout: float = 0.1
    use_sensitive: bool = False
    max_paths: int = 8
    time_decay: float = 0.9


@dataclass(frozen=True)
class NewItem:
    """An item outside training, for fold-in: ``text`` [d_text] (a vector in the model's text
    space) or None; ``links``: KG relation or path name → target node ids (int64, distinct);
    ``second_hops``: two-hop path name → (its first relation, the node type between, the
    binary adjacency [N_mid, N_target] of its second hop), see
    :meth:`kgrec.models.channels.kg.KnowledgeGraph.second_hops`."""

    text: np.ndarray | None = None
    links: dict[str, np.ndarray] = field(default_factory=dict)
    second_hops: dict[str, tuple[str, str, sp.csr_matrix]] = field(default_factory=dict)


class Channel(nn.Module, abc.ABC):
    """Base class of the channels (see the module docstring). Subclasses set :attr:`name`
    and override what they contribute; the defaults contribute nothing."""

    name: ClassVar[str] = ""

    @classmethod
    @abc.abstractmethod
    def build(cls, ctx: ModelContext, settings: ChannelSettings) -> Channel | None:
        """The channel for this context, or ``None`` when the data has nothing for it."""

    def user(self, h: Tensor, masks: EdgeMasks | None = None) -> Tensor:
        """The user ego ``h`` [U, d] with this channel's term added."""
        return h

    def item(self, h: Tensor, masks: EdgeMasks | None = None) -> Tensor:
        """The item ego ``h`` [I, d] with this channel's term added."""
        return h

    def scalar_channels(self) -> tuple[ScalarChannel, ...]:
        """The scalar explanation masks this channel reads (default: none)."""
        return ()

    def item_content(self) -> list[np.ndarray | sp.spmatrix]:
        """Content blocks [I, f] describing items without interactions (default: none)."""
        return []

    def item_prior(self) -> tuple[np.ndarray, str] | None:
        """Optional per-item prior score [I] (e.g. current demand) and the scalar mask that
        governs it; the model adds it as one more vector dimension, weighted on validation
        (default: none)."""
        return None

    def history_weights(self) -> sp.csr_matrix | None:
        """Optional [U, I] weights of the training history (the pattern of ``train``) that
        re-weight the item-item term's input rows (default: none)."""
        return None

    # fold-in (kgrec.models.foldin): a history ``items`` int64 [H], oldest first (may repeat),
    # with one multiplier per entry ``weights`` [H] (1: as in training)

    def fold_in_user(self, h: Tensor, items: np.ndarray, weights: np.ndarray) -> Tensor:
        """The ego ``h`` [d] of a user outside training with this channel's term from the
        history (default: none; an anonymous user has no ID, attributes, text or friends)."""
        return h

    def fold_in_history_weights(self, items: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """That history's row of :meth:`history_weights`: (distinct items, weights) (default: none)."""
        return None

    def fold_in_item(self, h: Tensor, item: NewItem) -> Tensor:
        """The ego ``h`` [d] of an item without interactions with this channel's term from
        its content (default: none)."""
        return h

    def new_item_content(self, item: NewItem) -> list[np.ndarray | sp.spmatrix]:
        """Its rows [1, f_b] of the :meth:`item_content` blocks, dense or sparse alike (default: none)."""
        return []

    def new_item_prior(self) -> float:
        """Its :meth:`item_prior` score (default 0: an item without interactions has no demand)."""
        return 0.0

    @staticmethod
    def masked(term: Tensor, row: int | None, masks: EdgeMasks | None, name: str) -> Tensor:
        """``term`` with row ``row`` scaled by the scalar mask ``name`` (as is without one)."""
        if masks is None or row is None:
            return term
        return scale_row(term, row, masks.scalar(name))

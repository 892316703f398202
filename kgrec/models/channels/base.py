"""The channel contract: one source of evidence of the kgrec model.

A channel builds itself from the schema and the training view (:meth:`Channel.build`
returns ``None`` when the data has nothing for it), adds its ego terms to the user and item
representations before propagation (:meth:`Channel.user`, :meth:`Channel.item`, both
``[N, d] -> [N, d]``, applied in registry order), declares the explanation masks it reads
(:meth:`Channel.scalar_channels`, or one of the edge channels of
:data:`kgrec.models.masks.EDGE_CHANNELS`) and the content it gives cold items
(:meth:`Channel.item_content`). Its parameters are its own (it is an ``nn.Module``), so its
weights are saved under ``channels.<name>.`` in the run's ``model.safetensors``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
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

    @staticmethod
    def masked(term: Tensor, row: int | None, masks: EdgeMasks | None, name: str) -> Tensor:
        """``term`` with row ``row`` scaled by the scalar mask ``name`` (as is without one)."""
        if masks is None or row is None:
            return term
        return scale_row(term, row, masks.scalar(name))

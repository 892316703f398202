"""The kgrec model's channels (contract: :mod:`kgrec.models.channels.base`).

:data:`REGISTRY` lists them in the order their ego terms are applied; a new channel is one
file plus one line here. The social channel comes last so that it diffuses every other
user term.
"""

from __future__ import annotations

from kgrec.models.channels.attributes import Attributes
from kgrec.models.channels.base import Channel, ChannelSettings
from kgrec.models.channels.ids import IDs
from kgrec.models.channels.kg import KnowledgeGraph
from kgrec.models.channels.social import Social
from kgrec.models.channels.text import Text
from kgrec.models.channels.time import TimeChannel

REGISTRY: tuple[type[Channel], ...] = (
    IDs,
    Text,
    KnowledgeGraph,
    Attributes,
    TimeChannel,
    Social,
)

__all__ = ["REGISTRY", "Channel", "ChannelSettings"]

"""The user-attribute channel: the schema's user features (categorical, multi-categorical,
binned numeric), row-normalised one-hot ``x_u``, added as ``h_u ← h_u + A x_u``.

Sensitive features (the schema's ``sensitive`` list) are inputs only with
``use_sensitive``, and :attr:`Attributes.sensitive_inputs` names those read. Scalar mask
``user_attr``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from kgrec.data.features import attribute_matrix
from kgrec.models.channels.base import Channel, ChannelSettings
from kgrec.models.masks import EdgeMasks, ScalarChannel

USER_ATTR = ScalarChannel("user_attr", "user attributes", "the user's non-sensitive attributes")


class Attributes(Channel):
    name = "attributes"

    def __init__(self, dense: np.ndarray, dim: int, sensitive_inputs: frozenset[str]) -> None:
        super().__init__()
        dense = dense / np.maximum(dense.sum(1, keepdims=True), 1.0)
        self.register_buffer("user_attr", torch.from_numpy(dense.astype(np.float32)), persistent=False)
        self.attr_emb = nn.Linear(dense.shape[1], dim, bias=False)
        self.sensitive_inputs = sensitive_inputs

    @classmethod
    def build(cls, ctx, settings: ChannelSettings) -> Attributes | None:
        ds = ctx.dataset
        attrs = attribute_matrix(ds, ds.schema.user_type, include_sensitive=settings.use_sensitive)
        if attrs is None:
            return None
        spec = ds.schema.nodes[ds.schema.user_type]
        sensitive = frozenset(  # the sensitive features attribute_matrix encodes
            name for name, f in spec.features.items()
            if settings.use_sensitive and name in spec.sensitive
            and (f.type in ("categorical", "multicategorical") or (f.type == "numeric" and f.bins)))
        return cls(attrs.toarray().astype(np.float32), settings.dim, sensitive)

    def user(self, h: Tensor, masks: EdgeMasks | None = None) -> Tensor:
        return h + self.masked(self.attr_emb(self.user_attr), masks.user if masks else None, masks, USER_ATTR.name)

    def scalar_channels(self) -> tuple[ScalarChannel, ...]:
        description = "the user's attributes" if self.sensitive_inputs else USER_ATTR.description
        return (ScalarChannel(USER_ATTR.name, USER_ATTR.label, description),)

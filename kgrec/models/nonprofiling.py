r"""Rankings not based on profiling (EU Digital Services Act, Art. 38): the same list for
every user, built from the catalogue's training interactions, not from anyone's history.

* ``popular``: items by their number of training interactions (:class:`~kgrec.models.baselines.MostPop`);
* ``recent``: items by time-decayed popularity (:class:`RecentPop`),

  .. math:: s_i = \sum_{(u, i, t) \in \text{train}} 2^{-(t_{\max} - t) / h},

  with :math:`t_{\max}` the latest training timestamp and :math:`h` the half-life
  (``half_life_days``, default 30), so this month's interactions count twice last month's.

Both are inner-product models (``u = [1]``, ``i = [s_i]``), so they rank, are evaluated,
audited and served through the same code as a personalised model. Ties break by the lower
item index. Evaluation still masks each user's own training items (the protocol every model
is measured under); serving such a list needs no user data at all.
"""

from __future__ import annotations

import numpy as np
import torch

from kgrec.errors import SchemaError
from kgrec.models.base import ModelContext, Recommender, create_model, register
from kgrec.models.baselines import _ClosedForm

NON_PROFILING = ("popular", "recent")
DAY = 86400.0


@register("recentpop")
class RecentPop(_ClosedForm):
    """Time-decayed popularity (module docstring). Args: ``half_life_days`` > 0 (default 30).
    Needs interaction timestamps; a data set without them is a :class:`SchemaError`."""

    def __init__(self, ctx: ModelContext, half_life_days: float = 30.0) -> None:
        super().__init__(ctx)
        if not float(half_life_days) > 0:
            raise SchemaError(f"half_life_days must be > 0, got {half_life_days!r}", field="model.params.half_life_days")
        self.half_life_days = float(half_life_days)

    def fit(self, ctx: ModelContext) -> None:
        table = ctx.dataset.interactions
        if table.timestamp is None:
            raise SchemaError(f"the 'recent' ranking needs interaction timestamps, and data set "
                              f"'{ctx.dataset.schema.name}' has none; use 'popular'", field="ranking")
        age_days = (float(table.timestamp.max()) - table.timestamp) / DAY
        weights = np.exp2(-age_days / self.half_life_days)
        scores = np.bincount(table.dst, weights=weights, minlength=ctx.num_items)
        self.user_factors = torch.ones(ctx.num_users, 1)
        self.item_factors = torch.from_numpy(scores.astype(np.float32)).unsqueeze(1)


def non_profiling_model(kind: str, ctx: ModelContext, *, half_life_days: float = 30.0) -> Recommender:
    """The fitted non-profiling ranking ``kind`` (:data:`NON_PROFILING`) of ``ctx``'s training data."""
    if kind not in NON_PROFILING:
        raise SchemaError(f"non-profiling ranking must be one of {', '.join(NON_PROFILING)}, got {kind!r}",
                          field="ranking")
    model = (create_model("mostpop", ctx) if kind == "popular"
             else create_model("recentpop", ctx, {"half_life_days": half_life_days}))
    model.fit(ctx)
    model.eval()
    return model

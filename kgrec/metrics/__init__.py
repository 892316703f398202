"""Pure metric functions: full-ranking accuracy (:mod:`kgrec.metrics.ranking`), beyond-accuracy
(:mod:`kgrec.metrics.beyond`), their inputs (:mod:`kgrec.metrics.inputs`) and statistics
(:mod:`kgrec.metrics.stats`). numpy and scipy only; no model, no data set.

They sit at the bottom of the layers (below ``kgrec.models``) so that training's early
stopping, evaluation and the audit share one implementation without training and
evaluation importing each other."""

from kgrec.metrics.ranking import (
    METRICS,
    Metric,
    average_popularity,
    compute,
    gini_exposure,
    hit,
    hits_matrix,
    intra_list_diversity,
    ips_ndcg,
    ips_recall,
    item_coverage,
    map,
    mrr,
    n_relevant,
    ndcg,
    novelty,
    per_user,
    popularity_propensity,
    precision,
    recall,
)
from kgrec.metrics.stats import bootstrap_ci, mean_ci, paired_test

# ``map`` (MAP@k) is importable but left out of ``__all__`` so ``import *`` keeps the builtin.
__all__ = [
    "METRICS", "Metric", "average_popularity", "bootstrap_ci", "compute", "gini_exposure", "hit",
    "hits_matrix", "intra_list_diversity", "ips_ndcg", "ips_recall", "item_coverage",
    "mean_ci", "mrr", "n_relevant", "ndcg", "novelty", "paired_test", "per_user",
    "popularity_propensity", "precision", "recall",
]

"""Evaluation: pure full-ranking metrics (:mod:`kgrec.eval.metrics`) and their statistics
(:mod:`kgrec.eval.stats`). Importing this package loads numpy and scipy only; the evaluator,
which needs torch, is imported from :mod:`kgrec.eval.evaluator` directly."""

from kgrec.eval.metrics import (
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
from kgrec.eval.stats import bootstrap_ci, mean_ci, paired_test

# ``map`` (MAP@k) is importable but left out of ``__all__`` so ``import *`` keeps the builtin.
__all__ = [
    "METRICS", "Metric", "average_popularity", "bootstrap_ci", "compute", "gini_exposure", "hit",
    "hits_matrix", "intra_list_diversity", "ips_ndcg", "ips_recall", "item_coverage",
    "mean_ci", "mrr", "n_relevant", "ndcg", "novelty", "paired_test", "per_user",
    "popularity_propensity", "precision", "recall",
]

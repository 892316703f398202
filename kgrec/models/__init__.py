"""Models sharing one contract (:mod:`kgrec.models.base`); importing this registers them."""

from kgrec.models import baselines, kgrec, lightgcn, mf, nonprofiling  # noqa: F401
from kgrec.models.base import MODELS, Batch, ModelContext, Recommender, create_model, register

__all__ = ["MODELS", "Batch", "ModelContext", "Recommender", "create_model", "register"]

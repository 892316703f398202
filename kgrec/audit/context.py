"""What every audit check reads: the run, the plan, and the test users' top-K lists and
per-user metrics, computed once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from kgrec.audit.plan import AuditPlan


@dataclass
class AuditContext:
    run: Any  # kgrec.rundir.load.Run
    plan: AuditPlan
    users: np.ndarray  # test users (those with held-out items), ascending
    topk: np.ndarray  # [len(users), K] item indices, best first
    relevant: sp.csr_matrix  # [len(users), I] held-out test items
    per_user: dict[str, np.ndarray]  # "ndcg@K", "recall@K" aligned with users
    metrics: dict[str, float]  # test metrics at K
    timings: dict[str, float] = field(default_factory=dict)
    exposure_log: str | None = None  # a kgrec serve exposure log to evaluate this model on

    @property
    def truth(self) -> dict[str, Any] | None:
        """The data set's planted effects (``truth.json`` beside a synthetic world's files)."""
        loc = self.run.dataset.location
        path = Path(loc.directory) / "truth.json" if loc is not None else None
        return json.loads(path.read_text()) if path is not None and path.is_file() else None

    def name(self, node_type: str, idx: int) -> str:
        """A readable name of a node: the value of its schema ``label`` feature (e.g. a film's
        title, whole: "Talented Mr. Ripley, The"), cut at 60 characters; else its type and raw id
        (see :meth:`unlabelled`)."""
        value = self._label(node_type, idx)
        if value is None:
            return f"{node_type} {self.run.dataset.nodes[node_type].ids[idx]}"
        return value if len(value) <= 60 else value[:57] + "..."

    def unlabelled(self) -> list[str]:
        """Node types whose nodes the report names by raw id: the schema gives them no ``label``."""
        spec = self.run.dataset.schema.nodes
        return [t for t in self.run.dataset.nodes if spec[t].label is None]

    def _label(self, node_type: str, idx: int) -> str | None:
        label = self.run.dataset.schema.nodes[node_type].label
        node = self.run.dataset.nodes[node_type]
        if label is None or label not in node.features:
            return None
        value = node.features[label][idx]
        if label in node.vocab:  # a categorical feature: a code into its vocabulary (-1: missing)
            return node.vocab[label][int(value)] if int(value) >= 0 else None
        text = str(value).strip()
        return text or None


def build_audit_context(run: Any, plan: AuditPlan) -> AuditContext:
    """Rank the test users once, with the run's re-ranking stage when its config has one: reuse
    the ranking and metrics ``kgrec evaluate`` saved in the run directory when they cover
    ``plan.k``, otherwise evaluate now."""
    saved = _saved_ranking(run.path, plan.k)
    if saved is None:
        from kgrec.eval.evaluator import evaluate

        reranker = run.config.rerank.build(run.dataset, run.ctx.item_counts)
        result = evaluate(run.model, run.ctx, run.heldout, "test", ks=(plan.k,), with_slices=False, reranker=reranker)
        users = np.asarray(result["per_user"]["users"], dtype=np.int64)
        topk, metrics = result["topk"][:, : plan.k], result["metrics"]
        per_user = {key: np.asarray(v, dtype=np.float64) for key, v in result["per_user"].items() if key != "users"}
    else:
        users, topk, metrics, per_user = saved
    relevant = sp.csr_matrix(run.heldout.test[users])
    return AuditContext(run, plan, users, topk, relevant, per_user, metrics)


def _saved_ranking(run_dir: Path, k: int) -> tuple[np.ndarray, np.ndarray, dict[str, float], dict[str, np.ndarray]] | None:
    """(users, topk [n, k], metrics at k, per-user ndcg/recall at k) from ``metrics.json``,
    ``per_user_test.json`` and ``topk_test.npy``, or None when they are absent or do not
    cover ``k``."""
    paths = [run_dir / "metrics.json", run_dir / "per_user_test.json", run_dir / "topk_test.npy"]
    if not all(p.is_file() for p in paths):
        return None
    try:
        metrics = json.loads(paths[0].read_text()).get("test", {})
        per = json.loads(paths[1].read_text())
        topk = np.load(paths[2], allow_pickle=False)
    except (OSError, ValueError):
        return None
    keys = (f"ndcg@{k}", f"recall@{k}")
    if topk.ndim != 2 or topk.shape[1] < k or not all(key in per for key in keys) or f"ndcg@{k}" not in metrics:
        return None
    users = np.asarray(per["users"], dtype=np.int64)
    if len(users) != len(topk):
        return None
    at_k = {m: v for m, v in metrics.items() if m.endswith(f"@{k}") or "@" not in m}
    return users, topk[:, :k], at_k, {key: np.asarray(per[key], dtype=np.float64) for key in keys}

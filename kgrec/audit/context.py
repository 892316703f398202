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
    run: Any  # kgrec.train.run.Run
    plan: AuditPlan
    users: np.ndarray  # test users (those with held-out items), ascending
    topk: np.ndarray  # [len(users), K] item indices, best first
    relevant: sp.csr_matrix  # [len(users), I] held-out test items
    per_user: dict[str, np.ndarray]  # "ndcg@K", "recall@K" aligned with users
    metrics: dict[str, float]  # test metrics at K
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def truth(self) -> dict[str, Any] | None:
        """The data set's planted effects (``truth.json`` beside a synthetic world's files)."""
        loc = self.run.dataset.location
        path = Path(loc.directory) / "truth.json" if loc is not None else None
        return json.loads(path.read_text()) if path is not None and path.is_file() else None

    def name(self, node_type: str, idx: int) -> str:
        """A readable label of a node: its text (truncated) or its raw id."""
        node = self.run.dataset.nodes[node_type]
        if node.text is not None and node_type == self.run.dataset.schema.item_type:
            text = node.text[idx].split(". ")[0]
            return text if len(text) <= 60 else text[:57] + "..."
        return f"{node_type} {node.ids[idx]}"


def build_audit_context(run: Any, plan: AuditPlan) -> AuditContext:
    from kgrec.eval.evaluator import evaluate, exclusion_matrix, part_matrix, rank

    result = evaluate(run.model, run.ctx, "test", ks=(plan.k,), with_slices=False)
    users = np.asarray(result["per_user"]["users"], dtype=np.int64)
    topk = rank(run.model, users, plan.k, exclusion_matrix(run.ctx, "test"))
    relevant = sp.csr_matrix(part_matrix(run.ctx, "test")[users])
    per_user = {key: np.asarray(v, dtype=np.float64) for key, v in result["per_user"].items() if key != "users"}
    return AuditContext(run, plan, users, topk, relevant, per_user, result["metrics"])

"""Validation of off-policy evaluation from served logs where the truth is known.

On a synthetic world (:mod:`kgrec.graphs.synthetic`) the true click model is known
(:func:`kgrec.graphs.synthetic.click_model`). A logging run is served by the real
:class:`~kgrec.serve.service.Service` with its logging policy and exposure log; a simulated
population requests lists (users drawn by the world's activity share) and clicks each shown
item independently with the world's ``P(click | user, item)``; the clicks are logged as
feedback. A second, candidate run's click rate per slot is then estimated from that log
(:func:`kgrec.audit.served.served_value`) and compared with its true rate, computed
exactly from the click model: ``Σ_u a_u (1/K) Σ_k P(click | u, c_k(u))`` over every user
``u`` with activity share ``a_u`` and the candidate's top-``K`` list ``c(u)``.

Raw ids of the synthetic world are ``u<index>`` and ``i<index>`` (the generator's order), so
the click model is indexed by parsing them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


def world_of(run: Any) -> Any:
    """The true click model of a run trained on the synthetic world."""
    from kgrec.graphs.synthetic import click_model

    if run.config.data.name != "synthetic":
        raise ValueError(f"{run.path}: trained on {run.config.data.name!r}, not the synthetic world")
    return click_model(dict(run.config.data.synthetic))


def _index(raw: list[str]) -> np.ndarray:
    return np.asarray([int(str(r)[1:]) for r in raw], dtype=np.int64)


def simulate(service: Any, world: Any, *, n_requests: int, k: int, seed: int) -> dict[str, int]:
    """Serve ``n_requests`` lists of ``k`` to users drawn by activity, log them and the
    clicks drawn from the world's click model; returns the counts."""
    rng = np.random.default_rng(seed)
    users = rng.choice(len(world.activity), size=n_requests, p=world.activity)
    futures, clicks = [], 0
    for u in users:
        shown, record = service.served(user_id=f"u{u}", k=k)
        futures.append(service.log.submit_request(record))
        p = world.probability(np.full(len(shown.items), u), _index(shown.items))
        for item in np.asarray(shown.items, dtype=object)[rng.random(len(p)) < p]:
            futures.append(service.log.submit_feedback(service.feedback_record(shown.request_id, item)))
            clicks += 1
    for f in futures:
        f.result()
    return {"requests": n_requests, "clicks": clicks}


def true_rate(run: Any, world: Any, k: int) -> float:
    """The candidate run's exact click rate per slot under the world's click model."""
    import pandas as pd

    from kgrec.audit.served import candidate_lists

    raw = [str(u) for u in run.dataset.nodes[run.dataset.schema.user_type].ids.tolist()]
    frame = pd.DataFrame({"request_id": raw, "user_id": raw, "history": [None] * len(raw)})
    lists, _ = candidate_lists(run, frame, {r: k for r in raw})
    total = 0.0
    for r in raw:
        items = lists[r]
        u = int(r[1:])
        total += world.activity[u] * float(world.probability(np.full(len(items), u), _index(items)).sum()) / k
    return total


@dataclass(frozen=True)
class CoverageRow:
    seed: int
    estimator: str
    value: float
    ci_low: float
    ci_high: float
    truth: float
    covered: bool
    ess: float
    logging_rate: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate(logging_run: Any, candidate_run: Any, *, seeds: list[int], n_requests: int, k: int = 10,
             epsilon: float = 0.3, candidates: int | None = None, work: str | Path, n_boot: int = 500,
             progress: bool = False) -> tuple[list[CoverageRow], float]:
    """Per seed: serve ``logging_run`` (epsilon-greedy over ``candidates``, default every item)
    to a fresh simulated population into a fresh log under ``work``, estimate
    ``candidate_run``'s click rate from it; returns the rows and the true rate."""
    from kgrec.audit.served import served_value
    from kgrec.serve.index import IndexConfig
    from kgrec.serve.policy import PolicyConfig
    from kgrec.serve.service import ServeConfig, Service

    world = world_of(logging_run)
    truth = true_rate(candidate_run, world, k)
    pool = candidates or logging_run.view.num_items
    rows: list[CoverageRow] = []
    for seed in seeds:
        log_dir = Path(work) / f"log-seed{seed}"
        config = ServeConfig(policy=PolicyConfig("epsilon", epsilon=epsilon, candidates=pool),
                             index=IndexConfig(kind="flat"), seed=seed, log_dir=str(log_dir))
        service = Service(logging_run, config)
        try:
            simulate(service, world, n_requests=n_requests, k=k, seed=seed)
        finally:
            service.close()
        result = served_value(log_dir, candidate_run, n_boot=n_boot, seed=seed)
        for e in result.estimates:
            rows.append(CoverageRow(seed, e.name, e.value, e.ci_low, e.ci_high, truth,
                                    bool(e.ci_low <= truth <= e.ci_high), e.ess, result.logging_rate))
        if progress:
            print(f"seed {seed}: " + ", ".join(f"{e.name} {e.value:.4f} [{e.ci_low:.4f}, {e.ci_high:.4f}]"
                                               for e in result.estimates) + f"; truth {truth:.4f}", flush=True)
    return rows, truth

"""Off-policy evaluation from a served log recovers a candidate's true click rate on the
synthetic world (the small version of ``benchmarks/ope_served.py``)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from kgrec.rundir.config import load_config
    from kgrec.rundir.load import load_run
    from kgrec.train.run import train_run

    root = tmp_path_factory.mktemp("ope")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGREC_CACHE_DIR", str(root / "cache"))
        for name, model in (("logging", "kgrec"), ("candidate", "ease")):
            cfg = load_config(overrides={"data": {"name": "synthetic"}, "model": {"name": model},
                                         "train": {"epochs": 3}})
            train_run(cfg, root / name, overwrite=True, progress=False)
            out[name] = load_run(root / name)
    return out


def test_estimates_cover_the_true_click_rate(runs, tmp_path):
    from kgrec.audit.served_check import validate

    rows, truth = validate(runs["logging"], runs["candidate"], seeds=[0, 1, 2, 3], n_requests=4000, k=10,
                           epsilon=0.5, work=tmp_path, n_boot=200)
    assert 0.05 < truth < 0.6
    for name in ("ips", "snips", "dr"):
        sub = [r for r in rows if r.estimator == name]
        # 4 seeds of a 95% interval: 3 or more cover the truth with probability 0.99
        assert len(sub) == 4 and sum(r.covered for r in sub) >= 3, sub
        # the mean of 4 independent estimates lies within 15% of the truth
        assert abs(np.mean([r.value for r in sub]) - truth) < 0.15 * truth, sub
    # the logging policy's own observed rate is a different quantity (another model's lists)
    assert all(0 < r.logging_rate < 1 for r in rows)


def test_true_rate_matches_a_monte_carlo_of_the_click_model(runs):
    """The exact truth equals clicks simulated from the click model on the candidate's lists."""
    from kgrec.audit.served import candidate_lists
    from kgrec.audit.served_check import true_rate, world_of

    import pandas as pd

    run = runs["candidate"]
    world = world_of(run)
    truth = true_rate(run, world, 10)
    rng = np.random.default_rng(0)
    users = rng.choice(len(world.activity), size=20000, p=world.activity)
    raw = [f"u{u}" for u in users]
    frame = pd.DataFrame({"request_id": [f"r{k}" for k in range(len(raw))], "user_id": raw, "history": None})
    lists, _ = candidate_lists(run, frame, {f"r{k}": 10 for k in range(len(raw))})
    clicks = [rng.random(10) < world.probability(np.full(10, u), np.array([int(i[1:]) for i in lists[f"r{k}"]]))
              for k, u in enumerate(users)]
    rate = float(np.mean(clicks))
    assert abs(rate - truth) < 4 * np.sqrt(truth * (1 - truth) / (20000 * 10)) + 0.01


def test_a_deterministic_log_is_flagged(runs, tmp_path):
    from kgrec.audit.served import served_value
    from kgrec.audit.served_check import simulate, world_of
    from kgrec.serve.index import IndexConfig
    from kgrec.serve.policy import PolicyConfig
    from kgrec.serve.service import ServeConfig, Service

    service = Service(runs["logging"], ServeConfig(policy=PolicyConfig("deterministic"),
                                                   index=IndexConfig(kind="flat"), log_dir=str(tmp_path / "log")))
    try:
        simulate(service, world_of(runs["logging"]), n_requests=300, k=5, seed=0)
    finally:
        service.close()
    result = served_value(tmp_path / "log", runs["candidate"], n_boot=50)
    assert any("deterministic" in n for n in result.notes)
    assert result.requests == 300 and result.exposures == 1500

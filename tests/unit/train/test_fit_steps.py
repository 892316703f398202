"""kgrec.train.trainer.fit_steps (``kgrec update``'s bounded training): the warm start competes
with the trained states, so training that only hurts returns the warm start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture()
def setup(tiny):
    from kgrec.data.sampling import PairSampler
    from kgrec.data.splits import make_split
    from kgrec.models.base import create_model
    from kgrec.rundir.config import load_config
    from kgrec.runtime import seed_everything
    from kgrec.train.run import build_context, split_config

    cfg = load_config(None, {"data": {"name": str(FIXTURES / "tiny.yaml"), "data_dir": str(FIXTURES / "tiny")},
                             "model": {"name": "lightgcn", "params": {"dim": 8}},
                             "train": {"batch_size": 8, "lr": 10.0}})  # lr so large that a step only hurts
    seed_everything(cfg.seed)
    ctx, heldout = build_context(cfg, tiny, make_split(tiny, split_config(cfg)), progress=False)
    model = create_model(cfg.model.name, ctx, cfg.model.params)
    sampler = PairSampler(ctx.train, batch_size=8, n_neg=1, max_steps=None)
    rng = np.random.default_rng(0)

    def batches():
        while True:
            yield from sampler.epoch(rng)

    return cfg, ctx, heldout, model, batches()


def test_the_warm_start_wins_when_every_later_validation_is_worse(setup, monkeypatch) -> None:
    import kgrec.train.trainer as trainer

    cfg, ctx, heldout, model, batches = setup
    warm = {k: v.detach().clone() for k, v in model.state_dict().items()}
    scores = iter([0.9, 0.5, 0.4, 0.3, 0.2, 0.1])  # the warm start, then one worse value per validation
    monkeypatch.setattr(trainer, "validation_score", lambda *a, **k: next(scores))
    state = trainer.fit_steps(model, ctx, heldout, cfg, batches, 4, eval_every=1, progress=False)
    assert state.validated and state.warm_metric == 0.9
    assert state.best_step == 0 and state.best_metric == 0.9
    for k, v in model.state_dict().items():
        assert torch.equal(v, warm[k]), k  # the warm start's weights, not the first trained state


def test_training_that_only_hurts_returns_the_warm_start_metric(setup) -> None:
    from kgrec.train.trainer import fit_steps

    cfg, ctx, heldout, model, batches = setup
    state = fit_steps(model, ctx, heldout, cfg, batches, 4, eval_every=1, progress=False)
    later = [h[cfg.train.metric] for h in state.history[1:]]
    assert max(later) < state.warm_metric  # the premise: every trained state is worse
    assert state.best_step == 0 and state.final_metric == pytest.approx(state.warm_metric)

"""The parts of data-parallel training that run in one process: the sharded gradient is the
full-batch gradient, the distributed code path at world size 1 reproduces single-process
training bit for bit, gradient all-reduce keeps unused parameters unused, and a failed
launch reports its root cause."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from kgrec.data import SplitConfig, make_split
from kgrec.data.sampling import PairSampler, shard_bounds
from kgrec.errors import DataError, LockedError, UsageError
from kgrec.models import create_model
from kgrec.models.base import Batch
from kgrec.rundir.config import load_config
from kgrec.train.comm import Comm, param_digest
from kgrec.train.distributed import DistributedError, Launch, root_cause, split_endpoint
from kgrec.train.run import build_context, synthetic_of
from kgrec.train.trainer import fit, make_objective


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from kgrec.graphs import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGREC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return load_dataset("synthetic", synthetic={"n_users": 200, "n_items": 100, "n_interactions": 2000, "seed": 3})


@pytest.fixture()
def group():
    """A one-rank gloo process group in this process."""
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield Comm(rank=0, world_size=1, local_rank=0, backend="gloo")
    finally:
        dist.destroy_process_group()


def _grads(model) -> list[torch.Tensor]:
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("name", ["bprmf", "lightgcn"])
@pytest.mark.parametrize("objective", ["bpr", "ips", "softmax"])
@pytest.mark.parametrize("world", [2, 3])
def test_weighted_shard_gradients_sum_to_the_full_batch_gradient(small, name: str, objective: str,
                                                                  world: int) -> None:
    cfg = load_config(overrides={"model": {"name": name}, "train": {"objective": objective, "n_neg": 2}})
    ctx, _ = build_context(cfg, small, make_split(small, SplitConfig(seed=0)), progress=False)
    torch.manual_seed(0)
    model = create_model(name, ctx)
    model.objective = make_objective(cfg, ctx)
    users, pos, neg = next(iter(PairSampler(ctx.train, batch_size=301, n_neg=2).epoch(np.random.default_rng(0))))

    def batch(lo: int, hi: int) -> Batch:
        return Batch(torch.from_numpy(users[lo:hi]), torch.from_numpy(pos[lo:hi]), torch.from_numpy(neg[lo:hi]))

    model.zero_grad(set_to_none=True)
    model.loss(batch(0, len(users))).backward()
    full = _grads(model)
    summed = [torch.zeros_like(g) for g in full]
    for r in range(world):
        lo, hi = shard_bounds(len(users), r, world)
        model.zero_grad(set_to_none=True)
        (model.loss(batch(lo, hi)) * ((hi - lo) / len(users))).backward()
        summed = [s + g for s, g in zip(summed, _grads(model))]
    for f, s in zip(full, summed):
        assert torch.allclose(f, s, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["bprmf", "lightgcn"])
def test_world_size_one_reproduces_single_process_training_exactly(small, group, name: str) -> None:
    cfg = load_config(overrides={"model": {"name": name}, "train": {"epochs": 3, "batch_size": 256, "lr": 0.01}})
    split = make_split(small, SplitConfig(seed=0))
    runs = []
    for comm in (None, group):
        ctx, heldout = build_context(cfg, small, split, progress=False)
        torch.manual_seed(0)
        model = create_model(name, ctx)
        state = fit(model, ctx, heldout, cfg, rng=np.random.default_rng(0), progress=False, comm=comm)
        runs.append((model.state_dict(), state))
    (w0, s0), (w1, s1) = runs
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    assert [h["loss"] for h in s0.history] == [h["loss"] for h in s1.history]
    assert s0.best_epoch == s1.best_epoch and s0.final_metric == s1.final_metric
    assert len(group.digests) == 1  # every rank's parameter sha256, gathered after the last epoch


def test_all_reduce_keeps_unused_parameters_unused(group) -> None:
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2, 2))
    a.grad = torch.tensor([1.0, 2.0, 3.0])
    group.all_reduce_grads([a, b])
    assert torch.equal(a.grad, torch.tensor([1.0, 2.0, 3.0])) and b.grad is None


def test_parameter_digest_sees_every_byte() -> None:
    m = torch.nn.Linear(3, 2)
    d = param_digest(m)
    with torch.no_grad():
        m.weight[0, 0] = torch.nextafter(m.weight[0, 0], torch.tensor(10.0))
    assert param_digest(m) != d


def test_root_cause_prefers_the_earliest_input_error() -> None:
    records = [
        {"rank": 0, "time": 5.0, "input_error": False, "type": "RuntimeError", "text": "RuntimeError: Connection closed by peer",
         "exit_code": 1},
        {"rank": 1, "time": 7.0, "input_error": True, "type": "DataError", "message": "bad row", "file": "x.tsv",
         "line": 3, "field": None, "exit_code": 4},
    ]
    err = root_cause(records)
    assert isinstance(err, DataError) and err.exit_code == 4 and str(err) == "data error: x.tsv:3: rank 1: bad row"
    lock = {"rank": 0, "time": 1.0, "input_error": True, "type": "LockedError", "message": "locked by pid 1",
            "file": "/r", "line": None, "field": "lock", "exit_code": 10}
    err = root_cause([lock])
    assert isinstance(err, LockedError) and err.message == "locked by pid 1"          # as in one process
    err = root_cause(records[:1])
    assert isinstance(err, DistributedError) and err.exit_code == 1 and "rank 0 failed: RuntimeError" in str(err)
    killed = root_cause([], {1: SimpleNamespace(exitcode=-9, timestamp=0, signal_name=lambda: "SIGKILL")})
    assert killed.exit_code == 137 and "rank 1 was killed by signal SIGKILL" in str(killed)


def test_launch_options_are_checked() -> None:
    Launch(nproc=2).check()
    Launch(nproc=1, nnodes=2, node_rank=1, rdzv_endpoint="10.0.0.1:29500").check()
    for bad in (Launch(nproc=0), Launch(nnodes=2), Launch(nnodes=2, node_rank=2, rdzv_endpoint="h:1"),
                Launch(rdzv_endpoint="host"), Launch(rdzv_endpoint="h:70000"), Launch(rdzv_id="a b")):
        with pytest.raises(UsageError):
            bad.check()
    assert split_endpoint("[::1]:29500") == ("::1", 29500) and split_endpoint("node0:1") == ("node0", 1)
    assert Launch(nproc=2, nnodes=3).world_size == 6 and not Launch().distributed


def test_synthetic_parameters_come_from_the_config_when_it_has_them() -> None:
    without = SimpleNamespace(data=SimpleNamespace(name="synthetic", synthetic={}))
    assert synthetic_of(without, {"n_users": 300}) == {"n_users": 300} and synthetic_of(without, None) is None
    with_key = SimpleNamespace(data=SimpleNamespace(name="synthetic", synthetic={"n_users": 400}))
    assert synthetic_of(with_key, None) == {"n_users": 400}

"""Data-parallel training over ``torch.distributed``: ``kgrec train --nproc N``.

The launcher is torch's elastic agent (:func:`torch.distributed.launcher.api.elastic_launch`
with a :class:`~torch.distributed.launcher.api.LaunchConfig`, the engine of ``torchrun``) with
the static rendezvous: node 0 hosts the rendezvous store at ``--rdzv-endpoint`` and its local
rank 0 is global rank 0, the only rank that opens the run directory. On one node the store
listens on a free port of 127.0.0.1 only (the socket is bound here and handed to the store).

Every rank loads the same data, builds the same model from the same seed and draws the same
permutation and negatives from the same generator; each takes its contiguous share of every
global batch (:meth:`kgrec.data.sampling.PairSampler.shards`), weights its mean loss by its
share of the batch, and the gradients are summed over the ranks (:meth:`Comm.all_reduce_grads`),
so every rank applies the gradient of the global batch's mean loss and the parameters stay
identical (checked at the end: :func:`param_digest` of every rank, recorded in ``train.json``).
Rank 0 validates, early-stops, checkpoints, runs ``after_fit`` and writes the run; it
broadcasts the stop decision each epoch. Closed-form models are fitted by rank 0 alone.

A rank that fails records its error (:func:`_record_failure`); the agent then stops the other
ranks, and :func:`launch_train` raises the root cause as one error: the rank's own input
error (same message and exit code as a single-process run) or :class:`DistributedError`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from kgrec.errors import EXIT_INTERNAL, KgrecInputError, UsageError
from kgrec.train.comm import Comm

#: seconds the agent gives the other ranks to stop (and rank 0 to release the run's lock) after
#: one failed, before it kills them
SHUTDOWN_TIMEOUT_S = 10
#: seconds the agents of a multi-node job wait for each other at the rendezvous
#: (``$KGREC_RDZV_TIMEOUT``)
RENDEZVOUS_TIMEOUT_S = 900


def _rendezvous_timeout() -> int:
    return int(float(os.environ.get("KGREC_RDZV_TIMEOUT", RENDEZVOUS_TIMEOUT_S)))


class DistributedError(KgrecInputError):
    """A rank of a distributed run failed, was killed, or the ranks could not meet."""

    kind = "distributed training"

    def __init__(self, message: str, *, exit_code: int = EXIT_INTERNAL, **where: Any) -> None:
        super().__init__(message, **where)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Launch:
    """Where and how many ranks: ``nproc`` per node on ``nnodes`` nodes; this is node
    ``node_rank``; the rendezvous store is at ``rdzv_endpoint`` (HOST:PORT, hosted by node 0;
    ``None``: a free loopback port, one node only); ``rdzv_id`` names the job on the store."""

    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    rdzv_id: str = "kgrec"

    @property
    def world_size(self) -> int:
        return self.nproc * self.nnodes

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def check(self) -> None:
        """Usage errors (exit 2) for impossible combinations."""
        if self.nproc < 1:
            raise UsageError(f"--nproc must be at least 1, got {self.nproc}", field="--nproc")
        if self.nnodes < 1:
            raise UsageError(f"--nnodes must be at least 1, got {self.nnodes}", field="--nnodes")
        if not 0 <= self.node_rank < self.nnodes:
            raise UsageError(f"--node-rank must be in 0..{self.nnodes - 1} for --nnodes {self.nnodes}, got "
                             f"{self.node_rank}", field="--node-rank")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise UsageError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (node 0's address, the same on every "
                             "node)", field="--rdzv-endpoint")
        if self.rdzv_endpoint is not None:
            split_endpoint(self.rdzv_endpoint)
        if not self.rdzv_id or not self.rdzv_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise UsageError(f"--rdzv-id must be letters, digits, '-', '_' or '.', got {self.rdzv_id!r}",
                             field="--rdzv-id")


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) → (host, port); anything else is a usage error."""
    host, sep, port = endpoint.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--rdzv-endpoint must be HOST:PORT with a port in 1..65535, got {endpoint!r}",
                         field="--rdzv-endpoint")
    return host, int(port)


# ---------------------------------------------------------------------------------------------
# inside a rank


@dataclass
class _Job:
    """What every rank needs (pickled to the spawned workers)."""

    cfg: Any
    run_dir: str
    options: dict[str, Any]
    errors: str            # directory for the ranks' failure records


def _worker(job: _Job) -> str | None:
    """One rank: join the group and train; rank 0 returns the finished run directory."""
    rank = int(os.environ.get("RANK", "0"))
    signal.signal(signal.SIGTERM, _terminated)  # the agent stops the ranks when one fails
    try:
        from kgrec.runtime import configure_threads
        from kgrec.train.run import train_run

        configure_threads(job.cfg.threads)
        comm = Comm.start()
        out = train_run(job.cfg, job.run_dir, comm=comm, **job.options)
        comm.close()
        return None if out is None else str(out)
    except _Terminated:
        sys.exit(128 + signal.SIGTERM)  # stopped because another rank failed: no record of its own
    except BaseException as err:  # noqa: BLE001  (every failure becomes a record and an exit code)
        if isinstance(err, SystemExit) and not err.code:
            return None
        code = _record_failure(Path(job.errors), rank, err)
        sys.stderr.flush()
        sys.exit(code)


class _Terminated(BaseException):
    """SIGTERM from the agent, raised so that rank 0's run directory writer releases its lock
    (the partial directory is kept, as after any failure)."""


def _terminated(signum: int, frame: Any) -> None:
    raise _Terminated


def _record_failure(errors: Path, rank: int, err: BaseException) -> int:
    """Write ``errors/rank-R.json`` (what failed, when, the exit code and the traceback, which
    the launcher prints with ``--debug``) and return the code."""
    if isinstance(err, KgrecInputError):
        code = int(err.exit_code)
        rec = {"input_error": True, "type": type(err).__name__, "message": err.message, "file": err.file,
               "line": err.line, "field": err.field, "text": str(err)}
    elif isinstance(err, KeyboardInterrupt):
        code, rec = 130, {"input_error": False, "type": "KeyboardInterrupt", "text": "interrupted"}
    else:
        code = EXIT_INTERNAL
        text = " ".join(f"{type(err).__name__}: {err}".split())
        rec = {"input_error": False, "type": type(err).__name__, "text": text}
    rec.update(rank=rank, time=time.time(), exit_code=code, host=socket.gethostname(),
               traceback="".join(traceback.format_exception(err)))
    try:
        errors.mkdir(parents=True, exist_ok=True)
        (errors / f"rank-{rank}.json").write_text(json.dumps(rec))
    except OSError:
        pass
    return code


def root_cause(records: list[dict[str, Any]], failures: dict[int, Any] | None = None) -> KgrecInputError:
    """The error to report for a failed launch: the earliest input error of a rank (rebuilt as
    the same class, so the message and exit code are those of a single-process run; prefixed
    with the rank unless it is rank 0), else the earliest other failure of a rank, else what
    the agent saw (an exit code or signal of a rank that left no record)."""
    import kgrec.errors as errors_mod

    if records:
        records = sorted(records, key=lambda r: (not r.get("input_error"), r.get("time", 0.0), r.get("rank", 0)))
        rec = records[0]
        rank = rec.get("rank", "?")
        if rec.get("input_error"):
            cls = getattr(errors_mod, str(rec.get("type")), None)
            if isinstance(cls, type) and issubclass(cls, KgrecInputError) and cls is not KgrecInputError:
                message = rec["message"] if rank == 0 else f"rank {rank}: {rec['message']}"
                return cls(message, file=rec.get("file"), line=rec.get("line"), field=rec.get("field"))
            return DistributedError(f"rank {rank}: {rec.get('text')}", exit_code=int(rec.get("exit_code", 1)))
        if rec.get("type") == "KeyboardInterrupt":
            return DistributedError(f"rank {rank} was interrupted", exit_code=130)
        return DistributedError(f"rank {rank} failed: {rec.get('text')} (an internal error: rerun with --debug for "
                                "the traceback and report it)", exit_code=int(rec.get("exit_code", 1)))
    for rank, failure in sorted((failures or {}).items(), key=lambda kv: (getattr(kv[1], "timestamp", 0), kv[0])):
        code = int(getattr(failure, "exitcode", 1) or 1)
        how = (f"was killed by signal {getattr(failure, 'signal_name', lambda: '?')()}" if code < 0
               else f"exited with code {code}")
        return DistributedError(f"rank {rank} {how} without an error message (out of memory?)",
                                exit_code=128 - code if code < 0 else code)
    return DistributedError("a rank failed without an error message")


# ---------------------------------------------------------------------------------------------
# the launcher (the process that ran `kgrec train --nproc N`)


def _loopback_interface() -> str | None:
    for _, name in socket.if_nameindex():
        if name in ("lo", "lo0"):
            return name
    return None


@contextmanager
def _env(**values: str | None) -> Iterator[None]:
    """Set environment variables (``None``: leave as is) for the workers, restored afterwards."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is not None:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _quiet_agent(debug: bool) -> Iterator[None]:
    """The agent logs every worker's failure with tracebacks; the launcher reports the root
    cause in one line instead (``--debug`` keeps the agent's log)."""
    if debug:
        yield
        return
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


@contextmanager
def _loopback_store(endpoint: str | None) -> Iterator[str]:
    """A rendezvous store listening on 127.0.0.1 only (on ``endpoint``'s port, or a free one),
    for a one-node job. The static rendezvous creates its store with ``multi_tenant=True``,
    so it reuses the server started here on the socket bound here (torch's own store would
    listen on every interface)."""
    import torch.distributed as dist

    host, port = ("127.0.0.1", 0) if endpoint is None else split_endpoint(endpoint)
    if host not in ("127.0.0.1", "localhost"):
        yield endpoint or ""   # an explicit non-loopback address on one node: as torchrun does
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as err:
        sock.close()
        raise UsageError(f"cannot listen on 127.0.0.1:{port} ({err.strerror})", field="--rdzv-endpoint") from None
    sock.listen(128)
    port = sock.getsockname()[1]
    fd = sock.detach()  # the store's server owns the listening socket from here on
    try:
        store = dist.TCPStore("127.0.0.1", port, None, True, timedelta(seconds=_rendezvous_timeout()),
                              wait_for_workers=False, multi_tenant=True, master_listen_fd=fd)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield f"127.0.0.1:{port}"
    finally:
        del store


def launch_train(cfg, run_dir: str | Path, launch: Launch, *, debug: bool = False, **options: Any) -> Path | None:
    """Run :func:`kgrec.train.run.train_run` on ``launch.nproc`` ranks of this node (one of
    ``launch.nnodes``); ``options`` are ``train_run``'s keyword arguments. Returns the run
    directory on node 0 (its rank 0 writes it) and ``None`` on the other nodes. A failed rank
    is raised as its root cause (:func:`root_cause`)."""
    launch.check()
    if not debug and "torch" not in sys.modules:
        os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "FATAL")  # c10d's retry logs; the error is reported below
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    scratch = Path(tempfile.mkdtemp(prefix="kgrec-ddp-"))
    errors = scratch / "errors"
    single = launch.nnodes == 1
    lo = _loopback_interface() if single else None
    job = _Job(cfg, str(run_dir), options, str(errors))
    try:
        with _quiet_agent(debug), \
                _env(GLOO_SOCKET_IFNAME=None if os.environ.get("GLOO_SOCKET_IFNAME") else lo,
                     NCCL_SOCKET_IFNAME=None if os.environ.get("NCCL_SOCKET_IFNAME") else lo,
                     OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS") or str(max(1, int(cfg.threads)))), \
                (_loopback_store(launch.rdzv_endpoint) if single else _nothing(launch.rdzv_endpoint)) as endpoint:
            config = LaunchConfig(
                min_nodes=launch.nnodes, max_nodes=launch.nnodes, nproc_per_node=launch.nproc,
                run_id=launch.rdzv_id, role="kgrec", rdzv_backend="static", rdzv_endpoint=endpoint,
                rdzv_configs={"rank": launch.node_rank, "timeout": _rendezvous_timeout()}, max_restarts=0,
                monitor_interval=0.1, start_method="spawn", logs_specs=DefaultLogsSpecs(log_dir=str(scratch / "logs")),
                shutdown_timeout=SHUTDOWN_TIMEOUT_S)
            try:
                results = elastic_launch(config, _worker)(job)
            except ChildFailedError as err:
                records = []
                for path in sorted(errors.glob("rank-*.json")) if errors.is_dir() else []:
                    try:
                        records.append(json.loads(path.read_text()))
                    except (OSError, ValueError):
                        pass
                if debug:
                    for rec in records:
                        print(f"[rank {rec.get('rank')}] {rec.get('traceback', '')}", file=sys.stderr)
                raise root_cause(records, err.failures) from None
            except SignalException as err:
                if err.sigval == signal.SIGINT:
                    raise KeyboardInterrupt from None
                raise DistributedError(f"stopped by signal {signal.Signals(err.sigval).name}",
                                       exit_code=128 + int(err.sigval)) from None
            except (RuntimeError, ValueError, TimeoutError) as err:  # rendezvous: peers never came, bad address
                text = " ".join(str(err).split())[:400]
                raise DistributedError(f"the ranks could not meet at {endpoint or 'the rendezvous'} "
                                       f"({type(err).__name__}: {text})", field="--rdzv-endpoint") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = (results or {}).get(0)
    return None if out is None else Path(out)


@contextmanager
def _nothing(value: Any) -> Iterator[Any]:
    yield value

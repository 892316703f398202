"""This rank's place in a ``torch.distributed`` process group and the collectives training
uses (see :mod:`kgrec.train.distributed` for the launcher and the design)."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

#: seconds a collective may wait for the other ranks (``$KGREC_DIST_TIMEOUT``; rank 0 validates
#: while the others wait, so this must exceed the longest validation or ``after_fit``)
DEFAULT_TIMEOUT_S = 1800.0


@dataclass
class Comm:
    """This rank's place in the process group and the collectives training uses."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    #: :func:`param_digest` of every rank after training (filled by :meth:`check_parameters`)
    digests: list[str] = field(default_factory=list)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls) -> Comm:
        """Join the process group of the elastic agent's environment (``RANK``, ``WORLD_SIZE``,
        the agent's store): gloo for CPU tensors, plus nccl for CUDA tensors where CUDA is there."""
        import torch
        import torch.distributed as dist

        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank % torch.cuda.device_count())
        timeout = float(os.environ.get("KGREC_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout))
        return cls(dist.get_rank(), dist.get_world_size(), local_rank, backend)

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    def broadcast(self, obj: Any = None) -> Any:
        """Rank 0's ``obj`` on every rank (pickled between the processes; nothing of it is
        written to the run directory)."""
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def all_gather(self, obj: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over the ranks (float64)."""
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def broadcast_parameters(self, model) -> None:
        """Rank 0's parameters and buffers on every rank (as DDP does when it wraps a model)."""
        import torch.distributed as dist

        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, src=0)

    def all_reduce_grads(self, params: list) -> None:
        """Sum every parameter's gradient over the ranks, in one flat buffer per dtype and
        device. A parameter that got no gradient on any rank keeps ``grad is None`` (so Adam
        skips it, as it would in one process); on some ranks only: the others add zeros."""
        import torch
        import torch.distributed as dist

        groups: dict[tuple[Any, Any], list] = {}
        for p in params:
            groups.setdefault((p.dtype, p.device), []).append(p)
        for (dtype, device), ps in groups.items():
            flags = torch.tensor([p.grad is not None for p in ps], dtype=dtype, device=device)
            flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in ps]
                             + [flags])
            dist.all_reduce(flat)
            offset = 0
            used = flat[-len(ps):]
            for k, p in enumerate(ps):
                n = p.numel()
                if used[k] > 0:
                    p.grad = flat[offset: offset + n].view_as(p).clone()
                else:
                    p.grad = None
                offset += n

    def check_parameters(self, model) -> list[str]:
        """:func:`param_digest` of every rank (kept in :attr:`digests`); a warning on stderr
        when they differ (they never should: every rank applies the same summed gradient)."""
        self.digests = self.all_gather(param_digest(model))
        if self.is_main and len(set(self.digests)) > 1:
            print(f"kgrec: warning: the ranks' parameters differ after training (sha256 {self.digests}); "
                  "rank 0's are saved", file=sys.stderr)
        return self.digests


def param_digest(model) -> str:
    """sha256 of the model's parameters (names, shapes and bytes, in name order)."""
    import torch

    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        t = p.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()

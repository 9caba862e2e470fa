"""Data parallelism over task groups, for runs started with ``accelerate launch`` (docs/DESIGN.md).

Every process keeps a full replica of the model, optimizer and replay buffer. Only
the expensive, embarrassingly parallel part is split: each process rolls out its
share of the step's task groups, then the shares are gathered so that every process
holds the same global batch (advantages, filters and the buffer see exactly what a
single process would). The micro-batches of each mini-batch are divided among the
processes and the gradients are summed before the clip and the optimizer step: the
update is the single-process update of that batch, and the replicas stay identical.

Why not wrap the model in ``DistributedDataParallel``: DDP all-reduces inside every
``backward()``, so every process must run the same number of backward passes. With
multi-turn rollouts the processes hold different numbers of rows and of non-empty
micro-batches; one all-reduce per mini-batch, issued by this module, has no such
constraint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from spear.trainer.config import ConfigError

SUPPORTED = ("NO", "MULTI_CPU", "MULTI_GPU")


@dataclass(frozen=True)
class DataParallel:
    """This process's place in a data-parallel group (``torch.distributed`` must be initialised)."""

    rank: int
    world_size: int

    @classmethod
    def from_accelerator(cls, accelerator: Any) -> DataParallel | None:
        """The group of an ``accelerate`` run, or None for a single process.

        Raises ConfigError for launch modes this trainer does not implement (FSDP,
        DeepSpeed, ...), naming the mode.
        """
        if accelerator is None:
            return None
        mode = getattr(accelerator.distributed_type, "name", str(accelerator.distributed_type))
        if mode not in SUPPORTED:
            raise ConfigError(
                f"accelerate launch mode {mode} is not supported by spear's trainer; use plain "
                "multi-process data parallelism (accelerate launch --multi_gpu, or --cpu) instead"
            )
        if accelerator.num_processes == 1:
            return None
        return cls(accelerator.process_index, accelerator.num_processes)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, start: int, stop: int, unit: int = 1) -> tuple[int, int]:
        """This process's contiguous share of rows ``start:stop``, in whole ``unit``-row blocks.

        With ``unit`` = the micro-batch size, the processes together run exactly the
        micro-batches a single process would, so the summed gradient is the same.
        """
        blocks = -(-(stop - start) // unit)
        lo = (blocks * self.rank) // self.world_size
        hi = (blocks * (self.rank + 1)) // self.world_size
        return min(start + lo * unit, stop), min(start + hi * unit, stop)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def sum_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Replace every gradient by its sum over processes (a missing gradient counts as zero)."""
        params = list(params)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        self.all_reduce_sum(flat)
        offset = 0
        for p in params:
            p.grad.copy_(flat[offset : offset + p.numel()].view_as(p.grad))
            offset += p.numel()

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order (pickled; for CPU-side batches and metrics)."""
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_parameters(self, model: torch.nn.Module) -> None:
        """Make every replica start from rank 0's weights."""
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)

    def barrier(self) -> None:
        dist.barrier()

"""Process-group set-up for DDP under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["Dist", "all_reduce_mean", "close_distributed", "init_distributed"]


@dataclass
class Dist:
    """Where this process stands: its rank, the world size, its local GPU index, and whether
    it created the process group (then it also destroys it)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    created: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> Dist:
    """Join the process group torchrun describes (nccl on CUDA, gloo on CPU); one process
    without torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
        created = True
    return Dist(dist.get_rank(), dist.get_world_size(),
                int(os.environ.get("LOCAL_RANK", "0")), created)


def close_distributed(info: Dist) -> None:
    if info.created:
        import torch.distributed as dist

        dist.destroy_process_group()


def all_reduce_mean(values: torch.Tensor, info: Dist) -> torch.Tensor:
    """The mean of ``values`` over all ranks (in place; unchanged in one process)."""
    if info.world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(values)
        values /= info.world_size
    return values

"""Data parallelism under ``torchrun``: the same ``charnn train`` on every rank.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them this is a no-op and
training runs in one process. Each rank reads its own slice of the B streams,
DDP averages gradients, and only rank 0 writes checkpoints and output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_spec: str = "auto") -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch
    import torch.distributed as dist

    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        use_nccl = torch.cuda.is_available() and (device_spec == "auto" or device_spec.startswith("cuda"))
        if use_nccl:
            torch.cuda.set_device(info.local_rank)
        # generous: other ranks wait while rank 0 tokenizes a big corpus for the first time
        dist.init_process_group(backend="nccl" if use_nccl else "gloo", timeout=timedelta(hours=1))
    return info


def teardown(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def wrap(model, info: DistInfo, device):
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(model, device_ids=ids)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def any_rank(flag: bool, info: DistInfo, device) -> bool:
    """True on every rank if it is true on any (so all ranks stop together)."""
    return any_ranks([flag], info, device)[0]


def any_ranks(flags: list[bool], info: DistInfo, device) -> list[bool]:
    """Each flag true on every rank if it is true on any, in one collective call."""
    if not info.enabled:
        return [bool(f) for f in flags]
    import torch
    import torch.distributed as dist

    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def mean(value: float, info: DistInfo, device) -> float:
    """The mean of ``value`` over all ranks (NaN anywhere gives NaN everywhere)."""
    if not info.enabled:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], device=device, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / info.world


class Agreement:
    """Decisions every rank takes together, so that all of them leave the loop at the same step."""

    def __init__(self, info: DistInfo, device):
        self.info, self.device = info, device

    def any(self, *flags: bool) -> list[bool]:
        return any_ranks(list(flags), self.info, self.device)

    def main_decides(self, flag: bool) -> bool:
        """Rank 0's decision, for all (wall clocks differ between ranks)."""
        return any_ranks([bool(flag and self.info.is_main)], self.info, self.device)[0]

    def mean(self, value: float) -> float:
        return mean(value, self.info, self.device)

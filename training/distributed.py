"""Data-parallel training under torchrun: the process group from torchrun's environment, and the few collectives
the training loop needs.

    torchrun --nproc_per_node 4 -m training train --model celeba64-dcgan --out runs/faces …

torchrun gives every process RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. Without them (a plain
`python -m training train`, the app, the tests) nothing here touches torch.distributed: one process, rank 0.
Backend: nccl when the processes run on CUDA (each on GPU LOCAL_RANK), gloo on the CPU.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from gan_demo.devices import pick_device


class DistributedError(Exception):
    pass


def launched() -> bool:
    """Whether torchrun (or an equivalent launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0: the one process that prints, logs and writes files."""
    return rank() == 0


def init(device: str | None = None) -> torch.device:
    """Join torchrun's process group (once) and return this process's device; outside torchrun just pick_device."""
    if not launched():
        return pick_device(device)
    dev = pick_device(device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise DistributedError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices: "
                                   f"use --nproc_per_node ≤ {torch.cuda.device_count()}")
        dev = torch.device("cuda", local)        # one GPU per process, whatever --device said
        torch.cuda.set_device(dev)
    elif dev.type != "cpu":
        raise DistributedError(f"distributed training runs on CUDA (nccl) or the CPU (gloo), not {dev.type}")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dev


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def broadcast(obj):
    """Rank 0's value of a small picklable object, on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean(t: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over the ranks (a copy; the input is left as it is)."""
    if not active():
        return t
    t = t.detach().clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / dist.get_world_size()


def any_rank(flag: bool, device) -> bool:
    """True on every rank if it is True on any (so that all ranks leave the loop at the same step)."""
    if not active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())

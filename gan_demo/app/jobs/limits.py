"""What a Train-tab run may ask for: steps, batch size and learning rate per model and device, the server's
settings from the environment, and LiveError, the refusal a visitor reads (the checks themselves:
gan_demo.validate)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from gan_demo.registry import get_entry


class LiveError(ValueError):
    """A request the manager refuses (bad settings, busy trainer); the message is meant for the visitor."""


def env_number(name: str, default, kind=float, minimum=1):
    """A server setting from the environment; the default when unset, unreadable or below `minimum`."""
    try:
        value = kind(os.environ.get(name) or default)
    except ValueError:
        value = default
    return value if value >= minimum else default


BATCH_RANGE = (8, 256)
LR_RANGE = (1e-5, 1e-2)
MIN_STEPS = 1

# On a CPU: (most steps, default steps, largest batch) per model, sized by the cost of a step so that the
# default run takes well under a minute and the longest one stays near the time limit.
CPU_LIMITS = {
    "mnist-gan": (2000, 300, 256), "mnist-cgan": (2000, 300, 256),
    "mnist-dcgan": (1000, 100, 256), "mnist-lsgan": (1000, 100, 256), "mnist-cdcgan": (1000, 100, 256),
    "mnist-wgangp": (400, 40, 128),
    "cifar10-gan": (1000, 200, 256), "cifar10-dcgan": (500, 50, 128), "cifar10-lsgan": (500, 50, 128),
    "cifar10-wgangp": (200, 20, 64),
    "celeba64-dcgan": (200, 20, 64), "celeba128-dcgan": (100, 10, 32), "celeba128-wgangp": (30, 3, 16),
    "text-wgangp": (20, 2, 16),
}
DEFAULT_CPU_LIMITS = (200, 20, 64)


def minutes(seconds: float) -> str:
    """'45 s', '3 min', '1 h 05 min'."""
    s = max(0, round(seconds))
    if s < 90:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


@dataclass(frozen=True)
class Limits:
    max_steps: int
    default_steps: int
    max_batch: int
    default_batch: int
    default_lr: float
    min_steps: int = MIN_STEPS
    min_batch: int = BATCH_RANGE[0]
    lr_range: tuple = LR_RANGE


def limits(model: str, device="cpu") -> Limits:
    """Steps and batch bounds of a model: the CPU table, or on CUDA ten times the steps (up to the recipe's)."""
    e = get_entry(model)
    most, default, batch = CPU_LIMITS.get(model, DEFAULT_CPU_LIMITS)
    if torch.device(device).type == "cuda":
        most, default, batch = min(e.recipe.steps, 10 * most), min(e.recipe.steps, 5 * default), BATCH_RANGE[1]
    return Limits(most, default, batch, min(e.recipe.batch, batch), e.recipe.lr_g)

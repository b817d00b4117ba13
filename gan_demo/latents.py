"""Latent maths: seeds → z (identical on every machine), lerp/slerp paths, the truncation trick."""
from __future__ import annotations

import torch

from . import validate
from .validate import MAX_SEED

check_seed = validate.seed          # a seed: a whole number in [0, 2**32 - 1] (3.0 passes; NaN, 3.5, '3' do not)


def sample_latents(n: int, dim: int, dist: str = "normal", generator: torch.Generator | None = None,
                   device=None) -> torch.Tensor:
    """n×dim latents from the prior: N(0, 1), or uniform in [-1, 1); every draw from `generator` (on its device).
    The one latent sampler: seeds, training steps, calibration, directions and benchmarks all draw through it."""
    shape = (n, dim)
    if dist == "uniform":
        return torch.rand(shape, generator=generator, device=device) * 2 - 1
    if dist == "normal":
        return torch.randn(shape, generator=generator, device=device)
    raise ValueError(f"latent distribution must be 'normal' or 'uniform', got {validate.quoted(dist)}")


def seed_latents(seeds, dim: int, dist: str = "normal") -> torch.Tensor:
    """One z per seed, drawn on the CPU from a generator seeded with it (so the same on every machine)."""
    out = torch.empty(len(seeds), dim)
    for i, s in enumerate(seeds):
        out[i] = sample_latents(1, dim, dist, torch.Generator().manual_seed(check_seed(s)))[0]
    return out


def truncate(z: torch.Tensor, psi: float) -> torch.Tensor:
    """Truncation trick: pull z towards the mean of the prior (0) by psi ∈ (0, 1]; psi = 1 is no change."""
    return z * float(psi)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation (keeps the norm typical of Gaussian z); falls back to lerp for parallel vectors."""
    na, nb = a.norm(), b.norm()
    cos = torch.clamp((a @ b) / (na * nb + 1e-12), -1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        return lerp(a, b, t)
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolation_path(a: torch.Tensor, b: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    """`steps` latents from a to b inclusive (steps ≥ 2)."""
    if steps < 2:
        raise ValueError("an interpolation needs at least 2 steps")
    fn = {"lerp": lerp, "slerp": slerp}.get(mode)
    if fn is None:
        raise ValueError(f"mode must be 'lerp' or 'slerp', got {mode!r}")
    return torch.stack([fn(a, b, i / (steps - 1)) for i in range(steps)])


def walk(z: torch.Tensor, directions: torch.Tensor, amounts) -> torch.Tensor:
    """Move z (dim,) by amounts[k] along unit directions[k] (k×dim)."""
    amounts = torch.as_tensor(list(amounts), dtype=z.dtype)
    return z + amounts @ directions[: len(amounts)]


__all__ = ["MAX_SEED", "check_seed", "sample_latents", "seed_latents", "truncate", "lerp", "slerp", "interpolation_path", "walk"]

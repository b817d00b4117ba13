"""DiffAugment (Zhao et al., NeurIPS 2020): the same random, differentiable augmentation applied to real and
generated images before every discriminator call, so D cannot memorise a small training set (17k faces) while G
still learns the un-augmented distribution. Policies: "color", "translation", "cutout" (comma-separated).
All randomness comes from the trainer's seeded generator, so resume stays exact."""
from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def check_policy(policy: str) -> list[str]:
    parts = [p.strip() for p in policy.split(",") if p.strip()]
    bad = [p for p in parts if p not in POLICIES]
    if bad:
        raise ValueError(f"unknown DiffAugment policy '{bad[0]}' (known: {', '.join(POLICIES)})")
    return parts


def _rand(x: torch.Tensor, gen: torch.Generator, *shape) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, generator=gen, device=x.device, dtype=torch.float32).to(x.dtype)


def color(x, gen):
    x = x + (_rand(x, gen, 1, 1, 1) - 0.5)                                    # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, gen, 1, 1, 1) * 2) + mean                      # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_rand(x, gen, 1, 1, 1) + 0.5) + mean                 # contrast


def translation(x, gen, ratio: float = 0.125):
    """Shift by up to ratio·size pixels in each direction, zero fill (integer shifts through one gather)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = (torch.rand(n, generator=gen, device=x.device) * (2 * sh + 1)).long() - sh
    dx = (torch.rand(n, generator=gen, device=x.device) * (2 * sw + 1)).long() - sw
    ys = torch.arange(h, device=x.device)[None, :] - dy[:, None] + 1          # index into the 1-pixel-padded map
    xs = torch.arange(w, device=x.device)[None, :] - dx[:, None] + 1
    ys, xs = ys.clamp(0, h + 1), xs.clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    rows = torch.gather(padded, 2, ys[:, None, :, None].expand(-1, x.shape[1], -1, w + 2))
    return torch.gather(rows, 3, xs[:, None, None, :].expand(-1, x.shape[1], h, -1))


def cutout(x, gen, ratio: float = 0.5):
    """Zero one square of ratio·size per image at a random place."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (torch.rand(n, generator=gen, device=x.device) * (h + 1 - ch % 2)).long()
    cx = (torch.rand(n, generator=gen, device=x.device) * (w + 1 - cw % 2)).long()
    yy = torch.arange(h, device=x.device)[None, :, None]
    xx = torch.arange(w, device=x.device)[None, None, :]
    y0, x0 = (cy - ch // 2)[:, None, None], (cx - cw // 2)[:, None, None]
    inside = (yy >= y0) & (yy < y0 + ch) & (xx >= x0) & (xx < x0 + cw)
    return x * (~inside)[:, None].to(x.dtype)


def diff_augment(x: torch.Tensor, policy: str, gen: torch.Generator) -> torch.Tensor:
    """The policy's augmentations in order; the result keeps x's memory format (the gathers lose it)."""
    channels_last = x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last)
    for p in check_policy(policy):
        x = {"color": color, "translation": translation, "cutout": cutout}[p](x, gen)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x

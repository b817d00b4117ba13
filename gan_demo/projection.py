"""Projection: find the latent whose generated image is closest to a given picture (GAN inversion).

The checkpoints hold only generators, so the loss is one we can compute with nothing else: a pixel loss (mean
squared error) plus a multi-scale term, mean absolute differences of the pixels and of their horizontal and
vertical gradients at full, half and quarter resolution (edges and coarse layout count, not only exact pixels).

Search: `starts` starting points per class, each the best of a few seeded prior draws (forward passes only),
then Adam on z with a cosine-decayed step size. Every quarter of the steps the worse half of the candidates is
dropped (successive halving), so most of the compute goes to the most promising start. A mild penalty keeps
|z| near its typical value (Gaussian prior) or z inside [-1, 1] (uniform prior), so the latent stays one the
generator was trained on and behaves in Explore and Interpolate. For a conditional model every class starts;
after the first round only the class that fits best goes on (it is reported, with each class's error then).

    p = load_generator("mnist-cdcgan").project("my_digit.png")
    p.error_text, p.label                  # honest: DCGANs reconstruct only roughly
    p.save("me")                           # me.npy (1×z_dim) + me.json (model, label, error)
    g.sample(latents="me.npy")             # the same picture again (the label comes from me.json)
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .latents import sample_latents
from .render import to_uint8
from .user_image import fit_to_model, read_image

STEPS = 200                 # Adam steps of the winning start (the others stop earlier)
STARTS = 8                  # starting points per class
SCREEN = 8                  # prior draws screened (forward pass only) for each starting point
LR = 0.08                   # Adam step size at the start (cosine-decayed to 5 % of it)
SCALES = 3                  # full, 1/2, 1/4 resolution for the multi-scale term
NORM_WEIGHT = 0.02          # penalty on |z| straying from its typical length


@dataclass
class Projection:
    """The result: the latent (1×z_dim, CPU), the class for conditional models, the reconstruction and the
    picture it was fitted to (uint8 H×W×C), and how close they are."""
    model: str
    latent: torch.Tensor
    label: int | None
    reconstruction: np.ndarray
    target: np.ndarray
    mae: float                      # mean absolute pixel error, as a fraction of the full 0…255 range
    psnr: float                     # dB, on 0…255
    steps: int                      # Adam steps the winner took
    seconds: float
    stopped: bool = False           # the stop flag ended it early: the best so far
    notes: list[str] = field(default_factory=list)         # how the picture was converted
    class_errors: dict[int, float] = field(default_factory=dict)   # conditional: error per class, first round

    @property
    def error_text(self) -> str:
        return (f"mean pixel error {self.mae * 100:.1f}% of the range (PSNR {self.psnr:.1f} dB)"
                f"{' — stopped early' if self.stopped else ''}")

    def metadata(self) -> dict:
        return {"model": self.model, "label": self.label, "latent_dim": int(self.latent.shape[1]),
                "mean_pixel_error": round(self.mae, 5), "psnr_db": round(self.psnr, 2), "steps": self.steps,
                "stopped_early": self.stopped, "notes": self.notes,
                "usage": "load_generator(model).sample(latents='<this file>.npy')"}

    def save(self, stem) -> tuple[Path, Path]:
        """<stem>.npy (float32 1×z_dim) and <stem>.json (model name, label, error); returns both paths."""
        stem = Path(stem)
        stem = stem.with_suffix("") if stem.suffix in (".npy", ".json") else stem
        npy, meta = stem.parent / f"{stem.name}.npy", stem.parent / f"{stem.name}.json"
        np.save(npy, self.latent.numpy().astype(np.float32))
        meta.write_text(json.dumps(self.metadata(), indent=1) + "\n")
        return npy, meta


def load_latents(path) -> tuple[torch.Tensor, dict]:
    """A saved latent: <name>.npy (N×z_dim, or z_dim) and, if present, the <name>.json beside it (model, label).
    Raises ValueError with one line when the file is not such an array."""
    path = Path(path)
    npy = path.with_suffix(".npy") if path.suffix == ".json" else path
    try:
        z = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{npy.name}: not a latent file (.npy of numbers): {str(e).splitlines()[0]}") from None
    if not isinstance(z, np.ndarray):               # an .npz archive of several arrays
        raise ValueError(f"{npy.name}: expected one array (.npy), got an archive of several")
    if z.ndim == 1:
        z = z[None]
    if z.ndim != 2 or z.dtype.kind not in "fiu" or not np.isfinite(z).all():
        raise ValueError(f"{npy.name}: expected an N×z_dim array of finite numbers, got shape {z.shape}")
    meta_path = npy.with_suffix(".json")
    meta = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (ValueError, UnicodeDecodeError):
            raise ValueError(f"{meta_path.name}: not valid JSON") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{meta_path.name}: expected a JSON object (model, label…), got a {type(meta).__name__}")
    return torch.from_numpy(z.astype(np.float32)), meta


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def image_distance(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image loss (N,) between N×C×H×W images and a 1×C×H×W target, both in [-1, 1]."""
    loss = (x - target).square().mean((1, 2, 3))
    for s in range(SCALES):
        if s:
            x, target = F.avg_pool2d(x, 2), F.avg_pool2d(target, 2)
        loss = loss + (x - target).abs().mean((1, 2, 3))
        for gx, gt in zip(_gradients(x), _gradients(target)):
            loss = loss + (gx - gt).abs().mean((1, 2, 3))
    return loss


def _prior_penalty(z: torch.Tensor, dist: str) -> torch.Tensor:
    if dist == "uniform":
        return torch.zeros(len(z), device=z.device)       # clamped to [-1, 1] instead
    return (z.norm(dim=1) / math.sqrt(z.shape[1]) - 1).square()


@contextlib.contextmanager
def _cpu_threads(n: int | None):
    """torch's CPU threads for this calling thread, restored afterwards. Threads started meanwhile get it too (see
    devices.use_process_threads, which the Train tab's runs call)."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def project(g, image, *, steps: int = STEPS, starts: int = STARTS, seed: int = 0, label: int | None = None,
            progress: Callable[[int, int, float], None] | None = None, stop=None,
            threads: int | None = 1) -> Projection:
    """Fit z (and, for a conditional model, the class) so that g's image matches `image` (a path, bytes, PIL
    image or array; see user_image.read_image). `progress(step, total, best_loss)` is called as it goes;
    `stop` (a threading.Event or any callable returning True) ends it early with the best latent so far.
    `label` fixes the class of a conditional model instead of trying them all. `threads`: CPU threads while it
    runs (None: leave torch's setting). One is the default: the batches are small, and on this project's busy
    2-core machine one thread took 11 s where two took 51 s (scripts/time_projection.py)."""
    with _cpu_threads(threads if g.device.type == "cpu" else None):
        return _project(g, image, steps, starts, seed, label, progress, stop)


def _project(g, image, steps, starts, seed, label, progress, stop) -> Projection:
    t0 = time.perf_counter()
    e = g.entry
    if e.is_text:
        raise ValueError(f"{g.name} is a text model: only image models can project a picture")
    if not (isinstance(steps, int) and 1 <= steps <= 5000 and isinstance(starts, int) and 1 <= starts <= 64):
        raise ValueError("steps must be 1…5000 and starts 1…64")
    k = e.num_classes
    if label is not None and not (k and isinstance(label, (int, np.integer)) and 0 <= label < k):
        raise ValueError(f"label must be a class 0…{k - 1}" if k else f"{g.name} is not a conditional model")
    notes: list[str] = []
    picture, notes = read_image(image)
    c, res = e.output_shape[0], e.output_shape[1]
    target = fit_to_model(picture, res, c, digits=e.dataset == "mnist", notes=notes).to(g.device)
    is_stopped = (stop.is_set if hasattr(stop, "is_set") else stop) or (lambda: False)

    classes = [int(label)] if label is not None else list(range(k)) if k else [None]
    gen = torch.Generator().manual_seed(seed)
    draw = lambda n: sample_latents(n, e.latent_dim, e.latent_dist, gen)      # noqa: E731

    def render(z, labels):
        return g.net(z, labels if k else None)

    # starting points: for each class, the best of SCREEN prior draws per start (forward passes, no gradients)
    zs, ls = [], []
    with torch.no_grad():
        for cls in classes:
            cand = draw(starts * SCREEN).to(g.device)
            lab = torch.full((len(cand),), cls or 0, device=g.device)
            d = torch.cat([image_distance(render(cand[i:i + 64], lab[i:i + 64]), target)
                           for i in range(0, len(cand), 64)])
            best = d.view(starts, SCREEN).argmin(1) + torch.arange(starts, device=d.device) * SCREEN
            zs.append(cand[best])
            ls.append(lab[best])
    z, labels = torch.cat(zs), torch.cat(ls)

    # Adam by hand: candidates are dropped as it goes, and their moments must go with them
    m, v = torch.zeros_like(z), torch.zeros_like(z)
    # rounds: first (conditional) only the best class's starts go on, then the worse half is dropped each time
    rounds = (len(classes) > 1) + math.ceil(math.log2(starts))
    prune_at = {max(1, round(steps * (r + 1) / (rounds + 1))) for r in range(rounds)}
    class_errors: dict[int, float] = {}
    best_loss, done, stopped = float("inf"), 0, False
    for step in range(1, steps + 1):
        if is_stopped():
            stopped = True
            break
        z.requires_grad_(True)
        with torch.enable_grad():
            per = image_distance(render(z, labels), target) + NORM_WEIGHT * _prior_penalty(z, e.latent_dist)
            grad, = torch.autograd.grad(per.sum(), z)
        z = z.detach()
        lr = LR * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps)))
        m.mul_(0.9).add_(grad, alpha=0.1)
        v.mul_(0.999).addcmul_(grad, grad, value=0.001)
        z = z - lr * (m / (1 - 0.9 ** step)) / ((v / (1 - 0.999 ** step)).sqrt() + 1e-8)
        if e.latent_dist == "uniform":
            z = z.clamp(-1, 1)
        done = step
        per = per.detach()
        best_loss = float(per.min())
        if step in prune_at and len(z) > 1:
            if len(classes) > 1 and not class_errors:
                class_errors = {cls: float(per[labels == cls].min()) for cls in classes}
                keep = (labels == labels[per.argmin()]).nonzero().flatten()
            else:
                keep = per.argsort()[:max(1, len(z) // 2)]
            z, labels, m, v = z[keep], labels[keep], m[keep], v[keep]
        if progress:
            progress(step, steps, best_loss)

    # the final answer is measured afresh on the updated latents
    with torch.no_grad():
        per = image_distance(render(z, labels), target) + NORM_WEIGHT * _prior_penalty(z, e.latent_dist)
        i = int(per.argmin())
        z_best, lab_best = z[i:i + 1].cpu(), int(labels[i]) if k else None
        recon = render(z[i:i + 1], labels[i:i + 1]).float().cpu()
    tgt = target.float().cpu()
    diff = (recon - tgt).abs() / 2                       # [-1, 1] → fraction of the 0…255 range
    mse = float(diff.square().mean())
    psnr = 10 * math.log10(1 / mse) if mse > 0 else float("inf")
    if k and not class_errors and len(classes) > 1:      # stopped before the first round ended
        class_errors = {cls: float(per[labels == cls].min()) for cls in classes if (labels == cls).any()}
    return Projection(g.name, z_best, lab_best, to_uint8(recon)[0], to_uint8(tgt)[0], float(diff.mean()), psnr,
                      done, time.perf_counter() - t0, stopped, notes, class_errors)


__all__ = ["Projection", "image_distance", "load_latents", "project"]

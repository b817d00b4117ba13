"""GANSpace-style latent directions (Härkönen et al. 2020): PCA of an early layer's activations over many
samples, carried back to z by linear regression, so each direction is a vector in latent space."""
from __future__ import annotations

import functools
import threading

import torch

from .latents import sample_latents


@torch.no_grad()
def compute_directions(net, z_dim: int, *, num_classes: int = 0, k: int = 10, n: int = 4000,
                       dist: str = "normal", seed: int = 0, device="cpu", batch: int = 500) -> dict:
    layer = net.get_submodule(net.feature_layer)
    feats, me = [], threading.get_ident()
    # only this call's forwards: the app's other requests may sample from the same network meanwhile
    hook = layer.register_forward_hook(
        lambda m, i, o: feats.append(o.flatten(1).float().cpu()) if threading.get_ident() == me else None)
    g = torch.Generator().manual_seed(seed)
    zs = sample_latents(n, z_dim, dist, g)
    labels = torch.randint(0, max(num_classes, 1), (n,), generator=g)
    was_training = net.training
    net.eval()
    try:
        for i in range(0, n, batch):
            net(zs[i:i + batch].to(device), labels[i:i + batch].to(device) if num_classes else None)
    finally:
        hook.remove()
        net.train(was_training)
    y = torch.cat(feats)
    y = y - y.mean(0)
    k = min(k, z_dim, y.shape[1])
    with torch.random.fork_rng():               # pca_lowrank draws from the global generator: seed it, so the
        torch.manual_seed(seed)                 # same checkpoint always gets the same directions (and signs)
        _, s, v = torch.pca_lowrank(y, q=k + 4, center=False, niter=4)
    coords = y @ v[:, :k]                                   # n×k coordinates on the principal axes
    # regress z on the coordinates: z ≈ coords·U, so U's rows are latent directions for each axis
    u = torch.linalg.lstsq(coords, zs - zs.mean(0)).solution   # k×z_dim
    u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-8)
    explained = (s[:k] ** 2 / (y.pow(2).sum())).tolist()
    return {"vectors": u, "layer": net.feature_layer, "explained_variance": explained,
            "labels": [f"direction {i + 1}" for i in range(k)], "n_samples": n}


# --- names: what moving along a direction does to the pictures, measured --------------------------------------
# Each attribute: a per-image measurement and the words for its low and high ends. A direction is named after the
# attributes it moves most, in units of their spread over ordinary samples, so names come from the pictures.
class _Pictures:
    """A batch of pictures (N×C×H×W in [-1, 1]) and what several attributes share, computed once per batch."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    @functools.cached_property
    def luma(self) -> torch.Tensor:                 # N×H×W in [0, 1]
        x = (self.x.clamp(-1, 1) + 1) / 2
        return x[:, 0] if x.shape[1] == 1 else 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]

    @functools.cached_property
    def moments(self):
        """Ink-weighted centre and second moments of each picture (y grows downwards)."""
        w = self.luma / self.luma.sum((1, 2), keepdim=True).clamp_min(1e-6)
        h, wd = w.shape[1:]
        ys = torch.linspace(-1, 1, h).view(1, h, 1)
        xs = torch.linspace(-1, 1, wd).view(1, 1, wd)
        cx, cy = (w * xs).sum((1, 2)), (w * ys).sum((1, 2))
        dx, dy = xs - cx.view(-1, 1, 1), ys - cy.view(-1, 1, 1)
        return cx, cy, (w * dx * dx).sum((1, 2)), (w * dy * dy).sum((1, 2)), (w * dx * dy).sum((1, 2))


def _border(p: _Pictures):
    """Brightness of the outer eighth of the picture relative to its inside (the background against the subject)."""
    l, k = p.luma, max(1, p.x.shape[-1] // 8)
    inside = l[:, k:-k, k:-k]
    return (l.sum((1, 2)) - inside.sum((1, 2))) / (l[0].numel() - inside[0].numel()) - inside.mean((1, 2))


def _half_difference(l: torch.Tensor) -> torch.Tensor:
    """Left half's brightness minus the right half's."""
    return l[..., : l.shape[-1] // 2].mean((1, 2)) - l[..., l.shape[-1] // 2:].mean((1, 2))


DIGIT_ATTRIBUTES = {    # white strokes on black: brightness is ink
    "ink": (lambda p: p.luma.mean((1, 2)), ("thin", "bold")),
    "slant": (lambda p: -p.moments[4] / p.moments[3].clamp_min(1e-6), ("leans left", "leans right")),
    "width": (lambda p: p.moments[2].sqrt(), ("narrow", "wide")),
    "height": (lambda p: p.moments[3].sqrt(), ("short", "tall")),
    "x": (lambda p: p.moments[0], ("shifted left", "shifted right")),
    "y": (lambda p: p.moments[1], ("shifted up", "shifted down")),
}
COLOUR_ATTRIBUTES = {   # regional ones are relative to the whole picture, so plain brightness does not move them
    "brightness": (lambda p: p.luma.mean((1, 2)), ("dark", "bright")),
    "contrast": (lambda p: p.luma.flatten(1).std(1), ("flat", "contrasty")),
    "warmth": (lambda p: (p.x[:, 0] - p.x[:, 2]).mean((1, 2)), ("cool colours", "warm colours")),
    "saturation": (lambda p: (p.x.amax(1) - p.x.amin(1)).mean((1, 2)), ("grey", "colourful")),
    "background": (_border, ("dark background", "light background")),
    "side": (lambda p: _half_difference(p.luma), ("brighter right side", "brighter left side")),
    "top": (lambda p: p.luma[:, : p.luma.shape[1] // 4].mean((1, 2)) - p.luma.mean((1, 2)),
            ("dark top", "light top")),
}


def _measure(attributes: dict, x: torch.Tensor) -> dict:
    """Each attribute's per-picture values for a batch of pictures."""
    p = _Pictures(x)
    return {k: f(p) for k, (f, _) in attributes.items()}


def _ends(words: tuple[str, str], effect: float) -> str:
    """"low ↔ high" in the slider's order: the end that the slider's low side shows comes first."""
    low, high = words
    return f"{low} ↔ {high}" if effect > 0 else f"{high} ↔ {low}"


@torch.no_grad()
def name_directions(generate, vectors: torch.Tensor, z_dim: int, *, num_classes: int = 0, dist: str = "normal",
                    classify=None, n: int = 200, amount: float = 2.5, min_effect: float = 0.5,
                    seed: int = 1) -> tuple[list[str], list[dict]]:
    """A short name per direction ("thin ↔ bold"; low end ↔ high end of the slider) and the measured effects.

    `generate(z, labels)` returns N×C×H×W pictures in [-1, 1]. Each direction moves `n` seeded latents by
    ±`amount` and compares the pictures' attributes; an effect is the mean change divided by the attribute's spread
    over the unmoved pictures. Attributes moving ≥ `min_effect` (and ≥ 0.6× the strongest) name the direction, and
    the next one (if ≥ half of `min_effect`) when the name would repeat an earlier direction's; none leaves
    "direction k". `classify(pictures)` → N×classes probabilities adds "3s ↔ 8s" when the class mix shifts by
    ≥ 15 points (the digits)."""
    g = torch.Generator().manual_seed(seed)
    z = sample_latents(n, z_dim, dist, g)
    labels = torch.randint(0, num_classes, (n,), generator=g) if num_classes else None
    base = generate(z, labels)
    attributes = DIGIT_ATTRIBUTES if base.shape[1] == 1 else COLOUR_ATTRIBUTES
    spread = {k: v.std().clamp_min(1e-6) for k, v in _measure(attributes, base).items()}
    names, effects = [], []
    for i, u in enumerate(vectors.float().cpu()):
        lo, hi = generate(z - amount * u, labels), generate(z + amount * u, labels)
        m_lo, m_hi = _measure(attributes, lo), _measure(attributes, hi)
        effect = {k: ((m_hi[k] - m_lo[k]).mean() / spread[k]).item() for k in attributes}
        ranked = sorted(attributes, key=lambda k: -abs(effect[k]))
        chosen = [k for k in ranked if abs(effect[k]) >= max(min_effect, 0.6 * abs(effect[ranked[0]]))]
        parts = []
        if classify is not None and not num_classes:
            shift = classify(hi).mean(0) - classify(lo).mean(0)
            effect["class_shift"] = shift.tolist()
            if shift.max() >= 0.15:
                parts.append(f"{shift.argmin().item()}s ↔ {shift.argmax().item()}s")
        parts += [_ends(attributes[k][1], effect[k]) for k in chosen][:2 - len(parts)]     # at most two parts
        name = ", ".join(parts)
        extra = ranked[len(chosen)] if len(chosen) < len(ranked) else None
        if name in names and len(parts) < 2 and extra and abs(effect[extra]) >= min_effect / 2:
            name += ", " + _ends(attributes[extra][1], effect[extra])      # tell a repeated name apart
        names.append(name or f"direction {i + 1}")
        effects.append({k: round(v, 3) if isinstance(v, float) else [round(p, 3) for p in v] for k, v in effect.items()})
    return names, effects


# --- names given by a person -----------------------------------------------------------------------------------
# Colour statistics cannot say "smiles" or "man ↔ woman"; a person looking at a direction sheet can. Their names
# live beside the measured ones (directions["looked_at"]: {"3": "man ↔ woman"}, by slider number), which stay.
MAX_NAME_CHARS = 60


def shown_labels(d: dict) -> list[str]:
    """The names the app and the model card show: a person's name where one was given, else the measured one."""
    labels, looked = d.get("labels"), d.get("looked_at")
    labels, looked = labels if isinstance(labels, list) else [], looked if isinstance(looked, dict) else {}
    return [str(looked.get(str(i + 1)) or label) for i, label in enumerate(labels)]


def check_name(text: str) -> str:
    """A person's name for a direction: one line of at most MAX_NAME_CHARS characters (a slider label)."""
    text = " ".join(str(text).split())
    if "|" in text:
        raise ValueError("a direction's name cannot hold '|' (it is a cell of the model card's table)")
    if len(text) > MAX_NAME_CHARS:
        raise ValueError(f"a direction's name is at most {MAX_NAME_CHARS} characters (a slider label), "
                         f"got {len(text)}")
    return text


def names_still_apply(old: dict, new: dict, min_cosine: float = 0.99) -> dict[str, str]:
    """The names a person gave to `old`'s directions whose direction `new` still has, same way round (cosine ≥
    `min_cosine`): measuring the same weights again keeps them; other weights, or a flipped sign, drop them."""
    looked, a, b = old.get("looked_at"), old.get("vectors"), new.get("vectors")
    if not isinstance(looked, dict) or not looked or a is None or b is None:
        return {}
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    if a.shape[1:] != b.shape[1:]:
        return {}
    keep = {}
    for k, text in looked.items():
        i = int(k) - 1 if str(k).isdigit() else -1
        if 0 <= i < min(len(a), len(b)) and torch.cosine_similarity(a[i], b[i], dim=0) >= min_cosine:
            keep[k] = text
    return keep

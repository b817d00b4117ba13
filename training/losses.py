"""GAN losses on raw discriminator outputs (logits / critic scores), always computed in fp32.

bce     non-saturating GAN (Goodfellow et al.): D: -log D(x) - log(1 - D(G(z))); G: -log D(G(z)),
        written with softplus on logits (= sigmoid + BCE, numerically stable)
lsgan   least squares (Mao et al.): D: ½(D(x)-1)² + ½D(G(z))²; G: ½(D(G(z))-1)²
wgangp  Wasserstein with gradient penalty (Gulrajani et al.): D: D(G(z)) - D(x) + λ(‖∇D(x̂)‖-1)²; G: -D(G(z))

R1 (Mescheder et al. 2018) may be added to bce or lsgan: D's loss + γ/2·E‖∇_x D(x)‖² on real images only, which
keeps D flat where the data is, so G and D stop circling each other there.
"""
import torch
import torch.nn.functional as F

LOSSES = ("bce", "lsgan", "wgangp")


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    real, fake = real.float(), fake.float()
    if kind == "bce":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "lsgan":
        return 0.5 * (real - 1).pow(2).mean() + 0.5 * fake.pow(2).mean()
    if kind == "wgangp":
        return fake.mean() - real.mean()
    raise ValueError(f"unknown loss '{kind}' (known: {', '.join(LOSSES)})")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    fake = fake.float()
    if kind == "bce":
        return F.softplus(-fake).mean()
    if kind == "lsgan":
        return 0.5 * (fake - 1).pow(2).mean()
    if kind == "wgangp":
        return -fake.mean()
    raise ValueError(f"unknown loss '{kind}' (known: {', '.join(LOSSES)})")


def _input_gradient(critic, x: torch.Tensor, labels) -> torch.Tensor:
    """∇_x D(x), one flattened row per sample, kept in the graph so that a penalty on it trains D. All in fp32, the
    gradient too: with create_graph the backward pass runs as ordinary ops, which an enclosing bf16 autocast would
    otherwise cast (an error of ~1e-3 in a penalty that is meant to pin the norm at 1)."""
    x = x.detach().float().requires_grad_(True)
    with torch.autocast(x.device.type, enabled=False):
        (grad,) = torch.autograd.grad(critic(x, labels).float().sum(), x, create_graph=True)
        return grad.flatten(1)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, labels, gen: torch.Generator | None = None,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """E[(‖∇_x̂ D(x̂)‖₂ - 1)²] at random points x̂ = εx + (1-ε)x̃ on lines between real and generated samples.
    ε ~ U[0, 1) per sample: drawn from `gen`, or given as `eps` (N×1…1; the trainer draws it for the global batch)."""
    if eps is None:
        eps = torch.rand(real.shape[0], *[1] * (real.ndim - 1), generator=gen, device=gen.device)
    grad = _input_gradient(critic, eps * real.float() + (1 - eps) * fake.float(), labels)
    return (grad.norm(dim=1) - 1).pow(2).mean()


def r1_penalty(critic, real: torch.Tensor, labels) -> torch.Tensor:
    """E[‖∇_x D(x)‖₂²] on real images x."""
    return _input_gradient(critic, real, labels).pow(2).sum(dim=1).mean()

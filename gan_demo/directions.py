"""GANSpace-style latent directions (Härkönen et al. 2020): PCA of an early layer's activations over many
samples, carried back to z by linear regression, so each direction is a vector in latent space."""
from __future__ import annotations

import torch

from .latents import sample_latents


@torch.no_grad()
def compute_directions(net, z_dim: int, *, num_classes: int = 0, k: int = 10, n: int = 4000,
                       dist: str = "normal", seed: int = 0, device="cpu", batch: int = 500) -> dict:
    layer = net.get_submodule(net.feature_layer)
    feats = []
    hook = layer.register_forward_hook(lambda m, i, o: feats.append(o.flatten(1).float().cpu()))
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
    _, s, v = torch.pca_lowrank(y, q=k + 4, center=False, niter=4)
    coords = y @ v[:, :k]                                   # n×k coordinates on the principal axes
    # regress z on the coordinates: z ≈ coords·U, so U's rows are latent directions for each axis
    u = torch.linalg.lstsq(coords, zs - zs.mean(0)).solution   # k×z_dim
    u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-8)
    explained = (s[:k] ** 2 / (y.pow(2).sum())).tolist()
    return {"vectors": u, "layer": net.feature_layer, "explained_variance": explained,
            "labels": [f"direction {i + 1}" for i in range(k)], "n_samples": n}

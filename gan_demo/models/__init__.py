"""The model zoo: architecture name → (generator class, discriminator class), both built from one config
(gan_demo.config: MLPConfig, DCGANConfig, TextConfig; a plain mapping is read into the architecture's config)."""
import torch
from torch import nn

from ..config import config_from_dict
from .common import init_weights
from .dcgan import DCDiscriminator, DCGenerator
from .mlp import MLPDiscriminator, MLPGenerator
from .text import TextCritic, TextGenerator, mask_after_eos

ARCHITECTURES = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGenerator, DCDiscriminator),
    "text_conv": (TextGenerator, TextCritic),
}


def _classes(arch: str):
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture '{arch}' (known: {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[arch]


def _build(arch: str, which: int, config, generator):
    net = _classes(arch)[which](config_from_dict(arch, config))
    if generator is not None:           # the initial weights from this generator, not torch's global one
        init_weights(net, generator)
    return net


def build_generator(arch: str, config, generator: torch.Generator | None = None) -> nn.Module:
    return _build(arch, 0, config, generator)


def build_discriminator(arch: str, config, generator: torch.Generator | None = None) -> nn.Module:
    return _build(arch, 1, config, generator)


def count_parameters(net) -> int:
    """Learned parameters of a module, or of its state dict (batch-norm statistics and counters excluded)."""
    if isinstance(net, nn.Module):
        return sum(p.numel() for p in net.parameters())
    return sum(v.numel() for k, v in net.items() if v.is_floating_point() and "running" not in k)


__all__ = ["ARCHITECTURES", "build_generator", "build_discriminator", "count_parameters", "mask_after_eos"]

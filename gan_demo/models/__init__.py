"""The model zoo: architecture name → (generator class, discriminator class), both built from one config dict."""
from torch import nn

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


def build_generator(arch: str, config: dict) -> nn.Module:
    return _classes(arch)[0](config)


def build_discriminator(arch: str, config: dict) -> nn.Module:
    return _classes(arch)[1](config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["ARCHITECTURES", "build_generator", "build_discriminator", "count_parameters", "mask_after_eos"]

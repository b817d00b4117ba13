"""The model zoo: architecture name → (generator class, discriminator class), both built from one config
(gan_demo.config: MLPConfig, DCGANConfig, TextConfig; a plain mapping is read into the architecture's config).

A config may come from a checkpoint file (outside input), so every build checks it first (`check_config`): known
numbers within CONFIG_BOUNDS, then the network counted on the meta device (no memory) and refused above
MAX_PARAMETERS, so that no file can make the server allocate gigabytes or build millions of layers.
"""
import torch
from torch import nn

from ..config import D_NORMS, config_from_dict
from .common import init_weights
from .dcgan import DCDiscriminator, DCGenerator
from .mlp import MLPDiscriminator, MLPGenerator
from .text import TextCritic, TextGenerator, mask_after_eos

ARCHITECTURES = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGenerator, DCDiscriminator),
    "text_conv": (TextGenerator, TextCritic),
}


# Far above every model here (the largest, celeba128-wgangp, has 13 M generator parameters), far below trouble.
CONFIG_BOUNDS = {"z_dim": (1, 4096), "num_classes": (0, 1000), "channels": (1, 4), "resolution": (4, 256),
                 "ngf": (1, 1024), "ndf": (1, 1024), "seq_len": (2, 1024), "dim": (1, 4096), "n_blocks": (0, 64),
                 "latent_code": (0, 1000)}
HIDDEN_LAYERS = (16, 65536)          # g_hidden / d_hidden: at most this many layers, each at most this wide
MAX_VOCAB = 4096
MAX_PARAMETERS = 64_000_000          # 256 MB in fp32


def _too_big(what: str, value) -> ValueError:
    return ValueError(f"architecture config {what}={str(value)[:40]} is out of bounds")


def check_config(arch: str, config, part: int = 0) -> None:
    """ValueError unless `config` builds a network of a sane size (part 0: the generator, 1: the discriminator)."""
    cls = _classes(arch)[part]
    if not isinstance(config, dict):
        raise ValueError(f"architecture config must be a JSON object, not {type(config).__name__}")
    for key, (lo, hi) in CONFIG_BOUNDS.items():
        v = config.get(key, lo)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise _too_big(key, v)
    for key in ("g_hidden", "d_hidden"):
        layers = config.get(key, [])
        if not isinstance(layers, list) or len(layers) > HIDDEN_LAYERS[0] or any(
                isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= HIDDEN_LAYERS[1] for h in layers):
            raise _too_big(key, layers)
    p = config.get("d_dropout", 0.0)
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p < 1:
        raise ValueError(f"architecture config d_dropout={str(p)[:40]} must be a probability from 0 to below 1")
    if "d_norm" in config and config["d_norm"] not in D_NORMS:
        raise ValueError(f"architecture config d_norm={str(config['d_norm'])[:40]!r} must be one of "
                         f"{', '.join(D_NORMS)}")
    if config.get("latent_code", 0) > config.get("z_dim", 1):
        raise ValueError(f"architecture config latent_code={config['latent_code']} reads more entries than z has "
                         f"(z_dim={config.get('z_dim')})")
    vocab = config.get("vocab", [])
    if not isinstance(vocab, list) or len(vocab) > MAX_VOCAB or not all(isinstance(c, str) for c in vocab):
        raise _too_big("vocab", f"<{len(vocab) if isinstance(vocab, list) else type(vocab).__name__} entries>")
    with torch.device("meta"):
        n = count_parameters(cls(config_from_dict(arch, config)))
    if n > MAX_PARAMETERS:
        raise ValueError(f"architecture config would build {n / 1e6:,.0f} M parameters (at most "
                         f"{MAX_PARAMETERS / 1e6:,.0f} M here)")


def _classes(arch: str):
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture '{arch}' (known: {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[arch]


def _build(arch: str, which: int, config, generator):
    config = config_from_dict(arch, config)
    check_config(arch, config.to_dict(), which)
    net = _classes(arch)[which](config)
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


__all__ = ["ARCHITECTURES", "MAX_PARAMETERS", "build_generator", "check_config", "build_discriminator", "count_parameters", "mask_after_eos"]

"""Architecture configurations: one frozen dataclass per architecture, holding its settings and their defaults.

    MLPConfig      the vanilla and conditional GANs' multilayer perceptrons      (arch "mlp")
    DCGANConfig    the table-driven DCGAN, 28/32/64/128 pixels, and its critic   (arch "dcgan")
    TextConfig     the character-level 1D-conv generator and critic             (arch "text_conv")

A registry entry holds one (generator and discriminator share it), a checkpoint's metadata stores it as JSON
(`to_dict`) and reading the file builds it again (`config_from_dict`); the plain dicts of older checkpoints read the
same way, their missing settings taking the defaults below. Configs are immutable: a variant is a new one
(`dataclasses.replace(cfg, ngf=32)`, or `entry.with_config(ngf=32)`). They also read like the mappings they
replace (`cfg["z_dim"]`, `cfg.get("num_classes", 0)`, `{**cfg}`); an unset optional setting (None) reads as absent.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ArchConfig(Mapping):
    def __getitem__(self, key: str):
        if key not in self._names() or getattr(self, key) is None:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return (k for k in self._names() if getattr(self, k) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict:
        """JSON-ready: tuples as lists, unset settings left out."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "ArchConfig":
        unknown = sorted(set(d) - set(cls._names()))
        if unknown:
            raise ValueError(f"{cls.__name__} has no setting {unknown[0]!r} (settings: {', '.join(cls._names())})")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class MLPConfig(ArchConfig):
    z_dim: int
    resolution: int
    channels: int
    num_classes: int = 0                         # > 0: conditional (one-hot label joined to z and to D's input)
    g_hidden: tuple = (128, 256, 512)            # generator widths, Linear + BatchNorm1d + ReLU each
    d_hidden: tuple = (512, 256, 128)            # discriminator widths, Linear (+ norm) + LeakyReLU each
    d_dropout: float = 0.0                       # dropout after each of D's blocks while training (as in the GAN paper)
    d_norm: str = "none"                         # one of D_NORMS
    latent_code: int = 0                         # > 0: a categorical code read from z (see models.common.read_code)


# the discriminator's normalisation: batch norm in its inner blocks, none, or spectral normalisation of every layer
# but the latent-code head
# (Miyato et al. 2018: each weight divided by its largest singular value, so D is 1-Lipschitz per layer)
D_NORMS = ("batch", "none", "spectral")


@dataclass(frozen=True)
class DCGANConfig(ArchConfig):
    z_dim: int
    resolution: int                              # 28, 32, 64 or 128
    channels: int
    num_classes: int = 0                         # > 0: conditional DCGAN
    ngf: int = 64                                # generator width at the last upsampling (doubling towards 4×4)
    ndf: int = 64                                # discriminator width at the first block
    d_norm: str = "batch"                        # one of D_NORMS: "none" for a WGAN-GP critic
    latent_code: int = 0                         # > 0: a categorical code read from z (see models.common.read_code)


@dataclass(frozen=True)
class TextConfig(ArchConfig):
    z_dim: int = 64
    seq_len: int = 64                            # characters per sequence, <SOS> and <EOS> included
    dim: int = 256                               # channels of the residual 1D-conv blocks
    n_blocks: int = 5
    vocab: tuple | None = None                   # the characters; None: text_codec.DEFAULT_VOCAB (set from the data)


CONFIGS: dict[str, type[ArchConfig]] = {"mlp": MLPConfig, "dcgan": DCGANConfig, "text_conv": TextConfig}


def config_from_dict(arch: str, config: Mapping) -> ArchConfig:
    """The typed config of an architecture from a mapping (a checkpoint's JSON, an older plain dict, a config)."""
    if arch not in CONFIGS:
        raise ValueError(f"unknown architecture '{arch}' (known: {', '.join(CONFIGS)})")
    cls = CONFIGS[arch]
    return config if type(config) is cls else cls.from_dict(config)

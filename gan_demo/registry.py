"""The catalogue of shipped models: one entry per name; everything else reads it. Entries are immutable (frozen
dataclasses, typed architecture configs from gan_demo.config, a read-only REGISTRY); a variant, such as a narrower
model a campaign trains, is a new entry: `entry.with_config(ngf=32)`, `entry.with_recipe(steps=100)`."""
from __future__ import annotations

import copy
import dataclasses
import types
from dataclasses import dataclass

from .config import ArchConfig, DCGANConfig, MLPConfig, TextConfig, config_from_dict

MNIST_LICENSE = "MNIST: CC BY-SA 3.0, Y. LeCun and C. Cortes (LeCun, Bottou, Bengio, Haffner 1998)"
CIFAR_LICENSE = ("CIFAR-10: Krizhevsky (2009), 'Learning Multiple Layers of Features from Tiny Images'; "
                 "no formal licence; trained on a JPEG (quality 75) copy")
CELEBA_LICENSE = ("CelebA (Liu et al., ICCV 2015): non-commercial research use only; this checkpoint is derived "
                  "data and is for non-commercial research only")
TEXT_LICENSE = "Mozilla Common Voice English sentences: CC0 1.0"

MNIST_CLASSES = [str(i) for i in range(10)]


@dataclass(frozen=True)
class Recipe:
    """Default training recipe of a model (the CLI can override steps/batch/lr)."""
    loss: str                    # "bce" (non-saturating), "lsgan" or "wgangp"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple = (0.5, 0.999)
    n_critic: int = 1            # discriminator steps per generator step
    gp_weight: float = 10.0      # WGAN-GP lambda
    gp_every: int = 1            # the penalty on every k-th critic step only, weighted k× (lazy, as StyleGAN2's R1)
    r1_gamma: float = 0.0        # bce/lsgan: R1 penalty γ/2·E‖∇D(x)‖² on real images (Mescheder et al. 2018); 0: none
    batch: int = 64
    steps: int = 5000
    ema: float = 0.999           # generator EMA decay (0 disables)
    flip: bool = False           # random horizontal flips (faces)
    label_smoothing: float = 0.0 # text GAN: smoothing of the real one-hots
    diffaug: str = ""            # DiffAugment policy before every D call, e.g. "color,translation,cutout"
    code_weight: float = 1.0     # with a latent code (config latent_code): weight of the code-reading loss (InfoGAN λ)
    lr_decay_from: int = 0       # from this step both learning rates fall linearly to 0 at `steps` (0: constant)
    top_k: float = 1.0           # G learns from the share of its batch that D scores highest only, that share falling
    top_k_decay: float = 0.99    # from 1 by top_k_decay per epoch of the data down to top_k (Sinha et al. 2020); 1: all
    log_every: int = 50
    sample_every: int = 500

    def lr_scale(self, step: int) -> float:
        """The learning rates' factor at `step`: 1 until lr_decay_from, then falling linearly to 0 at steps (the last
        step trains at 1/n). The trainer sets its rates from it; a card states it for its snapshot's step."""
        start, end = self.lr_decay_from, self.steps
        return 1.0 if not start or step < start else max(end - step, 0) / (end - start)

    def top_k_share(self, epochs: float) -> float:
        """The share of each generated batch that the generator's loss reads after `epochs` passes over the data."""
        return 1.0 if self.top_k >= 1 else max(self.top_k, self.top_k_decay ** epochs)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str          # gan, dcgan, wgangp, lsgan, cgan, cdcgan
    dataset: str         # mnist, cifar10, celeba64, celeba128, text
    arch: str            # key into gan_demo.models.ARCHITECTURES: mlp, dcgan, text_conv
    config: ArchConfig   # architecture config (shared by G and D); a mapping given here becomes the arch's config
    recipe: Recipe
    description: str
    license: str
    latent_dist: str = "normal"   # "normal" or "uniform" (in [-1, 1))
    class_names: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "config", config_from_dict(self.arch, self.config))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if not isinstance(self.recipe, Recipe):
            raise TypeError(f"recipe must be a Recipe, got {type(self.recipe).__name__}")

    def with_config(self, **changes) -> "ModelEntry":
        """This entry with some architecture settings changed (e.g. narrower widths, a text vocabulary)."""
        return dataclasses.replace(self, config=dataclasses.replace(self.config, **changes))

    def with_recipe(self, **changes) -> "ModelEntry":
        return dataclasses.replace(self, recipe=dataclasses.replace(self.recipe, **changes))

    @property
    def latent_dim(self) -> int:
        return self.config.z_dim

    @property
    def num_classes(self) -> int:
        return getattr(self.config, "num_classes", 0)

    @property
    def is_text(self) -> bool:
        return self.dataset == "text"

    @property
    def output_shape(self) -> tuple:
        c = self.config
        if self.is_text:
            return (c.seq_len,)
        return (c.channels, c.resolution, c.resolution)

    @property
    def weights_file(self) -> str:
        return f"{self.name}.safetensors"

    def to_dict(self) -> dict:
        """JSON-ready (a checkpoint's `entry` metadata)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["config"] = self.config.to_dict()
        d["recipe"] = {**dataclasses.asdict(self.recipe), "betas": list(self.recipe.betas)}
        d["class_names"] = list(self.class_names)
        return d

    @staticmethod
    def from_dict(d: dict) -> "ModelEntry":
        """Back from to_dict(), also for older checkpoints (whose config is a plain dict)."""
        d = copy.deepcopy(d)
        recipe = d.pop("recipe")
        recipe["betas"] = tuple(recipe["betas"])
        return ModelEntry(recipe=Recipe(**recipe), **d)


def _arch(config: ArchConfig) -> str:
    return {MLPConfig: "mlp", DCGANConfig: "dcgan", TextConfig: "text_conv"}[type(config)]


def _mnist(name, family, config, recipe, description, latent_dist="normal"):
    config = dataclasses.replace(config, resolution=28, channels=1)
    return ModelEntry(name, family, "mnist", _arch(config), config, recipe, description, MNIST_LICENSE, latent_dist,
                      MNIST_CLASSES if config.num_classes else ())


def _cifar(name, family, config, recipe, description, latent_dist="normal"):
    config = dataclasses.replace(config, resolution=32, channels=3)
    return ModelEntry(name, family, "cifar10", _arch(config), config, recipe, description, CIFAR_LICENSE, latent_dist)


def _celeba(name, family, res, config, recipe, description):
    config = dataclasses.replace(config, resolution=res, channels=3)
    return ModelEntry(name, family, f"celeba{res}", "dcgan", config, recipe, description, CELEBA_LICENSE)


def _mlp(z_dim, g_hidden, d_hidden, num_classes=0) -> MLPConfig:
    return MLPConfig(z_dim, resolution=0, channels=0, num_classes=num_classes, g_hidden=tuple(g_hidden),
                     d_hidden=tuple(d_hidden))            # resolution and channels: set by the dataset's helper


def _dc(z_dim, ngf, ndf, d_norm, num_classes=0) -> DCGANConfig:
    return DCGANConfig(z_dim, resolution=0, channels=0, num_classes=num_classes, ngf=ngf, ndf=ndf, d_norm=d_norm)


_ENTRIES = [
    # --- MNIST -----------------------------------------------------------------------------------------------
    _mnist("mnist-gan", "gan", _mlp(100, [128, 256, 512], [512, 256, 128]),
           Recipe("bce", batch=64, steps=10000, sample_every=1000),
           "Vanilla GAN: MLP generator (Linear+BatchNorm1d+ReLU, tanh) and LeakyReLU MLP discriminator."),
    _mnist("mnist-dcgan", "dcgan", _dc(100, 64, 64, "batch"),
           Recipe("bce", batch=64, steps=3000),
           "DCGAN for 28x28 digits: transposed convolutions with batch norm; Adam lr 2e-4, beta1 0.5."),
    _mnist("mnist-wgangp", "wgangp", _dc(100, 32, 32, "none"),
           Recipe("wgangp", lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9), n_critic=5, batch=64, steps=2500),
           "WGAN-GP: DCGAN generator, critic without batch norm or sigmoid; 5 critic steps, lambda 10."),
    _mnist("mnist-lsgan", "lsgan", _dc(96, 64, 64, "batch"),
           Recipe("lsgan", batch=64, steps=3000),
           "Least-squares GAN: DC generator and discriminator with least-squares losses, uniform noise in [-1, 1).",
           latent_dist="uniform"),
    _mnist("mnist-cgan", "cgan", _mlp(100, [256, 512, 1024], [1024, 512, 256], num_classes=10),
           Recipe("bce", batch=64, steps=10000, sample_every=1000),
           "Conditional GAN: one-hot digit label concatenated to z and to the discriminator's input (MLPs)."),
    _mnist("mnist-cdcgan", "cdcgan", _dc(100, 64, 64, "batch", num_classes=10),
           Recipe("bce", batch=64, steps=4000),
           "Conditional DCGAN: one-hot label joined to z and as constant label maps to the discriminator."),
    # --- CIFAR-10 --------------------------------------------------------------------------------------------
    _cifar("cifar10-gan", "gan", _mlp(100, [256, 512, 1024], [1024, 512, 256]),
           Recipe("bce", batch=128, steps=30000, sample_every=2000),
           "Vanilla GAN on CIFAR-10: MLP generator and discriminator."),
    _cifar("cifar10-dcgan", "dcgan", _dc(100, 64, 64, "batch"),
           Recipe("bce", batch=128, steps=30000, sample_every=2000),
           "DCGAN for 32x32 colour images (3 transposed-conv upsamplings from 4x4)."),
    _cifar("cifar10-wgangp", "wgangp", _dc(128, 64, 64, "none"),
           Recipe("wgangp", lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9), n_critic=5, batch=64, steps=30000,
                  sample_every=2000),
           "WGAN-GP on CIFAR-10: DCGAN generator, critic without batch norm, Adam (0, 0.9), 5 critic steps."),
    _cifar("cifar10-lsgan", "lsgan", _dc(100, 64, 64, "batch"),
           Recipe("lsgan", batch=128, steps=30000, sample_every=2000),
           "LSGAN on CIFAR-10: least-squares losses with the DCGAN generator, uniform noise in [-1, 1).",
           latent_dist="uniform"),
    # --- CelebA faces ----------------------------------------------------------------------------------------
    _celeba("celeba64-dcgan", "dcgan", 64, _dc(100, 64, 64, "batch"),
            Recipe("bce", batch=128, steps=30000, flip=True, sample_every=2000),
            "DCGAN faces at 64x64 (the classic DCGAN generator and discriminator)."),
    _celeba("celeba128-dcgan", "dcgan", 128, _dc(100, 64, 64, "batch"),
            Recipe("bce", batch=128, steps=30000, flip=True, sample_every=2000),
            "DCGAN faces at 128x128: discriminator with batch norm in all but the first and last blocks."),
    _celeba("celeba128-wgangp", "wgangp", 128, _dc(128, 64, 64, "none"),
            Recipe("wgangp", lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9), n_critic=5, batch=64, steps=30000,
                   flip=True, sample_every=2000),
            "WGAN-GP faces at 128x128, z in R^128 (Algorithm 1 of Gulrajani et al.)."),
    # --- text ------------------------------------------------------------------------------------------------
    ModelEntry("text-wgangp", "wgangp", "text", "text_conv",
               TextConfig(z_dim=64, seq_len=64, dim=256, n_blocks=5),
               Recipe("wgangp", lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.9), n_critic=10, batch=64, steps=20000,
                      label_smoothing=0.1, ema=0.999, sample_every=1000),
               "Character-level WGAN-GP: residual 1D-conv generator emitting a softmax per position, 1D-conv critic.",
               TEXT_LICENSE),
]

REGISTRY: types.MappingProxyType[str, ModelEntry] = types.MappingProxyType({e.name: e for e in _ENTRIES})  # read-only


def list_models(dataset: str | None = None) -> list[str]:
    """Registry names, optionally only those of one dataset (e.g. "mnist", "text", "celeba128")."""
    return [n for n, e in REGISTRY.items() if dataset is None or e.dataset == dataset]


def get_entry(name: str) -> ModelEntry:
    if name not in REGISTRY:
        raise KeyError(f"unknown model '{name}'; known models: {', '.join(REGISTRY)}")
    return REGISTRY[name]

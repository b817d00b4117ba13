"""Pieces shared by the model zoo."""
import torch
from torch import nn
from torch.nn.utils import parametrize


def init_weights(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """DCGAN initialisation: weights ~ N(0, 0.02); batch-norm scale ~ N(1, 0.02), bias 0. Every parameter of the
    zoo's models is set here, drawn from `generator` (else torch's global generator)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            weight = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            nn.init.normal_(weight, 0.0, 0.02, generator=generator)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02, generator=generator)
            nn.init.zeros_(m.bias)


def normalised(layer: nn.Module, d_norm: str) -> nn.Module:
    """A discriminator layer under d_norm "spectral" (its weight divided by its largest singular value, estimated by
    one power iteration per training forward pass; Miyato et al. 2018), else the layer itself."""
    return nn.utils.parametrizations.spectral_norm(layer) if d_norm == "spectral" else layer


def one_hot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels.long(), num_classes).to(dtype)


def read_code(z: torch.Tensor, k: int) -> torch.Tensor:
    """The categorical code of latents z: the index of the largest of z's first k entries, uniform over k for
    z ~ N(0, I) or U[-1, 1). A generator with config `latent_code=k` is fed this one-hot beside z, and its discriminator
    learns to read the code back from the image (InfoGAN's mutual-information term, Chen et al. 2016). The jump at
    the code's boundaries lets an unconditional generator draw k separate clusters (e.g. digits) instead of
    passing through in-between shapes; the latent stays a plain z, so seeds, walks and sliders work unchanged."""
    return z[:, :k].argmax(1)


class GeneratorBase(nn.Module):
    """A generator maps z (N×z_dim) and optional labels (N,) to images in [-1, 1] (or text probabilities)."""
    #: the name of the submodule whose output the latent-direction PCA (GANSpace) reads: an attribute of the model
    #: (e.g. `features`, a parameter-free activation also placed in the layer stack), never an index into it
    feature_layer: str = "features"

    def __init__(self, config):
        super().__init__()
        self.config = config                     # a gan_demo.config dataclass (see build_generator)
        self.z_dim = config.z_dim
        self.num_classes = getattr(config, "num_classes", 0)
        self.latent_code = getattr(config, "latent_code", 0)
        self.in_features = self.z_dim + self.num_classes + self.latent_code     # the first layer's input

    def _with_labels(self, z, labels):
        parts = [z]
        if self.num_classes:
            if labels is None:
                raise ValueError("this is a conditional model: labels are required")
            parts.append(one_hot(labels, self.num_classes, z.dtype))
        if self.latent_code:
            parts.append(one_hot(read_code(z, self.latent_code), self.latent_code, z.dtype))
        return torch.cat(parts, dim=1) if len(parts) > 1 else z

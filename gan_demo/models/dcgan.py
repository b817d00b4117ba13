"""DCGAN (Radford et al.) for 28×28, 32×32, 64×64 and 128×128, plus its conditional and WGAN-GP variants.

Generator: z (as a 1×1 map) → ConvTranspose 4×4 → (BN, ReLU, stride-2 ConvTranspose)… → tanh. The widths halve
at each upsampling from `ngf·2^(k-1)`. For 28×28 the second layer uses a 3×3 kernel (4→7), as in the reference.
Discriminator: the mirror image with LeakyReLU(0.2); batch norm in every block but the first and the last
(`d_norm="batch"`), none at all for a WGAN-GP critic (`d_norm="none"`, the gradient penalty is per sample), or
every convolution but the code head's spectrally normalised (`d_norm="spectral"`).
Conditional (`num_classes>0`): the one-hot label joins z in G and enters D as constant label maps.
With a latent code (`latent_code=k`, see common.read_code) D has a second head that reads the code back (k logits).
"""
import torch
from torch import nn

from ..config import DCGANConfig
from .common import GeneratorBase, init_weights, normalised, one_hot


def _spatial_plan(resolution: int) -> list[tuple[int, int]]:
    """(kernel, padding) of each stride-2 layer from 4×4 up to the resolution."""
    if resolution == 28:
        return [(3, 1), (4, 1), (4, 1)]          # 4 → 7 → 14 → 28
    n = {32: 3, 64: 4, 128: 5}.get(resolution)
    if n is None:
        raise ValueError(f"DCGAN supports resolutions 28, 32, 64, 128, not {resolution}")
    return [(4, 1)] * n


class DCGenerator(GeneratorBase):
    def __init__(self, config: DCGANConfig):
        super().__init__(config)
        plan = _spatial_plan(config.resolution)
        ngf, n = config.ngf, len(plan)
        widths = [ngf * 2 ** (n - 1 - i) for i in range(n)]          # e.g. 512, 256, 128, 64
        self.features = nn.ReLU(True)        # the 4×4 feature map after the first block, which GANSpace reads
        layers = [nn.ConvTranspose2d(self.in_features, widths[0], 4, 1, 0, bias=False),
                  nn.BatchNorm2d(widths[0]), self.features]
        for i, (k, p) in enumerate(plan):
            last = i == n - 1
            out = config.channels if last else widths[i + 1]
            layers.append(nn.ConvTranspose2d(widths[i], out, k, 2, p, bias=last))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU(True)]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z, labels=None):
        h = self._with_labels(z, labels)
        return self.net(h[:, :, None, None])


class DCDiscriminator(nn.Module):
    def __init__(self, config: DCGANConfig):
        super().__init__()
        self.num_classes = config.num_classes
        plan = list(reversed(_spatial_plan(config.resolution)))
        ndf = config.ndf
        batch_norm = config.d_norm == "batch"
        width = config.channels + self.num_classes
        layers = []
        for i, (k, p) in enumerate(plan):
            out = ndf * 2 ** i
            layers.append(normalised(nn.Conv2d(width, out, k, 2, p, bias=not (batch_norm and i > 0)), config.d_norm))
            if batch_norm and i > 0:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2, True))
            width = out
        layers.append(normalised(nn.Conv2d(width, 1, 4, 1, 0), config.d_norm))    # 4×4 → one logit / critic score
        self.net = nn.Sequential(*layers)
        self.code_head = nn.Conv2d(width, config.latent_code, 4, 1, 0) if config.latent_code else None
        init_weights(self)

    def forward(self, x, labels=None, with_code: bool = False):
        """D's scores (N,); with_code: also the latent-code logits (N×k)."""
        if self.num_classes:
            maps = one_hot(labels, self.num_classes, x.dtype)[:, :, None, None]
            x = torch.cat([x, maps.expand(-1, -1, x.shape[2], x.shape[3])], dim=1)
        if not with_code:
            return self.net(x).flatten()
        h = self.net[:-1](x)
        return self.net[-1](h).flatten(), self.code_head(h).flatten(1)

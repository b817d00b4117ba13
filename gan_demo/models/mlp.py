"""Vanilla (and one-hot conditional) GAN: multilayer perceptrons, as in the reference write-ups.

G: Linear + BatchNorm1d + ReLU blocks, tanh output.  D: Linear + LeakyReLU(0.2) (+ Dropout) blocks, one logit, its
inner blocks batch-normalised with `d_norm="batch"` or its Linear layers (the code head aside) spectrally normalised
with `d_norm="spectral"`
(the sigmoid lives in the loss as BCE-with-logits, which is the same function, computed stably).
A conditional model concatenates the one-hot label to z and to the flattened image. With a latent code
(`latent_code=k`, see common.read_code) D has a second head that reads the code back (k logits).
"""
import math

import torch
from torch import nn

from ..config import MLPConfig
from .common import GeneratorBase, init_weights, normalised, one_hot


class MLPGenerator(GeneratorBase):
    def __init__(self, config: MLPConfig):
        super().__init__(config)
        self.out_shape = (config.channels, config.resolution, config.resolution)
        self.features = nn.ReLU(True)        # the first block's output, which GANSpace reads (no parameters)
        layers, width = [], self.in_features
        for i, h in enumerate(config.g_hidden):
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), self.features if i == 0 else nn.ReLU(True)]
            width = h
        layers += [nn.Linear(width, math.prod(self.out_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z, labels=None):
        return self.net(self._with_labels(z, labels)).view(-1, *self.out_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, config: MLPConfig):
        super().__init__()
        self.num_classes = config.num_classes
        width = config.channels * config.resolution ** 2 + self.num_classes
        layers = []
        for i, h in enumerate(config.d_hidden):
            layers.append(normalised(nn.Linear(width, h), config.d_norm))
            if config.d_norm == "batch" and i > 0:            # as the DCGAN discriminator: not on the first block
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.LeakyReLU(0.2, True))
            if config.d_dropout:
                layers.append(nn.Dropout(config.d_dropout))
            width = h
        layers.append(normalised(nn.Linear(width, 1), config.d_norm))
        self.net = nn.Sequential(*layers)
        self.code_head = nn.Linear(width, config.latent_code) if config.latent_code else None
        init_weights(self)

    def forward(self, x, labels=None, with_code: bool = False):
        """D's logits (N,); with_code: also the latent-code logits (N×k)."""
        h = x.flatten(1)
        if self.num_classes:
            h = torch.cat([h, one_hot(labels, self.num_classes, h.dtype)], dim=1)
        if not with_code:
            return self.net(h).squeeze(1)
        h = self.net[:-1](h)
        return self.net[-1](h).squeeze(1), self.code_head(h)

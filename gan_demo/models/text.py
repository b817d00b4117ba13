"""Character-level text GAN (Gulrajani et al. 2017, the reference's 1D-convolutional design).

G: z (64-d) → Linear → dim×L → residual 1D-conv blocks → 1×1 conv to the vocabulary → softmax per position.
D (critic): one-hot or soft sequences V×L → 1×1 conv → residual blocks → Linear → a score (no sigmoid).
Positions after `<EOS>` are masked: hard for real data, soft for generated data (kept with the probability
that no earlier position emitted `<EOS>`), so both sides see the same padding convention.
"""
import torch
from torch import nn

from ..config import TextConfig
from ..text_codec import DEFAULT_VOCAB, SPECIALS
from .common import GeneratorBase, init_weights

EOS_ID = SPECIALS.index("<EOS>")


class ResBlock1d(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv1d(dim, dim, 5, padding=2),
                                  nn.ReLU(), nn.Conv1d(dim, dim, 5, padding=2))

    def forward(self, x):
        return x + 0.3 * self.body(x)


def mask_after_eos(probs: torch.Tensor) -> torch.Tensor:
    """Weight each position (N×V×L) by the probability that no earlier position was `<EOS>`."""
    alive = torch.cumprod(1.0 - probs[:, EOS_ID, :], dim=1)
    alive = torch.cat([torch.ones_like(alive[:, :1]), alive[:, :-1]], dim=1)
    return probs * alive[:, None, :]


class TextGenerator(GeneratorBase):
    feature_layer = "fc"          # the first layer's output, which GANSpace reads

    def __init__(self, config: TextConfig):
        super().__init__(config)
        self.vocab_size = len(config.vocab or DEFAULT_VOCAB)
        self.seq_len, self.dim = config.seq_len, config.dim
        self.fc = nn.Linear(self.z_dim, self.dim * self.seq_len)
        self.blocks = nn.Sequential(*[ResBlock1d(self.dim) for _ in range(config.n_blocks)])
        self.out = nn.Conv1d(self.dim, self.vocab_size, 1)
        init_weights(self)

    def logits(self, z):
        h = self.fc(z).view(-1, self.dim, self.seq_len)
        return self.out(self.blocks(h))                       # N×V×L

    def forward(self, z, labels=None):
        return mask_after_eos(torch.softmax(self.logits(z).float(), dim=1))


class TextCritic(nn.Module):
    def __init__(self, config: TextConfig):
        super().__init__()
        vocab_size = len(config.vocab or DEFAULT_VOCAB)
        dim, seq_len = config.dim, config.seq_len
        self.inp = nn.Conv1d(vocab_size, dim, 1)
        self.blocks = nn.Sequential(*[ResBlock1d(dim) for _ in range(config.n_blocks)])
        self.fc = nn.Linear(dim * seq_len, 1)
        init_weights(self)

    def forward(self, x, labels=None):
        return self.fc(self.blocks(self.inp(x)).flatten(1)).squeeze(1)

"""`load_generator(name)` and the `GanGenerator` it returns: the one object the app, CLI and tests sample from."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from . import hub
from .checkpoint import CheckpointError, check_claims, check_state_dict, read_checkpoint  # noqa: F401
from .devices import pick_device
from .directions import shown_labels
from .latents import check_seed, seed_latents, truncate
from .models import build_generator, count_parameters
from .paths import REPO
from .registry import REGISTRY, ModelEntry
from .render import to_uint8
from .text_codec import TextCodec

DEFAULT_WEIGHTS_DIR = REPO / "weights"


def weights_dir() -> Path:
    return Path(os.environ.get("GAN_DEMO_WEIGHTS_DIR") or DEFAULT_WEIGHTS_DIR)


def resolve_weights(name_or_path: str) -> Path:
    """A registry name → weights/<name>.safetensors (or that file in the Hub repository $GAN_DEMO_HUB_REPO);
    an existing path or a *.safetensors path → itself; a Hub reference (owner/repo[:name][@revision] or
    hf://owner/repo/file.safetensors) → the file in the Hub cache, downloaded if needed (see gan_demo.hub)."""
    if name_or_path in REGISTRY:
        if os.environ.get("GAN_DEMO_HUB_REPO"):
            return hub.registry_file(os.environ["GAN_DEMO_HUB_REPO"], REGISTRY[name_or_path].weights_file)
        return weights_dir() / REGISTRY[name_or_path].weights_file
    if hub.is_reference(name_or_path) and not Path(name_or_path).exists():
        return hub.download(str(name_or_path))
    if str(name_or_path).endswith(".safetensors") or Path(name_or_path).is_file():
        return Path(name_or_path)
    raise KeyError(f"unknown model '{name_or_path}'; known models: {', '.join(REGISTRY)}")


class GanGenerator:
    """A trained generator ready for inference (eval mode, no gradients)."""

    def __init__(self, entry: ModelEntry, net: torch.nn.Module, device, meta: dict | None = None,
                 path: Path | None = None):
        self.entry, self.name, self.path = entry, entry.name, path
        self.device = torch.device(device)
        self.meta = meta or {}
        self.net = net.to(self.device).eval().requires_grad_(False)
        if self.device.type in ("cuda", "cpu"):
            # cuDNN and oneDNN convolutions are faster on channels-last tensors (1.3× on the CPU); same pixels
            self.net = self.net.to(memory_format=torch.channels_last)
        d = self.meta.get("directions") or {}
        self.directions = d.get("vectors")
        self.direction_labels = shown_labels(d)   # a person's names where given
        self.codec = TextCodec(entry.config.vocab, entry.config.seq_len) if entry.is_text else None

    # --- facts ------------------------------------------------------------------------------------------------
    @property
    def metrics(self) -> dict:
        return self.meta.get("metrics", {})

    @property
    def training_info(self) -> dict:
        return self.meta.get("training", {})

    @property
    def num_parameters(self) -> int:
        return count_parameters(self.net)

    # --- latents ----------------------------------------------------------------------------------------------
    def latents(self, seeds) -> torch.Tensor:
        """N×z_dim on the CPU; seed s gives the same z on every machine."""
        return seed_latents(list(seeds), self.entry.latent_dim, self.entry.latent_dist)

    def _labels(self, labels, n: int, seeds=None):
        k = self.entry.num_classes
        if not k:
            return None
        if labels is None:                          # a conditional model without labels: derive them
            labels = [check_seed(s) % k for s in seeds] if seeds is not None else [i % k for i in range(n)]
        labels = [int(c) for c in labels] if not np.isscalar(labels) else [int(labels)] * n
        if len(labels) == 1 and n > 1:
            labels = labels * n
        if len(labels) != n or any(not 0 <= c < k for c in labels):
            raise ValueError(f"labels must be {n} class indices in 0..{k - 1}")
        return torch.tensor(labels)

    @torch.no_grad()
    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 64) -> torch.Tensor:
        """Raw generator output on the CPU (images in [-1, 1] or text probabilities), batched."""
        outs = []
        cuda = self.device.type == "cuda"
        for i in range(0, len(z), batch_size):
            zb = z[i:i + batch_size].to(self.device, torch.float32)
            lb = labels[i:i + batch_size].to(self.device) if labels is not None else None
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and not self.entry.is_text):
                outs.append(self.net(zb, lb).float().cpu())
        return torch.cat(outs) if outs else torch.empty(0)

    def _z(self, seeds, latents, truncation):
        if (seeds is None) == (latents is None):
            raise ValueError("give exactly one of seeds= or latents=")
        z = self.latents(seeds) if latents is None else torch.as_tensor(latents, dtype=torch.float32).cpu()
        if z.ndim != 2 or z.shape[1] != self.entry.latent_dim:
            raise ValueError(f"latents must be N×{self.entry.latent_dim}, got {tuple(z.shape)}")
        return truncate(z, truncation) if truncation != 1.0 else z

    # --- images -----------------------------------------------------------------------------------------------
    def sample(self, seeds=None, *, latents=None, labels=None, truncation: float = 1.0,
               batch_size: int = 64) -> np.ndarray:
        """uint8 N×H×W×C (C = 1 or 3). `latents` may also be a saved latent file (.npy, with the .json that
        `Projection.save` writes beside it: its model must be this one, and its class is used)."""
        if self.entry.is_text:
            raise ValueError(f"{self.name} is a text model: use sample_text()")
        if isinstance(latents, (str, Path)):
            latents, labels = self._saved_latents(latents, labels)
        z = self._z(seeds, latents, truncation)
        return to_uint8(self.forward(z, self._labels(labels, len(z), seeds), batch_size))

    def _saved_latents(self, path, labels):
        from .projection import load_latents
        z, meta = load_latents(path)
        if meta.get("model") not in (None, self.name):
            raise ValueError(f"{Path(path).name} was found with {meta['model']}, not {self.name}")
        if labels is None and self.entry.num_classes and meta.get("label") is not None:
            labels = [meta["label"]] * len(z)
        return z, labels

    def project(self, image, **options):
        """The latent whose image is closest to `image` (a path, bytes, PIL image or array): see
        gan_demo.projection.project for the options (steps, starts, seed, label, progress, stop)."""
        from .projection import project
        return project(self, image, **options)

    # --- text -------------------------------------------------------------------------------------------------
    def sample_tokens(self, seeds=None, *, latents=None, temperature: float | None = None) -> torch.Tensor:
        """N×L token ids: argmax per position, or sampling at a temperature (seeded per row: reproducible)."""
        if not self.entry.is_text:
            raise ValueError(f"{self.name} is an image model: use sample()")
        z = self._z(seeds, latents, 1.0)
        with torch.no_grad():
            logits = torch.cat([self.net.logits(z[i:i + 256].to(self.device)).float().cpu()
                                for i in range(0, len(z), 256)]) if len(z) else torch.empty(0)
        if temperature is None or temperature <= 0:
            return logits.argmax(1)
        probs = torch.softmax(logits / float(temperature), dim=1).transpose(1, 2)   # N×L×V
        rows = []
        for i in range(len(z)):
            g = torch.Generator().manual_seed(check_seed(seeds[i]) if seeds is not None else i)
            rows.append(torch.multinomial(probs[i], 1, generator=g).squeeze(1))
        return torch.stack(rows)

    def sample_text(self, seeds=None, *, latents=None, temperature: float | None = None,
                    raw: bool = False) -> list[str]:
        """Clean sentences (markers removed, punctuation re-attached); raw=True keeps `<SOS>`/`<EOS>`."""
        ids = self.sample_tokens(seeds, latents=latents, temperature=temperature)
        decode = self.codec.decode_tokens if raw else self.codec.decode
        return [decode(row.tolist()) for row in ids]


def generator_from_checkpoint(path, device=None, expect: str | None = None) -> GanGenerator:
    """The generator in a checkpoint file; with `expect` (a registry name), the file must hold that model."""
    entry, state, meta = read_checkpoint(path, expect=REGISTRY[expect] if expect is not None else None)
    try:
        net = build_generator(entry.arch, entry.config)      # checks the config's sizes before building
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: cannot build its architecture ({e})") from None
    check_state_dict(path, net.state_dict(), state)
    net.load_state_dict(state)
    return GanGenerator(entry, net, pick_device(device), meta, Path(path))


def load_generator(name: str, device: str | None = None) -> GanGenerator:
    """Load a registry model from the weights folder (GAN_DEMO_WEIGHTS_DIR, default weights/), a file path, or a
    Hugging Face Hub reference such as "owner/repo" (see resolve_weights)."""
    return generator_from_checkpoint(resolve_weights(name), device, expect=name if name in REGISTRY else None)

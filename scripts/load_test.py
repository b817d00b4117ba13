"""Load test: launch the app and send many requests from concurrent gradio_client clients across every endpoint.

    python scripts/load_test.py [--requests 1000] [--clients 20] [--seed 0]

Prints, per endpoint and overall, how many succeeded and the p50/p95 latency (queue wait included: what a user
waits); how fast the page itself answered while the load ran (a probe fetches it twice a second); and the
server's resident memory, idle, after the first 200 requests and after all of them (and under load every 100).
Exits 1 if any request failed.
Each model is used once among the first requests, so all are loaded before the memory baseline.
The app serves the shipped checkpoints plus random-init weights for models not shipped (see app_process.py).
/train runs (a few short ones, from one client, so the trainer's queue never overflows) need the offline MNIST
copy ($GAN_DEMO_DATA or ../shared/data); without it /train is left out and the output says so.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
from gradio_client import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from app_process import rss_mb, running_app, weights_for_every_model  # noqa: E402
from gan_demo.registry import REGISTRY  # noqa: E402

MEMORY_CHECKPOINT = 200          # requests after which memory should stay flat
IMAGE = [n for n, e in REGISTRY.items() if not e.is_text]
CONDITIONAL = [n for n, e in REGISTRY.items() if e.num_classes]
TEXT = [n for n, e in REGISTRY.items() if e.is_text]


def random_request(rng: random.Random, train: bool) -> tuple[str, tuple]:
    """One valid request: (endpoint, arguments), with the endpoints weighted roughly as a page uses them."""
    kind = rng.choices(["generate", "interpolate", "explore", "digits", "text", "model_card", "models",
                        "train_stop"], weights=[30, 10, 25, 10, 10, 6, 5, 4])[0]
    seed = rng.randrange(2 ** 31)
    if kind == "generate":
        args = (rng.choice(IMAGE), seed, rng.randint(1, 16), rng.choice([0.7, 1.0]))
    elif kind == "interpolate":
        args = (rng.choice(IMAGE), seed, rng.randrange(2 ** 31), rng.randint(2, 16), rng.choice(["lerp", "slerp"]),
                1.0)
    elif kind == "explore":
        args = (rng.choice(IMAGE), seed, 1.0, *[round(rng.uniform(-3, 3), 1) for _ in range(8)])
    elif kind == "digits":
        args = (rng.choice(CONDITIONAL), rng.sample(range(10), rng.randint(1, 3)), seed, rng.randint(1, 8), False)
    elif kind == "text":
        args = (rng.choice(TEXT), seed, rng.randint(1, 20), rng.choice(["argmax", "temperature"]), 0.8)
    elif kind == "model_card":
        args = (rng.choice(list(REGISTRY)),)
    else:
        args = ()
    if train:
        kind, args = "train", ("mnist-gan", 20, 16, 2e-4, "scratch")
    return kind, args


class Load:
    def __init__(self, url: str, pid: int, n: int, clients: int, seed: int, with_train: bool):
        rng = random.Random(seed)
        # request i goes to client i % clients; /train only from client 0 (one run at a time: the queue never
        # fills), every 10th of its requests
        self.plan = [random_request(rng, with_train and i % clients == 0 and (i // clients) % 10 == 5)
                     for i in range(n)]
        # every model used within the first requests, so that what the server holds after the first 200 is all
        # it will ever hold
        for i, name in enumerate(REGISTRY):
            self.plan[i] = (("text", (name, 0, 5, "argmax", 1.0)) if name in TEXT
                            else ("generate", (name, 0, 16, 1.0)))
        self.clients = clients
        self.url, self.pid, self.lock = url, pid, threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.failures: list[str] = []
        self.done = 0
        self.memory: list[tuple[int, float]] = []       # (requests done, server MiB) every 100 requests
        self.sessions: dict = {}                         # client index → its gradio_client.Client (one session)

    def client(self, index: int, requests: range) -> None:
        """This client's share (every clients-th request) of the requests numbered `requests`."""
        if index not in self.sessions:          # one Client per simulated user, kept over both rounds
            self.sessions[index] = Client(self.url, verbose=False, download_files=False)
        c = self.sessions[index]
        for kind, args in (self.plan[i] for i in requests if i % self.clients == index):
            t = time.perf_counter()
            try:
                c.predict(*args, api_name=f"/{kind}")
                ok = None
            except Exception as e:       # noqa: BLE001  (any failure is counted and shown)
                ok = f"/{kind}{args}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            with self.lock:
                self.latency[kind].append(time.perf_counter() - t)
                if ok:
                    self.failures.append(ok)
                self.done += 1
                if self.done % 100 == 0:
                    self.memory.append((self.done, rss_mb(self.pid)))


def probe(url: str, stop_event: threading.Event, out: list[float]) -> None:
    """The page itself, fetched twice a second while the load runs: does the server stay responsive?"""
    with httpx.Client(timeout=30) as http:
        while not stop_event.is_set():
            t = time.perf_counter()
            try:
                http.get(url).raise_for_status()
                out.append(time.perf_counter() - t)
            except httpx.HTTPError:
                out.append(float("inf"))
            stop_event.wait(0.5)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="seed of the request mix")
    args = p.parse_args()
    if args.requests < MEMORY_CHECKPOINT + 1 or args.clients < 1:
        p.error(f"--requests must be over {MEMORY_CHECKPOINT} and --clients at least 1")

    data = Path(os.environ.get("GAN_DEMO_DATA", ROOT.parent / "shared" / "data"))
    with_train = (data / "mnist" / "MNIST" / "raw").is_dir()
    with tempfile.TemporaryDirectory(prefix="gan_demo_load_") as folder:
        which = weights_for_every_model(Path(folder) / "weights")
        print(f"weights: shipped for {sum(w == 'shipped' for w in which.values())} models, random-init for "
              f"{sum(w != 'shipped' for w in which.values())}; /train "
              f"{'included' if with_train else f'left out (no MNIST under {data})'}")
        env = {"GAN_DEMO_DATA": str(data), "GAN_DEMO_RUNS_DIR": str(Path(folder) / "runs")}
        with running_app(Path(folder) / "weights", Path(folder) / "app.log", env=env,
                         timeout_s=120) as (proc, url, page_s):
            print(f"app up in {page_s:.1f} s; server memory {rss_mb(proc.pid):.0f} MiB before any request")
            return run(url, proc.pid, args, with_train)


def run(url: str, pid: int, args, with_train: bool) -> int:
    load = Load(url, pid, args.requests, args.clients, args.seed, with_train)
    halt, page = threading.Event(), []
    prober = threading.Thread(target=probe, args=(url, halt, page), daemon=True)
    t0 = time.perf_counter()
    prober.start()
    idle = []
    # two rounds, each of clients running at once: the first MEMORY_CHECKPOINT requests, then the rest; the
    # server's memory is read when it is idle after each, so the two figures compare like with like
    for requests in (range(MEMORY_CHECKPOINT), range(MEMORY_CHECKPOINT, args.requests)):
        workers = [threading.Thread(target=load.client, args=(i, requests)) for i in range(args.clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        time.sleep(1.0)
        idle.append(rss_mb(pid))
    wall = time.perf_counter() - t0
    halt.set()
    prober.join()

    total = sum(len(v) for v in load.latency.values())
    print(f"\n{total} requests from {args.clients} concurrent gradio_client clients in {wall:.0f} s "
          f"({total / wall:.1f} requests/s); {total - len(load.failures)} succeeded, {len(load.failures)} failed")
    print(f"  {'endpoint':<14}{'requests':>9}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    everything = []
    for kind in sorted(load.latency):
        v = load.latency[kind]
        everything += v
        print(f"  /{kind:<13}{len(v):>9}{pct(v, 50) * 1e3:>10.0f}{pct(v, 95) * 1e3:>10.0f}{max(v) * 1e3:>10.0f}")
    print(f"  {'all':<14}{len(everything):>9}{pct(everything, 50) * 1e3:>10.0f}{pct(everything, 95) * 1e3:>10.0f}"
          f"{max(everything) * 1e3:>10.0f}")
    print(f"the page during the load: {len(page)} fetches, p50 {pct(page, 50) * 1e3:.0f} ms, "
          f"max {max(page) * 1e3:.0f} ms")
    print(f"server memory, idle: {idle[0]:.0f} MiB after the first {MEMORY_CHECKPOINT} requests, {idle[1]:.0f} MiB "
          f"after all {total} ({idle[1] - idle[0]:+.0f} MiB); under load, every 100 requests: "
          + ", ".join(f"{m:.0f}" for _, m in load.memory))
    for f in load.failures[:10]:
        print(f"  failed: {f}")
    return 1 if load.failures else 0


if __name__ == "__main__":
    sys.exit(main())

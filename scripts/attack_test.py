"""Attack a live app as a hostile visitor would, and print what happened: a sibling of load_test.py.

    python scripts/attack_test.py [--flood 70] [--rewrite-s 20] [--disk-model celeba128-wgangp]

1. /train flood: --flood calls of /train through gradio's /call API, each a new session, from one address and then
   from as many addresses (X-Forwarded-For, as behind a proxy); how many were taken and how fast the rest were
   refused, and /generate and the page's latency meanwhile. Then the callers go away (they drop their streams):
   how long until the trainer is free again; and the same for a call whose caller never reads its stream.
2. Oversized bodies: a 120 MB JSON body (with Content-Length, then chunked) and a 50 MB upload; the status, how
   fast, /generate's latency meanwhile, and the server's memory before and after.
3. A checkpoint rewritten in place (`cp` in a loop) while 4 clients generate from it: outcomes, whether the server
   lived, whether it recovered. Broken files dropped into the weights folder (NaN weights, another model's file,
   a config that would build 2.9 G parameters): what the Models tab's /model_card says.
4. Disk: a 1-step --disk-model run from the API: the run folder's size once it ended; the runs folder after a
   visitor's session ends; a killed server's leftovers after the next start.
5. Privacy: another client's attempts at a visitor's trained run (its name, its file by the path the name gives,
   its file's real URL once the owner's session has ended).
Needs the offline MNIST copy ($GAN_DEMO_DATA or ../shared/data); the disk figure needs the model's dataset.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from gradio_client import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from app_process import rss_mb, running_app, weights_for_every_model  # noqa: E402

TRAIN_ARGS = ["mnist-gan", 2000, 16, 2e-4, "scratch"]           # long enough to hold the trainer for minutes
ROWS: list[tuple[str, str]] = []


def row(attack: str, outcome: str) -> None:
    ROWS.append((attack, outcome))
    print(f"- {attack}: {outcome}", flush=True)


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2 ** 20 if path.exists() else 0.0


class Probe:
    """While running: /generate (a small grid) and the page, one after the other, from their own client."""

    def __init__(self, url: str):
        self.url, self.halt = url, threading.Event()
        self.generate: list[float] = []
        self.page: list[float] = []
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        c = Client(self.url, verbose=False, download_files=False)
        with httpx.Client(timeout=120) as http:
            while not self.halt.is_set():
                t = time.perf_counter()
                try:
                    c.predict("mnist-dcgan", 0, 4, 1.0, api_name="/generate")
                    self.generate.append(time.perf_counter() - t)
                except Exception as e:  # noqa: BLE001
                    self.errors.append(str(e)[:100])
                t = time.perf_counter()
                try:
                    http.get(self.url).raise_for_status()
                    self.page.append(time.perf_counter() - t)
                except httpx.HTTPError as e:
                    self.errors.append(str(e)[:100])
                self.halt.wait(0.3)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        self.thread.join()

    def summary(self) -> str:
        g, p = self.generate or [float("nan")], self.page or [float("nan")]
        return (f"/generate meanwhile: {len(self.generate)} calls, p50 {statistics.median(g) * 1e3:.0f} ms, max "
                f"{max(g) * 1e3:.0f} ms; page max {max(p) * 1e3:.0f} ms; {len(self.errors)} errors")


def call_train(http: httpx.Client, url: str, args, forwarded: str | None = None) -> str:
    """POST /call/train; → its event id."""
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    r = http.post(f"{url}gradio_api/call/train", json={"data": args}, headers=headers)
    r.raise_for_status()
    return r.json()["event_id"]


def first_event(http: httpx.Client, url: str, event_id: str) -> tuple[str, str]:
    """The first event of a /call stream (read, then the connection is dropped): ("error", message) or
    ("generating", progress Markdown)."""
    with http.stream("GET", f"{url}gradio_api/call/train/{event_id}", timeout=120) as r:
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind in ("error", "generating", "complete"):
                data = json.loads(line[6:])
                if kind == "error":
                    return kind, str(data.get("error") if isinstance(data, dict) else data)
                return kind, str(data[3])
    return "none", ""


def trainer_state(url: str) -> str:
    """'queued' or 'free' as a 1-step run from a fresh address sees it (the probe run is left to finish)."""
    with httpx.Client(timeout=120) as http:
        kind, text = first_event(http, url, call_train(http, url, ["mnist-gan", 1, 8, 2e-4, "scratch"],
                                                       forwarded=f"10.9.{time.monotonic_ns() % 250}.1"))
    return "queued" if "Queued" in str(text) else "busy" if "busy" in str(text) else "free"


def flood(url: str, n: int) -> None:
    for how in ("one address", f"{n} addresses"):
        with Probe(url) as probe, httpx.Client(timeout=120) as http:
            t0 = time.perf_counter()
            ids = [call_train(http, url, TRAIN_ARGS, None if how == "one address" else f"10.1.{i // 250}.{i % 250}")
                   for i in range(n)]
            outcomes, lock = [], threading.Lock()

            def read(event_id):
                t = time.perf_counter()
                out = first_event(http, url, event_id)
                with lock:
                    outcomes.append((*out, time.perf_counter() - t))

            readers = [threading.Thread(target=read, args=(i,)) for i in ids]
            for t in readers:
                t.start()
            for t in readers:
                t.join()
            wall = time.perf_counter() - t0
        taken = [o for o in outcomes if o[0] == "generating"]
        refused = [o for o in outcomes if o[0] == "error"]
        reasons = sorted({re.sub(r"\d+", "N", o[1])[:70] for o in refused})
        row(f"{n} × /train from {how}, each a new session",
            f"{len(taken)} taken, {len(refused)} refused in at most {max((o[2] for o in refused), default=0):.1f} s "
            f"({'; '.join(reasons)}); all answered in {wall:.1f} s; {probe.summary()}")
        # the callers have gone (streams dropped after one event): the trainer must free itself
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 300:
            if trainer_state(url) == "free":
                break
            time.sleep(3)
        row(f"the {len(taken)} taken runs' callers go away", f"trainer free again after "
            f"{time.perf_counter() - t0:.0f} s (a run nobody reads is stopped)")


def never_read(url: str) -> None:
    """A /train call whose caller never reads its stream (POST only): how long it holds the trainer."""
    with httpx.Client(timeout=120) as http:
        call_train(http, url, TRAIN_ARGS, forwarded="10.8.0.1")
    t0 = time.perf_counter()
    time.sleep(3)
    while time.perf_counter() - t0 < 300 and trainer_state(url) != "free":
        time.sleep(3)
    row("a /train call whose caller never reads its stream", f"the trainer is free again after "
        f"{time.perf_counter() - t0:.0f} s (stopped as abandoned)")


def big_bodies(url: str, pid: int) -> None:
    size = 120 * 2 ** 20
    body = b'{"data": ["' + b"x" * (size - 20) + b'", 0, 4, 1.0]}'

    def chunks():
        for i in range(0, len(body), 2 ** 20):
            yield body[i:i + 2 ** 20]

    for how, kwargs in [("with Content-Length", dict(content=body)), ("chunked", dict(content=chunks()))]:
        before = rss_mb(pid)
        with Probe(url) as probe, httpx.Client(timeout=300) as http:
            t = time.perf_counter()
            try:
                r = http.post(f"{url}gradio_api/call/generate", headers={"content-type": "application/json"},
                              **kwargs)
                status = f"HTTP {r.status_code} {r.text[:80]}"
            except httpx.HTTPError as e:
                status = f"connection closed by the server ({type(e).__name__})"
            took = time.perf_counter() - t
            time.sleep(1.0)
        row(f"120 MB JSON body, {how}", f"{status} after {took:.2f} s; server memory {before:.0f} → "
            f"{rss_mb(pid):.0f} MiB; {probe.summary()}")
    with httpx.Client(timeout=300) as http:
        t = time.perf_counter()
        try:
            r = http.post(f"{url}gradio_api/upload", files={"files": ("big.png", b"\0" * 50 * 2 ** 20)})
            status = f"HTTP {r.status_code} {r.text[:80]}"
        except httpx.HTTPError as e:
            status = f"connection closed ({type(e).__name__})"
        row("50 MB upload (the page has no upload component)", f"{status} after {time.perf_counter() - t:.2f} s")


def rewrites(url: str, proc, weights: Path, seconds: float) -> None:
    target = weights / "mnist-dcgan.safetensors"
    source = Path(tempfile.mkdtemp()) / "copy.safetensors"
    shutil.copy(target, source)
    counts, lock, halt = {}, threading.Lock(), threading.Event()

    def client():
        c = Client(url, verbose=False, download_files=False)
        while not halt.is_set():
            try:
                c.predict("mnist-dcgan", 0, 4, 1.0, api_name="/generate")
                key = "ok"
            except Exception as e:  # noqa: BLE001
                key = "not available" if "not available" in str(e) else f"other: {str(e)[:60]}"
            with lock:
                counts[key] = counts.get(key, 0) + 1

    cp = subprocess.Popen(["bash", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do cp '{source}' '{target}'; "
                                         f"done"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = [threading.Thread(target=client) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(seconds)
    cp.kill()
    cp.wait()
    shutil.copy(source, target)
    halt.set()
    for w in workers:
        w.join()
    alive = proc.poll() is None
    after = Client(url, verbose=False, download_files=False).predict("mnist-dcgan", 0, 4, 1.0, api_name="/generate") \
        if alive else None
    row(f"cp over a checkpoint in a loop for {seconds:.0f} s under 4 clients' /generate",
        f"{', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}; server {'alive' if alive else 'DEAD'}"
        f"{'; next request after the copy: ok' if after else ''}")


def broken_files(url: str, weights: Path) -> None:
    from gan_demo.checkpoint import save_checkpoint
    from gan_demo.models import build_generator
    from gan_demo.registry import REGISTRY, ModelEntry
    cases = {}
    e = REGISTRY["mnist-lsgan"]
    state = build_generator(e.arch, e.config).state_dict()
    state["net.0.weight"][0, 0, 0, 0] = float("nan")
    save_checkpoint(weights / e.weights_file, e, state)
    cases["NaN weights (mnist-lsgan)"] = e.name
    shutil.copy(weights / "mnist-dcgan.safetensors", weights / "mnist-wgangp.safetensors")
    cases["mnist-dcgan's file as mnist-wgangp"] = "mnist-wgangp"
    e = REGISTRY["cifar10-dcgan"]
    bomb = ModelEntry.from_dict({**e.to_dict(), "config": {**e.config, "ngf": 1024, "resolution": 128}})
    save_checkpoint(weights / e.weights_file, bomb, build_generator(e.arch, e.config).state_dict())
    cases["a config of 2.9 G parameters as cifar10-dcgan"] = e.name
    c = Client(url, verbose=False, download_files=False)
    for what, name in cases.items():
        card = c.predict(name, api_name="/model_card")
        text = json.dumps(card)
        m = re.search(r"Status: (not available[^*\\]*)", text)
        row(f"broken file: {what}", m.group(1).strip() if m else f"NOT REFUSED: {text[:120]}")


def heartbeat(url: str, session_hash: str) -> threading.Event:
    """Hold the session open as a browser tab does (gradio's heartbeat); set the event to close the tab."""
    close = threading.Event()

    def hold():
        with httpx.Client(timeout=None) as http, http.stream("GET", f"{url}gradio_api/heartbeat/{session_hash}"):
            close.wait()

    threading.Thread(target=hold, daemon=True).start()
    time.sleep(0.5)
    return close


def disk_and_privacy(url: str, runs: Path, model: str) -> None:
    owner = Client(url, verbose=False, download_files=False)
    tab = heartbeat(url, owner.session_hash)
    t = time.perf_counter()
    _, _, _, status, download = owner.predict(model, 1, 8, 1e-4, "scratch", api_name="/train")
    name = re.search(r"`(my-run:[0-9a-f]{16})`", status)
    if name is None:
        row(f"1-step {model} run", f"did not finish: {status[:150]}")
        return
    run_id = name.group(1).split(":")[1]
    run_dir = next(runs.glob(f"*/{run_id}"))
    row(f"1-step {model} run from the API", f"run folder {folder_mb(run_dir):.0f} MB once ended "
        f"({', '.join(sorted(p.name for p in run_dir.iterdir()))}); took {time.perf_counter() - t:.0f} s")
    other = Client(url, verbose=False, download_files=False)
    try:
        other.predict(name.group(1), 0, 4, 1.0, api_name="/generate")
        row("another session generates from the run's name", "ALLOWED")
    except Exception as e:  # noqa: BLE001
        row("another session generates from the run's name", f"refused: {str(e)[:90]}")
    file_url = download["url"] if isinstance(download, dict) else str(download)
    with httpx.Client(timeout=60) as http:
        temp = Path(re.sub(r"^.*?file=", "", file_url)).parent
        guessed = [temp.parent.parent / f"{model}-my-run-{run_id}.safetensors",
                   temp.parent / f"{model}-my-run-{run_id}.safetensors"]
        codes = [http.get(f"{url}gradio_api/file={g}").status_code for g in guessed]
        row("another client fetches the run's file by the path its name gives", f"HTTP {codes}")
        before = http.get(file_url if file_url.startswith("http") else f"{url}{file_url.lstrip('/')}").status_code
        tab.set()                                       # the owner closes the tab
        time.sleep(20)                                  # gradio notices at its next heartbeat (15 s)
        after = http.get(file_url if file_url.startswith("http") else f"{url}{file_url.lstrip('/')}").status_code
    row("the run's real download URL", f"HTTP {before} while the owner's session lasts (only the owner was sent "
        f"it), HTTP {after} once the session ended; the run folder "
        f"{'is gone' if not run_dir.exists() else 'REMAINS'}; runs folder {folder_mb(runs):.1f} MB")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flood", type=int, default=70)
    p.add_argument("--rewrite-s", type=float, default=20)
    p.add_argument("--disk-model", default="celeba128-wgangp")
    args = p.parse_args()
    data = Path(os.environ.get("GAN_DEMO_DATA", ROOT.parent / "shared" / "data"))
    with tempfile.TemporaryDirectory(prefix="gan_demo_attack_") as folder:
        folder = Path(folder)
        weights_for_every_model(folder / "weights")
        runs = folder / "runs"
        env = {"GAN_DEMO_DATA": str(data), "GAN_DEMO_RUNS_DIR": str(runs), "OMP_NUM_THREADS": "1"}
        with running_app(folder / "weights", folder / "app.log", env=env, timeout_s=180) as (proc, url, _):
            print(f"app up; {rss_mb(proc.pid):.0f} MiB", flush=True)
            Client(url, verbose=False, download_files=False).predict("mnist-dcgan", 0, 4, 1.0, api_name="/generate")
            big_bodies(url, proc.pid)
            rewrites(url, proc, folder / "weights", args.rewrite_s)
            broken_files(url, folder / "weights")
            flood(url, args.flood)
            never_read(url)
            disk_and_privacy(url, runs, args.disk_model)
            # a killed server's leftovers: a run folder left mid-way, then a restart on the same runs folder
            Client(url, verbose=False, download_files=False).submit(*TRAIN_ARGS, api_name="/train")
            time.sleep(15)
            left = folder_mb(runs)
            proc.kill()
            proc.wait()
        with running_app(folder / "weights", folder / "app2.log", env=env, timeout_s=180):
            row("server killed (SIGKILL) mid-run, then started again", f"runs folder {left:.1f} MB before the "
                f"restart, {folder_mb(runs):.1f} MB after")
    print("\n| attack | outcome |\n|---|---|")
    for attack, outcome in ROWS:
        print(f"| {attack} | {outcome} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The app as a separate process, for tests and benchmarks: weights for every model, `python app.py` on a free
port, its resident memory.

    folder = make_tiny_weights(Path("/tmp/w"))          # random-init checkpoint for every registry entry
    with running_app(folder, "app.log") as (proc, url, seconds):   # seconds: until the page answered 200
        rss_mb(proc.pid)                                # stopped when the block ends
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tiny_weights(folder: Path, names=None, directions: bool = True) -> Path:
    """A freshly initialised checkpoint (seed 0, fp16, with latent directions) for each named registry entry:
    the same compute as trained weights, so app timings and API behaviour are those of the real thing."""
    import torch

    from gan_demo.checkpoint import save_checkpoint
    from gan_demo.directions import compute_directions
    from gan_demo.models import build_generator
    from gan_demo.registry import REGISTRY
    folder.mkdir(parents=True, exist_ok=True)
    for name in names or REGISTRY:
        e = REGISTRY[name]
        g = build_generator(e.arch, e.config, generator=torch.Generator().manual_seed(0)).eval()
        d = None
        if directions and not e.is_text:
            d = compute_directions(g, e.latent_dim, num_classes=e.num_classes, n=300, k=8, dist=e.latent_dist)
        save_checkpoint(folder / e.weights_file, e, g.state_dict(), training={"steps": 0, "note": "test"},
                        directions=d, half=True)
    return folder


def weights_for_every_model(folder: Path) -> dict[str, str]:
    """Fill `folder` with the shipped checkpoint of each model that has a usable one (copied, with its card) and
    random-init weights for the rest; → {model: "shipped" | "random-init"}."""
    from gan_demo import CheckpointError, load_generator
    from gan_demo.registry import REGISTRY
    from gan_demo.generator import weights_dir
    folder.mkdir(parents=True, exist_ok=True)
    source, which, missing = weights_dir(), {}, []
    for name, e in REGISTRY.items():
        try:
            load_generator(source / e.weights_file, device="cpu")
            for f in source.glob(f"{name}.*"):
                shutil.copy2(f, folder / f.name)
            which[name] = "shipped"
        except (CheckpointError, OSError, ValueError):
            missing.append(name)
            which[name] = "random-init"
    if missing:
        make_tiny_weights(folder, missing)
    return which


@contextlib.contextmanager
def running_app(weights_dir, log_path, *, env: dict | None = None, script: str = "app.py", timeout_s: float = 90):
    """`python <script> --port N` with the given weights folder, for the length of a with-block; yields (process,
    URL, seconds until the page answered). `script` may be a wrapper that runs app.py (the hostile-input tests use
    one that audits file access)."""
    port = free_port()
    env = {**os.environ, "GAN_DEMO_WEIGHTS_DIR": str(weights_dir), "GAN_DEMO_DEVICE": "cpu",
           "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    log = open(log_path, "w")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, script, "--port", str(port), "--host", "127.0.0.1"], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_page(proc, url, log_path, script, timeout_s)
        yield proc, url, time.perf_counter() - start
    finally:
        _stop(proc)
        log.close()


def _wait_for_page(proc: subprocess.Popen, url: str, log_path, script: str, timeout_s: float) -> None:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"{script} exited with {proc.returncode}: {Path(log_path).read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{script} did not answer in {timeout_s:.0f} s: {Path(log_path).read_text()[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise OSError(f"no VmRSS for process {pid}")

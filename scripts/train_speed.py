"""Train tab vs CLI: the same model, batch and steps trained both ways on this machine; prints both speeds.

    python scripts/train_speed.py [--model mnist-dcgan] [--batch 64] [--steps 300] [--repeat 2] [--data ../shared/data]

CLI: `python -m training train` in a subprocess. Train tab: the app (`python app.py`) in a subprocess, driven
through its `/train` endpoint with gradio_client while the updates stream (as the page receives them). Each
speed is steps / training time, both read from the run's own log (log.jsonl: `elapsed_s` of the last record),
so start-up and data loading count for neither. The two runs go one after the other; the machine's load average
is printed with each, since other jobs share the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def speed(log: Path) -> float:
    last = [json.loads(line) for line in log.read_text().splitlines() if line.strip()][-1]
    return last["step"] / last["elapsed_s"]


def cli_run(a, folder: Path) -> float:
    out = folder / "cli-run"
    subprocess.run([sys.executable, "-m", "training", "train", "--model", a.model, "--steps", str(a.steps),
                    "--batch", str(a.batch), "--data", a.data, "--out", str(out)], cwd=ROOT, check=True,
                   capture_output=True)
    return speed(out / "log.jsonl")


def tab_run(a, folder: Path) -> float:
    import gradio_client
    from app_process import make_tiny_weights, running_app
    weights = make_tiny_weights(folder / "weights", [a.model], directions=False)
    runs = folder / "ui-runs"
    env = {"GAN_DEMO_RUNS_DIR": str(runs), "GAN_DEMO_DATA": a.data}
    with running_app(weights, folder / "app.log", env=env) as (_, url, _):
        client = gradio_client.Client(url, verbose=False)
        job = client.submit(a.model, a.steps, a.batch, 2e-4, "scratch", api_name="/train")
        updates = sum(1 for _ in job)                       # consume the stream, as the page does
        logs = sorted(runs.rglob("log.jsonl"), key=lambda p: p.stat().st_mtime)
        if not logs:
            raise SystemExit(f"the Train tab's run left no log (see {folder / 'app.log'})")
        print(f"  (the page got {updates} updates)")
        return speed(logs[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mnist-dcgan")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--repeat", type=int, default=1,
                   help="pairs of runs, in the order CLI, tab, tab, CLI, …, so a drifting load hurts both alike")
    a = p.parse_args()
    import torch
    print(f"{a.model}, batch {a.batch}, {a.steps} steps; {os.cpu_count()} CPU cores, torch {torch.__version__}")
    speeds = {"CLI": [], "Train tab": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeat):
            order = ("CLI", "Train tab") if i % 2 == 0 else ("Train tab", "CLI")
            for how in order:
                folder = Path(tmp) / f"{i}-{how.replace(' ', '-')}"
                folder.mkdir()
                load, t = os.getloadavg()[0], time.time()
                v = cli_run(a, folder) if how == "CLI" else tab_run(a, folder)
                speeds[how].append(v)
                print(f"{how + ':':10s} {v:6.2f} steps/s  (load average {load:.1f}; {time.time() - t:.0f} s in all)",
                      flush=True)
    cli, tab = (statistics.median(speeds[k]) for k in ("CLI", "Train tab"))
    print(f"median over {a.repeat}: CLI {cli:.2f}, Train tab {tab:.2f} steps/s; Train tab / CLI = {tab / cli:.2f}")

if __name__ == "__main__":
    main()

"""The CLI as a newcomer meets it: bad arguments give one line and a non-zero exit; a tiny run works."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.parametrize("args, needle", [
    (["train", "--model", "no-such-model"], "unknown model"),
    (["train", "--model", "mnist-gan", "--data", "/no/such/path"], "does not exist"),
    (["train", "--model", "mnist-gan", "--steps", "0"], "must be > 0"),
    (["train", "--model", "mnist-gan", "--steps", "-5"], "must be > 0"),
    (["train", "--model", "mnist-gan", "--steps", "many"], "expected a number"),
    (["train", "--model", "mnist-gan", "--out", "/proc/forbidden/run"], "cannot write"),
    (["train", "--model", "mnist-gan", "--resume"], "--resume needs --out"),
    (["train"], "required"),
    (["sample", "no-such-model"], "unknown model"),
    (["sample", "mnist-gan", "--seeds", "x-y"], "bad seeds"),
    (["sample", "mnist-gan", "--seeds", "-1"], "bad seeds"),
    (["export", "/no/such/run"], "no exported generator"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_one_line_nonzero(args, needle):
    r = run(*args)
    assert r.returncode != 0
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr


def test_train_resume_export_sample(tmp_path, mnist_root):
    out = tmp_path / "run"
    r = run("train", "--model", "mnist-gan", "--data", str(mnist_root), "--steps", "20", "--batch", "16",
            "--out", str(out), "--log-every", "10", "--sample-every", "10")
    assert r.returncode == 0, r.stderr
    r = run("train", "--model", "mnist-gan", "--data", str(mnist_root), "--steps", "30", "--batch", "16",
            "--out", str(out), "--resume", "--log-every", "10", "--sample-every", "10")
    assert r.returncode == 0 and "resuming mnist-gan at step 20" in r.stderr, r.stderr
    dest = tmp_path / "w" / "mnist-gan.safetensors"
    assert run("export", str(out), "--to", str(dest)).returncode == 0
    r = run("sample", str(dest), "--seeds", "0-15", "--out", str(tmp_path / "grid.png"))
    assert r.returncode == 0 and (tmp_path / "grid.png").is_file(), r.stderr
    r = run("train", "--model", "mnist-gan", "--out", str(tmp_path / "fresh"), "--resume")
    assert r.returncode != 0 and "no resume file" in r.stderr


def test_list():
    r = run("list")
    assert r.returncode == 0 and "mnist-cdcgan" in r.stdout and "text-wgangp" in r.stdout


def test_a_killed_run_resumes_from_its_last_saved_state(tmp_path, mnist_root):
    import signal
    import time
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "training", "train", "--model", "mnist-gan", "--data",
                             str(mnist_root), "--steps", "100000", "--batch", "16", "--out", str(out),
                             "--log-every", "5", "--sample-every", "10"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "resume.pt").is_file():
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (out / "resume.pt").is_file()
    import torch
    step = torch.load(out / "resume.pt", weights_only=True)["step"]
    assert step > 0 and step % 10 == 0
    r = run("train", "--model", "mnist-gan", "--data", str(mnist_root), "--steps", str(step + 10), "--batch", "16",
            "--out", str(out), "--resume", "--log-every", "5", "--sample-every", "10")
    assert r.returncode == 0 and f"resuming mnist-gan at step {step}" in r.stderr, r.stderr
    steps = [json.loads(l)["step"] for l in (out / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == step + 10 and len(steps) == len(set(steps))


def test_sigterm_stops_a_run_and_keeps_what_it_learned(tmp_path, mnist_root):
    import signal
    import time
    out = tmp_path / "term"
    proc = subprocess.Popen([sys.executable, "-m", "training", "train", "--model", "mnist-gan", "--data",
                             str(mnist_root), "--steps", "100000", "--batch", "16", "--out", str(out),
                             "--log-every", "5", "--sample-every", "100000"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((out / "log.jsonl").is_file() and (out / "log.jsonl").read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    import torch
    from gan_demo import read_checkpoint
    step = torch.load(out / "resume.pt", weights_only=True)["step"]
    _, _, meta = read_checkpoint(out / "generator.safetensors")
    assert step >= 5 and meta["training"]["steps"] == step

"""The training benchmark on the CPU: tiny cases run and report positive figures; bad arguments give one line."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_demo.registry import REGISTRY
from training.cli import main
from training.bench import Case, bench_data, run_bench, select_cases, time_naive, time_ours
from training.data import ImageData
from training.loop import Trainer, TrainingError

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=300)


def run_here(capsys, *args):
    """The CLI in this process (no interpreter start per case): exit code and stderr lines."""
    code = main(list(args))
    return code, [l for l in capsys.readouterr().err.splitlines() if l.strip()]


def test_tiny_case_reports_ours_naive_and_ratio(tmp_path):
    lines = []
    report = run_bench(["cpu"], {"cpu": [Case("mnist-gan", 8)]}, tmp_path, quick=True, steps=2, workers=0,
                       out=lines.append)
    (row,) = report["results"]
    assert row["error"] is None
    assert row["ours_img_s"] > 0 and row["naive_img_s"] > 0
    assert row["ratio"] == pytest.approx(row["ours_img_s"] / row["naive_img_s"], rel=0.02)
    assert all(math.isfinite(row[k]) for k in ("d_loss", "g_loss", "naive_d_loss", "naive_g_loss"))
    assert "synthetic" in report["data"]["mnist"]               # the empty folder holds no MNIST
    assert any(line.startswith("mnist-gan") and "×" in line for line in lines)
    assert report["hardware"]["cpu"].startswith("CPU")


def test_wgangp_steps_of_both_loops_give_finite_losses():
    entry = REGISTRY["mnist-wgangp"]
    data = bench_data(entry, "/nonexistent", n=64)
    for figures in (time_ours(entry, data, 4, "cpu", warmup=0, steps=1),
                    time_naive(entry, data, 4, "cpu", warmup=0, steps=1, workers=0)):
        assert figures["img_s"] > 0 and math.isfinite(figures["d_loss"]) and math.isfinite(figures["g_loss"])


def test_synthetic_data_has_the_models_shape_and_labels():
    d = bench_data(REGISTRY["mnist-cdcgan"], "/nonexistent", n=32)
    assert d.images.shape == (32, 1, 28, 28) and d.images.dtype == torch.uint8
    assert d.labels.shape == (32,) and int(d.labels.max()) < 10


def test_case_selection():
    cuda = select_cases("cuda", quick=False)
    assert Case("celeba64-dcgan", 128, compile=True, target=20_000) in cuda
    assert any(c.model == "celeba64-dcgan" and c.batch == 128 and not c.compile for c in cuda)
    assert not any(c.compile for c in select_cases("cpu", quick=True, compile_all=True))
    assert all(c.compile == (i % 2 == 1) for i, c in enumerate(select_cases("cuda", False, compile_all=True)))
    only = select_cases("cuda", False, models=["celeba128-wgangp", "mnist-lsgan"], batch=64)
    assert only == [Case("celeba128-wgangp", 64), Case("mnist-lsgan", 64)]    # targets belong to their batch
    assert select_cases("cuda", False, models=["mnist-lsgan"], compile_all=True) == [
        Case("mnist-lsgan", 64), Case("mnist-lsgan", 64, compile=True)]


def test_compile_is_refused_on_the_cpu(tmp_path):
    data = ImageData(torch.zeros(16, 1, 28, 28, dtype=torch.uint8), None, "zeros")
    with pytest.raises(TrainingError, match="needs a CUDA device"):
        Trainer(REGISTRY["mnist-gan"], data, tmp_path / "run", device="cpu", compile=True, progress=False)
    assert not (tmp_path / "run").exists()


def test_cli_bench_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    r = run("bench", "--quick", "--device", "cpu", "--model", "mnist-gan", "--batch", "8", "--steps", "2",
            "--data", str(tmp_path), "--json", str(out), "--compile", "--profile", str(tmp_path / "profile.txt"))
    assert r.returncode == 0, r.stderr
    assert "mnist-gan" in r.stdout and "naive img/s" in r.stdout and "CUDA only" in r.stderr
    (row,) = json.loads(out.read_text())["results"]
    assert row["device"] == "cpu" and row["batch"] == 8 and row["ours_img_s"] > 0 and row["naive_img_s"] > 0
    # the profile of our step (no case here has a target, so every case): wall time, then the operators
    head, *table = (tmp_path / "profile.txt").read_text().splitlines()
    assert head.startswith("mnist-gan, batch 8, cpu: ") and "ms per step" in head and head in r.stdout
    assert any("aten::addmm" in line for line in table), table[:8]


def test_train_compile_on_the_cpu_is_one_line(tmp_path, mnist_root, capsys):
    code, lines = run_here(capsys, "train", "--model", "mnist-gan", "--data", str(mnist_root), "--device", "cpu",
                           "--compile", "--out", str(tmp_path / "run"))
    assert code != 0 and len(lines) == 1 and "--compile needs a CUDA device" in lines[0], lines


@pytest.mark.parametrize("args, needle", [
    (["bench", "--device", "tpu"], "invalid choice"),
    (["bench", "--model", "no-such-model"], "unknown model"),
    (["bench", "--model", "text-wgangp"], "text model"),
    (["bench", "--steps", "0"], "must be > 0"),
    (["bench", "--batch", "many"], "expected a number"),
    (["bench", "--data", "/no/such/path"], "does not exist"),
    (["bench", "--json", "/no/such/dir/bench.json"], "cannot write"),
])
def test_bad_arguments_one_line_nonzero(args, needle, capsys):
    code, lines = run_here(capsys, *args)
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda(capsys):
    code, lines = run_here(capsys, "bench", "--device", "cuda")
    assert code != 0 and len(lines) == 1 and "no CUDA device" in lines[0], lines

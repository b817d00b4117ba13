"""Data-parallel training on the CPU: 2 processes (gloo) against 1 process with the same global batch.

Why the runs can be compared at all: every rank draws the whole global batch from the one seeded generator and
keeps its own rows, and DDP averages the gradients, so 2 processes compute what 1 process computes, split in two.
What is left is floating-point summation order (DDP adds two half-batch mean gradients where one process takes
one mean over the batch) and, for models with batch norm, the per-rank batch statistics (see the tolerances below).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from app_process import free_port

from gan_demo.registry import REGISTRY, ModelEntry
from training.data import ImageData, load_text
from training.loop import Trainer

ROOT = Path(__file__).resolve().parent.parent

# Tolerances, as the distance between the 2-process and the 1-process weights over the distance the 1-process
# weights travelled from their initial values (G and D parameters). Two runs with independent randomness give
# about √2 ≈ 1.41 (uncorrelated Adam steps of equal size), so a broken split or gradient average cannot pass.
# - No batch norm: the runs differ by float32 summation order only (DDP adds two half-batch mean gradients where
#   one process takes one mean). Adam moves a weight by about lr whatever its gradient's size, so where a
#   gradient is near zero a rounding difference can change a step, and the GAN's feedback spreads it: measured
#   1e-3 after 4 steps, 1e-8 (max abs) after 2. In float64 the two runs agree to 1e-16, so the split is exact.
# - Batch norm without --sync-bn (a CUDA-only option): each rank normalises its own 16 rows rather than the 32
#   of the batch, a different function; measured 0.41 after 4 steps of mnist-gan with batch 32.
REL_NO_BN = 1e-2
REL_PER_RANK_BN = 0.75
LINES = ["The cat sat on the mat.", "It's a fine day, isn't it?", "Go home now!", "We'll see.",
         "A small step.", "Where is the station?", "Seven apples, please.", "Good night."] * 4


def text_entry() -> ModelEntry:
    """text-wgangp made small: no batch norm anywhere, the gradient penalty's double backward, 2 critic steps."""
    return REGISTRY["text-wgangp"].with_config(dim=32, n_blocks=1).with_recipe(n_critic=2)


def image_data(n=64) -> ImageData:
    g = torch.Generator().manual_seed(7)
    return ImageData(torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8),
                     torch.randint(0, 10, (n,), generator=g), "synthetic digits")


def make(spec: dict, run_dir, **kw) -> Trainer:
    if spec["model"] == "text":
        entry, data = text_entry(), load_text(spec["text_file"])
    else:
        entry, data = REGISTRY[spec["model"]], image_data()
    return Trainer(entry, data, run_dir, steps=spec["steps"], batch=spec["batch"], device="cpu", log_every=2,
                   sample_every=spec["steps"], progress=False, **kw)


def states(t: Trainer) -> dict:
    return {part: {k: v.clone() for k, v in getattr(t, part).state_dict().items()} for part in ("G", "D", "G_ema")}


def _worker(rank: int, world: int, port: int, spec: dict, run_dirs: list, out_dir: str, resume: bool):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from training import distributed
    distributed.init("cpu")
    try:
        t = make(spec, run_dirs[rank])
        if resume:
            t.load_resume()
        t.train()
        torch.save(states(t), Path(out_dir) / f"rank{rank}.pt")
    finally:
        distributed.cleanup()


def run_two(spec: dict, run_dirs: list, out_dir: Path, resume: bool = False) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    mp.spawn(_worker, args=(2, free_port(), spec, [str(d) for d in run_dirs], str(out_dir), resume), nprocs=2)
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in range(2)]


def max_diff(a: dict, b: dict) -> float:
    return max((a[p][k].float() - b[p][k].float()).abs().max().item() for p in a for k in a[p]
               if a[p][k].is_floating_point())


def _params(s: dict) -> torch.Tensor:
    return torch.cat([v.double().flatten() for p in ("G", "D") for k, v in sorted(s[p].items())
                      if v.is_floating_point() and "running_" not in k])


def rel_distance(got: dict, ref: dict, start: dict) -> float:
    """‖got − ref‖ / ‖ref − start‖ over the parameters of G and D."""
    return ((_params(got) - _params(ref)).norm() / (_params(ref) - _params(start)).norm()).item()


@pytest.fixture
def text_file(tmp_path):
    f = tmp_path / "lines.txt"
    f.write_text("\n".join(LINES))
    return str(f)


def test_two_processes_match_one_and_rank0_alone_writes(tmp_path, text_file):
    spec = {"model": "text", "text_file": text_file, "steps": 4, "batch": 8}
    # rank 1 is given a run folder of its own: anything it wrote would show up there
    two = run_two(spec, [tmp_path / "two", tmp_path / "rank1"], tmp_path / "states")
    start = states(make(spec, tmp_path / "start"))
    one = make(spec, tmp_path / "one")
    one.train()
    assert max_diff(two[0], two[1]) == 0.0                 # DDP keeps the ranks' weights identical
    assert rel_distance(two[0], states(one), start) <= REL_NO_BN
    assert not (tmp_path / "rank1").exists()
    run = tmp_path / "two"
    for f in ("config.json", "log.jsonl", "resume.pt", "generator.safetensors", "losses.png"):
        assert (run / f).is_file(), f
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000000.txt", "step_0000004.txt"]
    log2, log1 = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()], one.run.read_log()
    assert [r["step"] for r in log2] == [2, 4]             # once each
    for a, b in zip(log2, log1):                           # the logged losses are the global batch's
        assert a["wasserstein"] == pytest.approx(b["wasserstein"], rel=1e-3, abs=1e-5)
        assert a["img_per_s"] > 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["recipe"]["batch"] == 8
    assert torch.load(run / "resume.pt", weights_only=True)["step"] == 4


def test_resume_across_world_sizes(tmp_path, text_file):
    """2 steps on 1 process, then 2 more on 2 processes from its resume file ≈ 4 steps on 1 process."""
    spec = {"model": "text", "text_file": text_file, "steps": 2, "batch": 8}
    make(spec, tmp_path / "run").train()
    resumed = run_two({**spec, "steps": 4}, [tmp_path / "run"] * 2, tmp_path / "states", resume=True)
    start = states(make(spec, tmp_path / "start"))
    full = make({**spec, "steps": 4}, tmp_path / "full")
    full.train()
    assert rel_distance(resumed[0], states(full), start) <= REL_NO_BN
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == [2, 4]


def test_batch_norm_model_stays_close_without_sync_bn(tmp_path):
    spec = {"model": "mnist-gan", "steps": 4, "batch": 32}
    two = run_two(spec, [tmp_path / "two", tmp_path / "rank1"], tmp_path / "states")
    start = states(make(spec, tmp_path / "start"))
    one = make(spec, tmp_path / "one")
    one.train()
    assert torch.equal(_params(two[0]), _params(two[1]))    # (running statistics stay per rank: not compared)
    assert rel_distance(two[0], states(one), start) <= REL_PER_RANK_BN
    assert (tmp_path / "two" / "generator.safetensors").is_file() and not (tmp_path / "rank1").exists()


def torchrun(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(free_port()), "-m", "training", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_torchrun_cli(tmp_path, mnist_root):
    out = tmp_path / "run"
    r = torchrun("train", "--model", "mnist-gan", "--data", str(mnist_root), "--steps", "4", "--batch", "16",
                 "--device", "cpu", "--out", str(out), "--log-every", "2", "--sample-every", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("run folder:") == 1                # rank 0 alone reports
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [2, 4]
    assert len(list((out / "samples").glob("step_*.png"))) == 3
    from gan_demo import read_checkpoint
    _, _, meta = read_checkpoint(out / "generator.safetensors")
    assert meta["training"]["processes"] == 2 and meta["training"]["batch"] == 16
    assert meta["training"]["hardware"].startswith("2 × CPU")
    r = torchrun("train", "--model", "mnist-gan", "--data", str(mnist_root), "--batch", "15", "--device", "cpu",
                 "--out", str(tmp_path / "odd"))
    assert r.returncode != 0 and "error: batch 15 does not split over 2 processes" in r.stderr

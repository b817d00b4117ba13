"""Data-parallel training on the CPU: 2 processes (gloo) against 1 process with the same global batch.

Why the runs can be compared at all: every rank draws the whole global batch from the one seeded generator and
keeps its own rows, and DDP averages the gradients, so 2 processes compute what 1 process computes, split in two.
What is left is floating-point summation order (DDP adds two half-batch mean gradients where one process takes
one mean over the batch) and, for models with batch norm, the per-rank batch statistics (see the tolerances below).
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from gan_demo.registry import REGISTRY, ModelEntry
from training.data import ImageData, load_text
from training.loop import Trainer

ROOT = Path(__file__).resolve().parent.parent

# Without batch norm the two runs differ by float32 rounding only (~1e-7 relative per gradient); Adam's first steps
# divide by sqrt(v), which can magnify the rounding of a near-zero gradient, so parameters may differ by up to
# ~lr · 1e-3 after a few steps (measured: ≤ 1e-6 here, against updates of 4·lr = 4e-4). 2e-6 leaves room for BLAS.
ATOL_NO_BN = 2e-6
LINES = ["The cat sat on the mat.", "It's a fine day, isn't it?", "Go home now!", "We'll see.",
         "A small step.", "Where is the station?", "Seven apples, please.", "Good night."] * 4


def text_entry() -> ModelEntry:
    """text-wgangp made small: no batch norm anywhere, the gradient penalty's double backward, 2 critic steps."""
    d = REGISTRY["text-wgangp"].to_dict()
    d["config"].update(dim=32, n_blocks=1)
    d["recipe"].update(n_critic=2)
    return ModelEntry.from_dict(d)


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two(spec: dict, run_dirs: list, out_dir: Path, resume: bool = False) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    mp.spawn(_worker, args=(2, _free_port(), spec, [str(d) for d in run_dirs], str(out_dir), resume), nprocs=2)
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in range(2)]


def max_diff(a: dict, b: dict) -> float:
    return max((a[p][k].float() - b[p][k].float()).abs().max().item() for p in a for k in a[p]
               if a[p][k].is_floating_point())


@pytest.fixture
def text_file(tmp_path):
    f = tmp_path / "lines.txt"
    f.write_text("\n".join(LINES))
    return str(f)


def test_two_processes_match_one_and_rank0_alone_writes(tmp_path, text_file):
    spec = {"model": "text", "text_file": text_file, "steps": 4, "batch": 8}
    # rank 1 gets a run folder of its own: anything it wrote would show up there
    two = run_two(spec, [tmp_path / "two", tmp_path / "rank1"], tmp_path / "states")
    one = make(spec, tmp_path / "one")
    one.train()
    ref = states(one)
    print("max |2 proc - 1 proc| =", max_diff(two[0], ref))
    assert max_diff(two[0], two[1]) == 0.0                 # DDP keeps the ranks' weights identical
    assert max_diff(two[0], ref) <= ATOL_NO_BN
    assert not (tmp_path / "rank1").exists()
    run = tmp_path / "two"
    for f in ("config.json", "log.jsonl", "resume.pt", "generator.safetensors", "losses.png"):
        assert (run / f).is_file(), f
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000000.txt", "step_0000004.txt"]
    log2 = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    log1 = one.run.read_log()
    assert [r["step"] for r in log2] == [2, 4]             # once each: rank 0 alone logs
    for a, b in zip(log2, log1):                           # the logged losses are those of the global batch
        assert a["d_loss"] == pytest.approx(b["d_loss"], rel=1e-4, abs=1e-5)
        assert a["wasserstein"] == pytest.approx(b["wasserstein"], rel=1e-4, abs=1e-5)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["recipe"]["batch"] == 8


def test_resume_across_world_sizes(tmp_path, text_file):
    """2 steps on 1 process, then 2 more on 2 processes from the resume file = 4 steps on 1 process."""
    spec = {"model": "text", "text_file": text_file, "steps": 2, "batch": 8}
    make(spec, tmp_path / "run").train()
    resumed = run_two({**spec, "steps": 4}, [tmp_path / "run", tmp_path / "rank1"], tmp_path / "states",
                      resume=True)
    full = make({**spec, "steps": 4}, tmp_path / "full")
    full.train()
    print("max |resumed - full| =", max_diff(resumed[0], states(full)))
    assert max_diff(resumed[0], states(full)) <= ATOL_NO_BN
    assert [r["step"] for r in json.loads("[" + ",".join((tmp_path / "run" / "log.jsonl").read_text()
                                                          .splitlines()) + "]")] == [2, 4]

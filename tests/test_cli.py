"""The CLI as a newcomer meets it: bad arguments give one line and a non-zero exit; a tiny run works.
`training.cli.main()` runs in this process (no interpreter and torch start per case), except where a test needs a
process to kill."""
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run(capsys):
    """main(args) → (exit code, stdout, stderr lines); SIGTERM's handler (set by `train`) is put back after."""
    before = signal.getsignal(signal.SIGTERM)

    def call(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, [l for l in err.splitlines() if l.strip()]
    yield call
    signal.signal(signal.SIGTERM, before)


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
    (["export", "/no/such/run"], "'/no/such/run': no such run folder"),
    ([], "give a command: train, export"),
    (["train", "--model", "mnist-gan", "--lr", "nan"], "--lr: expected a finite number, got 'nan'"),
    (["train", "--model", "mnist-gan", "--lr", "inf"], "--lr: expected a finite number, got 'inf'"),
    (["train", "--model", "mnist-gan", "--seed", "99999999999999999999"], "--seed: the seed must be from 0 to 4294967295"),
    (["project", "mnist-gan", "x.png", "--seed", "-1"], "--seed: the seed must be from 0 to 4294967295"),
    (["sample", "mnist-gan", "--truncation", "nan"], "--truncation: expected a finite number"),
    (["sample", "text-wgangp", "--temperature", "nan"], "--temperature: must be 0 (argmax) or from 0.01 to 100"),
    (["evaluate", "mnist-gan", "--n", "1"], "--n: must be at least 100, got 1"),
    (["evaluate", "celeba64-dcgan", "--memorisation"], "--memorisation compares Inception features: use it with --fid"),
    (["directions", "mnist-gan", "--samples", "1"], "--samples: must be at least 100, got 1"),
    (["campaign", "training/plans/cpu.toml", "--hours", "nan"], "--hours: expected a finite number"),
    (["campaign", "training/plans/cpu.toml", "--latest"], "--latest goes with --export (nothing was started)"),
    (["push", "/no/such/run", "--repo", "a/b", "--dry-run"], "'/no/such/run': no such run folder or checkpoint"),
    (["directions", "no-such-model"], "unknown model"),
    (["directions", "/no/such/file.safetensors"], "not found"),
    (["frobnicate"], "invalid choice"),
    (["train", "--model", "mnist-gan", "--device", "quantum"], "unknown device 'quantum'"),
    (["sample", "mnist-gan", "--device", "bogus"], "unknown device 'bogus'"),
    (["evaluate", "mnist-gan", "--device", "cuda:x"], "unknown device 'cuda:x'"),
    (["directions", "mnist-gan", "--frobnicate"], "unrecognized arguments: --frobnicate (see: python -m training --help)"),
])
def test_bad_arguments_one_line_nonzero(args, needle, run):
    code, _, lines = run(*args)
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines


@pytest.mark.parametrize("args, needle", [
    (["sample", "mnist-gan", "--labels", "1"], "mnist-gan is not conditional: --labels is for mnist-cgan"),
    (["sample", "text-wgangp", "--latents", "z.npy"], "text-wgangp is a text model: it takes --seeds"),
    (["sample", "mnist-gan", "--latents", "/no/such/z.npy"], "'/no/such/z.npy': no such file"),
    (["sample", "text-wgangp", "--out", "/no/such/folder/t.txt"], "cannot write '/no/such/folder/t.txt'"),
    (["project", "mnist-gan", "/"], "is a folder: give a picture file"),
    (["directions", "mnist-gan", "no-such-model"], "unknown model 'no-such-model'"),
    (["directions", "mnist-gan", "--label", "11=wide"], "direction 11: mnist-gan has directions 1 to 10"),
    (["directions", "mnist-gan", "--label", "wide"], "expected K=NAME with K a slider number"),
    (["directions", "mnist-gan", "--label", "1=" + "x" * 61], "at most 60 characters"),
    (["directions", "mnist-gan", "mnist-gan", "--label", "1=x"], "--sheet and --label are for one checkpoint"),
    (["directions", "mnist-gan", "--sheet", "sheet.txt"], "--sheet: give a picture file name"),
    (["directions", "mnist-gan", "--sheet", "/no/such/folder/s.png"], "its folder does not exist"),
    (["directions", "text-wgangp", "--label", "1=x"], "text-wgangp is a text model"),
])
def test_bad_input_to_a_shipped_model_is_one_line(args, needle, run, tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ("mnist-gan", "text-wgangp"):
        (weights / f"{name}.safetensors").write_bytes((ROOT / "weights" / f"{name}.safetensors").read_bytes())
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(weights))
    before = (weights / "mnist-gan.safetensors").read_bytes()
    code, _, lines = run(*args)
    assert code == 2 and len(lines) == 1 and needle in lines[0], lines
    assert (weights / "mnist-gan.safetensors").read_bytes() == before      # `directions` rewrote nothing


def test_directions_named_by_a_person_after_looking_at_the_sheet(run, tmp_path, monkeypatch):
    """--sheet draws what each direction does; --label names it; the app and the card show the name, the measured
    one stays beside it; measuring the same weights again keeps it; K= takes it back."""
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "mnist-gan.safetensors").write_bytes((ROOT / "weights" / "mnist-gan.safetensors").read_bytes())
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(weights))
    from PIL import Image
    from gan_demo import load_generator
    from gan_demo.checkpoint import read_checkpoint
    code, out, err = run("directions", "mnist-gan", "--sheet", tmp_path / "sheet.png")
    assert code == 0 and "per direction 1 to 10, seeds 0-3" in out, err
    # 7 amounts of 28-px digits across; 10 blocks of 4 seeds down, 12 px between blocks
    assert Image.open(tmp_path / "sheet.png").size == (7 * 30 + 2, 10 * (4 * 30 + 2) + 9 * 12)
    assert run("directions", "mnist-gan", "--samples", "300")[0] == 0
    measured = read_checkpoint(weights / "mnist-gan.safetensors")[2]["directions"]["labels"]

    code, out, err = run("directions", "mnist-gan", "--label", "2=upright ↔ slanted", "--label", "4=small ↔ big")
    assert code == 0 and "2: upright ↔ slanted;" in out and "4: small ↔ big;" in out, err
    d = read_checkpoint(weights / "mnist-gan.safetensors")[2]["directions"]
    assert d["labels"] == measured and d["looked_at"] == {"2": "upright ↔ slanted", "4": "small ↔ big"}
    labels = load_generator("mnist-gan").direction_labels
    assert labels[1] == "upright ↔ slanted" and labels[0] == measured[0]
    card = (weights / "mnist-gan.md").read_text()
    assert f"| 2 | upright ↔ slanted (*looked at*; measured: {measured[1]}) |" in card
    assert f"| 1 | {measured[0]} |" in card

    assert run("directions", "mnist-gan", "--samples", "300")[0] == 0          # the same weights, measured again
    assert read_checkpoint(weights / "mnist-gan.safetensors")[2]["directions"]["looked_at"] == d["looked_at"]
    assert run("directions", "mnist-gan", "--label", "2=")[0] == 0
    d = read_checkpoint(weights / "mnist-gan.safetensors")[2]["directions"]
    assert d["looked_at"] == {"4": "small ↔ big"}
    assert run("directions", "mnist-gan", "--label", "4=")[0] == 0
    assert "looked_at" not in read_checkpoint(weights / "mnist-gan.safetensors")[2]["directions"]
    assert "*looked at*" not in (weights / "mnist-gan.md").read_text()


def test_sample_draws_saved_latents_with_their_class(tmp_path, run):
    import numpy as np
    z = np.random.default_rng(0).standard_normal((3, 100)).astype("float32")
    np.save(tmp_path / "z.npy", z)
    (tmp_path / "z.json").write_text(json.dumps({"model": "mnist-cdcgan", "label": 7}))
    code, out, err = run("sample", "mnist-cdcgan", "--latents", tmp_path / "z.npy", "--out", tmp_path / "z.png")
    assert code == 0 and "3 images from mnist-cdcgan" in out, err
    from gan_demo import load_generator
    from gan_demo.render import make_grid
    from PIL import Image
    want = make_grid(load_generator("mnist-cdcgan").sample(latents=z, labels=[7] * 3), 10)   # its class: 7
    assert np.array_equal(np.asarray(Image.open(tmp_path / "z.png")).reshape(want.shape), want)
    code, _, err = run("sample", "mnist-dcgan", "--latents", tmp_path / "z.npy")
    assert code == 2 and "z.npy was found with mnist-cdcgan, not mnist-dcgan" in err[0]


def test_batches_larger_than_the_data_and_sync_bn_in_one_process_are_refused(tmp_path, mnist_root, run):
    for extra, needle in ((["--batch", "1000000000"], "batch 1,000,000,000 is larger than the data"),
                          (["--sync-bn"], "--sync-bn synchronises batch norm across torchrun's processes")):
        code, _, lines = run("train", "--model", "mnist-gan", "--data", mnist_root, "--steps", "1",
                             "--out", tmp_path / "run", *extra)
        assert code == 2 and len(lines) == 1 and needle in lines[0], lines
        assert not (tmp_path / "run").exists()


def test_a_failed_download_leaves_no_folders_in_the_data_root(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST
    from training.data import DataError, load_mnist

    def offline(self):
        (Path(self.raw_folder)).mkdir(parents=True, exist_ok=True)     # as torchvision does, before it fails
        raise RuntimeError("no internet")
    monkeypatch.setattr(MNIST, "download", offline)
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError, match="could not be downloaded"):
        load_mnist(tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_missing_gpu_is_one_line_before_anything_loads(run):
    for args in (["sample", "mnist-gan", "--device", "cuda"], ["train", "--model", "mnist-gan", "--device", "cuda:1"]):
        code, _, lines = run(*args)
        assert code == 2 and len(lines) == 1 and "is not available here (no CUDA GPU found)" in lines[0], lines


def test_train_resume_export_sample(tmp_path, mnist_root, run):
    out = tmp_path / "run"
    code, _, err = run("train", "--model", "mnist-gan", "--data", mnist_root, "--steps", "20", "--batch", "16",
                       "--out", out, "--log-every", "10", "--sample-every", "10")
    assert code == 0, err
    code, _, err = run("train", "--model", "mnist-gan", "--data", mnist_root, "--steps", "30", "--batch", "16",
                       "--out", out, "--resume", "--log-every", "10", "--sample-every", "10")
    assert code == 0 and any("resuming mnist-gan at step 20" in l for l in err), err
    dest = tmp_path / "w" / "mnist-gan.safetensors"
    assert run("export", out, "--to", dest)[0] == 0
    code, _, err = run("sample", dest, "--seeds", "0-15", "--out", tmp_path / "grid.png")
    assert code == 0 and (tmp_path / "grid.png").is_file(), err
    from gan_demo.checkpoint import read_checkpoint
    before = read_checkpoint(dest)
    code, out, err = run("directions", dest, "--samples", "300")      # names measured again, weights untouched
    after = read_checkpoint(dest)
    assert code == 0 and out.startswith(f"{dest}: 1: "), err
    assert all(before[1][k].equal(after[1][k]) for k in before[1]) and after[2]["metrics"] == before[2]["metrics"]
    assert len(after[2]["directions"]["labels"]) == len(after[2]["directions"]["effects"]) == 10
    from gan_demo.checkpoint import G_PREFIX, read_safetensors
    dtypes = lambda p: {v.dtype for k, v in read_safetensors(p)[1].items()  # noqa: E731
                        if k.startswith(G_PREFIX) and v.is_floating_point()}
    assert dtypes(dest) == {torch.float16}
    assert run("directions", tmp_path / "run" / "generator.safetensors", "--samples", "300")[0] == 0
    assert dtypes(tmp_path / "run" / "generator.safetensors") == {torch.float32}        # a run's file stays full precision
    code, _, err = run("train", "--model", "mnist-gan", "--out", tmp_path / "fresh", "--resume")
    assert code != 0 and "no resume file" in err[-1]


def test_list(run):
    code, out, _ = run("list")
    lines = out.splitlines()
    from gan_demo.registry import REGISTRY
    assert code == 0 and [l.split()[0] for l in lines] == list(REGISTRY)


def test_a_killed_run_resumes_from_its_last_saved_state(tmp_path, mnist_root, run):
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
    code, _, err = run("train", "--model", "mnist-gan", "--data", mnist_root, "--steps", step + 10, "--batch", "16",
                       "--out", out, "--resume", "--log-every", "5", "--sample-every", "10")
    assert code == 0 and any(f"resuming mnist-gan at step {step}" in l for l in err), err
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

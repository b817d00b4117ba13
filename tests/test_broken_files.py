"""Broken resume files, a full disk and unwritable folders: a one-line error, nothing executed, nothing half-written.
(Broken checkpoints: test_checkpoint.py and test_app_service.py; killed and resumed CLI runs: test_cli.py.)"""
import errno
import os
import pickle
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from conftest import ROOT
from gan_demo.checkpoint import atomic_write
from gan_demo.registry import REGISTRY
from training.data import ImageData
from training.loop import Trainer, TrainingError

SENTINEL = "gan_demo_resume_payload_ran"


class Payload:
    """Unpickling this runs code: it would create a file."""
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def tiny_data(n=64):
    g = torch.Generator().manual_seed(0)
    return ImageData(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                     torch.randint(0, 10, (n,), generator=g), "random bytes")


def trainer(run_dir, name="mnist-gan"):
    return Trainer(REGISTRY[name], tiny_data(), run_dir, steps=4, batch=8, progress=False, log_every=2,
                   sample_every=4)


@pytest.fixture
def good_resume(tmp_path):
    """A real resume file of mnist-gan after 4 steps; → its bytes."""
    t = trainer(tmp_path / "good")
    t.train()
    return (tmp_path / "good" / "resume.pt").read_bytes()


def breakages(good: bytes, tmp_path):
    other = tmp_path / "other"
    trainer(other, "mnist-cgan").train()                  # a resume file of another model
    st = tmp_path / "st.safetensors"
    save_file({"x": torch.zeros(2)}, st)
    return {
        "zero-byte": b"",
        "truncated": good[: len(good) // 2],
        "wrong header": b"\x00garbage that is not a zip archive" + good[40:],
        "pickle with code": pickle.dumps({"step": Payload(str(tmp_path / SENTINEL))}),
        "torch.save with code": _torch_saved({"step": Payload(str(tmp_path / SENTINEL))}),
        "another model's state": (other / "resume.pt").read_bytes(),
        "a safetensors file": st.read_bytes(),
    }


def _torch_saved(obj) -> bytes:
    import io
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_broken_resume_files_are_one_line_errors_and_never_run_code(tmp_path, good_resume):
    for what, data in breakages(good_resume, tmp_path).items():
        run = tmp_path / what.replace(" ", "_")
        t = trainer(run)
        run.mkdir()                                       # (a trainer writes nothing before it trains)
        (run / "resume.pt").write_bytes(data)
        with pytest.raises(TrainingError) as caught:
            t.load_resume()
        message = str(caught.value)
        assert "unusable resume file" in message and "\n" not in message and len(message) < 400, (what, message)
        assert not (tmp_path / SENTINEL).exists(), what


def test_the_cli_refuses_a_broken_resume_file_in_one_line(tmp_path, mnist_root):
    run = tmp_path / "run"
    run.mkdir()
    (run / "resume.pt").write_bytes(pickle.dumps(Payload(str(tmp_path / SENTINEL))))
    r = subprocess.run([sys.executable, "-m", "training", "train", "--model", "mnist-gan", "--out", str(run),
                        "--resume", "--data", str(mnist_root)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert lines[0] == (f"error: {run / 'resume.pt'}: unusable resume file (not torch.save data of tensors and "
                        f"numbers; refused unread, nothing in it was run)"), r.stderr
    assert not (tmp_path / SENTINEL).exists()


def test_a_full_disk_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "resume.pt"
    target.write_bytes(b"the previous state")

    def fill_the_disk(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half of the new st")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, fill_the_disk)
    assert target.read_bytes() == b"the previous state"
    assert [p.name for p in tmp_path.iterdir()] == ["resume.pt"]           # no temporary file left behind


def failing_env(tmp_path, target: str, needle: str, code: int) -> dict:
    """The environment of a subprocess in which `target` (e.g. "torch.save", "os.mkdir") raises OSError(code) when
    one of its path arguments contains `needle`: a sitecustomize on PYTHONPATH, to simulate a full disk or a folder
    the OS refuses."""
    module = target.rsplit(".", 1)[0]
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        f"import os, {module}\n"
        f"_real = {target}\n"
        "def failing(*a, **k):\n"
        f"    if any(isinstance(x, (str, os.PathLike)) and {needle!r} in str(x) for x in a):\n"
        f"        raise OSError({code}, os.strerror({code}))\n"
        "    return _real(*a, **k)\n"
        f"{target} = failing\n")
    return {**os.environ, "PYTHONPATH": str(hook)}


def test_a_full_disk_mid_run_is_a_one_line_cli_error(tmp_path, mnist_root):
    """The CLI on a disk that fills up while it saves: a one-line error and a non-zero exit, not a traceback.
    (ENOSPC is simulated by a sitecustomize that makes every write of the resume file fail.)"""
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "training", "train", "--model", "mnist-gan", "--data",
                        str(mnist_root), "--steps", "4", "--batch", "8", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300,
                       env=failing_env(tmp_path, "torch.save", ".resume.pt.", errno.ENOSPC))
    lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith(("mnist-gan", "\r"))]
    assert r.returncode != 0 and lines and lines[-1] == "error: cannot write the run (No space left on device)", \
        r.stderr[-2000:]
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("kind", ["read-only folder", "under a file"])
def test_an_unwritable_run_folder_is_a_one_line_cli_error(tmp_path, kind):
    env = dict(os.environ)
    if kind == "read-only folder":
        parent = tmp_path / "locked"
        parent.mkdir(mode=0o500)
        if os.geteuid() == 0:               # root may write anywhere: its mkdir there is refused as a user's would be
            env = failing_env(tmp_path, "os.mkdir", str(parent), errno.EACCES)
    else:                                   # a path through a regular file: unwritable even for root
        parent = tmp_path / "a_file"
        parent.write_text("not a folder")
    r = subprocess.run([sys.executable, "-m", "training", "train", "--model", "mnist-gan", "--out",
                        str(parent / "run")], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode != 0 and r.stderr.strip().splitlines() == [f"error: cannot write to the run folder "
                                                                   f"'{parent / 'run'}'"]

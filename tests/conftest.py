"""Shared fixtures. `tiny_weights` writes a freshly initialised checkpoint for every registry entry into a
temporary folder and points GAN_DEMO_WEIGHTS_DIR at it, so app and API tests never depend on trained files."""
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from app_process import make_tiny_weights  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED_DATA = Path(os.environ.get("GAN_DEMO_TEST_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def tiny_weights_dir(tmp_path_factory):
    return make_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture
def tiny_weights(tiny_weights_dir, monkeypatch):
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tiny_weights_dir))
    return tiny_weights_dir


@pytest.fixture
def mnist_root():
    root = SHARED_DATA / "mnist"
    if not (root / "MNIST" / "raw").is_dir():
        pytest.skip("offline MNIST copy not present")
    return root


@pytest.fixture
def one_thread():
    """One intra-op thread: on a small shared machine several threads per run are much slower, not faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A private runs folder for the Train tab's job manager."""
    monkeypatch.setenv("GAN_DEMO_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture
def make_manager(runs_dir, mnist_root, tiny_weights):
    """make(**kw) → a TrainingManager on the CPU over the offline MNIST; every one made is shut down after."""
    from gan_demo.app.jobs import TrainingManager
    made = []

    def make(**kw):
        m = TrainingManager(**{"data_root": mnist_root, "device": "cpu", **kw})
        made.append(m)
        return m
    yield make
    for m in made:
        m.shutdown()

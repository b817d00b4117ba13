import numpy as np
import pytest
from scipy import linalg

from training.metrics import feature_stats, frechet_distance, kernel_inception_distance


def test_frechet_of_a_set_with_itself_is_zero():
    f = np.random.default_rng(0).normal(size=(500, 16))
    mu, s = feature_stats(f)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-6


def test_frechet_closed_form_on_gaussians():
    # diagonal covariances: FID = ‖μ1-μ2‖² + Σ(√a - √b)²
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expect = 5.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expect)


def test_frechet_matches_scipy_sqrtm_and_is_symmetric():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8)) + 0.5
    (m1, s1), (m2, s2) = feature_stats(x), feature_stats(y)
    ref = ((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(ref, rel=1e-6)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(frechet_distance(m2, s2, m1, s1), rel=1e-9)


def test_kid_is_near_zero_for_one_distribution_and_positive_otherwise():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
    same, _ = kernel_inception_distance(x, y, subsets=20, subset_size=200)
    shifted, _ = kernel_inception_distance(x, y + 1.0, subsets=20, subset_size=200)
    assert abs(same) < 0.01 and shifted > 0.1
    a, _ = kernel_inception_distance(x, y + 1.0, subsets=20, subset_size=200, seed=3)
    b, _ = kernel_inception_distance(y + 1.0, x, subsets=20, subset_size=200, seed=3)
    assert a == pytest.approx(b, rel=0.2)

"""ELBO surgery, the aggregate posterior's density and the holes (latentlab.surgery), on codes with known answers."""

import math

import numpy as np
import pytest

from latentlab import surgery


def _brute_log_q(z, mu, lv):
    var = np.exp(lv)
    comp = -0.5 * (((z[:, None, :] - mu[None]) ** 2) / var[None] + lv[None] + math.log(2 * math.pi)).sum(-1)
    peak = comp.max(1)
    return peak + np.log(np.exp(comp - peak[:, None]).mean(1))


def test_log_aggregate_is_the_mixture_in_any_chunk():
    rng = np.random.default_rng(0)
    mu, lv = rng.normal(size=(37, 5)), rng.normal(scale=0.5, size=(37, 5))
    z = rng.normal(size=(50, 5))
    want = _brute_log_q(z, mu, lv)
    for chunk in (1, 7, 512):
        np.testing.assert_allclose(surgery.log_aggregate(z, mu, lv, chunk=chunk), want, rtol=1e-9, atol=1e-9)


def test_codes_at_the_prior_split_nothing():
    mu, lv = np.zeros((20, 3)), np.zeros((20, 3))
    s = surgery.split_rate(mu, lv, draws=200)
    assert s.rate == 0.0 and abs(s.marginal_kl) < 1e-9 and abs(s.mutual_info) < 1e-9


def test_one_image_has_no_mutual_information():
    mu, lv = np.array([[1.5, -0.5]]), np.array([[-1.0, 0.3]])
    s = surgery.split_rate(mu, lv, draws=4000)
    assert s.images == 1 and s.log_n == 0.0
    assert abs(s.mutual_info) < 4 * s.standard_error + 1e-9
    assert s.marginal_kl + s.mutual_info == pytest.approx(s.rate)


def test_separate_sharp_codes_say_log_n():
    """Eight codes far apart and sharp: each names its image, I(x; z) = log 8; the rest is the mismatch."""
    angles = np.arange(8) * 2 * math.pi / 8
    mu = 3 * np.stack([np.cos(angles), np.sin(angles)], 1)
    lv = np.full_like(mu, math.log(0.01 ** 2))
    s = surgery.split_rate(mu, lv, draws=800)
    assert s.mutual_info == pytest.approx(math.log(8), abs=1e-3)
    assert s.marginal_kl == pytest.approx(s.rate - math.log(8), abs=1e-3)
    assert s.marginal_kl > 0


def test_a_larger_image_set_is_a_fixed_subset():
    rng = np.random.default_rng(1)
    mu, lv = rng.normal(size=(300, 4)), np.full((300, 4), -1.0)
    a = surgery.split_rate(mu, lv, draws=300, max_images=100)
    b = surgery.split_rate(mu, lv, draws=300, max_images=100)
    assert a.images == 100 and a.to_json() == b.to_json()


def test_bad_codes_are_refused_in_one_line():
    with pytest.raises(ValueError, match="one shape"):
        surgery.split_rate(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="no codes"):
        surgery.split_rate(np.zeros((0, 2)), np.zeros((0, 2)))


def test_holes_follow_the_codes():
    """Codes in the right half of the plane: the left half of the prior is a hole, the right is not."""
    rng = np.random.default_rng(2)
    mu = np.stack([rng.uniform(0.5, 3, 400), rng.normal(size=400)], 1)
    lv = np.full_like(mu, math.log(0.3 ** 2))
    grid = surgery.density_grid(mu, lv, res=40)
    assert grid.log_q.shape == grid.holes.shape == (40, 40)
    left, right = grid.holes[:, :16], grid.holes[:, 24:]
    inside = grid.log_p[:, :16] > math.log(surgery.HOLE_PRIOR_FLOOR / (2 * math.pi))
    assert left[inside].mean() > 0.9 and right.mean() < 0.2
    assert 0.3 < grid.hole_mass < 0.7
    assert 0.3 < surgery.hole_fraction(mu, lv, draws=2000) < 0.7
    # codes that fill the prior leave no hole
    mu2, lv2 = rng.normal(size=(400, 2)) * 0.9, np.full((400, 2), math.log(0.2))
    assert surgery.hole_fraction(mu2, lv2, draws=2000) < 0.05
    assert surgery.density_grid(mu2, lv2, res=40).holes.mean() < 0.05


def test_kl_per_dim_and_ellipse_are_closed_form():
    kl = surgery.kl_per_dim([1.0, 0.0], [0.0, math.log(4.0)])
    np.testing.assert_allclose(kl[0], [0.5, 0.5 * (4 - 1 - math.log(4))])
    e = surgery.ellipse([1.0, 2.0, 3.0], [0.0, math.log(4.0), 0.0], dims=(1, 2), sigmas=2)
    assert e.shape == (49, 2)
    assert e[:, 0].max() == pytest.approx(2 + 4) and e[:, 1].min() == pytest.approx(3 - 2)


def test_a_projection_sees_the_same_densities_as_two_dimensions():
    """The plane of dims (1, 2) of 3-D codes, given as components, is the grid of those two dims; a rotated
    plane (PCA-like) turns the densities with it; the prior stays N(0, I) in any orthonormal plane."""
    rng = np.random.default_rng(3)
    mu, lv = rng.normal(size=(60, 3)), rng.normal(scale=0.3, size=(60, 3)) - 1
    comps, centre = surgery.plane_axes(3, (1, 2))
    a = surgery.density_grid(mu, lv, res=20, components=comps, center=centre)
    b = surgery.density_grid(mu[:, 1:], lv[:, 1:], res=20)
    np.testing.assert_allclose(a.log_q, b.log_q, rtol=1e-9)
    np.testing.assert_allclose(a.log_p, b.log_p, rtol=1e-9)
    turn = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])   # x = z2, y = −z1
    c = surgery.density_grid(mu, lv, res=20, components=turn, center=np.zeros(3))
    np.testing.assert_allclose(c.log_q, np.fliplr(b.log_q).T, rtol=1e-9)
    means, covs = surgery.plane_gaussians(mu, lv, turn, np.zeros(3))
    e = surgery.ellipse_2d(means[0], covs[0], sigmas=1)
    np.testing.assert_allclose(np.ptp(e, axis=0), 2 * np.sqrt(np.exp(lv[0, [2, 1]])), rtol=1e-3)


def test_precision_recall_density_coverage_on_known_sets():
    from latentlab.sample_quality import prdc

    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 2))
    same = prdc(real, rng.normal(size=(400, 2)))
    assert same["precision"] > 0.9 and same["recall"] > 0.9 and same["coverage"] > 0.9
    assert 0.7 < same["density"] < 1.3
    half = prdc(real, rng.normal(size=(400, 2)) * 0.3 + [1.5, 0])     # samples in one corner of the data
    assert half["precision"] > 0.8 and half["coverage"] < 0.5 and half["recall"] < 0.5
    with pytest.raises(ValueError, match="at least 6"):
        prdc(real[:3], real)

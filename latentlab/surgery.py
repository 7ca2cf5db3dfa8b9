"""What the KL term buys: the rate split in two, the prior and the aggregate posterior on a map, and the holes.

**ELBO surgery** (Hoffman & Johnson, "ELBO surgery: yet another way to carve up the variational evidence
lower bound", 2016). The rate a VAE pays, the mean over images of KL(q(z|x) ‖ p(z)), splits exactly as

    E_x[KL(q(z|x) ‖ p(z))] = I_q(x; z) + KL(q(z) ‖ p(z)),     q(z) = (1/N) Σ_n q(z|x_n)

where q(z) is the *aggregate posterior*, the mixture of every image's Gaussian. I(x; z) is what a code says
about which image it came from (at most log N nats, N the images in the mixture: a code cannot name one of
N images with more); KL(q(z) ‖ p(z)) is how far the codes as a whole sit from the prior N(0, I): the part of
the rate spent on codes the prior never draws. A prior sample landing where q(z) has no mass (a "hole")
decodes to something no image looks like.

**Estimator** (`split_rate`). The rate is exact (closed form per image). I(x; z) is
E_n E_{z~q(z|x_n)}[log q(z|x_n) − log q(z)], estimated by Monte Carlo: ``draws`` codes z_s, each drawn from
the posterior of an image n_s (the images in a random order, repeated, so the draws are spread evenly over
the mixture), and log q(z_s) = log-mean-exp over all N posteriors of log q(z_s | x_m), computed exactly. Each
term is at most log N (q(z) ≥ q(z|x_n)/N), so the estimate never passes the bound. The marginal KL is the
rate minus I: the two add to the rate exactly, and the only error is the Monte-Carlo error of the mean over
draws, std(log q(z_s|x_n) − log q(z_s)) / √draws, the same for both. (Estimating the marginal KL directly, as
the mean of log q(z) − log p(z), has a larger error: log p(z) varies with the draw's noise where
log q(z|x_n) − log q(z) hardly does once the codes are apart.)

Memory is O(chunk × N) for any latent size d: log q(z|x_m) for a chunk of draws against all N posteriors is
three matrix products (the quadratic form expanded), never a (chunk, N, d) array. Time is O(draws × N × d).
Past ``max_images`` images the mixture is a fixed random subset of them (said in the result: ``images``).

**Maps** (`density_grid`): in two chosen dimensions of z, the prior's and the aggregate posterior's
densities on a grid (q's marginal in two dimensions is the mixture of the posteriors' marginals, exact),
and the **holes**: grid cells where the prior's density is at least ``HOLE_PRIOR_FLOOR`` of its peak and q
has less than ``HOLE_RATIO`` × the prior's density there. `hole_fraction` is the share of the prior's
mass (in all d dimensions) that falls in holes, by Monte Carlo over prior draws: P_{z~p}[q(z) < HOLE_RATIO · p(z)].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Split", "split_rate", "log_aggregate", "log_prior", "hole_fraction", "in_hole", "DensityGrid",
           "density_grid", "kl_per_dim", "ellipse", "ellipse_2d", "plane_axes", "plane_gaussians", "plane_prior",
           "HOLE_RATIO", "HOLE_PRIOR_FLOOR", "DEFAULT_DRAWS",
           "EPOCH_DRAWS", "EPOCH_MAX_IMAGES", "MAX_IMAGES", "CHUNK", "rate_split_logs"]

DEFAULT_DRAWS = 2000     # the lesson's final evaluation
EPOCH_DRAWS = 500        # each epoch while training (cost measured in docs/benchmarks.md)
EPOCH_MAX_IMAGES = 2000  # each epoch: the mixture of at most this many validation images (a fixed subset)
MAX_IMAGES = 10000       # the mixture's components at most (a fixed random subset past it)
CHUNK = 512              # draws per block: a block holds CHUNK × N numbers
HOLE_RATIO = 0.1         # q(z) below a tenth of p(z): a hole
HOLE_PRIOR_FLOOR = math.exp(-0.5 * 3.0 ** 2)   # on a map: only where the prior is within 3σ counts


@dataclass
class Split:
    """The rate (nats per image) split into its two parts, with the Monte-Carlo standard error."""
    rate: float
    mutual_info: float
    marginal_kl: float
    standard_error: float
    draws: int
    images: int

    @property
    def log_n(self) -> float:
        """The bound on I(x; z): a code cannot say more than which of the N images it came from."""
        return math.log(self.images) if self.images else math.nan

    def to_json(self) -> dict:
        return {"rate": self.rate, "mutual_info": self.mutual_info, "marginal_kl": self.marginal_kl,
                "standard_error": self.standard_error, "draws": self.draws, "images": self.images,
                "mutual_info_bound": self.log_n, "unit": "nats per image"}


def _as_pair(z_mean, z_log_var) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(z_mean, np.float64)
    lv = np.asarray(z_log_var, np.float64)
    if mu.ndim != 2 or mu.shape != lv.shape:
        raise ValueError(f"z_mean and z_log_var must be (N, d) arrays of one shape, not {mu.shape} and {lv.shape}")
    return mu, lv


def kl_per_dim(z_mean, z_log_var) -> np.ndarray:
    """KL(q(z|x) ‖ N(0, I)) of each image in each dimension, closed form: (N, d) nats."""
    mu, lv = _as_pair(np.atleast_2d(z_mean), np.atleast_2d(z_log_var))
    return 0.5 * (mu ** 2 + np.exp(lv) - 1.0 - lv)


def log_prior(z) -> np.ndarray:
    z = np.asarray(z, np.float64)
    return -0.5 * np.sum(z ** 2, axis=-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


class _Mixture:
    """log q(z) for q the mixture of N diagonal Gaussians, in blocks (memory O(block × N))."""

    def __init__(self, mu: np.ndarray, log_var: np.ndarray, chunk: int = CHUNK):
        self.mu, self.lv = mu, log_var
        self.inv = np.exp(-log_var)                                    # (N, d)
        self.mu_inv = mu * self.inv                                    # (N, d)
        d = mu.shape[1]
        # the part of each component's log density that does not depend on z
        self.const = (-0.5 * np.sum(mu * self.mu_inv, axis=1) - 0.5 * np.sum(log_var, axis=1)
                      - 0.5 * d * math.log(2 * math.pi))               # (N,)
        self.chunk = max(1, int(chunk))
        self.log_n = math.log(len(mu))

    def log_components(self, z: np.ndarray) -> np.ndarray:
        """log q(z_s | x_m) for a block of codes z (S, d): (S, N)."""
        return -0.5 * (z ** 2) @ self.inv.T + z @ self.mu_inv.T + self.const

    def log_q(self, z: np.ndarray) -> np.ndarray:
        out = np.empty(len(z))
        for start in range(0, len(z), self.chunk):
            block = self.log_components(z[start:start + self.chunk])
            peak = block.max(axis=1)
            out[start:start + self.chunk] = peak + np.log(np.exp(block - peak[:, None]).sum(axis=1)) - self.log_n
        return out


def _subset(mu, lv, max_images: int, seed: int):
    if len(mu) > max_images:
        keep = np.sort(np.random.default_rng(seed).permutation(len(mu))[:max_images])
        return mu[keep], lv[keep]
    return mu, lv


def log_aggregate(z, z_mean, z_log_var, chunk: int = CHUNK) -> np.ndarray:
    """log q(z) of codes ``z`` (S, d) under the aggregate posterior of (z_mean, z_log_var)."""
    mu, lv = _as_pair(z_mean, z_log_var)
    return _Mixture(mu, lv, chunk).log_q(np.asarray(z, np.float64))


def split_rate(z_mean, z_log_var, draws: int = DEFAULT_DRAWS, seed: int = 0, max_images: int = MAX_IMAGES,
               chunk: int = CHUNK) -> Split:
    """The rate of codes (z_mean, z_log_var) (N, d), split into I(x; z) + KL(q(z) ‖ p(z)) (module docstring)."""
    mu, lv = _as_pair(z_mean, z_log_var)
    if len(mu) == 0:
        raise ValueError("no codes to split the rate of")
    draws = int(draws)
    if draws < 2:
        raise ValueError(f"draws must be at least 2, not {draws}")
    mu, lv = _subset(mu, lv, int(max_images), seed)
    n = len(mu)
    rate = float(kl_per_dim(mu, lv).sum(axis=1).mean())
    rng = np.random.default_rng(seed)
    which = np.resize(rng.permutation(n), draws)                       # each image in turn: stratified
    eps = rng.standard_normal((draws, mu.shape[1]))
    z = mu[which] + np.exp(0.5 * lv[which]) * eps
    log_own = -0.5 * np.sum(eps ** 2 + lv[which], axis=1) - 0.5 * mu.shape[1] * math.log(2 * math.pi)
    info = log_own - _Mixture(mu, lv, chunk).log_q(z)                # log q(z|x_n) − log q(z) ≤ log N, per draw
    mutual = float(info.mean())
    se = float(info.std(ddof=1) / math.sqrt(draws))
    return Split(rate, mutual, rate - mutual, se, draws, n)


def in_hole(z, z_mean, z_log_var, ratio: float = HOLE_RATIO, chunk: int = CHUNK) -> np.ndarray:
    """Whether each code z (S, d) lies in a hole: q(z) < ``ratio`` × p(z)."""
    z = np.asarray(z, np.float64)
    return log_aggregate(z, z_mean, z_log_var, chunk) < math.log(ratio) + log_prior(z)


def hole_fraction(z_mean, z_log_var, draws: int = EPOCH_DRAWS, seed: int = 0, ratio: float = HOLE_RATIO,
                  max_images: int = MAX_IMAGES) -> float:
    """The share of the prior's mass in holes, P_{z~p}[q(z) < ratio · p(z)], from ``draws`` prior draws."""
    mu, lv = _as_pair(z_mean, z_log_var)
    if len(mu) == 0:
        return math.nan
    mu, lv = _subset(mu, lv, int(max_images), seed)
    z = np.random.default_rng(seed + 1).standard_normal((int(draws), mu.shape[1]))
    return float(in_hole(z, mu, lv, ratio).mean())


@dataclass
class DensityGrid:
    """Densities on a ``res`` × ``res`` grid over ``extent`` (x0, x1, y0, y1) of a map's plane, row-major
    (row = y): ``log_q`` the aggregate posterior's marginal, ``log_p`` the prior's, ``holes`` the hole cells."""
    extent: tuple[float, float, float, float]
    log_q: np.ndarray
    log_p: np.ndarray
    holes: np.ndarray

    @property
    def hole_mass(self) -> float:
        """The prior's mass in the hole cells (of its 2-D marginal, on this grid)."""
        x0, x1, y0, y1 = self.extent
        res_y, res_x = self.log_p.shape
        cell = (x1 - x0) / res_x * (y1 - y0) / res_y
        return float(np.exp(self.log_p)[self.holes].sum() * cell)


def plane_axes(latent_dim: int, dims=(0, 1)) -> tuple[np.ndarray, np.ndarray]:
    """The plane of two latent dimensions as (components (2, d), centre (d,)): map = (z − centre) @ componentsᵀ."""
    comps = np.zeros((2, int(latent_dim)))
    comps[0, int(dims[0])] = comps[1, int(dims[1])] = 1.0
    return comps, np.zeros(int(latent_dim))


def plane_gaussians(z_mean, z_log_var, components, center) -> tuple[np.ndarray, np.ndarray]:
    """The posteriors seen in a map's plane (map = (z − centre) @ componentsᵀ, components orthonormal rows):
    their means (N, 2) and covariances (N, 2, 2), exact (a linear map of a Gaussian is Gaussian)."""
    mu, lv = _as_pair(z_mean, z_log_var)
    c = np.asarray(components, np.float64)
    means = (mu - np.asarray(center, np.float64)) @ c.T
    covs = np.einsum("id,nd,jd->nij", c, np.exp(lv), c)
    return means, covs


def plane_prior(components, center) -> tuple[np.ndarray, np.ndarray]:
    """The prior N(0, I) seen in a map's plane: its mean (2,) and covariance (2, 2)."""
    c = np.asarray(components, np.float64)
    return (-np.asarray(center, np.float64)) @ c.T, c @ c.T


def _log_mixture_2d(points, means, covs, chunk: int = CHUNK) -> np.ndarray:
    """log of the equal-weight mixture of 2-D Gaussians (means (N, 2), covs (N, 2, 2)) at points (S, 2),
    in blocks of ``chunk`` points (memory O(chunk × N))."""
    a, b, c = covs[:, 0, 0], covs[:, 0, 1], covs[:, 1, 1]
    det = np.maximum(a * c - b * b, 1e-300)
    const = -0.5 * np.log(det) - math.log(2 * math.pi) - math.log(len(means))
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        p = points[start:start + chunk]
        dx = p[:, :1] - means[None, :, 0]
        dy = p[:, 1:] - means[None, :, 1]
        block = const - 0.5 * (c * dx * dx - 2 * b * dx * dy + a * dy * dy) / det
        peak = block.max(axis=1)
        out[start:start + chunk] = peak + np.log(np.exp(block - peak[:, None]).sum(axis=1))
    return out


def density_grid(z_mean, z_log_var, extent=(-3.5, 3.5, -3.5, 3.5), res: int = 64, components=None, center=None,
                 ratio: float = HOLE_RATIO, max_images: int = EPOCH_MAX_IMAGES, chunk: int = CHUNK) -> DensityGrid:
    """The prior and the aggregate posterior in a map's plane, on a grid (`DensityGrid`). The plane is
    ``components``/``center`` (`plane_axes` for two dimensions, the default: dims 0 and 1; a PCA's for a
    projection); both densities are the exact 2-D marginals there. Holes: cells where the prior's density is
    at least `HOLE_PRIOR_FLOOR` of its peak and q's is under ``ratio`` × the prior's. At most ``max_images``
    posteriors (a fixed subset past that)."""
    mu, lv = _as_pair(z_mean, z_log_var)
    if components is None:
        components, center = plane_axes(mu.shape[1])
    mu, lv = _subset(mu, lv, int(max_images), 0)
    means, covs = plane_gaussians(mu, lv, components, center)
    p_mean, p_cov = plane_prior(components, center)
    x0, x1, y0, y1 = (float(v) for v in extent)
    xs = x0 + (np.arange(res) + 0.5) * (x1 - x0) / res
    ys = y0 + (np.arange(res) + 0.5) * (y1 - y0) / res
    gx, gy = np.meshgrid(xs, ys)
    z = np.stack([gx.ravel(), gy.ravel()], axis=1)
    log_p = _log_mixture_2d(z, p_mean[None], p_cov[None], chunk)
    log_q = _log_mixture_2d(z, means, covs, chunk) if len(means) else np.full(len(z), -np.inf)
    peak = -0.5 * math.log(max(np.linalg.det(p_cov), 1e-300)) - math.log(2 * math.pi)
    holes = (log_p >= math.log(HOLE_PRIOR_FLOOR) + peak) & (log_q < math.log(ratio) + log_p)
    shape = (res, res)
    return DensityGrid((x0, x1, y0, y1), log_q.reshape(shape), log_p.reshape(shape), holes.reshape(shape))


def ellipse_2d(mean, cov, sigmas: float = 1.0, points: int = 48) -> np.ndarray:
    """The ``sigmas``-σ ellipse of a 2-D Gaussian (mean (2,), cov (2, 2)): (points + 1, 2), closed."""
    vals, vecs = np.linalg.eigh(np.asarray(cov, np.float64))
    t = np.linspace(0.0, 2 * math.pi, int(points) + 1)
    circle = np.stack([np.cos(t), np.sin(t)], axis=1) * np.sqrt(np.maximum(vals, 0.0)) * sigmas
    return np.asarray(mean, np.float64) + circle @ vecs.T


def ellipse(mean, log_var, dims=(0, 1), sigmas: float = 1.0, points: int = 48) -> np.ndarray:
    """The ``sigmas``-σ ellipse of a diagonal Gaussian in dims ``dims``: (points + 1, 2), closed."""
    i, j = (int(v) for v in dims)
    mean = np.asarray(mean, np.float64)
    sd = np.exp(0.5 * np.asarray(log_var, np.float64))
    t = np.linspace(0.0, 2 * math.pi, int(points) + 1)
    return np.stack([mean[i] + sigmas * sd[i] * np.cos(t), mean[j] + sigmas * sd[j] * np.sin(t)], axis=1)


def rate_split_logs(z_mean, z_log_var, seed: int = 0) -> dict:
    """The per-epoch figures a training adds to its logs from the validation codes: ``val_mutual_info``,
    ``val_marginal_kl`` (`split_rate` with `EPOCH_DRAWS` draws, the mixture of at most `EPOCH_MAX_IMAGES`
    validation images, a fixed subset past that), their standard error ``val_rate_split_se`` and
    ``val_hole_fraction`` (`hole_fraction`). The same seed every epoch: the figures follow the model."""
    s = split_rate(z_mean, z_log_var, draws=EPOCH_DRAWS, seed=seed, max_images=EPOCH_MAX_IMAGES)
    holes = hole_fraction(z_mean, z_log_var, draws=EPOCH_DRAWS, seed=seed, max_images=EPOCH_MAX_IMAGES)
    return {"val_mutual_info": s.mutual_info, "val_marginal_kl": s.marginal_kl, "val_rate_split_se": s.standard_error,
            "val_hole_fraction": holes}

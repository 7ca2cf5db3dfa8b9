"""How good a VAE is as a density: log p(x) by importance sampling (the IWAE bound), beside the ELBO.

For each image x, K samples z_k ~ q(z|x) give the importance weights w_k = p(x|z_k) p(z_k) / q(z_k|x), and

    log p(x) ≥ log (1/K) Σ_k w_k        (Burda, Grosse & Salakhutdinov, 2016)

holds for every K; the bound tightens as K grows, and K = 1 is the ELBO itself. So −log p(x) estimated
this way is an upper bound on the true −log p(x) that sits at or below −ELBO, image by image. The ELBO is
estimated from the same samples (reconstruction averaged over the K samples, the KL in closed form, as
training computes it). Everything is in nats per image; the likelihood is the model's own
(``model.reconstruction_nll``: Bernoulli or Gaussian).

Memory stays bounded for any K: images and samples go through the decoder in chunks of at most
``max_decodes`` decoded images, and the log-sum-exp over samples is accumulated chunk by chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Estimate", "estimate", "estimate_with", "training_images", "DEFAULT_SAMPLES", "TRAINING_SAMPLES"]

DEFAULT_SAMPLES = 100      # `latentlab eval`
MAX_DECODES = 4096         # decoded images per chunk (28×28: ~13 MB of pixels)
# The per-epoch estimate while training: K draws on a fixed subset of the validation images sized so that
# its decodes number about TRAINING_DECODE_SHARE × the epoch's training images. One training image (forward,
# backward, update) costs about three decodes here, so the estimate adds a few per cent to an epoch
# (measured: docs/benchmarks.md, "benchmarks.run_logging").
TRAINING_SAMPLES = 10
TRAINING_DECODE_SHARE = 0.1
TRAINING_IMAGES_RANGE = (32, 1000)


@dataclass
class Estimate:
    """Means over ``images`` images (nats per image) and their standard errors (of the mean)."""
    neg_elbo: float
    neg_log_likelihood: float
    neg_elbo_se: float
    neg_log_likelihood_se: float
    gap_se: float                 # of the mean of (−ELBO − (−log p(x))), image by image (paired)
    samples: int
    images: int
    per_image_neg_elbo: np.ndarray
    per_image_neg_log_likelihood: np.ndarray

    @property
    def gap(self) -> float:
        """How far the ELBO sits below the log-likelihood estimate (≥ 0)."""
        return self.neg_elbo - self.neg_log_likelihood

    def to_json(self) -> dict:
        return {"neg_elbo": self.neg_elbo, "neg_log_likelihood": self.neg_log_likelihood,
                "samples": self.samples, "images": self.images,
                "standard_error": {"neg_elbo": self.neg_elbo_se, "neg_log_likelihood": self.neg_log_likelihood_se,
                                   "gap": self.gap_se},
                "unit": "nats per image"}


def training_images(num_train: int, num_val: int, samples: int) -> int:
    """How many validation images the per-epoch estimate with ``samples`` draws uses (0 without any)."""
    if samples <= 0 or num_val <= 0:
        return 0
    lo, hi = TRAINING_IMAGES_RANGE
    return int(min(num_val, hi, max(lo, TRAINING_DECODE_SHARE * num_train / samples)))


def _sem(values: np.ndarray) -> float:
    n = len(values)
    return float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")


def _chunk_fn(model):
    """The compiled per-chunk computation for ``model`` (traced once, kept on the model)."""
    fn = getattr(model, "_latentlab_iwae", None)
    if fn is not None:
        return fn
    import tensorflow as tf

    h, w, c = (int(v) for v in model.image_shape)
    d = int(model.latent_dim)

    @tf.function(input_signature=[tf.TensorSpec([None, h, w, c], tf.float32),
                                  tf.TensorSpec([None, None, d], tf.float32)])
    def nll_of_samples(x, z):
        """−log p(x|z) for x (B, H, W, C) and its samples z (B, S, d): (B, S)."""
        b, s = tf.shape(z)[0], tf.shape(z)[1]
        raw = model.decoder(tf.reshape(z, [b * s, d]), training=False)
        nll = model.reconstruction_nll(tf.repeat(x, s, axis=0), raw)
        return tf.reshape(nll, [b, s])

    model._latentlab_iwae = nll_of_samples
    return nll_of_samples


def estimate(model, images: np.ndarray, samples: int = DEFAULT_SAMPLES, seed: int = 0,
             max_decodes: int = MAX_DECODES, progress=None) -> Estimate:
    """−ELBO and −log p(x) (IWAE bound with ``samples`` draws from q(z|x)) of ``model`` (a latentlab VAE,
    its own likelihood) on ``images`` (N, H, W, C) in [0, 1]; numpy in and out, deterministic for a
    ``seed``. ``progress(done, total)`` is called after each chunk of images."""
    from latentlab.model.latent import encode

    fn = _chunk_fn(model)
    return estimate_with(lambda x: encode(model, x), lambda x, z: np.asarray(fn(x, z)), int(model.latent_dim),
                         images, samples, seed, max_decodes, progress)


def estimate_with(encode, nll_of_samples, latent_dim: int, images: np.ndarray, samples: int = DEFAULT_SAMPLES,
                  seed: int = 0, max_decodes: int = MAX_DECODES, progress=None) -> Estimate:
    """`estimate` for any encoder and likelihood: ``encode(x)`` → (z_mean, z_log_var) of images x;
    ``nll_of_samples(x, z)`` → −log p(x|z) (B, S) for images x (B, H, W, C) and latent samples z (B, S, d)."""
    samples = int(samples)
    if samples < 1:
        raise ValueError(f"samples must be at least 1, not {samples}")
    images = np.asarray(images, np.float32)
    n = len(images)
    if n == 0:
        raise ValueError("no images to evaluate")
    rng = np.random.default_rng(seed)
    d = int(latent_dim)
    per_sample = max(1, min(samples, int(max_decodes)))          # samples per chunk
    per_images = max(1, int(max_decodes) // per_sample)          # images per chunk
    neg_elbo = np.empty(n, np.float64)
    log_px = np.empty(n, np.float64)
    for start in range(0, n, per_images):
        x = images[start:start + per_images]
        mu, log_var = (np.asarray(a, np.float64) for a in encode(x))
        sigma = np.exp(0.5 * log_var)
        kl = 0.5 * np.sum(mu ** 2 + np.exp(log_var) - 1.0 - log_var, axis=1)
        peak = np.full(len(x), -np.inf)        # running log-sum-exp of the log weights: peak + log(total)
        total = np.zeros(len(x))
        recon_sum = np.zeros(len(x))
        for s0 in range(0, samples, per_sample):
            s = min(per_sample, samples - s0)
            eps = rng.standard_normal((len(x), s, d))
            z = mu[:, None, :] + sigma[:, None, :] * eps
            nll = np.asarray(nll_of_samples(x, z.astype(np.float32)), np.float64)      # (B, S)
            # log w = log p(x|z) + log N(z; 0, I) − log N(z; mu, sigma²)   (the 2π terms cancel)
            log_w = -nll - 0.5 * np.sum(z ** 2, axis=2) + 0.5 * np.sum(eps ** 2 + log_var[:, None, :], axis=2)
            new_peak = np.maximum(peak, log_w.max(axis=1))
            total = total * np.exp(peak - new_peak) + np.exp(log_w - new_peak[:, None]).sum(axis=1)
            peak = new_peak
            recon_sum += nll.sum(axis=1)
        neg_elbo[start:start + len(x)] = recon_sum / samples + kl
        log_px[start:start + len(x)] = peak + np.log(total) - math.log(samples)
        if progress is not None:
            progress(start + len(x), n)
    nll_px = -log_px
    return Estimate(float(neg_elbo.mean()), float(nll_px.mean()), _sem(neg_elbo), _sem(nll_px),
                    _sem(neg_elbo - nll_px), samples, n, neg_elbo, nll_px)

"""The lesson's final evaluation of each β's model (rate, distortion, the rate's split, prior samples) and its
prior-samples figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from latentlab.runs import folder as runs


def evaluate(model: Any, images: np.ndarray, draws: int = 32, seed: int = 0, batch_size: int = 512) -> dict:
    """Validation rate and distortion of ``model`` on ``images``, per image (nats): rate = the exact
    KL(q(z|x) ‖ N(0, I)); distortion = −log p(x|z) averaged over ``draws`` samples z ~ q(z|x). The ε
    come from ``seed`` alone, so every model evaluated with the same seed sees the same ε. Also
    ``code_spread``: how far the codes spread, the standard deviation of z_mean over the images (mean
    over dimensions; the prior's is 1)."""
    import tensorflow as tf

    from latentlab import surgery
    from latentlab.model.vae import kl_per_dim, output_to_image

    rng = np.random.default_rng(seed)
    rates, dists, codes, spreads = [], [], [], []
    for start in range(0, len(images), batch_size):
        x = tf.convert_to_tensor(images[start:start + batch_size], tf.float32)
        z_mean, z_log_var = model.encoder(x, training=False)
        codes.append(z_mean.numpy())
        spreads.append(z_log_var.numpy())
        rates.append(tf.reduce_sum(kl_per_dim(z_mean, z_log_var), axis=1).numpy())
        total = np.zeros(int(x.shape[0]), np.float64)
        sd = tf.exp(0.5 * z_log_var)
        for _ in range(int(draws)):
            eps = tf.constant(rng.standard_normal(tuple(z_mean.shape)), tf.float32)
            raw = model.decoder(z_mean + sd * eps, training=False)
            total += model.reconstruction_nll(x, raw).numpy()
        dists.append(total / int(draws))
    rate = np.concatenate(rates) if rates else np.zeros(0)
    dist = np.concatenate(dists) if dists else np.zeros(0)
    z = np.concatenate(codes) if codes else np.zeros((0, 1))
    out = {"rate": float(rate.mean()) if rate.size else math.nan,
           "distortion": float(dist.mean()) if dist.size else math.nan,
           "code_spread": float(np.std(z, axis=0).mean()) if len(z) > 1 else math.nan,
           "per_image_rate": rate, "per_image_distortion": dist}
    if len(z):
        lv = np.concatenate(spreads)
        split = surgery.split_rate(z, lv, draws=surgery.DEFAULT_DRAWS, seed=seed)
        # the rate here is the float32 model's; the split's own (float64, same codes) agrees to ~1e-6
        out.update(mutual_info=split.mutual_info, marginal_kl=split.marginal_kl,
                   rate_split_se=split.standard_error, mutual_info_bound=split.log_n,
                   hole_fraction=surgery.hole_fraction(z, lv, draws=surgery.DEFAULT_DRAWS, seed=seed))
        prior_z = np.random.default_rng(PRIOR_SAMPLES_SEED).standard_normal(
            (PRIOR_SAMPLES, int(model.latent_dim))).astype(np.float32)
        raw = model.decoder(tf.convert_to_tensor(prior_z), training=False)
        out["prior_images"] = np.asarray(output_to_image(raw, model.likelihood), np.float32)
        out["prior_in_hole"] = surgery.in_hole(prior_z, z, lv)
        many = np.random.default_rng(PRIOR_SAMPLES_SEED + 1).standard_normal(
            (QUALITY_SAMPLES, int(model.latent_dim))).astype(np.float32)
        out["quality_images"] = np.concatenate([
            np.asarray(output_to_image(model.decoder(tf.convert_to_tensor(many[i:i + batch_size]), training=False),
                                       model.likelihood), np.float32) for i in range(0, len(many), batch_size)])
    return out


QUALITY_SAMPLES = 1000      # prior samples per β for the sample-quality figure (latentlab.sample_quality)
QUALITY_IMAGES = 1000       # validation images they are compared with, at most


PRIOR_SAMPLES = 64          # the lesson's prior samples: the same z ~ N(0, I) decoded by every β
PRIOR_SAMPLES_SEED = 2016
PRIOR_SAMPLES_FILE = "prior_samples.png"   # in each β's run folder
HOLE_FRAME = (0.85, 0.1, 0.1)              # the frame of a prior sample that lands in a hole (red)


def framed_mosaic(images: np.ndarray, in_hole: Sequence[bool] | np.ndarray, cols: int, pad: int = 2) -> np.ndarray:
    """Images (N, H, W, C) in [0, 1] as one RGB mosaic, ``cols`` a row, each in a ``pad``-pixel frame: red
    (`HOLE_FRAME`) where ``in_hole`` is true, white elsewhere."""
    images = np.asarray(images, np.float32)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    n, h, w, _ = images.shape
    rows = math.ceil(n / cols)
    out = np.ones((rows * (h + 2 * pad), cols * (w + 2 * pad), 3), np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = r * (h + 2 * pad), c * (w + 2 * pad)
        out[y:y + h + 2 * pad, x:x + w + 2 * pad] = HOLE_FRAME if in_hole[k] else (1.0, 1.0, 1.0)
        out[y + pad:y + pad + h, x + pad:x + pad + w] = images[k]
    return out


def prior_samples_png(path: str | Path, images: np.ndarray, in_hole: np.ndarray, cols: int = 8) -> None:
    """The prior samples as one PNG, 8 a row, each in a 2-pixel frame: red where its z lies in a hole of
    the aggregate posterior (q(z) < a tenth of p(z)), white elsewhere."""
    from PIL import Image

    arr = np.clip(framed_mosaic(images, in_hole, cols) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    runs.atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format="PNG"))

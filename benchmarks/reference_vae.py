"""The classic Keras VAE recipe (the keras.io "Variational AutoEncoder" example's architecture) as the
yardstick latentlab is measured against: the model is examples/keras_vae_runcallback.py's (one copy of the
recipe in the project), with the same test estimators for both models below.

conv 32/64 stride 2 → dense 16 → latent 2; decoder dense 7·7·64 → conv-transpose 64/32 stride 2 →
conv-transpose 1 with a sigmoid; loss = mean over the batch of BCE summed over pixels + KL;
Adam; ``fit`` on a numpy array.
"""

from __future__ import annotations

import numpy as np

# the recipe's one home: the example a user copies (it imports nothing of latentlab at module level)
from examples.keras_vae_runcallback import VAE, build_decoder, build_encoder


def build(latent_dim: int = 2, shape=(28, 28, 1)) -> VAE:
    """The reference model, not compiled: the example's encoder, decoder and ``VAE`` at β = 1."""
    return VAE(build_encoder(latent_dim, shape), build_decoder(latent_dim, shape))


def neg_elbo(encode, decode_probs, x: np.ndarray, samples: int = 5, batch: int = 1000, seed: int = 0) -> float:
    """Test negative ELBO (nats per image, β = 1), the same estimator for any model:
    ``encode(x) -> (z_mean, z_log_var)``, ``decode_probs(z) -> pixel probabilities``;
    ``samples`` draws of z per image, BCE on probabilities clipped to [1e-7, 1-1e-7]."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for s in range(0, len(x), batch):
        xb = x[s:s + batch]
        m, lv = (np.asarray(a, np.float64) for a in encode(xb))
        kl = 0.5 * np.sum(m ** 2 + np.exp(lv) - 1 - lv, axis=1)
        rec = np.zeros(len(xb))
        for _ in range(samples):
            z = m + np.exp(0.5 * lv) * rng.standard_normal(m.shape)
            p = np.clip(np.asarray(decode_probs(z.astype(np.float32)), np.float64), 1e-7, 1 - 1e-7)
            xf = xb.astype(np.float64)
            rec += -np.sum(xf * np.log(p) + (1 - xf) * np.log(1 - p), axis=(1, 2, 3))
        total += float(np.sum(rec / samples + kl))
    return total / len(x)


def neg_log_likelihood(encode, decode_probs, x: np.ndarray, samples: int = 100, seed: int = 0):
    """Test −log p(x) by importance sampling (the IWAE bound, `latentlab.model.likelihood.estimate_with`), the same
    estimator for any model: ``encode`` and ``decode_probs`` as for `neg_elbo`, the same BCE on probabilities
    clipped to [1e-7, 1-1e-7]. Returns the `latentlab.model.likelihood.Estimate` (nats per image)."""
    from latentlab.model.likelihood import estimate_with

    def nll_of_samples(xb, z):
        b, s, d = z.shape
        p = np.clip(np.asarray(decode_probs(z.reshape(b * s, d)), np.float64), 1e-7, 1 - 1e-7)
        p = p.reshape(b, s, *xb.shape[1:])
        xf = xb.astype(np.float64)[:, None]
        return -np.sum(xf * np.log(p) + (1 - xf) * np.log(1 - p), axis=(2, 3, 4))

    return estimate_with(encode, nll_of_samples, int(np.asarray(encode(x[:1])[0]).shape[1]), x, samples, seed)

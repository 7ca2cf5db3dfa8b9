"""The classic Keras VAE recipe (the keras.io "Variational AutoEncoder" example's architecture),
written here as the yardstick latentlab is measured against.

conv 32/64 stride 2 → dense 16 → latent 2; decoder dense 7·7·64 → conv-transpose 64/32 stride 2 →
conv-transpose 1 with a sigmoid; loss = mean over the batch of BCE summed over pixels + KL;
Adam; ``fit`` on a numpy array.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers


class Sampling(layers.Layer):
    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(tf.shape(z_mean))
        return z_mean + tf.exp(0.5 * z_log_var) * eps


def build(latent_dim: int = 2, shape=(28, 28, 1)):
    inputs = keras.Input(shape=shape)
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim)(x)
    z_log_var = layers.Dense(latent_dim)(x)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")
    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    outputs = layers.Conv2DTranspose(shape[-1], 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent_inputs, outputs, name="decoder")
    return ReferenceVAE(encoder, decoder)


class ReferenceVAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = tf.reduce_mean(tf.reduce_sum(
                keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl_loss = -0.5 * (1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var))
            kl_loss = tf.reduce_mean(tf.reduce_sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {"loss": self.total_loss_tracker.result(),
                "reconstruction_loss": self.reconstruction_loss_tracker.result(),
                "kl_loss": self.kl_loss_tracker.result()}


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

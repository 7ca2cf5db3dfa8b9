"""The keras.io VAE recipe (a convolutional encoder with a sampling layer, a transposed-convolution
decoder, a subclassed Model with its own ``train_step``), trained with `latentlab.keras.RunCallback` so
that latentlab's app can watch it train and explore it afterwards.

    python examples/keras_vae_runcallback.py --out runs/keras-vae --epochs 30
    latentlab --run runs/keras-vae          # in another terminal, while it trains: the app follows it

The images are a folder of 28×28 images (default: latentlab's bundled Fashion-MNIST sample, so that
nothing is downloaded); ``--dataset DIR`` takes any folder latentlab reads (class subfolders colour the
map). Everything latentlab-specific is the one callback in ``fit``: the rest is plain Keras.

This file is also the project's one copy of the recipe: the benchmark's reference model
(benchmarks/reference_vae.py) and the RunCallback test (tests/test_keras_run_callback.py) import its
``build_encoder``, ``build_decoder`` and ``VAE`` (nothing above ``main`` imports latentlab).
"""

from __future__ import annotations

import argparse

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops


class Sampling(layers.Layer):
    """z = z_mean + exp(z_log_var / 2) · ε, ε ~ N(0, I): the reparameterisation trick."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def build_encoder(latent_dim: int, shape=(28, 28, 1), filters=(32, 64)) -> keras.Model:
    """Two stride-2 convolutions (``filters``), a dense layer of 16, then z_mean, z_log_var and a sample z.
    ``shape``: (height, width, channels), each side a multiple of 4."""
    inputs = keras.Input(shape=shape)
    x = layers.Conv2D(filters[0], 3, activation="relu", strides=2, padding="same")(inputs)
    x = layers.Conv2D(filters[1], 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])], name="encoder")


def build_decoder(latent_dim: int, shape=(28, 28, 1), filters=(32, 64)) -> keras.Model:
    """The encoder mirrored: a dense layer to a quarter-size grid, two stride-2 transposed convolutions,
    then one to ``shape``'s channels with a sigmoid (pixel probabilities)."""
    h, w = shape[0] // 4, shape[1] // 4
    z = keras.Input(shape=(latent_dim,))
    x = layers.Dense(h * w * filters[1], activation="relu")(z)
    x = layers.Reshape((h, w, filters[1]))(x)
    x = layers.Conv2DTranspose(filters[1], 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(filters[0], 3, activation="relu", strides=2, padding="same")(x)
    out = layers.Conv2DTranspose(shape[-1], 3, activation="sigmoid", padding="same")(x)
    return keras.Model(z, out, name="decoder")


class VAE(keras.Model):
    """Loss = reconstruction (binary cross-entropy summed over pixels) + β · KL, tracked apart."""

    def __init__(self, encoder, decoder, beta: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.beta = encoder, decoder, float(beta)
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(
                ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl_loss = ops.mean(ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1))
            total_loss = reconstruction_loss + self.beta * kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}


def main(argv=None) -> int:
    from latentlab.data import load_folder, sample_dataset_path
    from latentlab.keras import RunCallback

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", help="a folder of images (default: the bundled Fashion-MNIST sample)")
    p.add_argument("--out", required=True, help="the run folder to write (latentlab --run OUT opens it)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--latent-dim", type=int, default=2)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    ds = load_folder(args.dataset or sample_dataset_path(), image_size=(28, 28), color="gray")
    images = ds.images.astype(np.float32)
    encoder, decoder = build_encoder(args.latent_dim), build_decoder(args.latent_dim)
    vae = VAE(encoder, decoder, beta=args.beta)
    vae.compile(optimizer=keras.optimizers.Adam())
    shown = np.random.default_rng(args.seed).permutation(len(images))[:2000]   # the images the map shows
    callback = RunCallback(args.out, encoder=encoder, decoder=decoder, images=images[shown],
                           labels=ds.labels[shown], class_names=ds.class_names, beta=lambda: vae.beta)
    vae.fit(images, epochs=args.epochs, batch_size=args.batch_size, callbacks=[callback], verbose=2)
    print(f"run written to {args.out}: open it with  latentlab --run {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

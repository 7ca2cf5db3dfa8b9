"""The β-VAE: convolutional encoder and decoder sized from the image shape, and a
`keras.Model` with its own ``train_step``/``test_step`` that tracks reconstruction and
KL apart.

Losses are in nats per image: reconstruction = -log p(x|z) summed over pixels and
channels (Bernoulli by default, Gaussian with a fixed σ as an option), KL summed over
latent dimensions; ``loss = reconstruction + β·KL`` and ``neg_elbo = reconstruction + KL``.
"""

from __future__ import annotations

import math

import numpy as np

from latentlab.config import AUTO_HIDDEN_UNITS, HIDDEN_RANGE
from latentlab.tfquiet import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402  (after TensorFlow's quiet import)
from keras import layers  # noqa: E402

LIKELIHOODS = ("bernoulli", "gaussian")
MIN_SIDE, MAX_SIDE = 8, 128
MAX_LATENT_DIM = 64
_LOG_2PI = math.log(2.0 * math.pi)


def architecture(image_shape: tuple[int, int, int], latent_dim: int, hidden_units: int = 0) -> dict:
    """The layer sizes for an image shape: conv filters (stride 2 each), dense width,
    and the decoder's starting grid.

    28×28 with ``hidden_units=16`` is the classic Keras recipe (conv 32/64 stride 2, dense 16).
    The default width is 128 (at least 2× the latent size): on Fashion-MNIST it reaches in one
    epoch the test ELBO the 16-unit recipe needs about four for, for ~5 % more compute per image.
    """
    h, w, c = (int(v) for v in image_shape)
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise ValueError(f"image size {h}x{w} is outside {MIN_SIDE}..{MAX_SIDE} pixels per side")
    if c not in (1, 2, 3, 4):
        raise ValueError(f"images must have 1 or 3 channels (2 or 4 with alpha), not {c}")
    if not 1 <= latent_dim <= MAX_LATENT_DIM:
        raise ValueError(f"latent size must be 1..{MAX_LATENT_DIM}, not {latent_dim}")
    side = min(h, w)
    # one stride-2 conv per halving down to a grid of about 8 (128 px: four, so the dense layer after
    # them sees 8×8×256 = 16k values, not 16×16×128 = 33k)
    n_down = 1 if side < 16 else (2 if side <= 32 else (3 if side <= 64 else 4))
    filters = [32, 64, 128, 256][:n_down]
    gh, gw = h, w
    for _ in range(n_down):
        gh, gw = math.ceil(gh / 2), math.ceil(gw / 2)
    lo, hi = HIDDEN_RANGE
    if not lo <= int(hidden_units) <= hi:
        raise ValueError(f"hidden units must be {lo} (automatic) .. {hi}, not {hidden_units}")
    dense = int(hidden_units) or max(AUTO_HIDDEN_UNITS, 2 * latent_dim)
    return {"filters": filters, "dense": dense, "grid": (gh, gw), "image_shape": (h, w, c)}


def _kernel_inits(seed: int | None, offset: int):
    """The kernel initializer of each layer in turn: Glorot uniform seeded from (``seed``, layer), so a
    model's first weights depend on its seed alone. Keras' unseeded initializers draw their seeds from
    Python's global ``random``, which any other thread of the process (a Dask worker's event loop, the
    app's) may draw from in between: the same seed then gave other weights now and then."""
    i = offset
    while True:
        i += 1
        yield "glorot_uniform" if seed is None else keras.initializers.GlorotUniform(
            seed=(int(seed) * 7919 + i * 104729) % (2**31 - 1))


def build_encoder(image_shape, latent_dim: int, hidden_units: int = 0, seed: int | None = None) -> keras.Model:
    arch = architecture(image_shape, latent_dim, hidden_units)
    init = _kernel_inits(seed, 0)
    inputs = keras.Input(shape=arch["image_shape"], name="image")
    x = inputs
    for f in arch["filters"]:
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", kernel_initializer=next(init))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(arch["dense"], activation="relu", kernel_initializer=next(init))(x)
    z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32", kernel_initializer=next(init))(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32", kernel_initializer=next(init))(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_decoder(image_shape, latent_dim: int, seed: int | None = None) -> keras.Model:
    """Decoder from z to the likelihood's raw parameters (logits for Bernoulli,
    means for Gaussian); `output_to_image` turns those into pixels."""
    arch = architecture(image_shape, latent_dim)
    init = _kernel_inits(seed, 100)
    h, w, c = arch["image_shape"]
    gh, gw = arch["grid"]
    top = arch["filters"][-1]
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense(gh * gw * top, activation="relu", kernel_initializer=next(init))(inputs)
    x = layers.Reshape((gh, gw, top))(x)
    for f in reversed(arch["filters"]):
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu",
                                   kernel_initializer=next(init))(x)
    out_h, out_w = gh * 2 ** len(arch["filters"]), gw * 2 ** len(arch["filters"])
    if (out_h, out_w) != (h, w):
        dh, dw = out_h - h, out_w - w
        x = layers.Cropping2D(((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))(x)
    x = layers.Conv2DTranspose(c, 3, padding="same", dtype="float32", name="pixels", kernel_initializer=next(init))(x)
    return keras.Model(inputs, x, name="decoder")


def output_to_image(raw, likelihood: str):
    """Decoder output → pixel values in [0, 1] (works on tensors and numpy)."""
    if likelihood == "bernoulli":
        return tf.sigmoid(raw)
    return tf.clip_by_value(raw, 0.0, 1.0)


_M32 = 0xFFFFFFFF
VALIDATION_STEP = _M32   # the step key of validation noise: the same draws every epoch


def _mix32(x):
    """A 32-bit integer hash (Wellons' "lowbias32") of int64 values in [0, 2^32), vectorised."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = tf.bitwise.bitwise_and(x * 0x7FEB352D, _M32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15))
    x = tf.bitwise.bitwise_and(x * 0x846CA68B, _M32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def keyed_normal(seed, step, index, dims: int):
    """Standard normal noise of shape (len(index), dims) that is a function of (seed, step, the
    example's index, the dimension) alone: counter-based, like a stateless RNG, but keyed per example.

    Under ``tf.distribute`` each replica gets a slice of the batch; with this noise an image gets the
    same ε whichever replica holds it and however the batch is split, so one device and N replicas
    train the same model. Box–Muller on two hashed 24-bit uniforms per value."""
    seed = tf.bitwise.bitwise_and(tf.cast(seed, tf.int64), _M32)
    step = tf.bitwise.bitwise_and(tf.cast(step, tf.int64), _M32)
    h = _mix32(tf.bitwise.bitwise_xor(_mix32(tf.bitwise.bitwise_xor(seed, 0x2545F491)), step))
    per_example = _mix32(tf.bitwise.bitwise_xor(h, tf.bitwise.bitwise_and(tf.cast(index, tf.int64), _M32)))
    k = tf.range(2 * dims, dtype=tf.int64)
    bits = _mix32(tf.bitwise.bitwise_xor(per_example[:, None], _mix32(k + 0x68E31DA4)[None, :]))
    u = (tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) + 0.5) * (1.0 / 16777216.0)
    u1, u2 = u[:, :dims], u[:, dims:]
    return tf.sqrt(-2.0 * tf.math.log(u1)) * tf.cos((2.0 * math.pi) * u2)


def kl_per_dim(z_mean, z_log_var):
    """KL(q(z|x) ‖ N(0, I)) for each image and latent dimension (nats)."""
    return 0.5 * (tf.square(z_mean) + tf.exp(z_log_var) - 1.0 - z_log_var)


@keras.saving.register_keras_serializable(package="latentlab")
class VectorMean(keras.metrics.Metric):
    """Running mean of a vector (per latent dimension), e.g. the KL of each dimension."""

    def __init__(self, size: int, name="vector_mean", **kwargs):
        super().__init__(name=name, **kwargs)
        self.size = int(size)
        self.total = self.add_variable(shape=(self.size,), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, values, sample_weight=None):
        values = tf.cast(values, "float32")
        self.total.assign_add(tf.reduce_sum(values, axis=0))
        self.count.assign_add(tf.cast(tf.shape(values)[0], "float32"))

    def result(self):
        return self.total / tf.maximum(self.count, 1.0)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="latentlab")
class VAE(keras.Model):
    """A β-VAE. ``beta`` is a non-trainable variable that can be reassigned between batches."""

    def __init__(self, encoder, decoder, beta: float = 1.0, likelihood: str = "bernoulli",
                 gaussian_sigma: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, not {likelihood!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.gaussian_sigma = float(gaussian_sigma)
        self.seed = seed
        self.latent_dim = int(encoder.outputs[0].shape[-1])
        self.beta = self.add_variable(shape=(), initializer=keras.initializers.Constant(float(beta)),
                                      trainable=False, name="beta", dtype="float32")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.neg_elbo_tracker = keras.metrics.Mean(name="neg_elbo")
        # The KL term's shape (latentlab.config.kl_objective): free bits' floor λ and the capacity C (< 0: off).
        # Plain tf.Variables set outside Keras' tracking: not weights, so model files stay as they were.
        object.__setattr__(self, "kl_free_bits", tf.Variable(0.0, trainable=False, dtype=tf.float32))
        object.__setattr__(self, "kl_capacity", tf.Variable(-1.0, trainable=False, dtype=tf.float32))
        # Not in `metrics`: it is not a scalar log. Read with `kl_per_dim_tracker.result()`.
        self.kl_per_dim_tracker = VectorMean(self.latent_dim, name="kl_per_dim")

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker, self.neg_elbo_tracker]

    # -- the maths -------------------------------------------------------------------
    def reconstruction_nll(self, x, raw):
        """-log p(x|z) per image, summed over pixels and channels (nats)."""
        x = tf.cast(x, "float32")
        raw = tf.cast(raw, "float32")
        if self.likelihood == "bernoulli":
            # Stable binary cross-entropy from logits: softplus(l) - x·l.
            nll = tf.nn.softplus(raw) - x * raw
        else:
            s = self.gaussian_sigma
            nll = 0.5 * tf.square((x - raw) / s) + math.log(s) + 0.5 * _LOG_2PI
        return tf.reduce_sum(nll, axis=[1, 2, 3])

    def call(self, x, training=False):
        z_mean, z_log_var = self.encoder(x, training=training)
        return output_to_image(self.decoder(z_mean, training=training), self.likelihood)

    def compute_terms(self, x, training, index=None, step=None):
        """loss, reconstruction, KL and KL per dimension of a batch. With ``index`` (each image's index,
        from `latentlab.data.make_tf_dataset(with_index=True)`), ε is keyed by (seed, ``step``, index)
        (`keyed_normal`): the same whatever device or replica the image is on; without, drawn from the
        model's seed generator."""
        z_mean, z_log_var = self.encoder(x, training=training)
        if index is not None:
            eps = keyed_normal(self.seed or 0, step, index, self.latent_dim)
        else:
            eps = keras.random.normal(tf.shape(z_mean), seed=self.seed_generator)
        z = z_mean + tf.exp(0.5 * z_log_var) * eps
        raw = self.decoder(z, training=training)
        recon = tf.reduce_mean(self.reconstruction_nll(x, raw))
        kl_dims = kl_per_dim(z_mean, z_log_var)
        kl = tf.reduce_mean(tf.reduce_sum(kl_dims, axis=1))
        beta = tf.cast(self.beta, "float32")
        return recon + beta * self.kl_term(kl, kl_dims), recon, kl, kl_dims

    def kl_term(self, kl, kl_dims):
        """The KL as the loss weighs it (`latentlab.config.kl_objective`): the plain KL unless free bits
        (λ > 0: Σ_d max(λ, mean KL_d)) or a capacity (C ≥ 0: |K − C|) is set."""
        floor = tf.convert_to_tensor(self.kl_free_bits)
        cap = tf.convert_to_tensor(self.kl_capacity)
        term = tf.where(floor > 0, tf.reduce_sum(tf.maximum(tf.reduce_mean(kl_dims, axis=0), floor)), kl)
        return tf.where(cap >= 0, tf.abs(term - cap), term)

    def _update(self, loss, recon, kl, n):
        self.loss_tracker.update_state(loss, sample_weight=n)
        self.reconstruction_tracker.update_state(recon, sample_weight=n)
        self.kl_tracker.update_state(kl, sample_weight=n)
        self.neg_elbo_tracker.update_state(recon + kl, sample_weight=n)
        return {m.name: m.result() for m in self.metrics}

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Under a tf.distribute strategy Keras builds the model from a first batch averaged across replicas,
        which fails when that batch splits unevenly (a validation set smaller than the batch: 13 + 12 images).
        A VAE is built when it is made and its optimizer in the strategy's scope (`latentlab.training.trainer`):
        nothing is left to build, so the batch is not needed."""
        if self.built and self.optimizer is not None and self.optimizer.built:
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    @staticmethod
    def _unpack(data):
        """images, and their indices when the dataset carries them ((images, indices) batches)."""
        if isinstance(data, (tuple, list)):
            return data[0], (data[1] if len(data) > 1 and data[1] is not None else None)
        return data, None

    def train_step(self, data):
        x, index = self._unpack(data)
        n = tf.cast(tf.shape(x)[0], "float32")
        with tf.GradientTape() as tape:
            loss, recon, kl, kl_dims = self.compute_terms(x, training=True, index=index,
                                                          step=self.optimizer.iterations)
            scaled = loss
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            if replicas > 1:
                # Under tf.distribute each replica's gradient is summed: weight its mean by its share of
                # the global batch (1/replicas when the batch splits evenly; exact for a pass's last,
                # uneven batch too), so the step is the one-device step. The trackers get the unscaled mean.
                n_global = tf.distribute.get_replica_context().all_reduce("sum", n)
                scaled = scaled * (n / n_global)
            if self.optimizer is not None and hasattr(self.optimizer, "scale_loss"):
                scaled = self.optimizer.scale_loss(scaled)
        grads = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply(grads, self.trainable_weights)
        self.kl_per_dim_tracker.update_state(kl_dims)
        return self._update(loss, recon, kl, n)

    def test_step(self, data):
        x, index = self._unpack(data)
        loss, recon, kl, _ = self.compute_terms(x, training=False, index=index, step=VALIDATION_STEP)
        n = tf.cast(tf.shape(x)[0], "float32")
        return self._update(loss, recon, kl, n)

    # -- serialisation ----------------------------------------------------------------
    def get_config(self):
        return {
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": float(np.asarray(self.beta)),
            "likelihood": self.likelihood,
            "gaussian_sigma": self.gaussian_sigma,
            "seed": self.seed,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"), custom_objects=custom_objects)
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"), custom_objects=custom_objects)
        return cls(encoder, decoder, **config)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.encoder.inputs[0].shape[1:])


def build_vae(image_shape, latent_dim: int = 2, beta: float = 1.0, likelihood: str = "bernoulli",
              seed: int | None = None, gaussian_sigma: float = 0.1, hidden_units: int = 0) -> VAE:
    """A new, built VAE for images of ``image_shape`` (H, W, C)."""
    vae = VAE(build_encoder(image_shape, latent_dim, hidden_units, seed), build_decoder(image_shape, latent_dim, seed),
              beta=beta, likelihood=likelihood, gaussian_sigma=gaussian_sigma, seed=seed, name="vae")
    vae.build((None, *tuple(image_shape)))
    return vae

"""The latent space: encode images, decode points, grids, traversals and interpolations,
project to 2-D, count active units.

`Decoder` is a standalone, compiled decoder that takes weight snapshots: the GUI keeps one
per thread so it never calls the model that another thread is training.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


def active_units(z_mean: np.ndarray, threshold: float = 0.01) -> int:
    """Dimensions whose posterior mean varies across the data: Cov_x(E_q[z_u]) > threshold."""
    if len(z_mean) < 2:
        return 0
    return int(np.sum(np.var(z_mean, axis=0) > threshold))


def kl_per_dim(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    """KL(q(z_i|x) ‖ N(0, 1)) of each dimension, averaged over the images (nats): the posterior's
    means and log-variances (N, D) in, (D,) out."""
    m, v = np.asarray(z_mean, np.float64), np.asarray(z_log_var, np.float64)
    if len(m) == 0:
        return np.zeros(m.shape[-1] if m.ndim == 2 else 0)
    return (0.5 * (m * m + np.exp(v) - 1.0 - v)).mean(axis=0)


def _tf():
    import tensorflow as tf

    return tf


def encode(model, images: np.ndarray, batch_size: int = 1024, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(z_mean, z_log_var) of ``images`` (N, H, W, C) with ``model.encoder``; numpy in and out.
    ``progress(done, total)`` is called before the first batch and after each one."""
    tf = _tf()
    encoder = model.encoder if hasattr(model, "encoder") else model
    fn = getattr(encoder, "_latentlab_encode", None)
    if fn is None:
        fn = tf.function(lambda x: encoder(x, training=False), reduce_retracing=True)
        encoder._latentlab_encode = fn
    means, log_vars = [], []
    if progress is not None:
        progress(0, len(images))
    for start in range(0, len(images), batch_size):
        m, v = fn(tf.convert_to_tensor(images[start:start + batch_size], dtype=tf.float32))
        means.append(m.numpy())
        log_vars.append(v.numpy())
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    if not means:
        d = int(encoder.outputs[0].shape[-1])
        return np.zeros((0, d), np.float32), np.zeros((0, d), np.float32)
    return np.concatenate(means), np.concatenate(log_vars)


class Decoder:
    """A compiled decoder of its own: ``decode(z)`` → images (n, H, W, C) in [0, 1].

    Build it from a VAE (``Decoder.from_model``) or from shapes, then feed it weight
    snapshots with ``set_weights`` (e.g. from `EpochEnd.decoder_weights`).

    A few points at a time (a click, a hover, a traversal strip) are decoded with numpy on the
    calling thread (`NumpyDecoder`), so they never wait in TensorFlow's thread pool behind the
    training that shares it; larger batches (grids) run the compiled TensorFlow function.
    """

    SMALL_BATCH = 16   # up to this many points: numpy (≈1–3 ms per image on one core)

    def __init__(self, image_shape, latent_dim: int, likelihood: str = "bernoulli"):
        from latentlab.model.vae import build_decoder, output_to_image

        tf = _tf()
        self.image_shape = tuple(int(v) for v in image_shape)
        self.latent_dim = int(latent_dim)
        self.likelihood = likelihood
        self.model = build_decoder(self.image_shape, self.latent_dim)
        self.small = NumpyDecoder.for_model(self.model, likelihood)

        def run(z):
            return output_to_image(self.model(z, training=False), likelihood)

        self._fn = tf.function(run, input_signature=[tf.TensorSpec([None, self.latent_dim], tf.float32)])

    @classmethod
    def from_model(cls, vae) -> "Decoder":
        dec = cls(vae.image_shape, vae.latent_dim, vae.likelihood)
        dec.set_weights(vae.decoder.get_weights())
        return dec

    def set_weights(self, weights) -> None:
        self.model.set_weights(weights)
        if self.small is not None:
            self.small.set_weights(weights)

    def decode(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float32).reshape(-1, self.latent_dim)
        if self.small is not None and len(z) <= self.SMALL_BATCH:
            return self.small.decode(z)
        return self._fn(z).numpy()

    def warm_up(self) -> None:
        """Trace the compiled function once (the first call is slow)."""
        self._fn(np.zeros((1, self.latent_dim), np.float32))


class NumpyDecoder:
    """The decoder's forward pass in numpy (float32) for the layer kinds `build_decoder` uses:
    Dense, Reshape, Conv2DTranspose, Cropping2D with relu or linear activations. Same function
    as the Keras model to float rounding (tests/test_latent_numpy.py checks every shape the
    app builds). ``for_model`` returns None for a decoder with any other layer."""

    ACTIVATIONS = {"relu": lambda x: np.maximum(x, 0.0), "linear": lambda x: x}

    def __init__(self, plan, likelihood: str):
        self.plan = plan          # [(kind, config, number of weights)]
        self.likelihood = likelihood
        self.weights: list[list[np.ndarray]] | None = None   # per layer: list of numpy arrays

    @classmethod
    def for_model(cls, model, likelihood: str):
        plan = []
        for layer in model.layers:
            kind = type(layer).__name__
            cfg = layer.get_config()
            if kind == "InputLayer":
                continue
            if kind in ("Dense", "Conv2DTranspose"):
                if cfg.get("activation") not in cls.ACTIVATIONS:
                    return None
                if kind == "Conv2DTranspose" and (
                        cfg.get("padding") != "same" or cfg.get("output_padding") is not None
                        or tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1)
                        or cfg.get("data_format", "channels_last") != "channels_last"):
                    return None
            elif kind == "Cropping2D":
                if cfg.get("data_format", "channels_last") != "channels_last":
                    return None
            elif kind != "Reshape":
                return None
            plan.append((kind, cfg, len(layer.weights)))
        dec = cls(plan, likelihood)
        dec.set_weights(model.get_weights())
        return dec

    def set_weights(self, weights) -> None:
        flat = [np.asarray(w, np.float32) for w in weights]
        per_layer, i = [], 0
        for _, _, n in self.plan:
            per_layer.append(flat[i:i + n])
            i += n
        if i != len(flat):
            raise ValueError(f"expected {i} weight arrays for this decoder, got {len(flat)}")
        self.weights = per_layer  # one assignment: a decode on another thread sees old or new, never a mix

    def decode(self, z) -> np.ndarray:
        # One BLAS thread: with training busy on every core, OpenBLAS' own threads turned a 1 ms decode
        # into a 60 ms one (p99) while they waited for each other. The limit is process-wide while it
        # lasts, so small decodes take turns.
        with _BLAS_LOCK, _blas_controller().limit(limits=1, user_api="blas"):
            return self._decode(z)

    def _decode(self, z) -> np.ndarray:
        x = np.asarray(z, np.float32)
        if self.weights is None:
            raise ValueError("the decoder has no weights yet: call set_weights first")
        for (kind, cfg, _), w in zip(self.plan, self.weights):
            if kind == "Dense":
                x = x @ w[0] + w[1] if cfg.get("use_bias", True) else x @ w[0]
                x = self.ACTIVATIONS[cfg["activation"]](x)
            elif kind == "Reshape":
                x = x.reshape(len(x), *cfg["target_shape"])
            elif kind == "Conv2DTranspose":
                x = _conv_transpose(x, w[0], w[1] if cfg.get("use_bias", True) else None, tuple(cfg["strides"]))
                x = self.ACTIVATIONS[cfg["activation"]](x)
            else:  # Cropping2D
                (t, b), (l_, r) = cfg["cropping"]
                x = x[:, t:x.shape[1] - b, l_:x.shape[2] - r]
        if self.likelihood == "bernoulli":
            with np.errstate(over="ignore"):   # exp(-x) → inf for very negative x: sigmoid → 0, correctly
                return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
        return np.clip(x, 0.0, 1.0).astype(np.float32)


_BLAS_LOCK = threading.Lock()
_BLAS = None


def _blas_controller():
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS


def _conv_transpose(x, kernel, bias, strides):
    """Keras ``Conv2DTranspose(padding="same")``: x (n, H, W, Cin), kernel (kh, kw, Cout, Cin)."""
    n, h, w, cin = x.shape
    kh, kw, cout, _ = kernel.shape
    sh, sw = strides
    taps = (x.reshape(-1, cin) @ kernel.transpose(3, 0, 1, 2).reshape(cin, kh * kw * cout))
    taps = taps.reshape(n, h, w, kh, kw, cout)
    full = np.zeros((n, (h - 1) * sh + kh, (w - 1) * sw + kw, cout), np.float32)
    for i in range(kh):
        for j in range(kw):
            full[:, i:i + (h - 1) * sh + 1:sh, j:j + (w - 1) * sw + 1:sw] += taps[:, :, :, i, j]
    oh, ow = h * sh, w * sw                          # "same": the input size times the stride
    top, left = max(full.shape[1] - oh, 0) // 2, max(full.shape[2] - ow, 0) // 2
    out = full[:, top:top + oh, left:left + ow]
    return out + bias if bias is not None else out


def decode_point(decoder: Decoder, z) -> np.ndarray:
    """One image (H, W, C) for one latent vector."""
    return decoder.decode(np.asarray(z, np.float32)[None])[0]


def grid_range(z: np.ndarray, lo: float = 1.0, hi: float = 99.0, margin: float = 0.05):
    """Per-dimension (min, max) spanning the data's ``lo``–``hi`` percentiles, plus a margin.
    Falls back to ±3 (the prior's range) when there is no data."""
    z = np.asarray(z)
    if z.size == 0 or len(z) < 2:
        d = z.shape[-1] if z.ndim == 2 else 2
        return np.full(d, -3.0), np.full(d, 3.0)
    a, b = np.percentile(z, [lo, hi], axis=0)
    pad = np.maximum((b - a) * margin, 1e-3)
    return a - pad, b + pad


def _cols_rows(n) -> tuple[int, int]:
    """A grid size: ``n`` tiles a side, or ``(cols, rows)``."""
    cols, rows = (n, n) if np.ndim(n) == 0 else n
    return int(cols), int(rows)


def grid_points(x_range, y_range, n, dims=(0, 1), base_z=None, latent_dim: int = 2) -> np.ndarray:
    """(rows*cols, latent_dim) points, ``n`` = tiles a side or (cols, rows): row 0 is the top row
    (highest y), column 0 the lowest x. Dimensions other than ``dims`` are held at ``base_z`` (default 0)."""
    cols, rows = _cols_rows(n)
    xs = np.linspace(x_range[0], x_range[1], cols, dtype=np.float32)
    ys = np.linspace(y_range[1], y_range[0], rows, dtype=np.float32)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    return plane_to_latent(np.stack([gx.ravel(), gy.ravel()], axis=1), dims, base_z, None, latent_dim)


def plane_to_latent(points2, dims=(0, 1), base_z=None, projection=None, latent_dim: int = 2) -> np.ndarray:
    """Latent vectors (N, latent_dim) for points (N, 2) of a map's plane: two dimensions ``dims`` with
    the others at ``base_z``, or the plane of a ``projection`` (a `PCA`) lifted back."""
    p = np.asarray(points2, np.float32).reshape(-1, 2)
    if projection is not None:
        return projection.inverse(p, base_z)
    base = np.zeros(latent_dim, np.float32) if base_z is None else np.asarray(base_z, np.float32)
    z = np.tile(base, (len(p), 1))
    z[:, dims[0]] = p[:, 0]
    z[:, dims[1]] = p[:, 1]
    return z


def decode_grid(decoder: Decoder, x_range, y_range, n=20, dims=(0, 1), base_z=None,
                projection=None) -> np.ndarray:
    """A mosaic (rows*H, cols*W, C) of images decoded over the 2-D range, in one batched call;
    ``n`` = tiles a side or (cols, rows).

    With ``projection`` (a `PCA`), the grid lies in the projected plane and is lifted back."""
    cols, rows = _cols_rows(n)
    z = plane_to_latent(grid_points(x_range, y_range, (cols, rows)), dims, base_z, projection, decoder.latent_dim)
    images = decoder.decode(z)
    return tile(images.reshape(rows, cols, *images.shape[1:]))


# -- a grid that follows the view ----------------------------------------------------------------------------
MAX_TILES = 40   # tiles a side, at most, in a grid that follows the view


@dataclass(frozen=True)
class Lattice:
    """Tiles ``step`` wide and ``step_y`` high (map units) centred on the points ``(i * step, j * step_y)``
    for ``i0 <= i <= i1``, ``j0 <= j <= j1``. Steps are powers of √2 (times the image's height ÷ width
    for ``step_y``), so panning keeps the tiles where they were and zooming switches between levels
    like a map's tiles."""

    step: float
    i0: int
    i1: int
    j0: int
    j1: int
    step_y: float = 0.0      # 0: as ``step`` (square images)

    @property
    def dy(self) -> float:
        return self.step_y or self.step

    @property
    def cols(self) -> int:
        return self.i1 - self.i0 + 1

    @property
    def rows(self) -> int:
        return self.j1 - self.j0 + 1

    @property
    def x_range(self) -> tuple[float, float]:
        """The first and last column's centres."""
        return (self.i0 * self.step, self.i1 * self.step)

    @property
    def y_range(self) -> tuple[float, float]:
        return (self.j0 * self.dy, self.j1 * self.dy)

    def centres(self) -> np.ndarray:
        """(rows*cols, 2) tile centres, row 0 the top row (highest y), as `grid_points` orders them."""
        i = np.arange(self.i0, self.i1 + 1, dtype=np.float64) * self.step
        j = np.arange(self.j1, self.j0 - 1, -1, dtype=np.float64) * self.dy
        gj, gi = np.meshgrid(j, i, indexing="ij")
        return np.stack([gi.ravel(), gj.ravel()], axis=1)


def view_lattice(x_view, y_view, width_px: float, tile_px: float, aspect: float = 1.0,
                 max_tiles: int = MAX_TILES) -> Lattice:
    """The tiles that cover the view ``x_view`` × ``y_view`` (map units, equal on both axes: an
    aspect-locked view) whose width is shown on ``width_px`` pixels, each tile about ``tile_px`` pixels
    wide (an image's own width: within a factor 2^¼ of it) and ``aspect`` (the image's height ÷ width)
    times that high; at most ``max_tiles`` a side (then larger, by steps of √2)."""
    x0, x1 = sorted(float(v) for v in x_view)
    y0, y1 = sorted(float(v) for v in y_view)
    units_per_px = max(x1 - x0, 1e-9) / max(float(width_px), 1.0)
    k = int(np.round(2 * np.log2(max(tile_px * units_per_px, 1e-30))))   # half octaves
    while True:
        step = 2.0 ** (k / 2)
        dy = step * float(aspect)
        i0, i1 = int(np.floor(x0 / step + 0.5)), int(np.ceil(x1 / step - 0.5))
        j0, j1 = int(np.floor(y0 / dy + 0.5)), int(np.ceil(y1 / dy - 0.5))
        i1, j1 = max(i1, i0), max(j1, j0)
        if max(i1 - i0 + 1, j1 - j0 + 1) <= max_tiles:
            return Lattice(step, i0, i1, j0, j1, 0.0 if aspect == 1.0 else dy)
        k += 1


class TileCache:
    """Decodes a `Lattice` into a mosaic, keeping the tiles of the last one: a pan decodes only the
    tiles that came into view. Tiles are kept while the model, weights, level and plane stay the same
    (``context``: anything that identifies them, compared with ``==``)."""

    def __init__(self):
        self.context = None
        self.tiles: dict[tuple[int, int], np.ndarray] = {}
        self.decoded = 0     # tiles the last call decoded (the others came from the cache)

    def mosaic(self, decoder, lattice: Lattice, context, dims=(0, 1), base_z=None, projection=None) -> np.ndarray:
        context = (context, lattice.step, lattice.dy)
        if context != self.context:
            self.context, self.tiles = context, {}
        keys = [(i, j) for j in range(lattice.j1, lattice.j0 - 1, -1) for i in range(lattice.i0, lattice.i1 + 1)]
        missing = [n for n, key in enumerate(keys) if key not in self.tiles]
        if missing:
            z = plane_to_latent(lattice.centres()[missing], dims, base_z, projection, decoder.latent_dim)
            for n, image in zip(missing, decoder.decode(z)):
                self.tiles[keys[n]] = image
        self.decoded = len(missing)
        self.tiles = {key: self.tiles[key] for key in keys}   # only what is in view now
        images = np.stack([self.tiles[key] for key in keys])
        return tile(images.reshape(lattice.rows, lattice.cols, *images.shape[1:]))


def overview_grid(decoder, z: np.ndarray, n: int = 20) -> np.ndarray:
    """The picture of a whole latent space as the map first shows it: an ``n``×``n`` mosaic decoded over
    the range of the data's z_mean ``z`` (the prior's ±3 without data), in the plane of its two principal
    components when the latent space has more than two dimensions; a strip of ``n`` images for one."""
    z = np.asarray(z, np.float32).reshape(-1, decoder.latent_dim)
    projection = PCA(z) if decoder.latent_dim > 2 and len(z) > 2 else None
    lo, hi = grid_range(projection.transform(z) if projection is not None else z)
    if decoder.latent_dim == 1:
        return tile(traversal(decoder, np.zeros(1), 0, np.linspace(lo[0], hi[0], n))[None])
    return decode_grid(decoder, (lo[0], hi[0]), (lo[1], hi[1]), n, projection=projection)


class ModelDecoder:
    """``decode(z)`` with a VAE's own decoder (``vae.decoder``, compiled once per model), for the thread
    that owns the model (e.g. the training thread between epochs); the same interface as `Decoder`."""

    def __init__(self, vae):
        self.latent_dim = int(vae.latent_dim)
        self.image_shape = tuple(vae.image_shape)
        self._fn = getattr(vae, "_latentlab_decode", None)
        if self._fn is None:
            from latentlab.model.vae import output_to_image

            tf = _tf()
            self._fn = vae._latentlab_decode = tf.function(
                lambda z: output_to_image(vae.decoder(z, training=False), vae.likelihood),
                input_signature=[tf.TensorSpec([None, self.latent_dim], tf.float32)])

    def decode(self, z) -> np.ndarray:
        return self._fn(np.asarray(z, np.float32).reshape(-1, self.latent_dim)).numpy()


MIN_TILE_PX = 64      # exported grids and samples: each tile enlarged (whole pixels) to at least this side
MIN_IMAGE_PX = 224    # an exported lone image (the app's decoded image): at least this side (8× a 28-px image)


def export_scale(h: int, w: int, min_px: int = MIN_TILE_PX) -> int:
    """Whole-pixel enlargement (nearest neighbour) that makes an h×w tile at least ``min_px`` a side: the
    default of ``latentlab export --scale`` and of the app's picture exports (1 for big images)."""
    import math

    return max(1, math.ceil(min_px / max(1, min(int(h), int(w)))))


def tile(images: np.ndarray, pad: int = 0) -> np.ndarray:
    """(rows, cols, H, W, C) → (rows*H, cols*W, C) mosaic."""
    rows, cols, h, w, c = images.shape
    if pad:
        images = np.pad(images, ((0, 0), (0, 0), (0, pad), (0, pad), (0, 0)), constant_values=1.0)
        h, w = h + pad, w + pad
    return images.transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def traversal(decoder: Decoder, z, dim: int, values) -> np.ndarray:
    """Images (len(values), H, W, C) as dimension ``dim`` sweeps ``values`` from ``z``."""
    values = np.asarray(values, np.float32)
    zs = np.tile(np.asarray(z, np.float32), (len(values), 1))
    zs[:, dim] = values
    return decoder.decode(zs)


def interpolate(decoder: Decoder, z0, z1, steps: int = 10) -> np.ndarray:
    """Images (steps, H, W, C) along the straight line from ``z0`` to ``z1`` (both included)."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    z = (1 - t) * np.asarray(z0, np.float32) + t * np.asarray(z1, np.float32)
    return decoder.decode(z)


def nearest(z_points: np.ndarray, z, k: int = 8) -> np.ndarray:
    """Indices of the ``k`` rows of ``z_points`` closest to ``z`` (Euclidean), nearest first."""
    d = np.sum((np.asarray(z_points) - np.asarray(z)) ** 2, axis=1)
    k = min(k, len(d))
    idx = np.argpartition(d, k - 1)[:k] if k < len(d) else np.arange(len(d))
    return idx[np.argsort(d[idx])]


class PCA:
    """2-D principal-component projection of z_mean (numpy SVD), with the inverse that lifts a
    2-D point back into latent space (the other components held at the data mean, or at
    ``base_z``'s own components)."""

    def __init__(self, z: np.ndarray):
        z = np.asarray(z, np.float64)
        self.mean = z.mean(axis=0)
        _, s, vt = np.linalg.svd(z - self.mean, full_matrices=False)
        comps = vt[:2]
        if comps.shape[0] < 2:  # latent size 1: pad with a zero direction
            comps = np.vstack([comps, np.zeros_like(comps)])
        self.components = comps  # (2, D)
        var = s ** 2 / max(len(z) - 1, 1)
        self.explained = (var[:2] / var.sum()) if var.sum() > 0 else np.zeros(2)

    def transform(self, z) -> np.ndarray:
        return ((np.asarray(z, np.float64) - self.mean) @ self.components.T).astype(np.float32)

    def inverse(self, p, base_z=None) -> np.ndarray:
        p = np.asarray(p, np.float64).reshape(-1, 2)
        base = self.mean if base_z is None else np.asarray(base_z, np.float64)
        # keep base's off-plane part, replace its in-plane coordinates by p
        off = base - ((base - self.mean) @ self.components.T) @ self.components
        return (off + p @ self.components).astype(np.float32)

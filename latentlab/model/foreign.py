"""Decoders (and encoders) trained elsewhere: any Keras model that maps a vector of size d to an image.

`ForeignDecoder` loads a ``.keras`` file with ``safe_mode=True`` (`latentlab.model.keras_files`), checks that it
takes one vector per image, (None, d), and gives an image, (None, H, W), (None, H, W, 1) or (None, H, W, 3),
and finds out whether its values are pixels in [0, 1] or logits (a sigmoid then makes them pixels). It has
the interface of latentlab's own `latentlab.model.latent.Decoder` (``decode(z)``, ``latent_dim``,
``image_shape``, ``set_weights``, ``warm_up``), so the latent map, clicks, traversals, interpolations,
prior samples and the headless grid work on it unchanged. `ForeignEncoder` takes such a model's images
to z_mean (and z_log_var when it returns two outputs); `open_view` is what a window shows of them.

In a window, such a decoder is named by a `latentlab.model.key.ModelKey` whose ``keras_file`` is its path
(in the place of latentlab's likelihood), so `latentlab.runtime.build_decoders` builds its decoders too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentlab.model.key import ModelKey

from latentlab.model.keras_files import KerasFileError, load_keras_file

__all__ = ["ForeignDecoder", "ForeignEncoder", "ForeignView", "open_view",
           "KerasFileError"]

SIDE_RANGE = (4, 256)          # pixels per side of an image latentlab shows
MAX_LATENT = 1024
PROBE_POINTS = 256             # prior samples decoded to tell pixels from logits
_ADVICE = ("latentlab opens only models made of Keras' own layers: save it again without them, or open it "
           "in the code that made it")


def _shape(tensor_or_shape) -> tuple:
    shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
    return tuple(None if v is None else int(v) for v in shape)


def _fmt(shape) -> str:
    return "(" + ", ".join("None" if v is None else str(v) for v in shape) + ")"


def _io(model, path: Path, what: str):
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):
        raise KerasFileError(f"{path}: this {what} has no defined input and output shapes (a model that was "
                             "never built or called); save it after calling it once on data") from None
    return inputs, outputs


class ForeignDecoder:
    """A Keras decoder from a file: ``decode(z)`` → images (n, H, W, C) in [0, 1]."""

    def __init__(self, path, model=None):
        import tensorflow as tf

        self.path = Path(path).expanduser().resolve()
        self.model = model if model is not None else load_keras_file(self.path, _ADVICE)
        inputs, outputs = _io(self.model, self.path, "decoder")
        if len(inputs) != 1 or len(_shape(inputs[0])) != 2 or _shape(inputs[0])[1] is None:
            got = ", ".join(_fmt(_shape(t)) for t in inputs)
            raise KerasFileError(f"{self.path} takes {got}, but a decoder must take one vector per image, "
                                 "(None, d): the latent point")
        self.latent_dim = _shape(inputs[0])[1]
        if not 1 <= self.latent_dim <= MAX_LATENT:
            raise KerasFileError(f"{self.path} takes vectors of size {self.latent_dim}; latentlab shows latent "
                                 f"spaces of 1 to {MAX_LATENT} dimensions")
        out = _shape(outputs[0]) if len(outputs) == 1 else None
        lo, hi = SIDE_RANGE
        fits = (out is not None and len(out) in (3, 4) and None not in out[1:]
                and (len(out) == 3 or out[3] in (1, 3)) and all(lo <= v <= hi for v in out[1:3]))
        if not fits:
            got = ", ".join(_fmt(_shape(t)) for t in outputs)
            hint = ""
            if out is not None and len(out) == 2 and out[1] and round(out[1] ** 0.5) ** 2 == out[1]:
                side = round(out[1] ** 0.5)
                hint = f" (a final keras.layers.Reshape(({side}, {side})) makes it one)"
            raise KerasFileError(f"{self.path} gives {got}, but a decoder must give one image per vector: "
                                 f"(None, H, W), (None, H, W, 1) or (None, H, W, 3), {lo} to {hi} pixels a "
                                 f"side{hint}")
        self.image_shape = (out[1], out[2], out[3] if len(out) == 4 else 1)
        model = self.model
        self._raw = tf.function(lambda z: tf.cast(model(z, training=False), tf.float32),
                                input_signature=[tf.TensorSpec([None, self.latent_dim], tf.float32)])
        probe = np.random.default_rng(0).standard_normal((PROBE_POINTS, self.latent_dim)).astype(np.float32)
        values = self._raw(probe).numpy()
        if not np.all(np.isfinite(values)):
            raise KerasFileError(f"{self.path} gives values that are not finite (inf or nan) for points drawn "
                                 "from the prior N(0, I); it cannot be shown")
        inside = np.mean((values >= -0.05) & (values <= 1.05))
        self.output = "pixels" if inside >= 0.99 else "logits"

    @property
    def description(self) -> str:
        h, w, c = self.image_shape
        values = ("values in [0, 1], shown as pixels" if self.output == "pixels"
                  else "logits (values outside [0, 1]), shown through a sigmoid")
        return f"{self.path.name}: {self.latent_dim}-D latent space → {h}×{w}×{c} images, {values}"

    @property
    def key(self) -> ModelKey:
        """The model key a window names this decoder by (see the module's docstring)."""
        return ModelKey(self.image_shape, self.latent_dim, keras_file=str(self.path))

    def decode(self, z) -> np.ndarray:
        z = np.asarray(z, np.float32).reshape(-1, self.latent_dim)
        raw = self._raw(z).numpy().reshape(len(z), *self.image_shape)
        if self.output == "logits":
            with np.errstate(over="ignore"):
                return (1.0 / (1.0 + np.exp(-raw))).astype(np.float32)
        return np.clip(raw, 0.0, 1.0).astype(np.float32)

    def get_weights(self) -> list:
        return [np.asarray(w) for w in self.model.get_weights()]

    def set_weights(self, weights) -> None:
        self.model.set_weights(weights)

    def warm_up(self) -> None:
        self.decode(np.zeros((1, self.latent_dim), np.float32))


class ForeignEncoder:
    """A Keras encoder from a file for a `ForeignDecoder`'s images: ``encode(images)`` → (z_mean,
    z_log_var or None). It must take the decoder's images and return z_mean, (None, d), first; a second
    output of the same shape is z_log_var (further outputs, such as a sampled z, are ignored)."""

    def __init__(self, path, image_shape, latent_dim: int):
        import tensorflow as tf

        self.path = Path(path).expanduser().resolve()
        self.model = load_keras_file(self.path, _ADVICE)
        inputs, outputs = _io(self.model, self.path, "encoder")
        h, w, c = image_shape
        want = [(None, h, w, c)] + ([(None, h, w)] if c == 1 else [])
        if len(inputs) != 1 or _shape(inputs[0]) not in want:
            got = ", ".join(_fmt(_shape(t)) for t in inputs)
            raise KerasFileError(f"{self.path} takes {got}, but the decoder's images are {_fmt(want[0])}: the "
                                 "encoder must take them")
        shapes = [_shape(t) for t in outputs]
        if not shapes or shapes[0] != (None, latent_dim):
            got = ", ".join(_fmt(s) for s in shapes)
            raise KerasFileError(f"{self.path} returns {got}, but the encoder must return z_mean first, "
                                 f"(None, {latent_dim}) (the decoder's latent size), then optionally z_log_var")
        self.has_log_var = len(shapes) >= 2 and shapes[1] == (None, latent_dim)
        self.flat = _shape(inputs[0]) == (None, h, w)
        model, n_out = self.model, (2 if self.has_log_var else 1)
        self._fn = tf.function(lambda x: [tf.cast(t, tf.float32) for t in
                                          tf.nest.flatten(model(x, training=False))[:n_out]],
                               input_signature=[tf.TensorSpec(_shape(inputs[0]), tf.float32)])

    def encode(self, images, batch_size: int = 1024):
        images = np.asarray(images, np.float32)
        if self.flat:
            images = images[..., 0]
        means, log_vars = [], []
        for s in range(0, len(images), batch_size):
            out = self._fn(images[s:s + batch_size])
            means.append(out[0].numpy())
            if self.has_log_var:
                log_vars.append(out[1].numpy())
        if not means:
            return np.zeros((0, self.model.outputs[0].shape[-1]), np.float32), None
        return np.concatenate(means), (np.concatenate(log_vars) if self.has_log_var else None)


@dataclass
class ForeignView:
    """What a window shows of a decoder from elsewhere: its model key and weights (the window builds
    decoders of its own from the key), what it is, and — with an encoder and a dataset — the data's
    encoded points."""
    model_key: ModelKey
    decoder_weights: list
    description: str
    dataset: Any = None          # latentlab.data.Dataset at the decoder's image size
    z_mean: np.ndarray | None = None
    z_log_var: np.ndarray | None = None
    encoder_path: str | None = None


def dataset_for(decoder: ForeignDecoder, folder):
    """The images of ``folder`` at ``decoder``'s size and colour (DatasetError with one line)."""
    from latentlab import data as ld

    h, w, c = decoder.image_shape
    return ld.load_folder(folder, image_size=(h, w), color="gray" if c == 1 else "rgb")


def open_view(decoder_path, encoder_path=None, dataset_dir=None) -> ForeignView:
    """Load a decoder (and an encoder, and a dataset folder) for a window: call off the GUI thread, after
    `latentlab.runtime.import_tensorflow`. KerasFileError or latentlab.data.DatasetError (one line) when
    something does not fit."""
    decoder = ForeignDecoder(decoder_path)
    view = ForeignView(decoder.key, decoder.get_weights(), decoder.description)
    encoder = ForeignEncoder(encoder_path, decoder.image_shape, decoder.latent_dim) if encoder_path else None
    if dataset_dir:
        view.dataset = dataset_for(decoder, dataset_dir)
        if encoder is not None:
            view.z_mean, view.z_log_var = encoder.encode(view.dataset.images)
            view.encoder_path = str(encoder.path)
    return view

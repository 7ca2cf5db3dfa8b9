"""`ModelKey`: which decoder a window shows, by what it is rather than by its weights. Two models with
the same key share a window's decoders (built once, off the GUI thread); the weights come apart.

A key names either one of latentlab's own likelihoods (``likelihood``: the decoder latentlab builds) or a
Keras file trained elsewhere (``keras_file``: `latentlab.model.foreign.ForeignDecoder` loads it), never
both. No TensorFlow here."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelKey"]


@dataclass(frozen=True)
class ModelKey:
    image_shape: tuple[int, ...]     # (height, width, channels)
    latent_dim: int
    likelihood: str | None = None    # latentlab's own decoder with this likelihood
    keras_file: str | None = None    # a decoder from this Keras file

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        object.__setattr__(self, "latent_dim", int(self.latent_dim))
        if (self.likelihood is None) == (self.keras_file is None):
            raise ValueError(f"a model key names a likelihood or a Keras file, one of them: {self!r}")
        if self.likelihood is not None:
            object.__setattr__(self, "likelihood", str(self.likelihood))
        if self.keras_file is not None:
            object.__setattr__(self, "keras_file", str(self.keras_file))

"""What a window shows of a run folder, loaded off its GUI thread: the run, its decoder's weights and
shapes, and its encoded points; for a comparison, a ready decoder, a decoded grid and the dataset's
images when the folder is still on disk. No Qt here: the GUI's workers call these on their threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentlab.model.key import ModelKey
from latentlab.runs import folder as runs

__all__ = ["RunView", "open_run_view", "map_points", "comparison_entry", "COMPARISON_GRID"]

COMPARISON_GRID = 12   # tiles per side of a compared run's map


@dataclass
class RunView:
    run: runs.Run
    decoder_weights: list          # numpy arrays
    image_shape: tuple
    latent_dim: int
    likelihood: str | None
    keras_file: str | None = None     # a run written by latentlab.keras.RunCallback: the user's own decoder

    @property
    def model_key(self) -> ModelKey:
        if self.keras_file is not None:
            return ModelKey(self.image_shape, self.latent_dim, keras_file=self.keras_file)
        return ModelKey(self.image_shape, self.latent_dim, self.likelihood)


def open_run_view(path, *, repair: bool = True) -> RunView:
    """Open a run folder and read its decoder's weights (TensorFlow: call off the GUI thread). The
    model itself is let go: a window decodes with decoders of its own. RunError for a bad folder.
    ``repair=False``: nothing is written into the folder (see `latentlab.runs.folder.open_run`)."""
    from latentlab.runtime import import_tensorflow

    import_tensorflow()
    run = runs.open_run(path, repair=repair)
    if run.keras_decoder is not None:   # a run written by latentlab.keras.RunCallback: the user's own decoder
        from latentlab.model.foreign import ForeignDecoder, KerasFileError

        try:
            dec = ForeignDecoder(run.keras_decoder)
        except KerasFileError as e:
            raise runs.RunError(str(e)) from None
        return RunView(run, dec.get_weights(), tuple(dec.image_shape), int(dec.latent_dim), None,
                       keras_file=dec.key.keras_file)
    model = run.load_model()
    view = RunView(run, [np.asarray(w) for w in model.decoder.get_weights()],
                   tuple(int(v) for v in model.image_shape), int(model.latent_dim), str(model.likelihood))
    run._model = None
    return view


def map_points(latents: dict | None):
    """The points a latent map shows for a run's latents.npz: (z_mean, labels or None, class names,
    dataset indices) of the validation images (all images when the split is unknown); None when the
    run has no latents."""
    if latents is None or "z_mean" not in latents:
        return None
    z = np.asarray(latents["z_mean"], np.float32)
    idx = np.arange(len(z))
    split = latents.get("split")
    if split is not None and len(split) == len(z) and np.any(split == 1):
        idx = np.flatnonzero(split == 1)
    labels = latents.get("labels")
    names = [str(n) for n in latents.get("class_names", [])]
    return z[idx], None if labels is None else np.asarray(labels)[idx], names, idx


def comparison_entry(path) -> dict:
    """A run as the comparison view shows it: its decoder (warmed up), history, z_mean with labels and
    split, a decoded grid over its data, its replay frames and, when its dataset folder is still there
    with the same files, the images (for nearest-image look-ups)."""
    from latentlab import data as ld
    from latentlab.model.latent import Decoder, decode_grid, grid_range
    from latentlab.runtime import import_tensorflow
    from latentlab.tradeoff import replay_frames

    import_tensorflow()
    run = runs.open_run(path)
    from latentlab.tfquiet import GRAPH_LOCK

    decoder: Any   # a Decoder, or a ForeignDecoder that does what it does
    with GRAPH_LOCK:   # built and traced one thread at a time (latentlab.tfquiet.GRAPH_LOCK)
        if run.keras_decoder is not None:   # latentlab.keras.RunCallback's folder: the user's own decoder
            from latentlab.model.foreign import ForeignDecoder

            decoder = ForeignDecoder(run.keras_decoder)
        else:
            decoder = Decoder.from_model(run.load_model())
        decoder.warm_up()
    run._model = None   # the GUI uses the decoder only
    d = decoder.latent_dim
    lat = run.latents or {}
    z = np.asarray(lat["z_mean"], np.float32) if "z_mean" in lat else np.zeros((0, d), np.float32)
    labels = np.asarray(lat["labels"]) if "labels" in lat else None
    split = np.asarray(lat["split"]) if "split" in lat else np.zeros(len(z), np.int8)
    paths = [str(p) for p in lat.get("paths", [])]
    dims = (0, 1) if d >= 2 else (0, 0)
    if len(z) >= 2:
        lo, hi = grid_range(z)
        x_range, y_range = (lo[dims[0]], hi[dims[0]]), (lo[dims[1]], hi[dims[1]])
    else:
        x_range = y_range = (-3.0, 3.0)
    mosaic = decode_grid(decoder, x_range, y_range, COMPARISON_GRID, dims=dims) if d >= 2 else None
    images = None
    try:
        if run.config.dataset and Path(run.config.dataset).exists() and paths:
            ds = ld.load_folder(run.config.dataset, image_size=tuple(decoder.image_shape[:2]), color=run.config.color,
                                background=run.config.background, fit=run.config.fit)
            if runs.latents_match(ds.paths, lat) and ds.images.shape[1:] == decoder.image_shape:
                images = ds.images
    except Exception:
        images = None   # nearest images then show distances only
    return {"path": str(run.path), "run": run, "beta": float(run.config.beta), "history": list(run.history),
            "decoder": decoder, "z": z, "labels": labels, "class_names": [str(s) for s in lat.get("class_names", [])],
            "split": split, "paths": paths, "images": images, "mosaic": mosaic,
            "x_range": tuple(map(float, x_range)), "y_range": tuple(map(float, y_range)),
            "replay": replay_frames(run)}

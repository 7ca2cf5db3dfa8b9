"""`RunCallback`: your own Keras VAE writes a latentlab run folder while ``model.fit`` trains it, so the
app opens it, follows it as it trains, and compares it with its own runs.

::

    from latentlab.keras import RunCallback

    vae.fit(x_train, epochs=30, batch_size=128,
            callbacks=[RunCallback("runs/my-vae", encoder=encoder, decoder=decoder, images=x_test, beta=1.0)])

    # elsewhere, while it trains:  latentlab --run runs/my-vae

Any VAE fits whose ``encoder`` maps images to z_mean and z_log_var first (more outputs, like the keras.io
example's sampled z, are ignored) and whose ``decoder`` maps z (None, d) to an image (None, H, W[, C]).
Each epoch's logs become a history.csv row (the keras.io names ``loss``, ``reconstruction_loss`` and
``kl_loss`` are the app's; any other metric is kept as a column of its own).

What the folder gets, each file written atomically (`latentlab.runs`), in this order every epoch:

    decoder.keras   the decoder after the epoch (loaded back with Keras' safe_mode by the app)
    decoder_weights.npz  its weights alone (a window following the run reads them in milliseconds)
    encoder.keras   the encoder too, when Keras can save it (a custom layer the app never needs to load)
    latents.npz     z_mean and z_log_var of ``images`` (at most ``max_points`` of them), with ``labels``
    epochs.npz      those z_mean after every epoch (the app's replay, and the map of a followed run)
    history.csv     one row per epoch; tensorboard/ the same scalars as TensorBoard event files
    state.json      the epoch's commit record (written last), then ``finished`` at the end

and ``config.json`` once (image size, latent size, β, epochs planned; ``extra`` says who wrote it). The
folder is locked (`latentlab.runs.lock.RunLock`) from the start of ``fit`` to its end, so the app knows
who writes it, and that a writer whose process died is gone. Calling ``fit`` again with a callback on
the same folder continues the run (epochs go on); a folder holding another kind of run is refused.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np

from latentlab.runs import folder as runs
from latentlab.config import ConfigError, TrainConfig
from latentlab.tfquiet import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402  (after TensorFlow's quiet import)

__all__ = ["RunCallback", "WRITTEN_BY"]

WRITTEN_BY = "latentlab.keras.RunCallback"


class RunCallback(keras.callbacks.Callback):
    """Writes a latentlab run folder at ``out`` while ``model.fit`` trains (see the module's text).

    ``images``: (N, H, W) or (N, H, W, C) in [0, 1], encoded after every epoch for the map (the first
    ``max_points``); ``labels`` (N ints) and ``class_names`` colour it. ``beta``: the KL weight, a number,
    a Keras variable or a function returning it (read every epoch). ``tensorboard``: event files under
    ``out/tensorboard``. ``batch_size``: for encoding (and recorded in config.json)."""

    def __init__(self, out, *, encoder, decoder, images, beta=1.0, labels=None, class_names=None,
                 max_points: int = 5000, batch_size: int = 256, tensorboard: bool = True):
        super().__init__()
        self.out = Path(out).expanduser()
        self.encoder, self.decoder = encoder, decoder
        images = np.asarray(images, np.float32)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or not len(images):
            raise ValueError(f"images must be an array of images (N, H, W) or (N, H, W, C), not {images.shape}")
        self.images = images[:max_points]
        n = len(self.images)
        self.labels = (np.asarray(labels, np.int64)[:n] if labels is not None else np.full(n, -1, np.int64))
        self.class_names = [str(c) for c in (class_names or [])]
        self.beta = beta
        self.batch_size = int(batch_size)
        self.tensorboard = bool(tensorboard)
        self.history: list[dict] = []
        self._z: list[np.ndarray] = []
        self._lock = None
        self._writers: dict = {}
        self._epoch_start = None
        self._offset = 0

    # -- what is written -------------------------------------------------------------------------------------
    def _beta_now(self) -> float:
        b = self.beta() if callable(self.beta) else self.beta
        return float(b.numpy() if hasattr(b, "numpy") else b)

    def encode(self, images) -> tuple[np.ndarray, np.ndarray]:
        out = self.encoder.predict(images, batch_size=self.batch_size, verbose=0)
        if not isinstance(out, (list, tuple)) or len(out) < 2:
            raise ValueError("the encoder must return z_mean and z_log_var first (a list of two or more outputs)")
        return np.asarray(out[0], np.float32), np.asarray(out[1], np.float32)

    def _config(self, epochs: int) -> TrainConfig:
        h, w, c = self.images.shape[1:]
        d = int(self.decoder.inputs[0].shape[-1])
        try:
            return TrainConfig(dataset="", image_size=[int(h), int(w)], color="gray" if c == 1 else "rgb",
                               latent_dim=d, beta=self._beta_now(), epochs=max(1, int(epochs)),
                               batch_size=max(1, int(self.params.get("batch_size") or self.batch_size)),
                               val_fraction=0.0,
                               extra={"written_by": WRITTEN_BY, "model": str(getattr(self.model, "name", "")),
                                      "host": socket.gethostname()}).validate()
        except ConfigError as e:
            raise runs.RunError(f"{self.out}: this model cannot be shown by latentlab ({e})") from None

    def on_train_begin(self, logs=None):
        if self._lock is None:   # a fit that ended in an exception keeps it: the next fit goes on
            self._lock = runs.RunLock(self.out, create=True).acquire()
        if (self.out / runs.CONFIG_FILE).is_file():
            run = runs.open_run(self.out)
            if run.config.extra.get("written_by") != WRITTEN_BY:
                self._release()
                raise runs.RunError(f"{self.out} holds a run latentlab trained; give RunCallback a new folder")
            self.history = list(run.history)
            frames = run.epoch_latents or {}
            self._z = list(frames.get("z_mean", []))[:len(self.history)]
        self._offset = len(self.history)
        planned = self._offset + int(self.params.get("epochs") or 1)
        runs.write_config(self.out, self._config(planned))
        self._state("running")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        from latentlab.model.latent import active_units

        seconds = time.perf_counter() - (self._epoch_start or time.perf_counter())
        row = {"epoch": len(self.history) + 1}
        for k, v in (logs or {}).items():
            try:
                row[k] = float(v)
            except (TypeError, ValueError):
                continue
        for prefix in ("", "val_"):
            r, k = row.get(prefix + "reconstruction_loss"), row.get(prefix + "kl_loss")
            if r is not None and k is not None:
                row[prefix + "neg_elbo"] = r + k
        z_mean, z_log_var = self.encode(self.images)
        row.update(beta=self._beta_now(), active_units=active_units(z_mean), seconds=seconds)
        self.history.append(row)
        self._z.append(z_mean)
        out = self.out
        runs.atomic_save_model(self.decoder, out / runs.DECODER_FILE)
        runs.write_decoder_weights(out, self.decoder.get_weights(), len(self.history))   # for followers
        try:
            runs.atomic_save_model(self.encoder, out / runs.ENCODER_FILE)
        except (TypeError, ValueError, NotImplementedError):
            pass   # a layer Keras cannot serialise: the app needs only the decoder and the codes
        n = len(self.images)
        runs.atomic_save_npz(out / runs.LATENTS_FILE, z_mean=z_mean, z_log_var=z_log_var, labels=self.labels,
                             paths=np.asarray([f"image {i}" for i in range(n)], dtype=str),
                             class_names=np.asarray(self.class_names, dtype=str), split=np.zeros(n, np.int8))
        runs.atomic_save_npz(out / runs.EPOCH_LATENTS_FILE, z_mean=np.stack(self._z), indices=np.arange(n))
        runs.atomic_write_text(out / runs.HISTORY_FILE, runs.history_to_csv(self.history))
        if self.tensorboard:
            self._scalars(row)
        self._state("running")

    def on_train_end(self, logs=None):
        stopped = bool(getattr(self.model, "stop_training", False))
        done = len(self.history)
        self._state("stopped" if stopped else "finished",
                    f"stopped after {done} epochs" if stopped else f"finished {done} epochs")
        self._release()

    # -- pieces -----------------------------------------------------------------------------------------------
    def _state(self, status: str, message: str = "") -> None:
        runs.write_state(self.out, status=status, message=message, epochs_done=len(self.history),
                         model_epoch=len(self.history), device="", updated=time.time(), written_by=WRITTEN_BY)

    def _scalars(self, row: dict) -> None:
        from latentlab.training.tensorboard_logs import TENSORBOARD_DIR

        step = int(row["epoch"]) - 1
        for key, value in row.items():
            if key in ("epoch", "seconds", "active_units"):
                continue
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            if split not in self._writers:
                self._writers[split] = tf.summary.create_file_writer(str(self.out / TENSORBOARD_DIR / split))
            with self._writers[split].as_default():
                tf.summary.scalar(f"epoch_{name}", float(value), step=step)
        for w in self._writers.values():
            w.flush()

    def _release(self) -> None:
        for w in self._writers.values():
            try:
                w.close()
            except Exception:
                pass
        self._writers = {}
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def close(self) -> None:
        """Let go of the folder after a ``fit`` that ended in an exception (the state says ``stopped``)."""
        if self._lock is not None:
            self._state("stopped", f"stopped after {len(self.history)} epochs")
            self._release()

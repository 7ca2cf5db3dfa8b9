"""TensorBoard event files for a run folder: ``RUN/tensorboard/train`` and ``RUN/tensorboard/validation``.

`EpochScalars` is Keras' own ``keras.callbacks.TensorBoard`` (epoch metrics only: no graph, no profiling,
no per-batch writes) with Keras' tag names: ``epoch_loss``, ``epoch_reconstruction_loss``,
``epoch_kl_loss``, ``epoch_neg_elbo``, ``epoch_beta`` (and ``epoch_neg_log_likelihood`` when the
trainer estimates it), the validation values in ``validation/``. `EpochPictures` adds what Keras does
not write, with ``tf.summary``: the KL of each latent dimension as a histogram (``epoch_kl_per_dim``)
and the decoded 20×20 grid as an image (``epoch_latent_grid``).

Steps are 0-based epoch indices, as Keras counts them, so a resumed run continues its curves at the
right epoch (in new event files beside the old ones: TensorBoard reads them all). Both callbacks run
after the epoch's checkpoint, so only epochs the run folder keeps are logged, and flush at once, so a
TensorBoard watching the run shows each epoch as it finishes. `write_history` writes the scalars of a
run trained before latentlab wrote event files, from its history.csv.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from latentlab.tfquiet import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402  (after TensorFlow's quiet import)

__all__ = ["TENSORBOARD_DIR", "EpochScalars", "EpochPictures", "write_history", "MAX_IMAGE_SIDE"]

TENSORBOARD_DIR = "tensorboard"
MAX_IMAGE_SIDE = 640     # the grid image is shrunk (every k-th pixel) to at most this many pixels a side


class EpochScalars(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback writing each epoch's logs (train/ and validation/ under ``log_dir``),
    flushed at the epoch's end; `close` ends its files (a training stopped by an exception never reaches
    Keras' ``on_train_end``)."""

    def __init__(self, log_dir):
        super().__init__(log_dir=str(log_dir), histogram_freq=0, write_graph=False, write_images=False,
                         write_steps_per_second=False, update_freq="epoch", profile_batch=0)

    def on_test_end(self, logs=None):
        # Keras writes evaluation_*_vs_iterations here, before anyone knows whether the epoch will be kept
        # (a stop, a divergence); the same values go out with the epoch in on_epoch_end instead.
        pass

    # Per batch, Keras' callback calls tf.summary.scalar for every metric even with update_freq="epoch"
    # (with no writer set, nothing is written): 0.1-0.5 ms a call, a few per cent of a small batch.
    # Epochs only here, no graph, no profiling: nothing to do between epochs.
    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        with _as_os_error():
            super().on_epoch_end(epoch, logs)
            for writer in self._writers.values():
                writer.flush()

    def close(self) -> None:
        _close_quietly(self._writers.values())


class EpochPictures(keras.callbacks.Callback):
    """At each epoch's end, into ``log_dir``/train: the KL of each latent dimension (``kl_per_dim()``, a
    vector) as a histogram, and the grid decoded over ``z_mean()`` (the epoch's encoded validation
    images; the prior's range without them) as an image (one compiled batch of grid_size² decodes, about
    as much work as a batch or two of training)."""

    def __init__(self, log_dir, kl_per_dim, z_mean, grid_size: int = 20):
        super().__init__()
        self.train_dir = str(Path(log_dir) / "train")
        self.kl_per_dim, self.z_mean, self.grid_size = kl_per_dim, z_mean, int(grid_size)
        self.writer = None

    def on_epoch_end(self, epoch, logs=None):
        with _as_os_error():
            self._write(epoch)

    def _write(self, epoch):
        from latentlab.model.latent import ModelDecoder, overview_grid

        if self.writer is None:
            self.writer = tf.summary.create_file_writer(self.train_dir)
        mosaic = overview_grid(ModelDecoder(self.model), self.z_mean(), self.grid_size)
        step = max(1, -(-max(mosaic.shape[:2]) // MAX_IMAGE_SIDE))
        pixels = np.clip(mosaic[::step, ::step] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        with self.writer.as_default():
            tf.summary.histogram("epoch_kl_per_dim", np.asarray(self.kl_per_dim(), np.float32), step=epoch,
                                 description="KL(q(z|x) ‖ p(z)) of each latent dimension (nats), over the "
                                             "epoch's training batches")
            tf.summary.image("epoch_latent_grid", pixels[None], step=epoch,
                             description="images decoded over the latent map (the data's range; its two "
                                         "principal directions when there are more than two dimensions)")
        self.writer.flush()

    def close(self) -> None:
        _close_quietly([self.writer] if self.writer is not None else [])


@contextlib.contextmanager
def _as_os_error():
    """TensorFlow's file errors (a read-only or full run folder) as the OSError the Trainer reports in one
    line ("cannot write the run folder ...; the checkpoint of epoch N is intact")."""
    try:
        yield
    except tf.errors.OpError as e:
        reason = " ".join(str(e.message).split()).rsplit(";", 1)[-1].strip() or type(e).__name__
        raise OSError(None, reason) from None


def _close_quietly(writers) -> None:
    """Close event files after training, however it ended (an error here must not hide the first one)."""
    for w in list(writers):
        try:
            w.close()
        except Exception:
            pass


def write_history(log_dir, history: list[dict]) -> int:
    """Write the scalars of ``history`` rows (history.csv) as `EpochScalars` would have, one step per row
    (epoch - 1); returns the number of epochs written. For runs trained before latentlab wrote event files."""
    log_dir = Path(log_dir)
    writers = {}
    try:
        with _as_os_error():
            for row in history:
                step = int(row["epoch"]) - 1
                for key, value in row.items():
                    if key in ("epoch", "seconds", "active_units") or key.startswith("likelihood_"):
                        continue
                    split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
                    if split not in writers:
                        writers[split] = tf.summary.create_file_writer(str(log_dir / split))
                    with writers[split].as_default():
                        tf.summary.scalar(f"epoch_{name}", float(value), step=step)
    finally:
        _close_quietly(writers.values())
    return len(history)

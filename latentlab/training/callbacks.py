"""The Keras callbacks a `latentlab.training.trainer.Trainer` passes to ``fit``, one concern each (as Keras' own
``keras/src/callbacks/`` are): β and its schedule, the divergence guard, progress events, pause and
stop, the per-epoch log-likelihood estimate, and the per-epoch checkpoint.

They run on the training thread between batches. ``fit`` calls them in list order for each hook,
so the Trainer lists them in this order (`Trainer._callbacks`): the schedule sets β before a batch; after
it the guard checks the loss before any event reports it, the events go out, then a pause or stop
takes effect; at an epoch's end a stop comes before the checkpoint, so an interrupted epoch is never
saved. A callback ends training by raising one of the exceptions below, which the Trainer catches.
"""

from __future__ import annotations

import math
import threading
import time

from latentlab.config import kl_factor, kl_objective
from latentlab.events import BatchEnd, WeightsSnapshot
from latentlab.tfquiet import import_tensorflow

import_tensorflow()
import keras  # noqa: E402  (after TensorFlow's quiet import)

__all__ = ["BetaSchedule", "DivergenceGuard", "ProgressEvents", "Control", "LikelihoodEstimate", "EpochCheckpoint",
           "StopRequested", "NonFinite", "DIVERGENCE_FACTOR"]

DIVERGENCE_FACTOR = 100.0  # a batch loss this many times its starting scale stops training


class StopRequested(Exception):
    """Raised by `Control` when a stop was asked for."""


class NonFinite(Exception):
    """Raised by `DivergenceGuard`: ``what`` ("loss", "val loss") became ``where`` (a value and when)."""

    def __init__(self, where: str, what: str):
        super().__init__(where)
        self.where, self.what = where, what


class BetaSchedule(keras.callbacks.Callback):
    """Before every batch: ``model.beta`` = the β asked for now (``get_beta()``, which may change
    between batches) × the schedule's factor at this fractional epoch. At an epoch's end the β of its
    last batch joins the epoch's logs as ``beta`` (so TensorBoard has ``epoch_beta``)."""

    def __init__(self, get_beta, schedule: str, period: int, steps_per_epoch: int, free_bits: float = 0.0,
                 capacity: float = 0.0):
        super().__init__()
        self.get_beta, self.schedule, self.period, self.steps = get_beta, schedule, period, steps_per_epoch
        self.free_bits, self.capacity = float(free_bits), float(capacity)
        self.epoch = 0
        self.beta_now = float(get_beta())
        self.capacity_now = -1.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        t = self.epoch + batch / self.steps
        self.beta_now = self.get_beta() * kl_factor(self.schedule, t, self.period)
        self.model.beta.assign(self.beta_now)
        floor, self.capacity_now = kl_objective(self.schedule, t, self.period, self.free_bits, self.capacity)
        self.model.kl_free_bits.assign(floor)
        self.model.kl_capacity.assign(self.capacity_now)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["beta"] = float(self.model.beta.numpy())
            if self.capacity_now >= 0:
                logs["capacity"] = self.capacity_now


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training (`NonFinite`) when a batch's loss is not finite or has grown past
    `DIVERGENCE_FACTOR` × its scale (the last finished epoch's loss, else the first batch's): on its
    way to inf/nan. At an epoch's end, a non-finite epoch loss or validation loss stops it too."""

    def __init__(self, reference: float | None = None):
        super().__init__()
        self.reference = None if reference is None else max(abs(float(reference)), 1.0)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        where = f"at epoch {self.epoch + 1}, batch {batch + 1}"
        if not math.isfinite(loss):
            raise NonFinite(f"{loss} {where}", "loss")
        if self.reference is None:
            self.reference = max(abs(loss), 1.0)
        elif abs(loss) > DIVERGENCE_FACTOR * self.reference:
            raise NonFinite(f"{loss:.3g} {where} (over {DIVERGENCE_FACTOR:g}× where it started: diverging, "
                            "on its way to inf/nan)", "loss")

    def on_epoch_end(self, epoch, logs=None):
        for key in ("loss", "val_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                raise NonFinite(f"{float(value)} at the end of epoch {epoch + 1}", key.replace("_", " "))


class ProgressEvents(keras.callbacks.Callback):
    """After every batch: a `BatchEnd` event (running means, rate, ETA) to ``on_event``, and every
    ``snapshot_seconds`` a `WeightsSnapshot` of the decoder so views can follow training mid-epoch.
    Also resets the per-dimension KL tracker at the start of each epoch."""

    def __init__(self, on_event, *, epochs: int, steps_per_epoch: int, batch_size: int, num_train: int,
                 beta_now, snapshot_seconds: float | None = None):
        super().__init__()
        self.on_event, self.epochs, self.steps = on_event, epochs, steps_per_epoch
        self.batch_size, self.num_train, self.beta_now = batch_size, num_train, beta_now
        self.snapshot_seconds = snapshot_seconds
        self.run_start = time.perf_counter()
        self.steps_done_total = 0
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epoch_start = self.last_snapshot = time.perf_counter()
        self.model.kl_per_dim_tracker.reset_state()

    def on_train_batch_end(self, batch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.steps_done_total += 1
        now = time.perf_counter()
        step, steps = batch + 1, self.steps
        elapsed = now - self.epoch_start
        rate = min(step * self.batch_size, self.num_train) / elapsed if elapsed > 0 else 0.0
        per_step = (now - self.run_start) / self.steps_done_total
        remaining = (self.epochs - self.epoch - 1) * steps + (steps - step)
        self.on_event(BatchEnd(self.epoch, step, steps, logs, self.beta_now(), rate, remaining * per_step))
        if self.snapshot_seconds and now - self.last_snapshot >= self.snapshot_seconds and step < steps:
            self.last_snapshot = now
            self.on_event(WeightsSnapshot(self.epoch, step, self.model.decoder.get_weights()))


class Control(keras.callbacks.Callback):
    """Pause and stop, asked for from any thread (`pause`, `resume`, `stop`), taking effect after the
    running batch (or before the next one, when asked for during an epoch's end): a pause waits there; a
    stop raises `StopRequested`, also at an epoch's end before its validation counts as a finished epoch."""

    def __init__(self, stop_event: threading.Event, running_event: threading.Event):
        super().__init__()
        self.stop_event, self.running_event = stop_event, running_event

    def on_train_batch_end(self, batch, logs=None):
        self._hold()

    def on_train_batch_begin(self, batch, logs=None):
        self._hold()   # asked for during an epoch's end (checkpoint, estimates, event files): before the next batch

    def on_epoch_end(self, epoch, logs=None):
        if self.stop_event.is_set():
            raise StopRequested()  # the validation pass of an interrupted epoch is not a finished epoch

    def _hold(self):
        while not self.running_event.is_set():
            self.running_event.wait(0.05)
        if self.stop_event.is_set():
            raise StopRequested()


class LikelihoodEstimate(keras.callbacks.Callback):
    """At each epoch's end, −log p(x) by importance sampling (`latentlab.model.likelihood`, ``samples`` draws
    per image) and −ELBO from the same draws, on a fixed set of validation ``images`` (the same every
    epoch, so the values follow the model, not the subset): added to the epoch's logs as
    ``val_neg_log_likelihood`` and ``val_neg_elbo_subset``. Runs after `Control`, so a stopped epoch
    costs nothing more."""

    def __init__(self, images, samples: int, seed: int = 0):
        super().__init__()
        self.images, self.samples, self.seed = images, int(samples), int(seed)

    def on_epoch_end(self, epoch, logs=None):
        from latentlab.model.likelihood import estimate

        if logs is None or not len(self.images):
            return
        est = estimate(self.model, self.images, self.samples, seed=self.seed)
        logs["val_neg_log_likelihood"] = est.neg_log_likelihood
        logs["val_neg_elbo_subset"] = est.neg_elbo


class EpochCheckpoint(keras.callbacks.Callback):
    """At each epoch's end: ``save(epoch, logs, seconds)`` (the Trainer's checkpoint and `EpochEnd`)."""

    def __init__(self, save):
        super().__init__()
        self.save = save
        self.epoch_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.save(epoch, logs or {}, time.perf_counter() - self.epoch_start)

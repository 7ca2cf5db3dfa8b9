"""Training: `Trainer` runs Keras ``fit`` on a `TrainConfig` and publishes plain-Python
events (no Qt) that the GUI and the CLI subscribe to.

It can be paused, resumed and stopped between batches, β can be changed between batches,
every finished epoch is checkpointed atomically into the run folder (with TensorBoard event files
beside it, `latentlab.training.tensorboard_logs`), each epoch with a validation split gets an importance-sampled
−log p(x) estimate (`latentlab.model.likelihood`), and a non-finite loss stops training with a clear message
while the last good weights are kept.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from latentlab.runs import folder as runs
from latentlab.runs.writer import RunWriter
from latentlab.config import ConfigError, TrainConfig, check_beta, kl_factor, kl_objective
from latentlab.events import EpochEnd, Failed, Finished, Started
from latentlab.model.latent import active_units, encode
from latentlab.model.pool import ModelPool
from latentlab.runtime import training_device
from latentlab.surgery import rate_split_logs

if TYPE_CHECKING:
    from latentlab.data.dataset import Dataset
    from latentlab.runs.folder import Run

__all__ = ["Trainer", "TrainingError"]


class TrainingError(RuntimeError):
    """Training cannot start or go on. ``str(e)`` is one clear line."""


class _WriteFailed(Exception):
    pass


# -- the trainer --------------------------------------------------------------------------------
class Trainer:
    """Trains a VAE for ``config``; ``run()`` blocks (call it from a worker thread).

    ``on_event`` receives Started, BatchEnd, WeightsSnapshot, EpochEnd, then Finished or Failed,
    on the training thread. ``stop``/``pause``/``resume``/``set_beta`` may be called from any
    thread and take effect at the next batch boundary.
    """

    def __init__(self, config: TrainConfig, dataset: Dataset | None = None, run_dir: str | Path | None = None,
                 on_event: Callable[[Any], None] | None = None, *,
                 resume: bool = False, snapshot_seconds: float | None = None,
                 latents_every_epoch_max: int = 20_000, model_pool: ModelPool | None = None,
                 strategy: Any = None, tensorboard: bool = True, likelihood_samples: int | None = None,
                 encode_progress: Callable[[int, int], None] | None = None) -> None:
        self.config = config.validate()
        self.dataset = dataset
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.on_event = on_event or (lambda event: None)
        self.resume_run = resume
        self.snapshot_seconds = snapshot_seconds
        self.latents_every_epoch_max = latents_every_epoch_max
        # progress(done, total) of encoding every image into latents.npz once training ends (the CLI's bar)
        self.encode_progress = encode_progress
        # A tf.distribute strategy (latentlab.training.distribute.make_strategy) or None: one device. A model built in a
        # strategy's scope has distributed variables: it gets a model of its own, never one from a pool.
        self.strategy = strategy
        self.model_pool = model_pool if strategy is None else None   # the model goes back to it after run()
        self.tensorboard = bool(tensorboard)   # event files under run_dir/tensorboard (with a run_dir)
        # draws per image of the per-epoch −log p(x) estimate (0: none); None = latentlab.model.likelihood's default
        self.likelihood_samples = likelihood_samples
        self._closing: list = []             # callbacks whose files are closed when fit ends, however it ends
        self.model: Any = None   # the keras VAE (latentlab.model.vae) while run() trains it
        self.device: str | None = None
        self.history: list[dict] = []
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._beta = float(config.beta)
        self._lock = threading.Lock()
        self._good_weights = None
        self._epoch_z: list[np.ndarray] = []
        # what goes into the run folder (its lock, state.json, checkpoints, latents) goes through this writer
        self._writer = RunWriter(self.run_dir, resume) if self.run_dir is not None else None

    @property
    def data(self) -> Dataset:
        """The dataset: the one given, or the config's folder once run() has loaded it."""
        if self.dataset is None:
            raise TrainingError("the dataset is not loaded yet: run() loads it")
        return self.dataset

    # -- control (any thread) -------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def set_beta(self, beta: float) -> None:
        beta = check_beta(beta)
        with self._lock:
            self._beta = beta
            self.config = self.config.replace(beta=beta)

    @property
    def beta(self) -> float:
        return self._beta

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> Finished | Failed:
        """Train; returns the Finished or Failed event it also published.

        The run folder is locked (`RunWriter.acquire`) from before the first write until after the last
        one; another writer holding it gives a Failed event that says who, and nothing is written.
        With a ``model_pool``, the model is handed back to the pool before the Finished/Failed event
        is published and ``self.model`` is None afterwards (read the model in event handlers)."""
        event: Finished | Failed
        try:
            if self._writer is not None:
                self._writer.acquire()
            event = self._run()
        except (TrainingError, ConfigError, runs.RunError, runs.RunLocked) as e:
            event = self._failed(str(e))
        except OSError as e:  # writing the run folder (read-only, disk full, file too large)
            self._restore_good_weights()
            event = self._failed(self._write_error(e))
        except Exception as e:  # keep the worker alive and say what happened in one line
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            event = self._failed(f"training failed: {type(e).__name__}: {first[:300]}")
        finally:
            self._release_model()
            if self._writer is not None:
                self._writer.release()   # before the event: its listeners may start the next writer at once
        self.on_event(event)
        return event

    def _failed(self, message: str) -> Failed:
        if self._writer is not None and self._writer.locked:   # never into a run another writer holds
            self._write_state("failed", message)
        return Failed(message, len(self.history), self._run_dir_str())

    def _release_model(self) -> None:
        if self.model_pool is not None and self.model is not None:
            self.model_pool.release(self.model)
            self.model = None

    def _prepare_data(self) -> None:
        from latentlab import data as ld

        cfg = self.config
        if self.dataset is None:
            try:
                self.dataset = ld.load_folder(cfg.dataset, image_size=cfg.image_size, color=cfg.color,
                                              background=cfg.background, fit=cfg.fit)
            except ld.DatasetError as e:
                raise TrainingError(str(e)) from None
        n = len(self.data.images)
        if n < 2:
            raise TrainingError(f"{cfg.dataset}: at least 2 usable images are needed to train, found {n}")
        self.train_idx, self.val_idx = ld.split_indices(n, cfg.val_fraction, cfg.seed)  # fraction 0: no validation
        self.steps_per_epoch = math.ceil(len(self.train_idx) / cfg.batch_size)
        self.val_steps = math.ceil(len(self.val_idx) / cfg.batch_size) if len(self.val_idx) else None
        from latentlab.model import likelihood

        if self.likelihood_samples is None:
            self.likelihood_samples = likelihood.TRAINING_SAMPLES
        n = likelihood.training_images(len(self.train_idx), len(self.val_idx), self.likelihood_samples)
        self.likelihood_idx = np.sort(np.random.default_rng(cfg.seed).permutation(self.val_idx)[:n])

    def _make_datasets(self, initial_epoch: int) -> None:
        """Endless datasets with fixed steps per epoch: one iterator per run, not one per epoch. Epoch e is
        pass e of the training images, whose order depends on (seed, e) alone, and each batch carries its
        images' indices (the key of their noise): a resumed run sees what an uninterrupted one would have."""
        from latentlab import data as ld

        cfg = self.config
        images = self.data.images
        self.train_ds = ld.make_tf_dataset(images[self.train_idx], cfg.batch_size, shuffle=True, seed=cfg.seed,
                                           repeat=True, start_pass=initial_epoch, with_index=True)
        self.val_ds = (ld.make_tf_dataset(images[self.val_idx], cfg.batch_size, shuffle=False, repeat=True,
                                          with_index=True) if len(self.val_idx) else None)

    def _build_model(self) -> int:
        import contextlib

        with self.strategy.scope() if self.strategy is not None else contextlib.nullcontext():
            return self._build_model_in_scope()

    def _build_model_in_scope(self) -> int:
        import keras

        cfg = self.config
        initial_epoch = 0
        if self.resume_run:
            if self._writer is None:
                raise TrainingError("continuing a run needs its run folder")
            run = self._writer.reopen()   # a commit or a write a crash interrupted finished or undone
            self.history = list(run.history)
            initial_epoch = len(self.history)
            model = self._resumed_model(run)
            if tuple(model.image_shape) != tuple(self.data.images.shape[1:]):
                raise TrainingError(f"{self.run_dir}: the run's model takes {model.image_shape} images but the "
                                    f"dataset gives {self.data.images.shape[1:]}; use the run's image settings")
            if run.epoch_latents is not None and "z_mean" in run.epoch_latents:
                self._epoch_z = list(run.epoch_latents["z_mean"][:initial_epoch])
            model.optimizer.learning_rate = cfg.learning_rate
        else:
            if cfg.mixed_precision and self.device != "CPU":
                keras.mixed_precision.set_global_policy("mixed_float16")
            else:
                keras.mixed_precision.set_global_policy("float32")
            # without a pool: a new model, built and seeded by the same code
            model = (self.model_pool or ModelPool()).acquire(self.data.images.shape[1:], cfg)
        model.beta.assign(self._beta * kl_factor(cfg.kl_schedule, initial_epoch, cfg.warmup_epochs))
        floor, cap = kl_objective(cfg.kl_schedule, initial_epoch, cfg.warmup_epochs, cfg.free_bits, cfg.capacity)
        model.kl_free_bits.assign(floor)    # a pooled model may come from a run with another objective
        model.kl_capacity.assign(cap)
        if self.strategy is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)   # its slots mirrored too, in the strategy's scope
        self.model = model
        self._good_weights = model.get_weights() if initial_epoch else None
        return initial_epoch

    def _resumed_model(self, run: Run) -> Any:
        """The run's saved model. With a pool: a pooled model of the run's settings given the file's
        weights and optimizer state (the same numbers, nothing built or traced again); without one, or
        when the file does not fit them, the model loaded from the file."""
        if self.model_pool is not None:
            try:
                return self.model_pool.acquire_saved(self.data.images.shape[1:], run.config,
                                                     run.path / runs.MODEL_FILE)
            except ValueError:
                pass
        return run.load_model()

    def _run(self) -> Finished:
        cfg = self.config
        self.device = training_device()
        if self.strategy is not None:
            from latentlab.training.distribute import describe

            self.device = describe(self.strategy, self.device)
        self._prepare_data()
        if self._writer is not None:
            self._writer.start(cfg)   # the folder, and a new run's config.json
        initial_epoch = self._build_model()
        self._make_datasets(initial_epoch)
        if initial_epoch >= cfg.epochs:
            message = f"the run already has {initial_epoch} epochs; ask for more than {initial_epoch} to continue"
            return Finished(initial_epoch, False, message, self._run_dir_str(), list(self.history))
        if self.resume_run and self._writer is not None:
            self._writer.write_config(cfg)
        self.on_event(Started(self.device, cfg.epochs, initial_epoch, self.steps_per_epoch,
                              len(self.train_idx), len(self.val_idx), tuple(self.data.images.shape[1:]),
                              self._run_dir_str()))
        self._write_state("running", "")
        from latentlab.training.callbacks import NonFinite, StopRequested

        stopped = False
        try:
            try:
                self.model.fit(self.train_ds, validation_data=self.val_ds, epochs=cfg.epochs,
                               steps_per_epoch=self.steps_per_epoch, validation_steps=self.val_steps,
                               initial_epoch=initial_epoch, callbacks=self._callbacks(), verbose=0, shuffle=False)
            finally:
                for callback in self._closing:
                    callback.close()
        except StopRequested:
            stopped = True
        except NonFinite as e:
            self._restore_good_weights()
            done = len(self.history)
            kept = f"the weights of epoch {done} are kept" if done else "no epoch had finished, so nothing was saved"
            raise TrainingError(f"training stopped: the {e.what} became {e.where}; {kept}. "
                                f"Lower the learning rate (now {cfg.learning_rate:g}, try {cfg.learning_rate / 10:g}) "
                                f"or β (now {self._beta:g}) and train again") from None
        except _WriteFailed as e:
            self._restore_good_weights()
            raise TrainingError(str(e)) from None
        if stopped:
            self._restore_good_weights()
        done = len(self.history)
        if done and self.run_dir is not None:
            try:
                self._save_latents(progress=self.encode_progress)
            except OSError as e:
                raise TrainingError(self._write_error(e)) from None
        status = "stopped" if stopped else "finished"
        message = (f"stopped after {done} finished epoch{'s' if done != 1 else ''}" if stopped
                   else f"finished {done} epoch{'s' if done != 1 else ''}")
        self._write_state(status, message)
        return Finished(done, stopped, message, self._run_dir_str(), list(self.history))

    def _callbacks(self) -> list:
        """One concern each, in the order fit must call them (see latentlab.training.callbacks)."""
        from latentlab.training import callbacks as cb

        cfg = self.config
        schedule = cb.BetaSchedule(lambda: self._beta, cfg.kl_schedule, cfg.warmup_epochs, self.steps_per_epoch,
                                   free_bits=cfg.free_bits, capacity=cfg.capacity)
        # the scale a diverging loss is measured against: the last finished epoch, else the first batch
        guard = cb.DivergenceGuard(self.history[-1]["loss"] if self.history else None)
        events = cb.ProgressEvents(self.on_event, epochs=cfg.epochs, steps_per_epoch=self.steps_per_epoch,
                                   batch_size=cfg.batch_size, num_train=len(self.train_idx),
                                   beta_now=lambda: schedule.beta_now, snapshot_seconds=self.snapshot_seconds)
        out = [schedule, guard, events, cb.Control(self._stop, self._running)]
        if len(self.likelihood_idx) and self.likelihood_samples:
            out.append(cb.LikelihoodEstimate(self.data.images[self.likelihood_idx], self.likelihood_samples,
                                             seed=cfg.seed))
        out.append(cb.EpochCheckpoint(self._end_epoch))
        out += self._tensorboard_callbacks()   # after the checkpoint: only the epochs the run keeps are logged
        return out

    def _tensorboard_callbacks(self) -> list:
        if self.run_dir is None or not self.tensorboard:
            return []
        from latentlab.training import tensorboard_logs as tb

        log_dir = self.run_dir / tb.TENSORBOARD_DIR
        if self.resume_run and self.history and not log_dir.exists():
            tb.write_history(log_dir, self.history)   # a run from before event files: its curves so far
        d = self.model.latent_dim
        self._closing = [tb.EpochScalars(log_dir),
                         tb.EpochPictures(log_dir, lambda: self.model.kl_per_dim_tracker.result(),
                                          lambda: self._epoch_z[-1] if self._epoch_z else np.zeros((0, d)))]
        return list(self._closing)

    # -- pieces used by the callbacks ---------------------------------------------------------------
    def _run_dir_str(self) -> str | None:
        return str(self.run_dir) if self.run_dir else None

    def _restore_good_weights(self) -> None:
        if self._good_weights is not None and self.model is not None:
            self.model.set_weights(self._good_weights)

    def _write_error(self, e: OSError) -> str:
        return RunWriter.error_line(self.run_dir, e, len(self.history))   # the failed epoch is not in the history

    def _write_state(self, status: str, message: str) -> None:
        if self._writer is not None:
            self._writer.write_state(status, message, len(self.history), self.device)

    def encode(self, images: np.ndarray, batch_size: int = 1024,
               progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        return encode(self.model, images, batch_size=batch_size, progress=progress)

    def _save_latents(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Every image's code into the run folder's latents.npz."""
        if self._writer is None:
            return   # no run folder
        z_mean, z_log_var = self.encode(self.data.images, progress=progress)
        self._writer.save_latents(z_mean, z_log_var, self.dataset, self.val_idx)

    def _end_epoch(self, epoch: int, logs: dict, seconds: float) -> None:
        """Checkpoint a finished epoch and publish it (training thread)."""
        val_images = self.data.images[self.val_idx]
        z_mean, z_log_var = self.encode(val_images) if len(val_images) else (np.zeros((0, 1)), np.zeros((0, 1)))
        if len(z_mean):
            # into Keras' own logs dict, so the callbacks after this one (TensorBoard) log them too
            logs.update(rate_split_logs(z_mean, z_log_var, self.config.seed))
        logs = {k: float(v) for k, v in logs.items()}
        kl_dims = np.asarray(self.model.kl_per_dim_tracker.result(), dtype=np.float64)
        units = active_units(z_mean)
        beta = float(self.model.beta.numpy())
        row = {"epoch": epoch + 1, **logs, "beta": beta, "beta_target": self._beta, "active_units": units,
               "seconds": seconds}
        if "val_neg_log_likelihood" in logs:
            row.update(likelihood_samples=self.likelihood_samples, likelihood_images=len(self.likelihood_idx))
        self.history.append(row)
        self._epoch_z.append(z_mean.astype(np.float32))
        if self._writer is not None:
            try:
                # The new model is staged beside the old one and only takes its name after state.json
                # commits the epoch, so a kill at any moment leaves model.keras matching the history
                # (open_run rolls a committed staged model forward).
                decoder_weights = self.model.decoder.get_weights()
                every_image = len(self.data.images) <= self.latents_every_epoch_max
                self._writer.commit_epoch(self.model, self.history, self._epoch_z, self.val_idx, decoder_weights,
                                          self.device, self._save_latents if every_image else None)
            except OSError as e:
                self.history.pop()
                self._epoch_z.pop()
                raise _WriteFailed(self._write_error(e)) from None
        self._good_weights = self.model.get_weights()
        self.on_event(EpochEnd(epoch=epoch + 1, logs=logs, beta=beta, kl_per_dim=kl_dims, active_units=units,
                               val_z_mean=z_mean, val_z_log_var=z_log_var, val_indices=self.val_idx,
                               decoder_weights=(decoder_weights if self.run_dir is not None else self.model.decoder.get_weights()),
                               seconds=seconds,
                               history=list(self.history)))

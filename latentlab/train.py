"""Training: `Trainer` runs Keras ``fit`` on a `TrainConfig` and publishes plain-Python
events (no Qt) that the GUI and the CLI subscribe to.

It can be paused, resumed and stopped between batches, β can be changed between batches,
every finished epoch is checkpointed atomically into the run folder, and a non-finite
loss stops training with a clear message while the last good weights are kept.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentlab import runs
from latentlab.config import ConfigError, TrainConfig

__all__ = [
    "TrainConfig", "ConfigError", "Trainer", "TrainingError", "Started", "BatchEnd", "EpochEnd",
    "Finished", "Failed", "WeightsSnapshot", "kl_factor", "training_device", "ModelPool",
]


class TrainingError(RuntimeError):
    """Training cannot start or go on. ``str(e)`` is one clear line."""


# -- events (plain Python; numpy arrays, never tensors) -------------------------------------
@dataclass
class Started:
    device: str
    epochs: int
    initial_epoch: int
    steps_per_epoch: int
    num_train: int
    num_val: int
    image_shape: tuple
    run_dir: str | None


@dataclass
class BatchEnd:
    epoch: int            # 0-based index of the running epoch
    step: int             # batches done in this epoch (1-based)
    steps: int            # batches per epoch
    logs: dict            # running means of this epoch: loss, reconstruction_loss, kl_loss, neg_elbo
    beta: float           # the β used for this batch
    images_per_second: float
    eta_seconds: float    # until the last epoch ends


@dataclass
class EpochEnd:
    epoch: int                      # epochs finished so far (1-based)
    logs: dict                      # train and val_ metrics of this epoch
    beta: float
    kl_per_dim: np.ndarray          # mean KL of each latent dimension over the epoch's training batches
    active_units: int
    val_z_mean: np.ndarray
    val_z_log_var: np.ndarray
    val_indices: np.ndarray         # indices into the dataset of the validation images
    decoder_weights: list
    seconds: float
    history: list                   # all rows so far (dicts, as in history.csv)


@dataclass
class WeightsSnapshot:
    """The decoder's weights mid-epoch, so views can follow training between epochs."""
    epoch: int
    step: int
    decoder_weights: list


@dataclass
class Finished:
    epochs_done: int
    stopped: bool         # True when stopped by request before the last epoch
    message: str
    run_dir: str | None
    history: list = field(default_factory=list)


@dataclass
class Failed:
    message: str
    epochs_done: int
    run_dir: str | None


# -- helpers ----------------------------------------------------------------------------------
def kl_factor(schedule: str, t: float, period: int) -> float:
    """The fraction of β applied at (fractional) epoch ``t``.

    constant: 1; linear: warm-up from 0 to 1 over ``period`` epochs; cyclical: repeat that
    ramp every ``period`` epochs, rising over the first half of each cycle, then flat at 1
    (Fu et al., 2019)."""
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return min(1.0, t / period)
    if schedule == "cyclical":
        phase = (t % period) / period
        return min(1.0, phase / 0.5)
    raise ConfigError(f"kl schedule must be constant, linear or cyclical, not {schedule!r}")


def training_device() -> str:
    """'CPU' or 'GPU: <name>' for the device TensorFlow will train on."""
    from latentlab.tfquiet import import_tensorflow, quiet_stderr

    tf = import_tensorflow()
    with quiet_stderr():  # the CUDA probe logs an error line on machines without a GPU
        gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    try:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name") or gpus[0].name
    except Exception:
        name = gpus[0].name
    return f"GPU: {name}" + (f" (+{len(gpus) - 1} more)" if len(gpus) > 1 else "")


def active_units(z_mean: np.ndarray, threshold: float = 0.01) -> int:
    """Dimensions whose posterior mean varies across the data: Cov_x(E_q[z_u]) > threshold."""
    if len(z_mean) < 2:
        return 0
    return int(np.sum(np.var(z_mean, axis=0) > threshold))


class ModelPool:
    """Built, compiled VAEs kept for the next run of the same shape.

    TensorFlow/Keras keep ~20–30 MB for every model built and traced in a process, and neither
    garbage collection nor ``keras.backend.clear_session()`` gives it back (keras-team/keras#17458,
    tensorflow/tensorflow#61791). A process that trains many runs (the app, a β sweep) therefore hands
    its trainers one pool: a run whose image shape, latent size, likelihood and dtype policy match
    a finished run's gets that model back, re-initialised exactly as a new model with the run's seed
    (same weights, fresh optimizer state, the seed generator restarted), and nothing is traced again.

    A model is handed to one trainer at a time (``acquire``) and comes back with ``release``.
    Thread-safe; Keras is imported on first use, not here.
    """

    def __init__(self, max_idle: int = 2):
        self.max_idle = int(max_idle)
        self._idle: dict = {}          # key -> model, oldest first
        self._lock = threading.Lock()
        self.built = 0                 # models built by acquire (the rest were reused)
        self.reused = 0

    @staticmethod
    def key_of(image_shape, latent_dim: int, hidden: int, likelihood: str, gaussian_sigma: float,
               policy: str) -> tuple:
        return (tuple(int(v) for v in image_shape), int(latent_dim), int(hidden), str(likelihood),
                float(gaussian_sigma), str(policy))

    @staticmethod
    def model_key(model) -> tuple:
        import keras

        hidden = [layer.units for layer in model.encoder.layers if isinstance(layer, keras.layers.Dense)
                  and layer.name not in ("z_mean", "z_log_var")][-1]
        return ModelPool.key_of(model.image_shape, model.latent_dim, hidden, model.likelihood,
                                model.gaussian_sigma, model.dtype_policy.name)

    def acquire(self, image_shape, config: TrainConfig):
        """A compiled VAE for ``config`` initialised from ``config.seed``, built or reused.
        Call with the global dtype policy set as the run wants it."""
        import keras

        from latentlab.model import architecture, build_vae

        cfg = config
        hidden = architecture(image_shape, cfg.latent_dim, cfg.hidden_units)["dense"]
        key = self.key_of(image_shape, cfg.latent_dim, hidden, cfg.likelihood, cfg.gaussian_sigma,
                          keras.mixed_precision.global_policy().name)
        with self._lock:
            model = self._idle.pop(key, None)
        keras.utils.set_random_seed(cfg.seed)
        fresh = build_vae(image_shape, cfg.latent_dim, beta=cfg.beta, likelihood=cfg.likelihood, seed=cfg.seed,
                          gaussian_sigma=cfg.gaussian_sigma, hidden_units=cfg.hidden_units)
        if model is None:
            fresh.compile(optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate))
            with self._lock:
                self.built += 1
            return fresh
        # Reuse: the new model only lends its initial values (building variables traces nothing).
        model.set_weights(fresh.get_weights())
        model.seed_generator.state.assign(fresh.seed_generator.state.value)
        model.seed = cfg.seed
        opt = model.optimizer
        for v in opt.variables:
            v.assign(np.zeros(v.shape, dtype=v.dtype))
        opt.learning_rate = cfg.learning_rate
        for m in (*model.metrics, model.kl_per_dim_tracker):
            m.reset_state()
        with self._lock:
            self.reused += 1
        return model

    def release(self, model) -> None:
        """Give a model back once its run is over (any compiled VAE; the newest one per key is kept)."""
        if model is None or getattr(model, "optimizer", None) is None:
            return
        try:
            key = self.model_key(model)
        except Exception:  # not a latentlab VAE
            return
        with self._lock:
            self._idle.pop(key, None)
            self._idle[key] = model
            while len(self._idle) > self.max_idle:
                self._idle.pop(next(iter(self._idle)))

    def idle(self) -> int:
        with self._lock:
            return len(self._idle)


DIVERGENCE_FACTOR = 100.0  # a batch loss this many times its starting scale stops training


class _StopRequested(Exception):
    pass


class _NonFinite(Exception):
    def __init__(self, where: str, what: str):
        super().__init__(where)
        self.where, self.what = where, what


class _WriteFailed(Exception):
    pass


# -- the trainer --------------------------------------------------------------------------------
class Trainer:
    """Trains a VAE for ``config``; ``run()`` blocks (call it from a worker thread).

    ``on_event`` receives Started, BatchEnd, WeightsSnapshot, EpochEnd, then Finished or Failed,
    on the training thread. ``stop``/``pause``/``resume``/``set_beta`` may be called from any
    thread and take effect at the next batch boundary.
    """

    def __init__(self, config: TrainConfig, dataset=None, run_dir=None, on_event=None, *,
                 resume: bool = False, snapshot_seconds: float | None = None,
                 latents_every_epoch_max: int = 20_000, model_pool: ModelPool | None = None):
        self.config = config.validate()
        self.dataset = dataset
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.on_event = on_event or (lambda event: None)
        self.resume_run = resume
        self.snapshot_seconds = snapshot_seconds
        self.latents_every_epoch_max = latents_every_epoch_max
        self.model_pool = model_pool   # with a pool, the model goes back to it when run() returns
        self.model = None
        self.device = None
        self.history: list[dict] = []
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._beta = float(config.beta)
        self._lock = threading.Lock()
        self._good_weights = None
        self._epoch_z = []

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
        beta = float(beta)
        if not (math.isfinite(beta) and 0.0 <= beta <= 1000.0):
            raise ConfigError(f"beta must be a number between 0 and 1000, not {beta}")
        with self._lock:
            self._beta = beta
            self.config = self.config.replace(beta=beta)

    @property
    def beta(self) -> float:
        return self._beta

    # -- the run ------------------------------------------------------------------------------
    def run(self):
        """Train; returns the Finished or Failed event it also published.

        With a ``model_pool``, the model is handed back to the pool before the Finished/Failed event
        is published and ``self.model`` is None afterwards (read the model in event handlers)."""
        try:
            return self._run()
        except (TrainingError, ConfigError, runs.RunError) as e:
            event = Failed(str(e), len(self.history), str(self.run_dir) if self.run_dir else None)
        except OSError as e:  # writing the run folder (read-only, disk full, file too large)
            self._restore_good_weights()
            event = Failed(self._write_error(e), len(self.history), str(self.run_dir) if self.run_dir else None)
        except Exception as e:  # keep the worker alive and say what happened in one line
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            event = Failed(f"training failed: {type(e).__name__}: {first[:300]}", len(self.history),
                           str(self.run_dir) if self.run_dir else None)
        self._write_state("failed", event.message)
        self._release_model()
        self.on_event(event)
        return event

    def _release_model(self):
        if self.model_pool is not None and self.model is not None:
            self.model_pool.release(self.model)
            self.model = None

    def _prepare_data(self):
        from latentlab import data as ld

        cfg = self.config
        if self.dataset is None:
            try:
                self.dataset = ld.load_folder(cfg.dataset, image_size=cfg.image_size, color=cfg.color)
            except ld.DatasetError as e:
                raise TrainingError(str(e)) from None
        n = len(self.dataset.images)
        if n < 2:
            raise TrainingError(f"{cfg.dataset}: at least 2 usable images are needed to train, found {n}")
        self.train_idx, self.val_idx = ld.split_indices(n, cfg.val_fraction, cfg.seed)  # fraction 0: no validation
        images = self.dataset.images
        # endless datasets with fixed steps per epoch: one iterator per run, not one per epoch (data.py)
        self.train_ds = ld.make_tf_dataset(images[self.train_idx], cfg.batch_size, shuffle=True, seed=cfg.seed,
                                           repeat=True)
        self.val_ds = (ld.make_tf_dataset(images[self.val_idx], cfg.batch_size, shuffle=False, repeat=True)
                       if len(self.val_idx) else None)
        self.steps_per_epoch = math.ceil(len(self.train_idx) / cfg.batch_size)
        self.val_steps = math.ceil(len(self.val_idx) / cfg.batch_size) if len(self.val_idx) else None

    def _build_model(self):
        import keras

        cfg = self.config
        initial_epoch = 0
        if self.resume_run:
            run = runs.open_run(self.run_dir)
            runs.remove_stale_temp_files(self.run_dir)   # left by a crash mid-write
            self.history = list(run.history)
            initial_epoch = len(self.history)
            model = run.load_model()
            if tuple(model.image_shape) != tuple(self.dataset.images.shape[1:]):
                raise TrainingError(f"{self.run_dir}: the run's model takes {model.image_shape} images but the "
                                    f"dataset gives {self.dataset.images.shape[1:]}; use the run's image settings")
            if run.epoch_latents is not None and "z_mean" in run.epoch_latents:
                self._epoch_z = list(run.epoch_latents["z_mean"][:initial_epoch])
            model.optimizer.learning_rate = cfg.learning_rate
        else:
            if cfg.mixed_precision and self.device != "CPU":
                keras.mixed_precision.set_global_policy("mixed_float16")
            else:
                keras.mixed_precision.set_global_policy("float32")
            # without a pool: a new model, built and seeded by the same code
            model = (self.model_pool or ModelPool()).acquire(self.dataset.images.shape[1:], cfg)
        model.beta.assign(self._beta * kl_factor(cfg.kl_schedule, initial_epoch, cfg.warmup_epochs))
        self.model = model
        self._good_weights = model.get_weights() if initial_epoch else None
        return initial_epoch

    def _run(self):
        cfg = self.config
        self.device = training_device()
        self._prepare_data()
        if self.run_dir is not None:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                if not self.resume_run:
                    runs.write_config(self.run_dir, cfg)
            except OSError as e:
                raise TrainingError(f"cannot write the run folder {self.run_dir} ({e.strerror}); "
                                    "choose a folder you can write to") from None
        initial_epoch = self._build_model()
        if initial_epoch >= cfg.epochs:
            message = f"the run already has {initial_epoch} epochs; ask for more than {initial_epoch} to continue"
            event = Finished(initial_epoch, False, message, self._run_dir_str(), list(self.history))
            self._release_model()
            self.on_event(event)
            return event
        if self.resume_run:
            runs.write_config(self.run_dir, cfg)
        self.on_event(Started(self.device, cfg.epochs, initial_epoch, self.steps_per_epoch,
                              len(self.train_idx), len(self.val_idx), tuple(self.dataset.images.shape[1:]),
                              self._run_dir_str()))
        self._write_state("running", "")
        callback = _TrainerCallback(self, initial_epoch)
        stopped = False
        try:
            self.model.fit(self.train_ds, validation_data=self.val_ds, epochs=cfg.epochs,
                           steps_per_epoch=self.steps_per_epoch, validation_steps=self.val_steps,
                           initial_epoch=initial_epoch, callbacks=[callback], verbose=0, shuffle=False)
        except _StopRequested:
            stopped = True
        except _NonFinite as e:
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
                self._save_latents(all_images=True)
            except OSError as e:
                raise TrainingError(self._write_error(e)) from None
        status = "stopped" if stopped else "finished"
        message = (f"stopped after {done} finished epoch{'s' if done != 1 else ''}" if stopped
                   else f"finished {done} epochs")
        self._write_state(status, message)
        event = Finished(done, stopped, message, self._run_dir_str(), list(self.history))
        self._release_model()
        self.on_event(event)
        return event

    # -- pieces used by the callback ---------------------------------------------------------------
    def _run_dir_str(self):
        return str(self.run_dir) if self.run_dir else None

    def _restore_good_weights(self):
        if self._good_weights is not None and self.model is not None:
            self.model.set_weights(self._good_weights)

    def _write_error(self, e: OSError) -> str:
        done = len(self.history)  # the failed epoch is not in the history
        kept = f"the checkpoint of epoch {done} is intact" if done else "no epoch had been saved yet"
        return (f"cannot write the run folder {self.run_dir} ({e.strerror or e}); training stopped and "
                f"{kept}; free some space or choose another folder")

    def _write_state(self, status: str, message: str):
        if self.run_dir is None or not self.run_dir.is_dir():
            return
        try:
            runs.write_state(self.run_dir, status=status, message=message, epochs_done=len(self.history),
                             model_epoch=len(self.history), device=self.device or "", updated=time.time())
        except OSError:
            pass  # a read-only or full disk: the previous state file stays as it was

    def encode(self, images, batch_size: int = 1024):
        from latentlab.latent import encode

        return encode(self.model, images, batch_size=batch_size)

    def _save_latents(self, all_images: bool):
        ds = self.dataset
        if all_images:
            z_mean, z_log_var = self.encode(ds.images)
            split = np.zeros(len(ds.images), dtype=np.int8)
            split[self.val_idx] = 1
            runs.atomic_save_npz(
                self.run_dir / runs.LATENTS_FILE, z_mean=z_mean, z_log_var=z_log_var,
                labels=ds.labels, paths=np.asarray(ds.paths, dtype=str),
                class_names=np.asarray(ds.class_names, dtype=str), split=split)

    def _end_epoch(self, epoch: int, logs: dict, seconds: float):
        """Checkpoint a finished epoch and publish it (training thread)."""
        logs = {k: float(v) for k, v in logs.items()}
        for key in ("loss", "val_loss"):
            if key in logs and not math.isfinite(logs[key]):
                raise _NonFinite(f"{logs[key]} at the end of epoch {epoch + 1}", key.replace("_", " "))
        val_images = self.dataset.images[self.val_idx]
        z_mean, z_log_var = self.encode(val_images) if len(val_images) else (np.zeros((0, 1)), np.zeros((0, 1)))
        kl_dims = np.asarray(self.model.kl_per_dim_tracker.result(), dtype=np.float64)
        units = active_units(z_mean)
        beta = float(self.model.beta.numpy())
        row = {"epoch": epoch + 1, **logs, "beta": beta, "active_units": units, "seconds": seconds}
        self.history.append(row)
        self._epoch_z.append(z_mean.astype(np.float32))
        if self.run_dir is not None:
            try:
                # The new model is staged beside the old one and only takes its name after state.json
                # commits the epoch, so a kill at any moment leaves model.keras matching the history
                # (open_run rolls a committed staged model forward).
                runs.atomic_save_model(self.model, runs.staged_model_path(self.run_dir, len(self.history)))
                runs.atomic_write_text(self.run_dir / runs.HISTORY_FILE, runs.history_to_csv(self.history))
                runs.atomic_save_npz(self.run_dir / runs.EPOCH_LATENTS_FILE, z_mean=np.stack(self._epoch_z),
                                     indices=self.val_idx)
                if len(self.dataset.images) <= self.latents_every_epoch_max:
                    self._save_latents(all_images=True)
                runs.write_state(self.run_dir, status="running", message="", epochs_done=len(self.history),
                                 model_epoch=len(self.history), device=self.device, updated=time.time())
                runs.promote_staged_model(self.run_dir)
            except OSError as e:
                self.history.pop()
                self._epoch_z.pop()
                raise _WriteFailed(self._write_error(e)) from None
        self._good_weights = self.model.get_weights()
        self.on_event(EpochEnd(epoch + 1, logs, beta, kl_dims, units, z_mean, z_log_var, self.val_idx,
                               self.model.decoder.get_weights(), seconds, list(self.history)))


_CALLBACK_CLASS = None


def _TrainerCallback(trainer: "Trainer", initial_epoch: int):
    """A `_TrainerCallbackMixin` that is a `keras.callbacks.Callback` (made on first use, so that
    importing this module does not import Keras)."""
    global _CALLBACK_CLASS
    if _CALLBACK_CLASS is None:
        import keras

        _CALLBACK_CLASS = type("TrainerCallback", (_TrainerCallbackMixin, keras.callbacks.Callback), {})
    return _CALLBACK_CLASS(trainer, initial_epoch)


class _TrainerCallbackMixin:
    """Applies β and the schedule, pause/stop, the NaN guard and checkpoints, between batches."""

    def __init__(self, trainer: Trainer, initial_epoch: int):
        super().__init__()
        self.t = trainer
        self.initial_epoch = initial_epoch
        self.run_start = time.perf_counter()
        self.steps_done_total = 0
        # the scale a diverging loss is measured against: the last finished epoch, else the first batch
        self.reference = max(abs(trainer.history[-1]["loss"]), 1.0) if trainer.history else None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epoch_start = time.perf_counter()
        self.last_snapshot = self.epoch_start
        self.t.model.kl_per_dim_tracker.reset_state()

    def on_train_batch_begin(self, batch, logs=None):
        cfg = self.t.config
        steps = self.t.steps_per_epoch
        factor = kl_factor(cfg.kl_schedule, self.epoch + batch / steps, cfg.warmup_epochs)
        self.beta_now = self.t.beta * factor
        self.t.model.beta.assign(self.beta_now)

    def on_train_batch_end(self, batch, logs=None):
        t = self.t
        logs = {k: float(v) for k, v in (logs or {}).items()}
        loss = logs.get("loss", 0.0)
        if not math.isfinite(loss):
            raise _NonFinite(f"{loss} at epoch {self.epoch + 1}, batch {batch + 1}", "loss")
        if self.reference is None:
            self.reference = max(abs(loss), 1.0)
        elif abs(loss) > DIVERGENCE_FACTOR * self.reference:
            raise _NonFinite(f"{loss:.3g} at epoch {self.epoch + 1}, batch {batch + 1} (over "
                             f"{DIVERGENCE_FACTOR:g}× where it started: diverging, on its way to inf/nan)", "loss")
        self.steps_done_total += 1
        now = time.perf_counter()
        step = batch + 1
        steps = t.steps_per_epoch
        elapsed = now - self.epoch_start
        done_in_epoch = min(step * t.config.batch_size, len(t.train_idx))
        rate = done_in_epoch / elapsed if elapsed > 0 else 0.0
        per_step = (now - self.run_start) / self.steps_done_total
        remaining = (t.config.epochs - self.epoch - 1) * steps + (steps - step)
        t.on_event(BatchEnd(self.epoch, step, steps, logs, self.beta_now, rate, remaining * per_step))
        if t.snapshot_seconds and now - self.last_snapshot >= t.snapshot_seconds and step < steps:
            self.last_snapshot = now
            t.on_event(WeightsSnapshot(self.epoch, step, t.model.decoder.get_weights()))
        while not t._running.is_set():
            t._running.wait(0.05)
        if t._stop.is_set():
            raise _StopRequested()

    def on_epoch_end(self, epoch, logs=None):
        if self.t._stop.is_set():
            raise _StopRequested()  # the validation pass of an interrupted epoch is not a finished epoch
        self.t._end_epoch(epoch, logs or {}, time.perf_counter() - self.epoch_start)

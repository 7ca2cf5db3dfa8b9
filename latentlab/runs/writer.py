"""`RunWriter`: everything a training writes into its run folder, in one place of the runs wing.

The `latentlab.training.trainer.Trainer` holds one per run and calls it; the writer knows nothing of training
(it is given configs, history rows, models and arrays) and so the runs wing still never imports the training
wing. It keeps the folder's rules: one writer per run (`RunLock`, taken before the first write and released
after the last), every file written atomically (`latentlab.runs.folder`), and an epoch committed by
state.json only after its model, history and latents are on disk (the model is staged and takes its name
after the commit, so a kill at any moment leaves model.keras matching the history).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

# called through the module (runs.write_state, ...) so that a test's monkeypatch of folder's names reaches here
from latentlab.runs import folder as runs
from latentlab.runs.lock import RunLock

__all__ = ["RunWriteError", "RunWriter"]


class RunWriteError(runs.RunError):
    """The run folder cannot be taken or written. ``str(e)`` is one line: which folder, why, what to do."""


class RunWriter:
    """Writes one run folder ``run_dir``: a new run (``resume`` False: the folder is made and must not
    hold a run yet) or the continuation of one (``resume`` True)."""

    def __init__(self, run_dir: str | Path, resume: bool = False):
        self.run_dir = Path(run_dir)
        self.resume = bool(resume)
        self._lock: RunLock | None = None

    # -- the lock: one writer per run ---------------------------------------------------------------------
    @property
    def locked(self) -> bool:
        """Whether this writer holds the folder's lock (nothing is written into a run another writer holds)."""
        return self._lock is not None

    def acquire(self) -> None:
        """Take the run folder's lock (a new run's folder is made here) before anything is written.
        Nothing to lock when a run to continue has no folder (`open_run` then says it is missing)."""
        if self.resume and not self.run_dir.is_dir():
            return
        try:
            lock = RunLock(self.run_dir, create=not self.resume).acquire()
        except OSError as e:
            raise RunWriteError(f"cannot write the run folder {self.run_dir} ({e.strerror or e}); "
                                "choose a folder you can write to") from None
        if not self.resume and any((self.run_dir / f).exists() for f in
                                   (runs.CONFIG_FILE, runs.STATE_FILE, runs.MODEL_FILE, runs.HISTORY_FILE)):
            lock.release()
            raise RunWriteError(f"{self.run_dir} already holds a run: continue it (latentlab train --resume "
                                f"{self.run_dir}) or choose a new folder")
        self._lock = lock

    def release(self) -> None:
        """Let the next writer in (before the run's last event: its listeners may start one at once)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    # -- the run's start -------------------------------------------------------------------------------
    def start(self, config: Any) -> None:
        """Make the folder and, for a new run, write its config.json."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if not self.resume:
                runs.write_config(self.run_dir, config)
        except OSError as e:
            raise RunWriteError(f"cannot write the run folder {self.run_dir} ({e.strerror}); "
                                "choose a folder you can write to") from None

    def reopen(self) -> runs.Run:
        """The run to continue, after finishing or undoing a commit a crash interrupted and removing the
        temporary files a crash mid-write left."""
        runs.promote_staged_model(self.run_dir)
        run = runs.open_run(self.run_dir)
        runs.remove_stale_temp_files(self.run_dir)
        return run

    def write_config(self, config: Any) -> None:
        runs.write_config(self.run_dir, config)

    # -- as it trains --------------------------------------------------------------------------------
    def write_state(self, status: str, message: str, epochs_done: int, device: str | None) -> None:
        """state.json, when the folder is a run folder (it has its config.json); a read-only or full disk
        leaves the previous state file as it was."""
        if not (self.run_dir / runs.CONFIG_FILE).is_file():
            return
        try:
            runs.write_state(self.run_dir, status=status, message=message, epochs_done=epochs_done,
                             model_epoch=epochs_done, device=device or "", updated=time.time())
        except OSError:
            pass

    def save_latents(self, z_mean: np.ndarray, z_log_var: np.ndarray, dataset: Any, val_idx: np.ndarray) -> None:
        """latents.npz: every image's code, with its label, path, class names and split (1: validation)."""
        split = np.zeros(len(dataset.images), dtype=np.int8)
        split[val_idx] = 1
        runs.atomic_save_npz(
            self.run_dir / runs.LATENTS_FILE, z_mean=z_mean, z_log_var=z_log_var,
            labels=dataset.labels, paths=np.asarray(dataset.paths, dtype=str),
            class_names=np.asarray(dataset.class_names, dtype=str), split=split)

    def commit_epoch(self, model: Any, history: list[dict], epoch_z: list[np.ndarray], val_idx: np.ndarray,
                     decoder_weights: list, device: str | None, save_latents: Callable[[], None] | None) -> None:
        """Checkpoint the epoch that ``history`` ends with: the model (staged), history.csv, the validation
        codes of every epoch (epochs.npz), the decoder's weights for followers, latents.npz through
        ``save_latents`` (None: not this epoch), then state.json commits it and the staged model takes its
        name. OSError when the folder cannot be written (the last commit stays whole)."""
        epochs = len(history)
        runs.atomic_save_model(model, runs.staged_model_path(self.run_dir, epochs))
        runs.atomic_write_text(self.run_dir / runs.HISTORY_FILE, runs.history_to_csv(history))
        runs.atomic_save_npz(self.run_dir / runs.EPOCH_LATENTS_FILE, z_mean=np.stack(epoch_z), indices=val_idx)
        runs.write_decoder_weights(self.run_dir, decoder_weights, epochs)   # for followers
        if save_latents is not None:
            save_latents()
        runs.write_state(self.run_dir, status="running", message="", epochs_done=epochs,
                         model_epoch=epochs, device=device, updated=time.time())
        runs.promote_staged_model(self.run_dir)

    @staticmethod
    def error_line(run_dir: str | Path | None, e: OSError, epochs_done: int) -> str:
        """The one line for a write into ``run_dir`` that failed after ``epochs_done`` committed epochs (the
        failed epoch is not among them)."""
        kept = f"the checkpoint of epoch {epochs_done} is intact" if epochs_done else "no epoch had been saved yet"
        return (f"cannot write the run folder {run_dir} ({e.strerror or e}); training stopped and "
                f"{kept}; free some space or choose another folder")

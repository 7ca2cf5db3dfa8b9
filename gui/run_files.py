"""`RunFiles`: the run folder the window shows, and what is done with it as files — opening one (its
model loads on a worker thread), saving a copy, exporting the decoded grid and the latents.

It talks to the window through signals: ``opened`` with a `latentlab.runs.view.RunView` once a run is
loaded (the window then shows it), ``openFailed``, ``awaiting`` (path, `latentlab.runs.follow.FollowUpdate`)
instead when the folder is not a run yet because its writer has committed no epoch (`gui.run_follower`
follows it from there), and one-line ``status`` / ``problem`` messages (a problem goes to the window's
banner). The file work itself is latentlab's (runs.copy_run,
runs.write_latents_csv).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QFileDialog

from gui.exporting import ask_path
from gui.image_panel import save_png
from gui.threads import Task
from gui.workers import start_load
from latentlab.runs import folder as runs

__all__ = ["RunFiles"]


def open_run_view(path: str, job):
    """A run folder and its decoder (TensorFlow), read on a `gui.workers.Load`'s thread."""
    from latentlab.runs.view import open_run_view

    return open_run_view(path)


class RunFiles(QObject):
    opened = Signal(object)      # RunView
    openFailed = Signal(str)
    awaiting = Signal(str, object)   # a folder a writer holds that has no committed epoch yet
    status = Signal(str)
    problem = Signal(str)

    def __init__(self, window, runs_root: Path):
        super().__init__(window)
        self.window = window                  # the parent of this object's dialogs
        self.runs_root = Path(runs_root)
        self.run_dir: Path | None = None      # the run shown (trained here or opened)
        self.latents = None                   # an opened run's latents.npz (to match a dataset loaded later)
        self.task = Task("latentlab-open-run", self)

    @property
    def loading(self) -> bool:
        return self.task.running

    def set_training_run(self, run_dir: Path) -> None:
        self.run_dir, self.latents = Path(run_dir), None

    @property
    def continuable(self) -> bool:
        """The run shown has a finished epoch to train on from."""
        return self.run_dir is not None and (self.run_dir / runs.MODEL_FILE).is_file()

    def continue_config(self, settings: dict, dataset):
        """The TrainConfig and history for training the run shown further on ``dataset`` with the form's
        ``settings`` (its epochs in all, β, batch size and learning rate; the model's own settings stay
        the run's), as `latentlab train --resume` does. ConfigError or RunError (one line) when it cannot."""
        from latentlab.config import ConfigError
        from latentlab.runs.continuing import continue_config

        if self.run_dir is None:
            raise ConfigError("there is no run to continue: train one or open one (Ctrl+Shift+O)")
        run = runs.open_run(self.run_dir)
        h, w, _ = dataset.image_shape
        cfg = continue_config(run, settings, dataset_root=dataset.root, image_hw=(h, w))
        return cfg, list(run.history)

    # -- opening -------------------------------------------------------------------------------------
    @Slot()
    def ask_open(self) -> None:
        start = str(self.runs_root if self.runs_root.is_dir() else Path.home())
        folder = QFileDialog.getExistingDirectory(self.window, "Open a run folder", start)
        if folder:
            self.open(folder)

    def open(self, path) -> bool:
        """Start loading a run folder on a worker thread (False when one is loading already)."""
        if self.task.running:
            return False
        self.status.emit(f"Opening run {path}…")
        start_load(self.task, open_run_view, [path], self._on_loaded, self._on_failed, expected=(runs.RunError,),
                   doing="cannot open the run")
        return True

    @Slot(object)
    def _on_loaded(self, view) -> None:
        self.run_dir, self.latents = Path(view.run.path), view.run.latents
        self.opened.emit(view)

    @Slot(str, str)
    def _on_failed(self, path: str, message: str) -> None:
        from latentlab.runs.follow import being_written

        update = being_written(path)
        if update is not None:   # not a run yet: its writer has committed no (further) epoch
            self.status.emit(f"{path}: {update.describe()}")
            self.awaiting.emit(path, update)
            return
        self.problem.emit(message)
        self.openFailed.emit(message)

    # -- saving and exporting ------------------------------------------------------------------------------
    @Slot()
    def ask_save(self) -> None:
        if self.run_dir is None:
            self.status.emit("There is no run to save yet: train first.")
            return
        dest, _ = QFileDialog.getSaveFileName(self.window, "Save the run as a new folder",
                                              str(Path.home() / self.run_dir.name), "Run folder (*)")
        if dest:
            self.save_to(dest)

    def save_to(self, dest) -> bool:
        """Copy the run folder to ``dest`` (a new or empty folder)."""
        if self.run_dir is None or not self.run_dir.is_dir():
            self.problem.emit("There is no run folder to save yet: train for at least one epoch.")
            return False
        try:
            runs.copy_run(self.run_dir, dest)
        except runs.RunError as e:
            self.problem.emit(f"{e}.")
            return False
        self.status.emit(f"Saved the run to {dest}.")
        return True

    def ask_export_grid(self, mosaic, tile_shape=None) -> None:
        if mosaic is None:
            self.status.emit("No decoded grid yet.")
            return
        path = ask_path(self.window, "Export the decoded grid", "latent-grid.png", "png")
        if path:
            self.export_grid(mosaic, path, tile_shape)

    def export_grid(self, mosaic, path, tile_shape=None, scale: int | None = None) -> bool:
        """The grid's mosaic as a PNG, each pixel enlarged ``scale`` times (default: tiles of ``tile_shape``
        (h, w) to at least ``MIN_TILE_PX`` a side, as ``latentlab export --grid``)."""
        if mosaic is None:
            return False
        if scale is None:
            from latentlab.model.latent import export_scale

            scale = export_scale(*tile_shape) if tile_shape is not None else 1
        ok = save_png(mosaic, str(path), scale)
        self.status.emit(f"Saved the grid to {path}." if ok else f"Could not write {path}.")
        return ok

    def ask_export_latents(self, points) -> None:
        path = ask_path(self.window, "Export latents", "latents.csv", "csv")
        if path:
            self.export_latents(path, points)

    def export_latents(self, path, points=None) -> bool:
        """Every image's z_mean and z_log_var from the run's latents.npz; without one, ``points()`` (the
        map's points as a latents dict, or None when it shows none)."""
        lat = runs.read_latents(self.run_dir) if self.run_dir is not None else None
        if lat is None and points is not None:
            lat = points()
        if lat is None:
            self.status.emit("No latents to export yet.")
            return False
        try:
            runs.write_latents_csv(path, lat)
        except OSError as e:
            self.problem.emit(f"cannot write {path} ({e.strerror or e})")
            return False
        self.status.emit(f"Saved {len(lat['z_mean']):,} latents to {path}.")
        return True

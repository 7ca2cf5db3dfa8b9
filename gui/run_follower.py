"""`RunFollowing`: the window follows the run it shows while another process writes it.

When a run opens (File → Open run, ``latentlab --run``, drag and drop) and `latentlab.runs.follow` says a
live writer holds it (``latentlab train`` in another terminal, a sweep, a script with
`latentlab.keras.RunCallback`), a timer polls the folder once a second (a few ``stat`` calls: see the
engine) and:

- the loss curves grow by each committed epoch at once (history.csv is small: read on the GUI thread),
  β changes get their marker, and the trade-off views (loss terms, the rate–distortion plane) move;
- the map's decoder and points follow: each new epoch's model and codes are read on a worker thread
  (`latentlab.runs.follow.load_followed_epoch`: TensorFlow, never on the GUI thread), then given to the
  map as a training's weights are;
- a label in the status bar says "following: written by PID on HOST, epoch 12 of 40, last update 3 s
  ago", then "finished" / "stopped" / "the writer died at epoch N; the run resumes with train --resume".

A folder opened before its writer committed a first epoch (no model yet, or no config.json yet) cannot be
shown as a run: `gui.run_files.RunFiles` says so with ``awaiting`` instead of a problem, and the label says
"following: written by PID on HOST, waiting for the first epoch" until the first epoch commits; then the
run opens as any run does, and is followed from there.

When following ends (or the opened run had no writer), the run's lock is watched (`LockWatch`: one
``stat`` a second): a ``latentlab train --resume`` in another process that takes it again is followed
again, in place.

Nothing is written into the followed folder. Following and watching end when another run opens, a
training starts here, or the window closes.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QLabel

from gui.threads import Task
from gui.workers import start_load

__all__ = ["RunFollowing", "FolderFollowing"]


def load_epoch(path: str, job, model_key=None):
    """A followed run's newest committed epoch (decoder weights, points), read on a `gui.workers.Load`'s
    thread; a read that raced a write fails, and the next poll reads again."""
    from latentlab.runs.follow import load_followed_epoch

    return load_followed_epoch(path, model_key)


class _Following(QObject):
    """What both followers have: the window, a hidden label in its status bar (object name ``label_name``)
    that says what is followed (``text``), and a timer that calls ``poll`` every ``interval_ms`` (by default
    the engine's poll interval, once a second)."""

    def __init__(self, window, label_name: str, interval_ms: int | None):
        super().__init__(window)
        from latentlab.runs.follow import POLL_SECONDS

        self.window = window
        self.label = QLabel("")
        self.label.setObjectName(label_name)
        self.label.hide()
        window.statusBar().addPermanentWidget(self.label)
        self.timer = QTimer(self)
        self.timer.setInterval(int(interval_ms if interval_ms is not None else POLL_SECONDS * 1000))
        self.timer.timeout.connect(self.poll)

    @property
    def text(self) -> str:
        return self.label.text()


class RunFollowing(_Following):
    """Follows the window's opened run while another process writes it (see the module's text)."""

    updated = Signal(object)        # latentlab.runs.follow.FollowUpdate, every poll that saw something new
    epochShown = Signal(int)        # the map now shows this epoch's decoder and points
    ended = Signal(str)             # the FollowState's value: finished, stopped, failed, died

    def __init__(self, window, interval_ms: int | None = None):
        super().__init__(window, "followLabel", interval_ms)
        self.task = Task("latentlab-follow-run", self)
        self.task.finished.connect(self._on_load_finished)
        self.follower = None
        self.path: Path | None = None
        self.update = None              # the last FollowUpdate
        self.shown_epoch = 0            # the epoch whose decoder and points the map shows
        self.watch = None               # latentlab.runs.follow.LockWatch of the shown run while no one writes it
        self.awaiting: int | None = None   # opened too early: the run opens once more epochs than this commit
        self._model_key = None
        self._ended = False

    @property
    def following(self) -> bool:
        return self.follower is not None and self.timer.isActive()

    @property
    def watching(self) -> bool:
        """The shown run's lock is watched for a writer that takes it again."""
        return self.watch is not None and self.timer.isActive()

    # -- starting and stopping -------------------------------------------------------------------------
    @Slot(object)
    def on_run_opened(self, view) -> None:
        """A run was opened in the window: follow it if a writer holds it (or say that its writer died);
        else watch its lock for a writer that resumes it."""
        from latentlab.runs.follow import FollowState, RunFollower

        self.stop()
        self._ended = False
        self.path, self._model_key = Path(view.run.path), view.model_key
        self.shown_epoch = len(view.run.history)
        follower = RunFollower(view.run.path)
        update = follower.poll()
        if update.state is FollowState.WRITING or update.state is FollowState.DIED:
            self.follower, self.update = follower, update
            self._show(update)
            self.label.show()
            for row in follower.history[len(view.run.history):]:   # committed since the window read the run
                self.window.loss_plot.add_epoch(row)
            if update.state is FollowState.WRITING:
                self._start(update)
            else:
                self._watch_lock()
        else:
            self._watch_lock()

    @Slot(str, object)
    def await_writer(self, path: str, update) -> None:
        """A folder that could not be opened as a run yet while a writer holds it (opened before its first
        epoch): say who writes it, and open it as a run once an epoch more is committed."""
        from latentlab.runs.follow import RunFollower

        self.stop()
        self._ended = False
        self.path, self._model_key, self.shown_epoch = Path(path), None, 0
        self.follower = RunFollower(Path(path))
        self.update = self.follower.poll()
        self.awaiting = update.epochs_done
        self._show(self.update)
        self.label.show()
        self.timer.start()

    def _start(self, update) -> None:
        from gui.map.map_controller import GRID_DUTY_TRAINING

        self.window.map_view.renderer.set_duty(GRID_DUTY_TRAINING)   # the writer may share this machine
        self.window.loss_plot.planned_epochs = update.epochs_planned or self.window.loss_plot.planned_epochs
        self.timer.start()
        self._catch_up(update)

    def _watch_lock(self) -> None:
        """Watch the shown run's lock (one stat a poll) for a writer that takes it again."""
        from latentlab.runs.follow import LockWatch

        self.follower = None
        if self.path is None or not self.path.is_dir():
            return
        self.watch = LockWatch(self.path)
        self.timer.start()
        if self.watch.poll():   # taken again already
            self._follow_again()

    def _follow_again(self) -> None:
        """The watched run's lock was taken again (``train --resume`` elsewhere): follow it in place."""
        from latentlab.runs.follow import FollowState, RunFollower

        self.watch = None
        follower = RunFollower(self.path)
        update = follower.poll()
        if update.state is not FollowState.WRITING:
            self._watch_lock()
            return
        self._ended = False
        self.follower, self.update = follower, update
        self.window.loss_plot.set_history(follower.history)
        self._show(update)
        self.label.show()
        self.window.statusBar().showMessage(f"{self.path.name}: written again; " + update.describe())
        self._start(update)

    def stop(self) -> None:
        """Stop following and watching (the label goes); an epoch being read is let finish and dropped."""
        if self.follower is not None and self.timer.isActive() and self.window.training.state == "idle":
            self.window.map_view.renderer.set_duty(None)
        self.timer.stop()
        self.follower = self.path = self.update = self.watch = self.awaiting = None
        self.label.hide()
        self.label.setText("")

    def shutdown(self) -> None:
        self.stop()
        self.task.stop_and_wait(None)

    # -- polling ------------------------------------------------------------------------------------------
    @Slot()
    def poll(self) -> None:
        if self.follower is None and self.watch is None:
            return
        if self.window.training.state != "idle":
            self.stop()     # this window trains now: it shows its own run
            return
        if self.watch is not None:
            if self.watch.poll():
                self._follow_again()
            return
        update = self.follower.poll()
        self.update = update
        if self.awaiting is not None:
            self._show(update)
            if update.epochs_done > self.awaiting and self.path is not None:
                if self.window.open_run_path(self.path):   # a run now: it opens, then is followed
                    self.timer.stop()                      # (on_run_opened), or is awaited again
            elif update.state.final:
                self._end(update)
            return
        if update.changed:
            self._grow_curves(update)
            self.updated.emit(update)
        self._show(update)
        self._catch_up(update)
        if update.state.final and self.shown_epoch >= update.epochs_done and not self.task.running:
            self._end(update)

    def _grow_curves(self, update) -> None:
        plot = self.window.loss_plot
        if update.reset:
            plot.set_history(list(update.new_rows))
        else:
            for row in update.new_rows:
                plot.add_epoch(row)
            for change in update.beta_changes:
                plot.add_beta_marker(change.epoch - 1, change.new)
        if update.epochs_planned:
            plot.planned_epochs = max(update.epochs_planned, update.epochs_done)
        plot.redraw()

    def _show(self, update) -> None:
        self.label.setText(update.describe(time.time()))

    def _catch_up(self, update) -> None:
        """Read the newest committed epoch's model and codes when the map shows an older one."""
        if update.epochs_done > self.shown_epoch and not self.task.running and self.path is not None:
            # a read that fails (it raced a write) is read again at the next poll
            start_load(self.task, partial(load_epoch, model_key=self._model_key), [self.path], self._on_loaded)

    @Slot(object)
    def _on_loaded(self, epoch) -> None:
        if self.path is None or Path(epoch.view.run.path) != self.path:
            return   # following ended (or moved to another run) while it was read
        win, view = self.window, epoch.view
        if view.model_key != self._model_key:     # not expected of one run; show it as an opened run
            self._model_key = view.model_key
            win.map_view.show_model(view.model_key, view.decoder_weights)
        else:
            win.map_view.set_weights(view.decoder_weights)
        if epoch.points is not None:
            z, labels, names, idx = epoch.points
            ds = win.map_view.points_dataset
            if labels is None and ds is not None and len(idx) and int(idx.max()) < ds.num_images:
                labels, names = ds.labels[idx], list(ds.class_names)
            win.latent_map.set_points(z, labels, names, idx, z_log_var=epoch.z_log_var)   # with their q(z|x)
        win.tradeoff.show_run(view.run, opened=True)
        self.shown_epoch = epoch.epochs_done
        self.epochShown.emit(self.shown_epoch)

    @Slot(object)
    def _on_load_finished(self, worker) -> None:
        if self.follower is not None and self.update is not None:
            self._catch_up(self.update)    # more epochs came while this one was read
            if self.update.state.final and self.shown_epoch >= self.update.epochs_done and not self.task.running:
                self._end(self.update)

    def _end(self, update) -> None:
        if self._ended:
            return
        self._ended = True
        self.timer.stop()
        if self.window.training.state == "idle":
            self.window.map_view.renderer.set_duty(None)
        self._show(update)
        self.window.statusBar().showMessage(update.describe())
        self.awaiting = None
        self._watch_lock()     # a resume elsewhere is followed again
        self.ended.emit(update.state.value)


class FolderFollowing(_Following):
    """Follows a sweep (or lesson) folder that the comparison view opened while runs in it are being
    written: each run's curve moves on the rate–distortion plane as its epochs commit, its entry in the
    comparison (map, curves, decoder) is loaded again, runs that start later join, and a label in the status
    bar says how many runs are being written, finished, or died. It stops when every run has ended."""

    updated = Signal(object)    # {path: FollowUpdate}, every poll
    ended = Signal()

    def __init__(self, window, interval_ms: int | None = None):
        super().__init__(window, "folderFollowLabel", interval_ms)
        self.comparison = window.tradeoff.comparison
        self.rd_plot = window.tradeoff.rd_plot
        self.follower = None
        self.loaded: dict[str, int] = {}     # path → the epoch the comparison's entry was loaded at
        self.pending: set[str] = set()
        self.updates: dict = {}
        self.comparison.folderOpened.connect(self.follow)
        self.comparison.runLoaded.connect(self._on_compared)   # after the plane took the entry's history

    @Slot(str, float, object)
    def _on_compared(self, path: str, beta: float, history) -> None:
        """A compared entry read a while ago must not move the plane back: the newest history stays."""
        f = self.follower.followers.get(path) if self.follower is not None else None
        if f is not None and len(f.history) > len(history):
            self.rd_plot.add_run(path, beta, f.history)

    @property
    def following(self) -> bool:
        return self.timer.isActive()

    @Slot(str)
    def follow(self, folder: str) -> None:
        from latentlab.runs.follow import FolderFollower

        self.stop()
        follower = FolderFollower(folder)
        updates = follower.poll()
        if not any(not u.state.final for u in updates.values()):
            return    # every run in it has ended: the comparison shows them as they are
        self.follower, self.updates = follower, updates
        self.loaded = {path: u.epochs_done for path, u in updates.items()}   # the comparison loads these now
        self.label.setText(follower.describe(updates))
        self.label.show()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self.follower = None
        self.pending = set()
        self.label.hide()

    @Slot()
    def poll(self) -> None:
        if self.follower is None:
            return
        updates = self.follower.poll()
        self.updates = updates
        for path, u in updates.items():
            f = self.follower.followers[path]
            if u.changed and f.history and f.beta is not None:
                self.rd_plot.add_run(path, f.beta, f.history)      # the plane moves at once
            if u.epochs_done >= 1 and u.epochs_done > self.loaded.get(path, 0):
                self.pending.add(path)
        if self.pending and not self.comparison.is_loading:
            paths = sorted(self.pending)
            if self.comparison.open_runs(paths, reload=True):
                for path in paths:
                    self.loaded[path] = updates[path].epochs_done
                self.pending = set()
        self.label.setText(self.follower.describe(updates))
        self.updated.emit(updates)
        if all(u.state.final for u in updates.values()) and not self.pending and not self.comparison.is_loading:
            self.timer.stop()
            self.ended.emit()

"""Following a run folder that another process writes: `RunFollower` polls it cheaply and says what
changed since the last look — new epochs, β changes, who writes it, and the end (finished, stopped,
failed, or the writer died).

A poll is a few ``os.stat`` calls (state.json, history.csv, config.json, the lock file) and, while a
writer is expected, one look at the lock (`latentlab.runs.lock.is_locked`: open read-only, a shared
``flock`` tried and let go at once). Files are read only when their stat changed. Nothing relies on a
file-system notification API, so a run folder on a shared (NFS) or synced file system is followed the
same way, and nothing is ever written into the followed folder.

Who writes the run comes from the lock and the state, never from guessing:

- the lock file holds its holder's note (pid, host, command, start time) while it is held; a writer that
  ends cleanly empties it, one that is killed leaves it (`latentlab.runs.lock`);
- state.json is the commit record of every epoch (status ``running``, then ``finished`` / ``stopped`` /
  ``failed`` when the writer ends).

So: state ``running`` and the lock held → WRITING; state final → FINISHED / STOPPED / FAILED; state
``running`` (or no state yet) and the lock free → DIED (the writer is gone without saying it ended). On
the writer's own host its pid is checked too. A lock taken on another host is visible only where the
shared file system passes locks on (NFS does); where it is not (a synced folder), a run whose note names
another host and whose state is ``running`` is reported as WRITING with ``lock_visible`` False.

What a window needs to show an epoch is committed by the writer with each epoch, before state.json:
decoder_weights.npz (the decoder's weights, read in milliseconds; model.keras, staged and renamed once
state.json commits it, is the fallback, a second of Keras loading), epochs.npz (z_mean of the validation
images after every epoch, with their indices) and latents.npz (every image's z_mean and z_log_var, for
datasets up to 20,000 images: the map's prior and posterior layers take their z_log_var from it);
`load_followed_epoch` reads them without repairing anything.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from latentlab.runs import folder as runs
from latentlab.runs.lock import LOCK_FILE, is_locked

__all__ = ["FollowState", "Writer", "BetaChange", "FollowUpdate", "RunFollower", "FolderFollower", "FollowedEpoch",
           "LockWatch", "being_written", "load_followed_epoch", "POLL_SECONDS"]

POLL_SECONDS = 1.0   # how often a window looks (a poll costs tens of microseconds)


class FollowState(Enum):
    WAITING = "waiting"      # no state and no writer yet (a folder being created, or an empty one)
    WRITING = "writing"      # a live writer holds the lock
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    DIED = "died"            # the lock is free but the state is not final: the writer was killed

    @property
    def final(self) -> bool:
        return self not in (FollowState.WAITING, FollowState.WRITING)


@dataclass(frozen=True)
class Writer:
    pid: int | None
    host: str
    command: str = ""
    started: float | None = None

    @property
    def local(self) -> bool:
        return self.host == socket.gethostname()


@dataclass(frozen=True)
class BetaChange:
    epoch: int          # the first epoch (1-based) trained with the new β
    old: float
    new: float


@dataclass(frozen=True)
class FollowUpdate:
    """What one poll saw. ``new_rows``/``beta_changes``: since the previous poll; ``reset``: the history
    got shorter (the folder holds another run now): ``new_rows`` is then the whole history."""

    state: FollowState
    writer: Writer | None
    epochs_done: int
    epochs_planned: int | None
    last_update: float | None       # wall-clock time of the writer's last commit
    message: str = ""
    new_rows: tuple = ()
    beta_changes: tuple = ()
    reset: bool = False
    lock_visible: bool = True

    @property
    def changed(self) -> bool:
        return bool(self.new_rows) or self.reset

    def describe(self, now: float | None = None) -> str:
        """One line for a status bar: "following: written by PID on HOST, epoch 12 of 40, last update 3 s
        ago", or how it ended."""
        now = time.time() if now is None else now
        n = self.epochs_done
        if self.state is FollowState.WRITING:
            w = self.writer
            who = f"written by {w.pid} on {w.host}" if w is not None and w.pid is not None else "written by another process"
            of = f" of {self.epochs_planned}" if self.epochs_planned else ""
            age = f", last update {_age(now - self.last_update)} ago" if self.last_update else ""
            lock = " (its lock is not visible from here)" if not self.lock_visible else ""
            if n == 0:   # opened before its first epoch was committed
                return f"following: {who}, waiting for the first epoch{lock}"
            return f"following: {who}, epoch {n}{of}{age}{lock}"
        if self.state is FollowState.FINISHED:
            return f"finished: {n} epoch{'s' if n != 1 else ''}"
        if self.state is FollowState.STOPPED:
            return f"stopped after {n} epoch{'s' if n != 1 else ''}"
        if self.state is FollowState.FAILED:
            return f"failed at epoch {n}" + (f": {self.message}" if self.message else "")
        if self.state is FollowState.DIED:
            return f"the writer died at epoch {n}; the run resumes with train --resume"
        return "waiting for a writer"


def _age(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h"


def _signature(path: Path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True    # someone else's process: alive
    return True


@dataclass
class RunFollower:
    """Polls one run folder (`poll`); keeps what it last read. Never writes anything."""

    path: Path
    _sigs: dict = field(default_factory=dict)
    _state: dict = field(default_factory=dict)
    _rows: list = field(default_factory=list)
    _config: dict = field(default_factory=dict)
    _writer: Writer | None = None
    _last: FollowUpdate | None = None

    def __post_init__(self):
        self.path = Path(self.path)

    @property
    def history(self) -> list[dict]:
        return list(self._rows)

    @property
    def last(self) -> FollowUpdate | None:
        return self._last

    @property
    def beta(self) -> float | None:
        """The run's β as config.json gives it (None before it is read)."""
        return _float(self._config.get("beta"))

    def poll(self) -> FollowUpdate:
        p = self.path
        sigs = {name: _signature(p / name) for name in (runs.STATE_FILE, runs.HISTORY_FILE, runs.CONFIG_FILE,
                                                         LOCK_FILE)}
        changed = {name for name, sig in sigs.items() if self._sigs.get(name) != sig}
        self._sigs = sigs
        if runs.CONFIG_FILE in changed:
            self._config = _read_json(p / runs.CONFIG_FILE) or self._config
        if runs.STATE_FILE in changed:
            written = _read_json(p / runs.STATE_FILE)
            if written is not None or sigs[runs.STATE_FILE] is None:
                self._state = written or {}
        if LOCK_FILE in changed:
            self._writer = _read_writer(p / LOCK_FILE)
        new_rows: tuple = ()
        beta_changes: tuple = ()
        reset = False
        done = self._state.get("epochs_done")
        done = done if isinstance(done, int) else None
        if (runs.STATE_FILE in changed or runs.HISTORY_FILE in changed) and sigs[runs.HISTORY_FILE] is not None:
            old = self._rows
            try:
                rows = runs.read_history(p / runs.HISTORY_FILE)
            except (OSError, runs.RunError):
                rows = old     # a torn read of a file being replaced: the next poll reads it again
            if done is not None:
                rows = rows[:done]   # state.json commits; a row written before its commit waits
            if len(rows) < len(old) or rows[:len(old)] != old:
                reset, new_rows = True, tuple(rows)
            else:
                new_rows = tuple(rows[len(old):])
            self._rows = rows
            beta_changes = self._beta_changes(old if not reset else [], list(new_rows))
        state, lock_visible = self._judge()
        update = FollowUpdate(
            state=state, writer=self._writer if state is FollowState.WRITING or state is FollowState.DIED else None,
            epochs_done=len(self._rows), epochs_planned=_int(self._config.get("epochs")),
            last_update=_float(self._state.get("updated")) or _mtime(p / runs.STATE_FILE),
            message=str(self._state.get("message", "")), new_rows=new_rows, beta_changes=beta_changes,
            reset=reset, lock_visible=lock_visible)
        self._last = update
        return update

    def _judge(self) -> tuple[FollowState, bool]:
        status = self._state.get("status")
        final = {"finished": FollowState.FINISHED, "stopped": FollowState.STOPPED, "failed": FollowState.FAILED}
        locked = is_locked(self.path)
        w = self._writer
        if locked:
            return FollowState.WRITING, True    # a final state with the lock held: a resume about to start
        if status in final:
            return final[status], True
        if w is None or w.pid is None:
            # no note: nobody ever wrote (WAITING), or a writer emptied it without committing an end (DIED)
            return (FollowState.DIED if status == "running" else FollowState.WAITING), True
        if w.local:   # the lock is the operating system's word here: its holder is gone
            return FollowState.DIED, True
        # another host's writer whose lock this file system does not pass on: its state is all there is
        if status == "running" or status is None:
            return FollowState.WRITING, False
        return FollowState.DIED, True

    def _beta_changes(self, old: list[dict], new: list[dict]) -> tuple:
        """β changes in the rows just read. The history's ``beta`` is the β applied (schedule included):
        with a constant schedule every change is one the user made (the app's β slider, a resume with another
        --beta); with a warm-up or cyclical schedule it moves every epoch by design, and none is reported."""
        if self._config.get("kl_schedule", "constant") != "constant":
            return ()
        out = []
        prev = old[-1].get("beta") if old else None
        for row in new:
            b = row.get("beta")
            if b is not None and prev is not None and not np.isclose(b, prev, rtol=1e-6, atol=0):
                out.append(BetaChange(int(row.get("epoch", 0)), float(prev), float(b)))
            prev = b if b is not None else prev
        return tuple(out)


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _read_writer(path: Path) -> Writer | None:
    note = _read_json(path)
    if not note or not isinstance(note.get("pid"), int):
        return None
    return Writer(pid=note["pid"], host=str(note.get("host", "")), command=str(note.get("command", "")),
                  started=_float(note.get("started")))


def _int(v):
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _float(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def being_written(path) -> FollowUpdate | None:
    """The `FollowUpdate` of a folder that a writer holds now (its lock, or a running state that another
    host's note names), else None: what a window that cannot open a run yet (no committed epoch, no
    config.json yet) asks before it says the folder is not a run."""
    if not Path(path).is_dir():
        return None
    update = RunFollower(Path(path)).poll()
    return update if update.state is FollowState.WRITING else None


class LockWatch:
    """Watches the lock of a run that no one writes now (a finished run shown in a window) for a writer
    that takes it again (``latentlab train --resume`` in another process). A `poll` is one ``os.stat`` of
    the lock file; only when its inode, size or time changed (a writer that takes the lock writes its note
    into it) is the lock itself looked at (`RunFollower`'s judgement). True when a writer holds the run."""

    def __init__(self, path):
        self.path = Path(path)
        self._sig = object()     # the first poll looks

    def poll(self) -> bool:
        sig = _signature(self.path / LOCK_FILE)
        if sig == self._sig:
            return False
        self._sig = sig
        return sig is not None and being_written(self.path) is not None


# -- what a window shows of the newest epoch ------------------------------------------------------------
@dataclass
class FollowedEpoch:
    """The newest committed epoch of a followed run: its `latentlab.runs.view.RunView` (run, decoder
    weights) and the map's points of that epoch (z_mean, labels or None, class names, dataset indices)."""

    view: Any   # latentlab.runs.view.RunView
    points: tuple | None
    z_log_var: np.ndarray | None = None   # the points' posteriors' log-variances, when latents.npz is that epoch's

    @property
    def epochs_done(self) -> int:
        return len(self.view.run.history)


def load_followed_epoch(path, model_key=None) -> FollowedEpoch:
    """Read a followed run's newest committed epoch without writing into the folder (call off the GUI
    thread). With the ``model_key`` the window shows (a `latentlab.model.key.ModelKey`) and the writer's
    decoder_weights.npz of that epoch, no Keras model is loaded (milliseconds); else the weights come from
    model.keras (`run_view.open_run_view`, TensorFlow, about a second). The points are that epoch's frame of
    epochs.npz (the validation images' z_mean), labelled from latents.npz; else latents.npz's own."""
    from latentlab.runs.view import RunView, map_points, open_run_view

    view = None
    if model_key is not None:
        run = runs.open_run(path, repair=False)
        weights = runs.read_decoder_weights(path, len(run.history))
        if weights is not None:
            view = RunView(run, weights, model_key.image_shape, model_key.latent_dim, model_key.likelihood,
                           keras_file=model_key.keras_file)
    if view is None:
        view = open_run_view(path, repair=False)
    run = view.run
    done = len(run.history)
    points = None
    frames = run.epoch_latents
    if frames is not None and "z_mean" in frames and done and len(frames["z_mean"]) >= done:
        z = np.asarray(frames["z_mean"][done - 1], np.float32)
        idx = np.asarray(frames.get("indices", np.arange(len(z))))
        lat = run.latents or {}
        labels = None
        if "labels" in lat and len(idx) and int(idx.max()) < len(lat["labels"]):
            labels = np.asarray(lat["labels"])[idx]
        names = [str(n) for n in lat.get("class_names", [])]
        if len(z) == len(idx):
            points = (z, labels, names, idx)
    if points is None:
        points = map_points(run.latents)
    return FollowedEpoch(view, points, _log_var_of(run.latents, points))


def _log_var_of(lat, points):
    """The z_log_var of ``points`` from latents.npz when it holds the same epoch's codes (the writer commits
    it each epoch for folders up to 20,000 images; one epoch newer when it raced the read): else None."""
    if points is None or not lat or "z_log_var" not in lat or "z_mean" not in lat:
        return None
    z, idx = points[0], np.asarray(points[3])
    if not len(idx) or int(idx.max()) >= len(lat["z_mean"]):
        return None
    if not np.allclose(np.asarray(lat["z_mean"])[idx], z, rtol=0, atol=1e-5):
        return None
    return np.asarray(lat["z_log_var"], np.float32)[idx]


# -- a sweep or lesson folder: each run in it ------------------------------------------------------------
class FolderFollower:
    """Follows every run of a sweep folder (its run subfolders, as `latentlab.runs.folder.find_runs` finds them; a
    lesson folder's runs of its first seed are such subfolders too), taking in runs that appear while it is
    followed (a sweep starts them one after another). `poll` returns each run's `FollowUpdate` by path."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.followers: dict[str, RunFollower] = {}

    def poll(self) -> dict[str, FollowUpdate]:
        for path in runs.find_runs(self.folder):
            if path not in self.followers:
                self.followers[path] = RunFollower(Path(path))
        return {path: f.poll() for path, f in self.followers.items()}

    @staticmethod
    def describe(updates: dict[str, FollowUpdate]) -> str:
        """One line: "following 4 runs: 1 being written (beta-1: epoch 3 of 10), 2 finished, 1 died"."""
        by: dict = {}
        for path, u in updates.items():
            by.setdefault(u.state, []).append((Path(path).name, u))
        parts = []
        writing = by.get(FollowState.WRITING, [])
        if writing:
            now = ", ".join(f"{name}: epoch {u.epochs_done}" + (f" of {u.epochs_planned}" if u.epochs_planned else "")
                            for name, u in writing[:3])
            parts.append(f"{len(writing)} being written ({now}{', …' if len(writing) > 3 else ''})")
        for state, word in ((FollowState.FINISHED, "finished"), (FollowState.STOPPED, "stopped"),
                            (FollowState.FAILED, "failed"), (FollowState.DIED, "whose writer died"),
                            (FollowState.WAITING, "waiting")):
            if by.get(state):
                parts.append(f"{len(by[state])} {word}")
        n = len(updates)
        return f"following {n} run{'s' if n != 1 else ''}: " + ", ".join(parts) if parts else "no runs yet"

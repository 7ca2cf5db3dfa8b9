"""How the app's process lives and ends, apart from the window: a watchdog that makes a frozen window
report itself, and Ctrl+C / SIGTERM from the terminal handled like *Stop* then *Quit*.

`Watchdog`: the GUI thread re-arms `faulthandler.dump_traceback_later` every second. If the GUI thread does
not answer for ``seconds`` (10 by default), faulthandler's own C thread, which needs neither the GIL nor
the GUI thread, writes the Python stack of every thread to the log (stderr and ``log_path``). When the GUI
thread answers again, ``stalled`` is emitted with how long it was away and where the stacks went.

`TerminalSignals`: SIGINT and SIGTERM set a flag in a Python handler (never a KeyboardInterrupt raised
wherever the GUI thread happened to be) and wake Qt's event loop through `signal.set_wakeup_fd`, so they are
handled at once even while Qt sits in C++. The first one asks the window to stop training after the current
batch (the last finished epoch stays in the run folder, state.json says "stopped") and to close; the process
then exits with 128 + the signal's number (130, 143). A second one while that happens quits at once with
the same code: the run folder keeps its last committed epoch (every file is written atomically) and opens
and resumes like any other.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import socket
import sys
import time
from pathlib import Path

from PySide6.QtCore import QObject, QSocketNotifier, QTimer, Signal, Slot

__all__ = ["Watchdog", "TerminalSignals", "default_log_path", "close_for_signal", "stalled_message"]


def stalled_message(seconds: float, where) -> str:
    """The banner's line when the Watchdog found the window unanswering for ``seconds``."""
    return (f"The window did not answer for {seconds:.0f} s; every thread's stack was written to "
            f"{where} (please report it).")


def close_for_signal(window) -> None:
    """Ctrl+C or SIGTERM from the terminal: close any dialog, and close ``window`` without asking (its
    closeEvent stops what trains after its current batch, keeping the last finished epoch)."""
    from PySide6.QtWidgets import QApplication

    for w in QApplication.topLevelWidgets():
        if w is not window and w.isVisible() and (w.isModal() or w.isWindow()) and hasattr(w, "reject"):
            w.reject()
    window.statusBar().showMessage("Stopping…")
    window.close_without_asking()


def default_log_path() -> Path:
    """Where the app's log goes: $LATENTLAB_LOG_DIR, else the user's cache folder."""
    root = os.environ.get("LATENTLAB_LOG_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "latentlab")
    return Path(root) / "latentlab-app.log"


class Watchdog(QObject):
    """Dumps every thread's Python stack when the GUI thread has not answered for ``seconds``."""

    stalled = Signal(float, str)    # seconds the GUI thread was away, where the stacks were written

    def __init__(self, seconds: float = 10.0, log_path: Path | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.seconds = float(seconds)
        self.log_path = Path(log_path) if log_path is not None else default_log_path()
        self._log = None
        self._last = time.monotonic()
        self._timer = QTimer(self)
        self._timer.setInterval(min(1000, max(50, int(self.seconds * 250))))
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "a", buffering=1, encoding="utf-8")
        except OSError as e:
            print(f"latentlab: the watchdog writes to stderr only ({self.log_path}: {e.strerror or e})",
                  file=sys.stderr)
            self._log = None
        self._arm()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        faulthandler.cancel_dump_traceback_later()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _arm(self) -> None:
        out = self._log if self._log is not None else sys.stderr
        if self._log is not None:   # the header is written ahead: the dump itself runs without Python
            self._log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: if stacks follow, "
                            f"the window did not answer for {self.seconds:g} s ---\n")
        faulthandler.dump_traceback_later(self.seconds, repeat=False, file=out, exit=False)

    @Slot()
    def _tick(self) -> None:
        now = time.monotonic()
        away = now - self._last
        self._last = now
        faulthandler.cancel_dump_traceback_later()
        if away >= self.seconds:
            where = str(self.log_path) if self._log is not None else "stderr"
            print(f"latentlab: the window did not answer for {away:.0f} s; every thread's stack is in {where}",
                  file=sys.stderr, flush=True)
            self.stalled.emit(away, where)
        self._arm()


class TerminalSignals(QObject):
    """SIGINT / SIGTERM as Stop then Quit (see the module's doc). ``on_first(signum)`` is called on the GUI
    thread for the first signal; a second signal exits the process at once with 128 + its number."""

    def __init__(self, on_first, parent: QObject | None = None):
        super().__init__(parent)
        self.on_first = on_first
        self.signum: int | None = None
        self._old = {}
        self._reader, self._writer = socket.socketpair()
        for s in (self._reader, self._writer):
            s.setblocking(False)
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Read, self)
        self._notifier.activated.connect(self._wake)
        self._old_fd = None

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + int(self.signum)

    def install(self) -> None:
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handler)

    def uninstall(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
        if self._old_fd is not None:
            signal.set_wakeup_fd(self._old_fd)
            self._old_fd = None
        self._notifier.setEnabled(False)

    def _handler(self, signum, frame) -> None:   # Python's handler: runs on the main thread
        if self.signum is not None:               # the second one: quit at once
            name = signal.Signals(signum).name
            print(f"latentlab: {name} again: quitting at once; the run folder keeps its last finished epoch "
                  "(continue it with `latentlab train --resume RUN`)", file=sys.stderr, flush=True)
            os._exit(128 + int(signum))
        self.signum = int(signum)
        QTimer.singleShot(0, self._first)

    @Slot()
    def _wake(self) -> None:
        try:
            while self._reader.recv(64):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    @Slot()
    def _first(self) -> None:
        name = signal.Signals(self.signum).name
        print(f"latentlab: {name}: stopping after the current batch and quitting (again to quit at once)",
              file=sys.stderr, flush=True)
        self.on_first(self.signum)

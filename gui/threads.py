"""Threads for work that must not run on the GUI thread, started one way and torn down one way.

Every background thread of the app is a Python thread (`threading.Thread`), never a `QThread`. The
reason is TensorFlow: its pybind11 bindings keep their own record of each thread's Python thread state,
and a QThread gets a new Python thread state from PySide for every queued slot call (made before the call,
deleted after it). Once TensorFlow had remembered one of those, a later call on the same thread took the
GIL under the old state while the thread already held it under the new one, and the process stopped for
good (issue 23: fresh start → Open run → the grid thread traced its decoder and the window froze; gdb
showed the GIL held by "latentlab-grid", which waited for the GIL itself). A Python thread keeps one
thread state from its start to its end, so TensorFlow's record always matches.

A worker is a QObject with a ``run`` slot (`gui.workers`). It stays on the GUI thread
(Qt affinity); its ``run`` is called on the worker thread, and the signals it emits there are queued to
receivers living on the GUI thread (Qt decides at emit time). Rules kept here: no widget is touched from
a worker, results are numpy arrays and plain Python (never tensors), receivers are slots of QObjects on
the GUI thread (a lambda runs on the emitting thread). Every thread started through :func:`start_thread`
is tracked so that the app (and the tests) can check that none is left running.

`Task` is the one handle an owner keeps for such a worker (the shape of Orange's ``ConcurrentMixin``):
``start(worker)``, ``running``, ``stop_and_wait()``; when the thread has ended and been joined,
``finished(worker)`` reaches the owner on the GUI thread, so the owner may start the next job there.
"""

from __future__ import annotations

import queue
import sys
import threading
import weakref

from PySide6.QtCore import QObject, QTimer, Signal, Slot

__all__ = ["WorkerThread", "start_thread", "running_threads", "wait_until_idle", "Task"]

_THREADS: "weakref.WeakSet[WorkerThread]" = weakref.WeakSet()
_STOP = object()


class WorkerThread(QObject):
    """A Python thread for a worker, with the few QThread-like calls the app uses (``objectName``,
    ``isRunning``, ``wait``, ``quit``). With a ``target`` it runs that once; without, it serves calls
    posted with ``call(fn, *args)`` in order until ``quit()`` (a worker living as long as the window).
    ``finished`` is emitted from the thread as its last act: queued, it reaches GUI-thread receivers
    after the thread's work is over."""

    finished = Signal()

    def __init__(self, name: str, target=None):
        super().__init__()
        self.setObjectName(name)
        self._target = target
        self._calls: queue.SimpleQueue | None = None if target is not None else queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name)

    def start(self) -> None:
        _THREADS.add(self)
        self._thread.start()

    def isRunning(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout_ms: int | None = None) -> bool:
        """Join the thread (up to ``timeout_ms``); True when it has ended (or never started)."""
        if self._thread.ident is None:
            return True
        self._thread.join(None if timeout_ms is None else timeout_ms / 1000)
        return not self._thread.is_alive()

    def call(self, fn, *args) -> None:
        """Run ``fn(*args)`` on the thread, after the calls posted before it (a serving thread only)."""
        if self._calls is None:
            raise RuntimeError(f"{self.objectName()}: runs one job and takes no calls")
        self._calls.put((fn, args))

    def quit(self) -> None:
        """A serving thread ends after the calls already posted; a one-job thread ends with its job."""
        if self._calls is not None:
            self._calls.put(_STOP)

    def _main(self) -> None:
        try:
            if self._target is not None:
                self._guarded(self._target, ())
            else:
                while True:
                    item = self._calls.get()
                    if item is _STOP:
                        break
                    self._guarded(*item)
        finally:
            self.finished.emit()

    @staticmethod
    def _guarded(fn, args) -> None:
        try:
            fn(*args)
        except BaseException:   # as a slot's exception would: reported, and the thread goes on or ends
            sys.excepthook(*sys.exc_info())


def running_threads() -> list[WorkerThread]:
    """Threads started by the app that are still running."""
    return [t for t in list(_THREADS) if t.isRunning()]


def start_thread(worker: QObject, name: str, run_slot=None, on_finished=None) -> WorkerThread:
    """Start a thread for ``worker``. With ``run_slot`` (a method of the worker), the thread runs it once
    and ends; without, it serves ``thread.call(fn, *args)`` until ``quit()``. ``on_finished`` is connected
    to the thread's ``finished`` before it starts: a job that ends at once (a cached load on a busy
    machine) may finish before the line after ``start()`` runs, and a signal emitted then reaches nobody.
    The caller keeps references to both until the thread has finished and been ``wait()``-ed."""
    thread = WorkerThread(name, run_slot)
    thread._worker = worker           # kept alive as long as its thread
    if on_finished is not None:
        thread.finished.connect(on_finished)
    thread.start()
    return thread


def wait_until_idle(predicate, timeout_ms: int, callback, interval_ms: int = 100) -> None:
    """Call ``callback()`` on the GUI thread once ``predicate()`` is true or after ``timeout_ms``."""
    remaining = [timeout_ms]

    def check():
        if predicate() or remaining[0] <= 0:
            callback()
            return
        remaining[0] -= interval_ms
        QTimer.singleShot(interval_ms, check)

    QTimer.singleShot(0, check)


class Task(QObject):
    """One background job at a time for its owner: a worker on a thread of its own.

    ``start(worker)`` runs ``worker.run`` on a new thread named ``name``; ``finished`` is emitted
    with the worker on the GUI thread once the thread has ended and been waited for (``running`` is
    False by then). ``stop_and_wait(how)`` asks the worker to end (calls its method ``how``, e.g.
    "stop" or "cancel"), blocks until the thread ends and emits ``finished`` at once: what a window's
    close does."""

    finished = Signal(object)   # the worker whose job ended

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.worker = None
        self.thread: WorkerThread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None

    def start(self, worker: QObject) -> QObject:
        if self.thread is not None:
            raise RuntimeError(f"{self.name}: a job is running already")
        self.worker = worker
        self.thread = start_thread(worker, self.name, worker.run, self._on_thread_finished)
        return worker

    def request(self, how: str) -> None:
        """Call the running worker's method ``how`` (thread-safe ones: stop, cancel, pause...)."""
        if self.worker is not None:
            getattr(self.worker, how)()

    def stop_and_wait(self, how: str | None = "stop") -> None:
        if self.thread is None:
            return
        if how:
            self.request(how)
        self.thread.wait()
        self._on_thread_finished()

    @Slot()
    def _on_thread_finished(self) -> None:
        sender = self.sender()
        if self.thread is None or (sender is not None and sender is not self.thread):
            return   # already reported by stop_and_wait (or an earlier job's thread, queued late)
        self.thread.wait()
        worker, self.thread, self.worker = self.worker, None, None
        self.finished.emit(worker)

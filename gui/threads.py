"""Threads for work that must not run on the GUI thread, started one way and torn down one way.

A worker is a QObject with a ``run`` slot that emits ``done`` when it ends; it moves to a QThread of
its own. Results come back through ``Signal(object)`` carrying numpy arrays and plain Python (never
tensors), received by slots of objects that live on the GUI thread. Rules kept here: no widget is
touched from a worker, no ``QThread.terminate()``; every thread started through :func:`start_thread`
is tracked so that the app (and the tests) can check that none is left running.

`Task` is the one handle an owner keeps for such a worker (the shape of Orange's ``ConcurrentMixin``):
``start(worker)``, ``running``, ``stop_and_wait()``; when the thread has ended and been waited for,
``finished(worker)`` reaches the owner on the GUI thread, so the owner may start the next job there.
"""

from __future__ import annotations

import weakref

from PySide6.QtCore import QObject, QThread, QTimer, Qt, Signal, Slot

__all__ = ["start_thread", "running_threads", "wait_until_idle", "Task"]

_THREADS: "weakref.WeakSet[QThread]" = weakref.WeakSet()


def running_threads() -> list[QThread]:
    """Threads started by the app that are still running."""
    out = []
    for t in list(_THREADS):
        try:
            if t.isRunning():
                out.append(t)
        except RuntimeError:  # the C++ object is gone
            pass
    return out


def start_thread(worker: QObject, name: str, run_slot=None, on_finished=None) -> QThread:
    """Move ``worker`` to a new QThread and start it. With ``run_slot`` (a slot of the worker),
    the thread runs it once and quits when the worker emits ``done``; without, the thread keeps
    an event loop for queued calls until ``quit()``. ``on_finished`` is connected to the thread's
    ``finished`` before it starts: a job that ends at once (a cached load on a busy machine) may
    finish before the line after ``start()`` runs, and a signal emitted then reaches nobody.
    The caller keeps references to both until the thread has finished and been ``wait()``-ed
    (then dropping them is safe)."""
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    if on_finished is not None:
        thread.finished.connect(on_finished)
    if run_slot is not None:
        thread.started.connect(run_slot)
        # direct: quit() is thread-safe, and a queued call would wait for a GUI thread that may be
        # blocked in thread.wait() (closing the window during training)
        worker.done.connect(thread.quit, Qt.DirectConnection)
    _THREADS.add(thread)
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
        self.thread: QThread | None = None

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
        if self.thread is None:
            return   # already reported by stop_and_wait
        self.thread.wait()
        worker, self.thread, self.worker = self.worker, None, None
        self.finished.emit(worker)

"""The app's background jobs, each a QObject run once on its own thread by a `gui.threads.Task`: `Load`
for whatever is read and handed back (a dataset folder, a run, a decoder file, a followed run's newest
epoch, the runs to compare), `TrainingWorker` and `SweepWorker` for the long jobs that are steered while
they run (stop, pause, β).

Each has a ``run`` slot (its `Task` says when the thread has ended); results leave through ``Signal(object)``
carrying numpy arrays and plain Python, never tensors. The work itself is the engine's (latentlab);
these only carry it to a thread and its outcome back as signals. Control methods (stop, pause,
cancel) may be called from any thread. The grid decoder, which lives as long as the window, is in
`gui.map.grid_renderer`.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal, Slot

from latentlab.messages import one_line

__all__ = ["Load", "start_load", "TrainingWorker", "SweepWorker"]


class Load(QObject):
    """Something read in the background and handed back: the app's loaders (a dataset folder, a run, a
    decoder file, a followed run's newest epoch, the runs to compare), each run once by a `gui.threads.Task`.

    On the thread ``load(item, job)`` is called for each of ``items`` in turn (one item for most loads; the
    runs to compare are several): what it returns leaves as ``loaded``; what it raises as ``failed`` with
    the item and one line: the exception's own text for the ``expected`` kinds (the engine's one-line errors),
    ``"ITEM: DOING (Type: first line)"`` for any other when ``doing`` is given, else its first line. A load
    may report ``job.progress`` (done, total) and ask ``job.cancelled()``: after ``cancel()`` (from any
    thread) the items left are skipped and a result that comes back anyway is "loading cancelled"."""

    progress = Signal(int, int)     # done, total
    loaded = Signal(object)         # what load returned
    failed = Signal(str, str)       # the item, one line

    def __init__(self, load, items, expected: tuple = (), doing: str | None = None):
        super().__init__()
        self._load, self.items = load, [str(i) for i in items]
        self._expected, self._doing = expected, doing
        self._cancel = threading.Event()

    def cancel(self) -> None:  # any thread
        self._cancel.set()

    stop = cancel

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @Slot()
    def run(self) -> None:
        for item in self.items:
            if self.cancelled():
                break
            try:
                result = self._load(item, self)
            except self._expected as e:
                self.failed.emit(item, str(e))
            except Exception as e:  # a bug, an OS error, a file replaced under the read: still one line
                line = one_line(e, with_type=self._doing is not None)
                self.failed.emit(item, f"{item}: {self._doing} ({line})" if self._doing else line)
            else:
                if self.cancelled():
                    self.failed.emit(item, "loading cancelled")
                else:
                    self.loaded.emit(result)


def start_load(task, load, items, loaded, failed=None, progress=None, **how) -> Load:
    """Run ``Load(load, items, **how)`` on ``task`` (a `gui.threads.Task`) with its ``loaded``, ``failed`` and
    ``progress`` connected to the given slots (of QObjects on the GUI thread) before its thread starts."""
    worker = Load(load, items, **how)
    for signal, slot in ((worker.loaded, loaded), (worker.failed, failed), (worker.progress, progress)):
        if slot is not None:
            signal.connect(slot)
    return task.start(worker)


class TrainingWorker(QObject):
    """Owns a `latentlab.training.trainer.Trainer` and runs it on its thread. Every engine event is
    re-emitted as ``event`` (queued to the GUI thread). With a ``decoder_key``, the window's
    decoders for that model are built here first (``decodersBuilt``): TensorFlow must not build
    graphs on two threads at once."""

    event = Signal(object)
    decodersBuilt = Signal(object, object, object)   # key, grid Decoder, point Decoder

    def __init__(self, config, dataset, run_dir, snapshot_seconds: float | None = 2.0, decoder_key=None,
                 resume: bool = False, strategy: str = "default"):
        super().__init__()
        from latentlab.runtime import model_pool
        from latentlab.training.trainer import Trainer

        self.decoder_key = decoder_key
        self.strategy = strategy      # "mirrored": every visible GPU (made on the training thread)
        # Trainer.__init__ only validates and stores: no TensorFlow on the GUI thread.
        self.trainer = Trainer(config, dataset, run_dir, self.event.emit, snapshot_seconds=snapshot_seconds,
                               model_pool=model_pool(), resume=resume)

    @Slot()
    def run(self) -> None:
        from latentlab.events import Failed
        from latentlab.runtime import build_decoders, import_tensorflow

        try:
            import_tensorflow()
            if self.strategy != "default":
                from latentlab.training.distribute import StrategyError, make_strategy

                try:
                    self.trainer.strategy, self.trainer.model_pool = make_strategy(self.strategy), None
                except StrategyError as e:
                    self.event.emit(Failed(str(e), 0, None))
                    return
            if self.decoder_key is not None and not self.trainer.stop_requested:
                try:
                    grid, point = build_decoders(self.decoder_key)
                except Exception as e:
                    self.event.emit(Failed(f"cannot build the decoder: {one_line(e, with_type=True)}", 0, None))
                    return
                self.decodersBuilt.emit(self.decoder_key, grid, point)
            self.trainer.run()
        except BaseException as e:  # Trainer.run reports its own failures; this is a last resort
            self.event.emit(Failed(f"training failed: {one_line(e, with_type=True)}", 0, None))

    def stop(self) -> None:
        self.trainer.stop()

    def pause(self) -> None:
        self.trainer.pause()

    def resume(self) -> None:
        self.trainer.resume()

    def set_beta(self, beta: float) -> None:
        self.trainer.set_beta(beta)


class SweepWorker(QObject):
    """Owns a `latentlab.sweeps.sweep.Sweep` (here), with ``cluster`` ({"address": ...} or {"workers": N}) a
    `latentlab.sweeps.cluster.ClusterSweep`, or with a ``design`` a `latentlab.sweeps.lesson.Lesson` (the sweep designed
    to show the trade-off beyond noise, here); re-emits every engine event (SweepStep, then the Trainer's
    events per run; on a cluster, RunEvents) as ``event``, and a lesson's summary (a dict) as ``summary``
    at the end. ``stop()`` may be called from any thread."""

    event = Signal(object)
    summary = Signal(object)

    def __init__(self, config, betas, out_dir, dataset, cluster: dict | None = None, design=None):
        super().__init__()
        self.cluster = cluster
        if cluster:   # the client trains nothing: no TensorFlow, no model pool
            from latentlab.sweeps.cluster import ClusterSweep

            self.sweep = ClusterSweep(config, betas, out_dir, dataset, self.event.emit, **cluster)
        else:         # both validate only: no TF here
            from latentlab.runtime import model_pool

            if design is None:
                from latentlab.sweeps.sweep import Sweep

                self.sweep = Sweep(config, betas, out_dir, dataset, self.event.emit, model_pool=model_pool())
            else:
                from latentlab.sweeps.lesson import Lesson

                self.sweep = Lesson(config, out_dir, dataset, self.event.emit, design, model_pool=model_pool())

    @Slot()
    def run(self) -> None:
        from latentlab.events import Failed
        from latentlab.runtime import import_tensorflow

        try:
            if not self.cluster:
                import_tensorflow()
            result = self.sweep.run()
            if isinstance(result, dict):
                self.summary.emit(result)
        except BaseException as e:  # the Trainer reports its own failures; this is the last resort
            self.event.emit(Failed(f"sweep failed: {one_line(e)}", 0, None))

    def stop(self) -> None:
        self.sweep.stop()

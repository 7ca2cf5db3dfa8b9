"""The app's background jobs, each a QObject run once on its own thread by a `gui.threads.Task`:
loading a dataset folder, training, opening a run, a β sweep, loading runs to compare.

Each has a ``run`` slot that ends by emitting ``done``; results leave through ``Signal(object)``
carrying numpy arrays and plain Python, never tensors. The work itself is the engine's (latentlab);
these only carry it to a thread and its outcome back as signals. Control methods (stop, pause,
cancel) may be called from any thread. The grid decoder, which lives as long as the window, is in
`gui.map.grid_renderer`.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal, Slot

from latentlab.messages import one_line

__all__ = ["LoadWorker", "TrainingWorker", "RunLoadWorker", "SweepWorker", "ComparisonLoadWorker"]


class LoadWorker(QObject):
    """Runs ``latentlab.data.load_folder`` once; cancellable between files."""

    progress = Signal(int, int)     # done, total
    loaded = Signal(object)         # Dataset
    failed = Signal(str)            # one line
    done = Signal()

    def __init__(self, root: str, image_size=None, color: str = "auto", background: str = "auto", fit: str = "pad"):
        super().__init__()
        self.root = root
        self.image_size = image_size
        self.color = color
        self.background = background
        self.fit = fit
        self._cancel = threading.Event()

    def cancel(self) -> None:  # any thread
        self._cancel.set()

    @Slot()
    def run(self) -> None:
        from latentlab import data as ld

        try:
            ds = ld.load_folder(self.root, self.image_size, self.color, background=self.background, fit=self.fit,
                                progress=lambda d, t: self.progress.emit(int(d), int(t)),
                                should_cancel=self._cancel.is_set)
        except ld.DatasetError as e:
            self.failed.emit(str(e))
        except Exception as e:  # a bug or an OS error: still one line in the window
            self.failed.emit(f"{self.root}: cannot load ({one_line(e, with_type=True)})")
        else:
            if self._cancel.is_set():
                self.failed.emit("loading cancelled")
            else:
                self.loaded.emit(ds)
        self.done.emit()


class TrainingWorker(QObject):
    """Owns a `latentlab.training.trainer.Trainer` and runs it on its thread. Every engine event is
    re-emitted as ``event`` (queued to the GUI thread). With a ``decoder_key``, the window's
    decoders for that model are built here first (``decodersBuilt``): TensorFlow must not build
    graphs on two threads at once."""

    event = Signal(object)
    decodersBuilt = Signal(object, object, object)   # key, grid Decoder, point Decoder
    done = Signal()

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
                    self.done.emit()
                    return
            if self.decoder_key is not None and not self.trainer.stop_requested:
                try:
                    grid, point = build_decoders(self.decoder_key)
                except Exception as e:
                    self.event.emit(Failed(f"cannot build the decoder: {one_line(e, with_type=True)}", 0, None))
                    self.done.emit()
                    return
                self.decodersBuilt.emit(self.decoder_key, grid, point)
            self.trainer.run()
        except BaseException as e:  # Trainer.run reports its own failures; this is a last resort
            self.event.emit(Failed(f"training failed: {one_line(e, with_type=True)}", 0, None))
        self.done.emit()

    def stop(self) -> None:
        self.trainer.stop()

    def pause(self) -> None:
        self.trainer.pause()

    def resume(self) -> None:
        self.trainer.resume()

    def set_beta(self, beta: float) -> None:
        self.trainer.set_beta(beta)


class RunLoadWorker(QObject):
    """Opens a run folder and reads its decoder (TensorFlow) off the GUI thread: ``loaded`` carries a
    `latentlab.runs.view.RunView`."""

    loaded = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    @Slot()
    def run(self) -> None:
        from latentlab.runs import folder as runs
        from latentlab.runs.view import open_run_view

        try:
            view = open_run_view(self.path)
        except runs.RunError as e:
            self.failed.emit(str(e))
        except Exception as e:
            self.failed.emit(f"{self.path}: cannot open the run ({one_line(e, with_type=True)})")
        else:
            self.loaded.emit(view)
        self.done.emit()


class SweepWorker(QObject):
    """Owns a `latentlab.sweeps.sweep.Sweep` (here), with ``cluster`` ({"address": ...} or {"workers": N}) a
    `latentlab.sweeps.cluster.ClusterSweep`, or with a ``design`` a `latentlab.sweeps.lesson.Lesson` (the sweep designed
    to show the trade-off beyond noise, here); re-emits every engine event (SweepStep, then the Trainer's
    events per run; on a cluster, RunEvents) as ``event``, and a lesson's summary (a dict) as ``summary``
    at the end. ``stop()`` may be called from any thread."""

    event = Signal(object)
    summary = Signal(object)
    done = Signal()

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
        self.done.emit()

    def stop(self) -> None:
        self.sweep.stop()


class ComparisonLoadWorker(QObject):
    """Loads each run for the comparison view (`latentlab.runs.view.comparison_entry`), one by one."""

    loaded = Signal(object)        # dict per run
    failed = Signal(str, str)      # path, one line
    done = Signal()

    def __init__(self, paths):
        super().__init__()
        self.paths = [str(p) for p in paths]
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    stop = cancel

    @Slot()
    def run(self) -> None:
        from latentlab.runs.view import comparison_entry

        for path in self.paths:
            if self._cancel.is_set():
                break
            try:
                self.loaded.emit(comparison_entry(path))
            except Exception as e:
                self.failed.emit(path, one_line(e))
        self.done.emit()

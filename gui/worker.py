"""Work that must not run on the GUI thread: loading a folder, training, opening a run,
decoding grids. Each worker is a QObject moved to a QThread it does not share; results come
back through ``Signal(object)`` carrying numpy arrays and plain Python (never tensors), and
are received by slots of objects that live on the GUI thread.

Rules kept here: no widget is touched from a worker, no ``QThread.terminate()``; every
thread started through :func:`start_thread` is tracked so that the app (and the tests) can
check that none is left running.
"""

from __future__ import annotations

import threading
import time
import weakref

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Qt, Signal, Slot

__all__ = ["LoadWorker", "TrainingWorker", "RunLoadWorker", "GridWorker", "GridRenderer",
           "start_thread", "running_threads"]

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


def start_thread(worker: QObject, name: str, run_slot=None) -> QThread:
    """Move ``worker`` to a new QThread and start it. With ``run_slot`` (a slot of the worker),
    the thread runs it once and quits when the worker emits ``done``; without, the thread keeps
    an event loop for queued calls until ``quit()``. The caller keeps references to both until
    the thread has finished and been ``wait()``-ed (then dropping them is safe)."""
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    if run_slot is not None:
        thread.started.connect(run_slot)
        # direct: quit() is thread-safe, and a queued call would wait for a GUI thread that may be
        # blocked in thread.wait() (closing the window during training)
        worker.done.connect(thread.quit, Qt.DirectConnection)
    _THREADS.add(thread)
    thread.start()
    return thread


_TF_LOCK = threading.Lock()
_MODEL_POOL = None


def model_pool():
    """The app's `latentlab.train.ModelPool`: every training run in this process (Train, sweeps)
    reuses a built model of the same shape instead of building another, because TensorFlow keeps
    ~20–30 MB per model built for the life of the process."""
    global _MODEL_POOL
    if _MODEL_POOL is None:
        from latentlab.train import ModelPool

        _MODEL_POOL = ModelPool()
    return _MODEL_POOL


def import_tensorflow() -> None:
    """Import TensorFlow, Keras and the model module once, one thread at a time: two threads
    importing TensorFlow at the same moment can deadlock on Python's module locks."""
    from latentlab.tfquiet import import_tensorflow as quiet_import

    with _TF_LOCK:
        quiet_import()
        import latentlab.model  # noqa: F401


def build_decoders(key):
    """Two warmed-up `Decoder`s for key = (image_shape, latent_dim, likelihood): one for grids,
    one for single points on the GUI thread.

    Building and tracing Keras/TensorFlow graphs in two threads at once can crash TensorFlow,
    so this runs on the training thread before training starts, or on the grid thread only
    while nothing trains. Afterwards the decoders only execute (eager), from any thread."""
    from latentlab.latent import Decoder

    import_tensorflow()
    image_shape, latent_dim, likelihood = key
    grid = Decoder(image_shape, latent_dim, likelihood)
    grid.warm_up()
    point = Decoder(image_shape, latent_dim, likelihood)
    point.warm_up()
    return grid, point


def _one_line(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return text[:300]


# -- loading a dataset folder --------------------------------------------------------------------
class LoadWorker(QObject):
    """Runs ``latentlab.data.load_folder`` once; cancellable between files."""

    progress = Signal(int, int)     # done, total
    loaded = Signal(object)         # Dataset
    failed = Signal(str)            # one line
    done = Signal()

    def __init__(self, root: str, image_size=None, color: str = "auto"):
        super().__init__()
        self.root = root
        self.image_size = image_size
        self.color = color
        self._cancel = threading.Event()

    def cancel(self) -> None:  # any thread
        self._cancel.set()

    @Slot()
    def run(self) -> None:
        from latentlab import data as ld

        try:
            ds = ld.load_folder(self.root, self.image_size, self.color,
                                progress=lambda d, t: self.progress.emit(int(d), int(t)),
                                should_cancel=self._cancel.is_set)
        except ld.DatasetError as e:
            self.failed.emit(str(e))
        except Exception as e:  # a bug or an OS error: still one line in the window
            self.failed.emit(f"{self.root}: cannot load ({type(e).__name__}: {_one_line(e)})")
        else:
            if self._cancel.is_set():
                self.failed.emit("loading cancelled")
            else:
                self.loaded.emit(ds)
        self.done.emit()


# -- training ---------------------------------------------------------------------------------------
class TrainingWorker(QObject):
    """Owns a `latentlab.train.Trainer` and runs it on its thread. Every engine event is
    re-emitted as ``event`` (queued to the GUI thread). Control methods are thread-safe."""

    event = Signal(object)
    decodersBuilt = Signal(object, object, object)   # key, grid Decoder, point Decoder
    done = Signal()

    def __init__(self, config, dataset, run_dir, snapshot_seconds: float | None = 2.0, decoder_key=None):
        super().__init__()
        self.decoder_key = decoder_key
        from latentlab.train import Trainer

        # Trainer.__init__ only validates and stores: no TensorFlow on the GUI thread.
        self.trainer = Trainer(config, dataset, run_dir, self._publish, snapshot_seconds=snapshot_seconds,
                               model_pool=model_pool())

    def _publish(self, event) -> None:  # training thread
        self.event.emit(event)

    @Slot()
    def run(self) -> None:
        from latentlab.train import Failed

        try:
            import_tensorflow()
            if self.decoder_key is not None and not self.trainer.stop_requested:
                try:
                    grid, point = build_decoders(self.decoder_key)
                except Exception as e:
                    self.event.emit(Failed(f"cannot build the decoder: {type(e).__name__}: {_one_line(e)}", 0, None))
                    self.done.emit()
                    return
                self.decodersBuilt.emit(self.decoder_key, grid, point)
            self.trainer.run()
        except BaseException as e:  # Trainer.run reports its own failures; this is a last resort
            self.event.emit(Failed(f"training failed: {type(e).__name__}: {_one_line(e)}", 0, None))
        self.done.emit()

    def stop(self) -> None:
        self.trainer.stop()

    def pause(self) -> None:
        self.trainer.pause()

    def resume(self) -> None:
        self.trainer.resume()

    def set_beta(self, beta: float) -> None:
        self.trainer.set_beta(beta)


# -- opening a run folder ----------------------------------------------------------------------------
class RunLoadWorker(QObject):
    """Opens a run folder and loads its model (TensorFlow) off the GUI thread. Emits ``loaded``
    with a dict: run (latentlab.runs.Run), decoder_weights, image_shape, latent_dim, likelihood."""

    loaded = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    @Slot()
    def run(self) -> None:
        from latentlab import runs

        try:
            import_tensorflow()
            run = runs.open_run(self.path)
            model = run.load_model()
            result = {"run": run, "decoder_weights": [np.asarray(w) for w in model.decoder.get_weights()],
                      "image_shape": tuple(int(v) for v in model.image_shape),
                      "latent_dim": int(model.latent_dim), "likelihood": str(model.likelihood)}
            run._model = None  # the GUI never calls this model; let it go
        except runs.RunError as e:
            self.failed.emit(str(e))
        except Exception as e:
            self.failed.emit(f"{self.path}: cannot open the run ({type(e).__name__}: {_one_line(e)})")
        else:
            self.loaded.emit(result)
        self.done.emit()


# -- decoding grids -------------------------------------------------------------------------------------
class GridWorker(QObject):
    """Lives on its own thread for the app's lifetime, with its own `latentlab.latent.Decoder`.

    ``configure(key)`` builds decoders for key = (image_shape, latent_dim, likelihood): one it
    keeps for grids and one it hands to the GUI thread (``decodersReady``) for single points.
    ``render(job)`` decodes one grid in a single batched call and emits ``rendered``.
    """

    decodersReady = Signal(object, object)   # key, point Decoder (for the GUI thread)
    rendered = Signal(object)                # dict: job fields + mosaic (or None)
    failed = Signal(str)
    done = Signal()

    def __init__(self):
        super().__init__()
        self.key = None
        self.decoder = None
        self.weights_version = None

    @Slot()
    def preload(self) -> None:
        """Import TensorFlow early (loading its libraries briefly holds the GIL: better at startup
        than at the first click on Train)."""
        try:
            import_tensorflow()
        except Exception as e:
            self.failed.emit(f"TensorFlow cannot be imported: {type(e).__name__}: {_one_line(e)}")

    @Slot(object, object)
    def adopt(self, key, decoder) -> None:
        """Use a decoder built elsewhere (on the training thread)."""
        self.key, self.decoder, self.weights_version = key, decoder, None

    @Slot(object)
    def configure(self, key) -> None:
        try:
            grid, point = build_decoders(key)
        except Exception as e:
            self.failed.emit(f"cannot build the decoder: {type(e).__name__}: {_one_line(e)}")
            return
        self.key, self.decoder, self.weights_version = key, grid, None
        self.decodersReady.emit(key, point)

    @Slot(object)
    def render(self, job: dict) -> None:
        from latentlab.latent import decode_grid

        out = dict(job, mosaic=None, seconds=0.0)
        out.pop("weights", None)
        t0 = time.perf_counter()
        try:
            if job["key"] == self.key and self.decoder is not None and job.get("weights") is not None:
                if job["weights_version"] != self.weights_version:
                    self.decoder.set_weights(job["weights"])
                    self.weights_version = job["weights_version"]
                out["mosaic"] = decode_grid(self.decoder, job["x_range"], job["y_range"], job["n"],
                                            dims=job["dims"], base_z=job["base_z"], projection=job["projection"])
                out["seconds"] = time.perf_counter() - t0
        except Exception as e:
            self.failed.emit(f"grid decode failed: {type(e).__name__}: {_one_line(e)}")
        self.rendered.emit(out)


class GridRenderer(QObject):
    """GUI-thread front of the `GridWorker`: keeps at most one grid job in flight and only the
    newest waiting one, so requests never pile up however fast the view changes.

    With ``duty`` set (while training), requests that are not urgent — new weights, the view
    following the data — are spaced so that decoding grids takes at most that fraction of the
    time: each waits until ``seconds × (1/duty − 1)`` after the last grid, ``seconds`` being how
    long that grid took to decode. The grid shares the CPU with training (on two cores a 20×20
    grid costs as much as a training batch or two); on a GPU it is quick and nothing waits. An
    urgent request (the user moved the view) is never held back, and clearing ``duty`` sends a
    waiting one at once."""

    rendered = Signal(object)                 # dict with mosaic, x_range, y_range, ...
    pointDecoderReady = Signal(object)        # a Decoder for the GUI thread (single points)
    failed = Signal(str)
    _configure = Signal(object)
    _render = Signal(object)
    _preload = Signal()
    _adopt = Signal(object, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.worker = GridWorker()
        self.worker.decodersReady.connect(self._on_decoders)
        self.worker.rendered.connect(self._on_rendered)
        self.worker.failed.connect(self.failed)
        self._configure.connect(self.worker.configure)
        self._preload.connect(self.worker.preload)
        self._adopt.connect(self.worker.adopt)
        self._render.connect(self.worker.render)
        self.thread = start_thread(self.worker, "latentlab-grid")
        self.key = None
        self.ready_key = None
        self.point_decoder = None     # the GUI thread's Decoder for ready_key
        self.weights = None
        self.weights_version = 0
        self._busy = False
        self._pending = None
        self.duty: float | None = None
        self.last_seconds = 0.0        # how long the last grid took to decode (worker thread)
        self._last_done = None         # time.monotonic() when it came back
        self._deferred = None          # a non-urgent job waiting for its turn
        self._defer_timer = QTimer(self)
        self._defer_timer.setSingleShot(True)
        self._defer_timer.timeout.connect(self._send_deferred)

    def preload(self) -> None:
        self._preload.emit()

    @staticmethod
    def make_key(image_shape, latent_dim: int, likelihood: str):
        return (tuple(int(v) for v in image_shape), int(latent_dim), str(likelihood))

    @property
    def configuring(self) -> bool:
        """Decoders are being built (on the grid thread or the training thread)."""
        return self.key is not None and self.ready_key != self.key

    def expect(self, key) -> None:
        """Decoders for ``key`` will come from elsewhere (`adopt`)."""
        self.key, self.ready_key, self.point_decoder, self.weights = key, None, None, None

    def adopt(self, key, grid_decoder, point_decoder) -> None:
        if key != self.key:
            return
        self.ready_key, self.point_decoder = key, point_decoder
        self._adopt.emit(key, grid_decoder)

    def set_model(self, image_shape, latent_dim: int, likelihood: str):
        """Decoders for this model; returns the GUI thread's point decoder when it is ready
        already (same model as before), else None and ``pointDecoderReady`` follows."""
        key = self.make_key(image_shape, latent_dim, likelihood)
        self.weights = None
        if key == self.key:
            return self.point_decoder if self.ready_key == key else None
        self.key = key
        self.point_decoder = None
        self._configure.emit(key)
        return None

    def set_weights(self, weights) -> None:
        self.weights = weights
        self.weights_version += 1

    @property
    def busy(self) -> bool:
        return self._busy or self._pending is not None or self._deferred is not None or self.configuring

    def set_duty(self, duty: float | None) -> None:
        self.duty = duty
        if self._deferred is not None:
            self._schedule_deferred()

    def request(self, x_range, y_range, n: int, dims=(0, 1), base_z=None, projection=None,
                urgent: bool = True) -> None:
        if self.key is None or self.weights is None:
            return
        job = {"key": self.key, "weights": self.weights, "weights_version": self.weights_version,
               "x_range": tuple(float(v) for v in x_range), "y_range": tuple(float(v) for v in y_range),
               "n": int(n), "dims": tuple(dims),
               "base_z": None if base_z is None else np.asarray(base_z, np.float32).copy(),
               "projection": projection}
        if urgent or not self.duty:
            self._deferred = None
            self._defer_timer.stop()
            self._send(job)
        else:
            self._deferred = job
            self._schedule_deferred()

    def _send(self, job) -> None:
        job["sent"] = time.perf_counter()
        if self._busy:
            self._pending = job
        else:
            self._busy = True
            self._render.emit(job)

    def _schedule_deferred(self) -> None:
        """Send the waiting job when its turn comes (at once without a duty); while a grid is
        decoding, the turn is worked out when it comes back."""
        if self._busy and self.duty:
            return
        wait = 0.0
        if self.duty and self._last_done is not None:
            wait = self._last_done + self.last_seconds * (1.0 / self.duty - 1.0) - time.monotonic()
        if wait <= 0:
            self._defer_timer.stop()
            self._send_deferred()
        elif not self._defer_timer.isActive():
            self._defer_timer.start(int(wait * 1000) + 1)

    @Slot()
    def _send_deferred(self) -> None:
        job, self._deferred = self._deferred, None
        if job is None or job["key"] != self.key or self.weights is None:
            return
        job.update(weights=self.weights, weights_version=self.weights_version)   # the newest by now
        self._send(job)

    @Slot(object, object)
    def _on_decoders(self, key, point_decoder) -> None:
        if key == self.key:
            self.ready_key = key
            self.point_decoder = point_decoder
            self.pointDecoderReady.emit(point_decoder)

    @Slot(object)
    def _on_rendered(self, out: dict) -> None:
        self._busy = False
        if out.get("mosaic") is not None:
            self.last_seconds, self._last_done = float(out.get("seconds", 0.0)), time.monotonic()
            out["latency"] = time.perf_counter() - out.get("sent", time.perf_counter())
        if self._pending is not None:
            job, self._pending = self._pending, None
            self._busy = True
            self._render.emit(job)
        elif self._deferred is not None:
            self._schedule_deferred()
        if out.get("mosaic") is not None and out["key"] == self.key:
            self.rendered.emit(out)

    def shutdown(self) -> None:
        """Quit the thread and wait for it (a grid in progress finishes first)."""
        self._pending = None
        self._deferred = None
        self._defer_timer.stop()
        if self.thread is not None:
            self.thread.quit()
            self.thread.wait()
            self.thread = None


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

"""Decoding grids of images over the latent map, off the GUI thread: `GridWorker` lives on a thread of
its own for the window's lifetime with a decoder of its own; `GridRenderer` is its front on the GUI
thread and decides when a grid is decoded (never more than one waiting, and while training only at a
set share of the time).
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from gui.threads import start_thread
from latentlab.model.latent import TileCache
from latentlab.messages import one_line
from latentlab.runtime import build_decoders, import_tensorflow

__all__ = ["GridWorker", "GridRenderer"]


class GridWorker(QObject):
    """Lives on its own thread for the app's lifetime, with its own `latentlab.model.latent.Decoder`: not a
    one-job `gui.workers` job but the serving kind of `gui.threads.WorkerThread`, which runs the calls the
    `GridRenderer` posts (``thread.call``) in order.

    ``configure(key)`` builds decoders for a `latentlab.model.key.ModelKey`: one it
    keeps for grids and one it hands to the GUI thread (``decodersReady``) for single points.
    ``render(job)`` decodes one grid (the tiles of a `latentlab.model.latent.Lattice` not decoded already) in
    a single batched call and emits ``rendered``.
    """

    decodersReady = Signal(object, object)   # key, point Decoder (for the GUI thread)
    rendered = Signal(object)                # dict: job fields + mosaic (or None)
    failed = Signal(str)
    gpusVisible = Signal(int)                # how many GPUs TensorFlow sees, once it is imported

    def __init__(self):
        super().__init__()
        self.key = None
        self.decoder = None
        self.weights_version = None
        self.tiles = TileCache()

    def preload(self) -> None:
        """Import TensorFlow early (loading its libraries briefly holds the GIL: better at startup
        than at the first click on Train)."""
        try:
            import_tensorflow()
            from latentlab.training.distribute import visible_gpus

            self.gpusVisible.emit(visible_gpus())
        except Exception as e:
            self.failed.emit(f"TensorFlow cannot be imported: {one_line(e, with_type=True)}")

    @Slot(object, object)
    def adopt(self, key, decoder) -> None:
        """Use a decoder built elsewhere (on the training thread)."""
        self.key, self.decoder, self.weights_version = key, decoder, None

    @Slot(object)
    def configure(self, key) -> None:
        try:
            grid, point = build_decoders(key)
        except Exception as e:
            self.failed.emit(f"cannot build the decoder: {one_line(e, with_type=True)}")
            return
        self.key, self.decoder, self.weights_version = key, grid, None
        self.decodersReady.emit(key, point)

    @Slot(object)
    def render(self, job: dict) -> None:
        """Decode the job's `latentlab.model.latent.Lattice`: the tiles of the last grid that are still in view
        (same weights, level and plane) come from its `TileCache`, the others are decoded in one call."""
        out = dict(job, mosaic=None, seconds=0.0)
        out.pop("weights", None)
        t0 = time.perf_counter()
        try:
            if job["key"] == self.key and self.decoder is not None and job.get("weights") is not None:
                if job["weights_version"] != self.weights_version:
                    self.decoder.set_weights(job["weights"])
                    self.weights_version = job["weights_version"]
                base = None if job["base_z"] is None else tuple(job["base_z"].tolist())
                context = (self.key, self.weights_version, job["dims"], base, job["projection"])
                out["mosaic"] = self.tiles.mosaic(self.decoder, job["lattice"], context, dims=job["dims"],
                                                  base_z=job["base_z"], projection=job["projection"])
                out["decoded"] = self.tiles.decoded
                out["seconds"] = time.perf_counter() - t0
        except Exception as e:
            self.failed.emit(f"grid decode failed: {one_line(e, with_type=True)}")
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
    gpusVisible = Signal(int)                 # from the preload: how many GPUs TensorFlow sees

    def __init__(self, parent=None):
        super().__init__(parent)
        self.worker = GridWorker()
        self.worker.decodersReady.connect(self._on_decoders)
        self.worker.rendered.connect(self._on_rendered)
        self.worker.failed.connect(self.failed)
        self.worker.gpusVisible.connect(self.gpusVisible)
        self.thread = start_thread(self.worker, "latentlab-grid")   # serves the calls below, in order
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

    def _post(self, fn, *args) -> None:
        """Run ``fn(*args)`` on the grid thread; nothing once it has shut down (a view changing while the
        window closes)."""
        if self.thread is not None:
            self.thread.call(fn, *args)

    def preload(self) -> None:
        self._post(self.worker.preload)

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
        self._post(self.worker.adopt, key, grid_decoder)

    def set_model(self, key):
        """Decoders for this model (a `latentlab.model.key.ModelKey`); returns the GUI thread's point
        decoder when it is ready already (same model as before), else None and ``pointDecoderReady``
        follows."""
        self.weights = None
        if key == self.key:
            return self.point_decoder if self.ready_key == key else None
        self.key = key
        self.point_decoder = None
        self._post(self.worker.configure, key)
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

    def request(self, lattice, dims=(0, 1), base_z=None, projection=None, urgent: bool = True) -> None:
        """A grid of the tiles of ``lattice`` (a `latentlab.model.latent.Lattice`) in the plane ``dims`` /
        ``base_z`` / ``projection``; ``urgent`` when the user changed the view."""
        if self.key is None or self.weights is None:
            return
        job = {"key": self.key, "weights": self.weights, "weights_version": self.weights_version,
               "lattice": lattice, "x_range": lattice.x_range, "y_range": lattice.y_range,
               "n": (lattice.cols, lattice.rows), "dims": tuple(dims),
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
            self._post(self.worker.render, job)

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
            self._post(self.worker.render, job)
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

"""`TrainingController`: the window's one training at a time — its worker, its thread and its state
machine. It talks to the window only through signals and never calls into it:

    idle ──start──▶ starting ──Started──▶ training ⇄ paused
      ▲                 │                    │          │
      └──── finished ◀──┴──── stopping ◀─────┴──stop────┘

``event`` carries every engine event (latentlab.events) on the GUI thread, ``stateChanged`` each
new state, ``finished`` the run's Finished or Failed event once the thread has ended (so listeners
may start the next job at once).
"""

from __future__ import annotations

import math

from PySide6.QtCore import QObject, Signal, Slot

from gui.threads import Task
from gui.training_state import TrainingState
from gui.workers import TrainingWorker
from latentlab.events import BatchEnd, Failed, Finished, Started

__all__ = ["TrainingController"]

ACTIVE = frozenset({TrainingState.STARTING, TrainingState.TRAINING, TrainingState.PAUSED})


class TrainingController(QObject):
    stateChanged = Signal(object)                   # the new TrainingState
    status = Signal(str)                            # a one-line message for the status bar
    betaChanged = Signal(float, float)              # where (fractional epoch), the new β: for a marker
    event = Signal(object)                          # an engine event of the running training
    decodersBuilt = Signal(object, object, object)  # key, grid Decoder, point Decoder (training thread built them)
    finished = Signal(object)                       # Finished / Failed (None if neither came), thread done

    def __init__(self, parent=None):
        super().__init__(parent)
        self.task = Task("latentlab-train", self)
        self.task.finished.connect(self._on_thread_finished)
        self.state = TrainingState.IDLE
        self.epochs = 0            # planned epochs in all
        self.started = None        # the Started event
        self.last_batch = None     # the newest BatchEnd (progress)
        self.result = None         # Finished / Failed of the last run

    # -- state ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """A training thread exists (from start until finished)."""
        return self.task.running

    @property
    def trainer(self):
        return self.task.worker.trainer if self.task.worker is not None else None

    def _set_state(self, state: TrainingState) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)

    # -- commands ------------------------------------------------------------------------------------
    def start(self, config, dataset, run_dir, *, snapshot_seconds: float | None, decoder_key=None,
              resume: bool = False, strategy: str = "default") -> bool:
        if self.state != TrainingState.IDLE or self.running:
            return False
        self.epochs, self.started, self.last_batch, self.result = config.epochs, None, None, None
        worker = TrainingWorker(config, dataset, run_dir, snapshot_seconds=snapshot_seconds,
                                decoder_key=decoder_key, resume=resume, strategy=strategy)
        worker.event.connect(self._on_event)
        worker.decodersBuilt.connect(self.decodersBuilt)
        self._set_state(TrainingState.STARTING)
        self.task.start(worker)
        return True

    @Slot()
    def pause(self) -> bool:
        return self._steer("pause", TrainingState.TRAINING, TrainingState.PAUSED,
                           "Paused (after this batch). Press Space or Resume to go on.")

    @Slot()
    def resume(self) -> bool:
        return self._steer("resume", TrainingState.PAUSED, TrainingState.TRAINING, "Resumed.")

    def _steer(self, how: str, before: TrainingState, after: TrainingState, message: str) -> bool:
        """Ask the trainer to ``how`` (pause, resume) when training is ``before``; False when it is not."""
        if self.state != before:
            return False
        self.task.request(how)
        self._set_state(after)
        self.status.emit(message)
        return True

    @Slot()
    def toggle_pause(self) -> None:
        if self.state == TrainingState.PAUSED:
            self.resume()
        else:
            self.pause()

    @Slot()
    def stop(self) -> bool:
        if self.state not in ACTIVE:
            return False
        self.task.request("stop")
        self._set_state(TrainingState.STOPPING)
        self.status.emit("Stopping after the current batch…")
        return True

    @Slot(float)
    def set_beta(self, beta: float) -> bool:
        """β for the next batches; False when nothing trains or β is already that."""
        trainer = self.trainer
        if trainer is None or self.state not in ACTIVE or math.isclose(beta, trainer.beta, rel_tol=1e-9):
            return False   # e.g. the form's own value settling as training starts
        trainer.set_beta(beta)
        self.betaChanged.emit(self.progress_x(), beta)
        self.status.emit(f"β set to {beta:g} from the next batch.")
        return True

    def progress_x(self) -> float:
        """Where training is, in fractional epochs (for markers on the loss plot)."""
        b = self.last_batch
        return 0.0 if b is None else b.epoch + b.step / max(b.steps, 1)

    def shutdown(self) -> None:
        """Stop training and wait for its thread (idempotent)."""
        self.task.stop_and_wait("stop")

    # -- from the worker --------------------------------------------------------------------------------
    @Slot(object)
    def _on_event(self, ev) -> None:
        if isinstance(ev, BatchEnd):
            self.last_batch = ev
        elif isinstance(ev, Started):
            self.started, self.epochs = ev, ev.epochs
            if self.state == TrainingState.STARTING:
                self._set_state(TrainingState.TRAINING)
        elif isinstance(ev, (Finished, Failed)):
            self.result, self.last_batch = ev, None
        self.event.emit(ev)

    @Slot(object)
    def _on_thread_finished(self, worker) -> None:
        self._set_state(TrainingState.IDLE)
        self.finished.emit(self.result)

"""`ForeignModel`: a decoder trained elsewhere (a Keras file, `latentlab.model.foreign`) shown in the window.

Opening one (``latentlab --decoder FILE.keras [--encoder FILE.keras --dataset DIR]``, or File → Open a
Keras decoder…) loads it on a worker thread; the window then explores it like one of its own runs: the
latent map with its grid, clicks and hovers decoded, traversals, interpolations and prior samples (every
view that takes a decoder gets the map's point decoder). With an encoder and a dataset, the encoded images
are drawn on the map, and the dataset is loaded in the dataset panel too (at the decoder's image size).
Whether the decoder's values are pixels in [0, 1] or logits is detected when it loads, and said in the
status bar. A file that is refused or does not fit gets one line in the banner (``failed``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QFileDialog

from gui.threads import Task
from gui.training_state import TrainingState
from latentlab.messages import one_line

__all__ = ["ForeignModel", "ForeignLoadWorker", "describe"]


class ForeignLoadWorker(QObject):
    """Runs `latentlab.model.foreign.open_view` once: ``loaded`` carries the `ForeignView`."""

    loaded = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, decoder: str, encoder: str | None, dataset: str | None):
        super().__init__()
        self.decoder, self.encoder, self.dataset = decoder, encoder, dataset

    @Slot()
    def run(self) -> None:
        from latentlab.data import DatasetError
        from latentlab.model.foreign import KerasFileError, open_view
        from latentlab.runtime import import_tensorflow

        try:
            import_tensorflow()
            view = open_view(self.decoder, self.encoder, self.dataset)
        except (KerasFileError, DatasetError) as e:
            self.failed.emit(str(e))
        except Exception as e:  # a bug, an OS error: still one line in the window
            self.failed.emit(f"{self.decoder}: cannot open the decoder ({one_line(e, with_type=True)})")
        else:
            self.loaded.emit(view)
        self.done.emit()


def describe(view) -> str:
    """The status line for a loaded `ForeignView`: what the decoder is and what the map shows of it."""
    ds, message = view.dataset, view.description
    if view.z_mean is not None and ds is not None:
        message += f"; {ds.num_images:,} images of {ds.root} encoded by {Path(view.encoder_path).name}"
    elif ds is not None:
        message += "; give --encoder too to draw the dataset's images on the map"
    return message + "."


class ForeignModel(QObject):
    """Loads a decoder file off the GUI thread and says so, as `gui.run_files.RunFiles` does for runs: the
    map controller (``show_foreign``) and then the window (``_on_foreign_opened``) react to ``opened``;
    the window shows ``failed`` in its banner."""

    opened = Signal(object)      # latentlab.model.foreign.ForeignView, loaded
    failed = Signal(str)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.view = None
        self.message = ""
        self.task = Task("latentlab-open-decoder", self)

    @property
    def loading(self) -> bool:
        return self.task.running

    @Slot()
    def ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open a Keras decoder (a vector → an image)",
                                              str(Path.home()), "Keras model (*.keras)")
        if path:
            self.open(path)

    def open(self, decoder, encoder=None, dataset=None) -> bool:
        """Start loading a decoder file (with its encoder and a dataset folder, when given)."""
        w = self.window
        if w.training.state != TrainingState.IDLE:
            w.statusBar().showMessage("Stop training before opening a decoder.")
            return False
        if self.task.running:
            return False
        w.statusBar().showMessage(f"Opening the decoder {decoder}…")
        worker = ForeignLoadWorker(str(decoder), encoder and str(encoder), dataset and str(dataset))
        worker.loaded.connect(self._on_loaded)
        worker.failed.connect(self._on_failed)
        self.task.start(worker)
        return True

    @Slot(object)
    def _on_loaded(self, view) -> None:
        """Say what was loaded: the map controller shows it, then the window (both connected to ``opened``)."""
        self.view = view
        self.message = describe(view)
        self.opened.emit(view)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.failed.emit(message)

    def shutdown(self) -> None:
        self.task.stop_and_wait(None)

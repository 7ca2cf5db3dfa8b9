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

from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QFileDialog

from gui.threads import Task
from gui.training_state import TrainingState
from gui.workers import start_load
from latentlab.data.dataset import DatasetError
from latentlab.model.keras_files import KerasFileError

__all__ = ["ForeignModel", "open_decoder", "describe"]


def open_decoder(decoder: str, job, encoder: str | None = None, dataset: str | None = None):
    """`latentlab.model.foreign.open_view` on a `gui.workers.Load`'s thread: ``loaded`` carries the
    `ForeignView`."""
    from latentlab.model.foreign import open_view
    from latentlab.runtime import import_tensorflow

    import_tensorflow()
    return open_view(decoder, encoder, dataset)


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
        load = partial(open_decoder, encoder=encoder and str(encoder), dataset=dataset and str(dataset))
        start_load(self.task, load, [decoder], self._on_loaded, self._on_failed,
                   expected=(KerasFileError, DatasetError), doing="cannot open the decoder")
        return True

    @Slot(object)
    def _on_loaded(self, view) -> None:
        """Say what was loaded: the map controller shows it, then the window (both connected to ``opened``)."""
        self.view = view
        self.message = describe(view)
        self.opened.emit(view)

    @Slot(str, str)
    def _on_failed(self, decoder: str, message: str) -> None:
        self.failed.emit(message)

    def shutdown(self) -> None:
        self.task.stop_and_wait(None)

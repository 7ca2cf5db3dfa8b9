"""`DatasetPanel`: open an image folder (loaded off the GUI thread with a progress bar) and
show what was found: path, images used, classes with counts, image size and channels, a
strip of thumbnails, the skipped files with their reasons, or the folder's one-line reason
for being unusable."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QProgressBar, QVBoxLayout)
from superqt import QElidingLabel

from latentlab.config import BACKGROUNDS, FITS
from latentlab.data.dataset import DatasetError

from gui.image_panel import array_to_qimage
from gui.settings import add_recent_folder, recent_folders
from gui.theme import set_role
from gui.threads import Task
from gui.widgets import button, combo
from gui.workers import start_load

__all__ = ["DatasetPanel"]

THUMBS = 20


def load_dataset(root: str, job, image_size=None, color: str = "auto", background: str = "auto",
                 fit: str = "pad"):
    """`latentlab.data.load_folder` on a `gui.workers.Load`'s thread: progress and Cancel between files."""
    from latentlab.data import load_folder

    return load_folder(root, image_size, color, background=background, fit=fit,
                       progress=lambda d, t: job.progress.emit(int(d), int(t)), should_cancel=job.cancelled)


class DatasetPanel(QGroupBox):
    datasetLoaded = Signal(object)    # latentlab.data.Dataset
    loadFailed = Signal(str)          # one line
    loadStarted = Signal(str)         # folder

    def __init__(self, parent=None):
        super().__init__("Dataset", parent)
        self.dataset = None
        self.loading_root: str | None = None
        self.task = Task("latentlab-load", self)
        self.task.finished.connect(self._on_load_finished)
        self._outcome = None
        self._load_args: tuple = (None, "auto")   # image_size, color of the last load (kept on a reload)
        buttons = self._build_buttons()
        settings_row = self._build_image_settings()
        form = self._build_form()
        self._build_lists()
        layout = QVBoxLayout(self)
        layout.setSpacing(4)
        layout.addLayout(buttons)
        layout.addLayout(settings_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.error)
        layout.addLayout(form)
        layout.addWidget(self.epoch_label)
        layout.addWidget(self.thumbs)
        layout.addWidget(self.skipped_label)
        layout.addWidget(self.skipped)

    def _build_buttons(self) -> QHBoxLayout:
        """Open folder, Arrays, Sample and Cancel; the progress bar and the error line under them."""
        self.open_button = button("Open folder…", "Choose a folder of images: one subfolder per class, or images "
                                  "directly inside (unlabeled).", self.ask_folder)
        self.arrays_button = button("Arrays…", "Open images saved as arrays: a .npz (x and y, or x_train and y_train "
                                    "as keras.datasets gives them), a .npy, or an IDX file (MNIST's format).",
                                    self.ask_arrays)
        self.sample_button = button("Sample", "Load the bundled Fashion-MNIST sample (3,000 28×28 images, 10 "
                                    "classes).", self.open_sample)
        self.cancel_button = button("Cancel", "Stop loading this folder.", self.cancel)
        self.cancel_button.hide()
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("loading %v / %m")
        self.progress.hide()
        self.error = QLabel("")
        self.error.setWordWrap(True)
        set_role(self.error, "error")
        self.error.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error.hide()

        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button, 1)
        buttons.addWidget(self.arrays_button)
        buttons.addWidget(self.sample_button)
        buttons.addWidget(self.cancel_button)
        return buttons

    def _build_form(self) -> QFormLayout:
        """What the dataset loaded is: folder, images, size, classes, notes (and the epoch-size warning)."""
        # a path has no spaces to wrap at: elided in the middle (drive and folder name stay), whole in the tooltip,
        # so a folder deep in a file system never pushes the form past its dock
        self.path_label = QElidingLabel("no folder")
        self.path_label.setElideMode(Qt.ElideMiddle)
        self.count_label = QLabel("–")
        self.shape_label = QLabel("–")
        self.shape_label.setWordWrap(True)
        self.shape_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.notes_label = QLabel("–")
        self.notes_label.setWordWrap(True)
        self.notes_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.epoch_label = QLabel("")
        self.epoch_label.setWordWrap(True)
        set_role(self.epoch_label, "warn")
        self.epoch_label.hide()
        self.classes_label = QLabel("–")
        self.classes_label.setWordWrap(True)
        self.classes_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setVerticalSpacing(2)
        form.addRow("Folder:", self.path_label)
        form.addRow("Images:", self.count_label)
        form.addRow("Size:", self.shape_label)
        form.addRow("Classes:", self.classes_label)
        form.addRow("Notes:", self.notes_label)
        return form

    def _build_image_settings(self) -> QHBoxLayout:
        """Transparency and fit: how images of another kind become the dataset's (a change reloads it)."""
        self.background_box = combo(
            BACKGROUNDS, chars=6, tip="What transparent pixels become: auto (per image: white behind dark content, "
            "black behind light content), white, black, or alpha (kept as a channel the model learns). Changing it "
            "reloads the dataset.")
        self.fit_box = combo(
            FITS, chars=6, tip="Images of another shape: pad (aspect kept, the rest filled with the background), "
            "crop (aspect kept, the centre cut out) or stretch. Changing it reloads the dataset.")
        self.background_box.activated.connect(self._reload_with_settings)
        self.fit_box.activated.connect(self._reload_with_settings)
        settings_row = QHBoxLayout()
        settings_row.addWidget(QLabel("Transparency:"))
        settings_row.addWidget(self.background_box, 1)
        settings_row.addWidget(QLabel("Fit:"))
        settings_row.addWidget(self.fit_box, 1)
        return settings_row

    def _build_lists(self) -> None:
        """A few images as thumbnails, and the files skipped with their reasons."""
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListWidget.IconMode)
        self.thumbs.setFlow(QListWidget.LeftToRight)
        self.thumbs.setWrapping(False)
        self.thumbs.setIconSize(QSize(36, 36))
        self.thumbs.setFixedHeight(54)
        self.thumbs.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        self.thumbs.setSpacing(1)
        self.thumbs.setToolTip("A few images of the dataset as the model sees them (one per class first).")
        self.skipped_label = QLabel("Skipped: –")
        self.skipped = QListWidget()
        self.skipped.setMaximumHeight(64)
        self.skipped.setToolTip("Files that were not used, with the reason.")
        self.skipped.hide()

    # -- opening -----------------------------------------------------------------------------
    @Slot()
    def ask_folder(self) -> None:
        start = str(Path(self.dataset.root).parent) if self.dataset is not None else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open an image folder", start)
        if folder:
            self.open_folder(folder)

    @Slot()
    def ask_arrays(self) -> None:
        start = str(Path(self.dataset.root).parent) if self.dataset is not None else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open images saved as arrays", start,
                                              "Arrays (*.npz *.npy *ubyte *ubyte.gz *.idx *.idx.gz);;All files (*)")
        if path:
            self.open_folder(path)

    @Slot()
    def _reload_with_settings(self) -> None:
        """The transparency or fit choice changed: load the same dataset again with it."""
        if self.dataset is not None and not self.is_loading:
            self.open_folder(self.dataset.root, *self._load_args)

    @property
    def background(self) -> str:
        return self.background_box.currentText()

    @property
    def fit(self) -> str:
        return self.fit_box.currentText()

    def set_image_settings(self, background: str, fit: str) -> None:
        """Show these choices (a reopened run's) without loading anything."""
        self.background_box.setCurrentText(background)
        self.fit_box.setCurrentText(fit)

    @Slot()
    def open_sample(self) -> None:
        from latentlab.data import DatasetError, sample_dataset_path

        try:
            path = sample_dataset_path()
        except DatasetError as e:
            self.show_error(str(e))
            return
        self.open_folder(str(path))

    def open_folder(self, folder, image_size=None, color: str = "auto", background: str | None = None,
                    fit: str | None = None) -> bool:
        """Start loading ``folder`` (or a .npz / .npy / IDX file) on a worker thread, with the transparency
        and fit choices shown (or these, which are then shown). False when a load is already running."""
        if self.is_loading:
            return False
        if background is not None or fit is not None:
            self.set_image_settings(background or self.background, fit or self.fit)
        self._load_args = (image_size, color)
        folder = os.fspath(folder)
        self.loading_root = folder
        self._outcome = None
        self.error.hide()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.open_button.setEnabled(False)
        self.sample_button.setEnabled(False)
        self._show_path(folder)
        start_load(self.task, partial(load_dataset, image_size=image_size, color=color, background=self.background,
                                      fit=self.fit), [folder], self._on_loaded, self._on_failed, self._on_progress,
                   expected=(DatasetError,), doing="cannot load")
        self.loadStarted.emit(folder)
        return True

    @property
    def is_loading(self) -> bool:
        return self.task.running

    @Slot()
    def cancel(self) -> None:
        self.task.request("cancel")

    def shutdown(self) -> None:
        """Cancel a load in progress and wait for its thread (what it found is not reported)."""
        self._outcome = None
        self.task.stop_and_wait("cancel")

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    @Slot(object)
    def _on_loaded(self, ds) -> None:
        self._outcome = ("loaded", ds)

    @Slot(str, str)
    def _on_failed(self, folder: str, message: str) -> None:
        self._outcome = ("failed", message)

    @Slot(object)
    def _on_load_finished(self, worker) -> None:
        """The load is over: report it now that no thread is left (so listeners may start the next job)."""
        self.progress.hide()
        self.cancel_button.hide()
        self.open_button.setEnabled(True)
        self.sample_button.setEnabled(True)
        outcome, self._outcome = self._outcome, None
        if outcome is None:
            return
        if outcome[0] == "loaded":
            self.show_dataset(outcome[1])
            add_recent_folder(str(outcome[1].root))
            self.datasetLoaded.emit(outcome[1])
        else:
            self.show_error(outcome[1])
            self.loadFailed.emit(outcome[1])

    @staticmethod
    def recent_folders() -> list[str]:
        """Folders loaded lately, newest first (kept in the app's settings)."""
        return recent_folders()

    def fill_recent_menu(self, menu, open_folder) -> None:
        """List the recent folders in ``menu``; choosing one calls ``open_folder(path)``."""
        menu.clear()
        folders = recent_folders()
        if not folders:
            menu.addAction("(none yet)").setEnabled(False)
        for f in folders:
            menu.addAction(f).triggered.connect(lambda checked=False, f=f: open_folder(f))

    def set_enabled_for_training(self, training: bool) -> None:
        for w in (self.arrays_button, self.background_box, self.fit_box):
            w.setEnabled(not training and not self.is_loading)
        self.open_button.setEnabled(not training and not self.is_loading)
        self.sample_button.setEnabled(not training and not self.is_loading)

    # -- showing -------------------------------------------------------------------------------
    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setToolTip(message)
        self.error.show()
        if self.dataset is not None:
            self._show_path(f"{self.dataset.root}  (still in use)")
        else:
            self._show_path(self.loading_root or "no folder")

    def _show_path(self, text: str) -> None:
        self.path_label.setText(text)
        self.path_label.setToolTip(text)

    def show_dataset(self, ds) -> None:
        self.dataset = ds
        self.error.hide()
        h, w, c = ds.image_shape
        self._show_path(str(ds.root))
        cached = " (from cache)" if ds.from_cache else ""
        self.count_label.setText(f"{ds.num_images:,} used, loaded in {ds.load_seconds:.1f} s{cached}")
        kinds = {1: "grayscale", 2: "grayscale + alpha", 3: "RGB", 4: "RGB + alpha"}
        self.shape_label.setText(f"{ds.size_line()}; {c} channel{'s' if c != 1 else ''} ({kinds.get(c, c)})")
        notes = ds.report.lines()
        self.notes_label.setText("\n".join(notes) if notes else "–")
        self._show_epoch_estimate(ds)
        if ds.labeled:
            counts = ds.class_counts
            text = ", ".join(f"{name} ({k})" for name, k in list(counts.items())[:30])
            if len(counts) > 30:
                text += f", … ({len(counts)} classes)"
            self.classes_label.setText(f"{len(counts)}: {text}")
        else:
            self.classes_label.setText("none (unlabeled: images directly in the folder)")
        self._fill_thumbs(ds)
        n_skipped = len(ds.skipped)
        self.skipped_label.setText(f"Skipped: {n_skipped}" + (" (file: reason)" if n_skipped else ""))
        self.skipped.clear()
        for s in ds.skipped[:500]:
            item = QListWidgetItem(f"{s.path}: {s.reason}")
            item.setToolTip(f"{s.path}: {s.reason}")
            self.skipped.addItem(item)
        if n_skipped > 500:
            self.skipped.addItem(f"… and {n_skipped - 500} more")
        self.skipped.setVisible(n_skipped > 0)

    def _show_epoch_estimate(self, ds) -> None:
        """Say the expected epoch time when it will be slow here (before anyone presses Train)."""
        from latentlab.epoch_time import estimate_epoch_seconds, slow_note

        note = slow_note(estimate_epoch_seconds(ds.num_images, ds.image_shape), ds.image_shape)
        self.epoch_label.setText(note)
        self.epoch_label.setVisible(bool(note))

    def _fill_thumbs(self, ds) -> None:
        self.thumbs.clear()
        picks: list[int] = []
        if ds.labeled:
            for k in range(len(ds.class_names)):
                hits = np.flatnonzero(ds.labels == k)
                if len(hits):
                    picks.append(int(hits[0]))
        rest = np.linspace(0, ds.num_images - 1, THUMBS, dtype=int) if ds.num_images else []
        for i in rest:
            if len(picks) >= THUMBS:
                break
            if int(i) not in picks:
                picks.append(int(i))
        for i in picks[:THUMBS]:
            pix = QPixmap.fromImage(array_to_qimage(ds.images[i]).scaled(
                36, 36, Qt.KeepAspectRatio, Qt.FastTransformation))
            item = QListWidgetItem(QIcon(pix), "")
            label = ds.class_names[ds.labels[i]] if ds.labeled and ds.labels[i] >= 0 else ""
            item.setToolTip(f"{ds.paths[i]}" + (f" ({label})" if label else ""))
            self.thumbs.addItem(item)

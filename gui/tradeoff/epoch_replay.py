"""`EpochReplay`: a slider over finished epochs that shows the latent map (the validation
images' z_mean, coloured by class) as it was at that epoch — from a run folder's ``epochs.npz``
or, live, from each EpochEnd.val_z_mean."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QWidget
from superqt import QLabeledSlider

from gui.exporting import export_button, save_csv, save_plot_png
from gui.palette import class_color
from gui.widgets import button, column, make_plot, make_timer, note_label, row
from latentlab.model.latent import PCA
from latentlab.tradeoff import rows_to_csv

__all__ = ["EpochReplay"]

class EpochReplay(QWidget):
    frameShown = Signal(int)     # epoch (1-based)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.frames: list[np.ndarray] = []
        self.labels = None
        self.class_names: list[str] = []
        self.projection = None
        self.epoch = 0
        self.plot = make_plot(canvas=True,
                              tip="The validation images' z_mean at the chosen epoch. Watch the classes spread "
                                  "out early and, with a high β, huddle towards the prior N(0, I).")
        self.scatter = pg.ScatterPlotItem(size=6, pen=None)
        self.plot.addItem(self.scatter)
        self.prior = pg.PlotCurveItem(pen=pg.mkPen((120, 120, 120), style=Qt.DashLine))
        t = np.linspace(0, 2 * np.pi, 100)
        self.prior.setData(2 * np.cos(t), 2 * np.sin(t))
        self.plot.addItem(self.prior)
        self.slider = QLabeledSlider(Qt.Horizontal)
        self.slider.setRange(1, 1)
        self.slider.setToolTip("Epoch to show: drag to replay how training moved the encoded images.")
        self.slider.valueChanged.connect(self.show_epoch)
        self.play_button = button("▶ Play", "Replay the epochs one after another.", self.toggle_play)
        self.export_png_button = export_button(self, "png", "Save the map at this epoch",
                                               lambda: f"latent-epoch-{self.epoch}.png", self.export_png,
                                               "Save the map at this epoch as a PNG picture.")
        self.export_csv_button = export_button(self, "csv", "Save z_mean at this epoch",
                                               lambda: f"latent-epoch-{self.epoch}.csv", self.export_csv,
                                               "Save the z_mean of every validation image at this epoch as CSV.")
        self.info = note_label("No epochs yet.")
        column(row("<b>Replay</b> epoch", (self.slider, 1), self.play_button, self.export_csv_button,
                   self.export_png_button),
               (self.plot, 1), self.info, parent=self)
        self._timer = make_timer(self, 400, self._next, single_shot=False)

    # -- inputs -------------------------------------------------------------------------------------
    def set_frames(self, z_per_epoch, labels=None, class_names=None) -> None:
        """z_mean per epoch: (epochs, n_val, d); labels (n_val,) and class names, if any."""
        self.frames = [np.asarray(z, np.float32) for z in np.asarray(z_per_epoch)]
        self.labels = None if labels is None else np.asarray(labels)
        self.class_names = list(class_names or [])
        self._fit()
        self._sync_slider(go_last=True)

    def add_frame(self, z_mean, labels=None, class_names=None) -> None:
        """A live epoch: the slider follows it when it was on the last epoch."""
        follow = not self.frames or self.slider.value() == len(self.frames)
        self.frames.append(np.asarray(z_mean, np.float32))
        if labels is not None:
            self.labels = np.asarray(labels)
        if class_names is not None:
            self.class_names = list(class_names)
        self._fit()
        self._sync_slider(go_last=follow)

    def clear(self) -> None:
        self.frames = []
        self.projection = None
        self.scatter.setData([], [])
        self._sync_slider(go_last=True)
        self.info.setText("No epochs yet.")

    # -- drawing ------------------------------------------------------------------------------------
    def _fit(self) -> None:
        """Axes fixed over all frames, so that motion is visible (PCA of the last frame for d > 2)."""
        if not self.frames:
            return
        last = self.frames[-1]
        d = last.shape[1] if last.ndim == 2 else 0
        self.projection = PCA(last) if d > 2 else None
        c = self._xy(np.zeros((1, d), np.float32))[0] if d else np.zeros(2)   # the prior's centre on this plane
        t = np.linspace(0, 2 * np.pi, 100)
        self.prior.setData(c[0] + 2 * np.cos(t), c[1] + 2 * np.sin(t))
        pts = np.concatenate([self._xy(f) for f in self.frames])
        if len(pts):
            lo, hi = np.percentile(pts, [0.5, 99.5], axis=0)
            lo, hi = np.minimum(lo, -2.2), np.maximum(hi, 2.2)
            self.plot.setRange(xRange=(lo[0], hi[0]), yRange=(lo[1], hi[1]), padding=0.05)
        names = ("PC1", "PC2") if self.projection is not None else ("z0", "z1" if d > 1 else "0")
        self.plot.setLabel("bottom", names[0])
        self.plot.setLabel("left", names[1])

    def _xy(self, z: np.ndarray) -> np.ndarray:
        if self.projection is not None:
            return self.projection.transform(z)
        if z.ndim != 2 or z.shape[1] == 0:
            return np.zeros((0, 2), np.float32)
        return z[:, :2] if z.shape[1] >= 2 else np.column_stack([z[:, 0], np.zeros(len(z))])

    def _sync_slider(self, go_last: bool) -> None:
        n = len(self.frames)
        self.slider.blockSignals(True)
        self.slider.setRange(1, max(n, 1))
        if go_last:
            self.slider.setValue(max(n, 1))
        self.slider.blockSignals(False)
        self.slider.setEnabled(n > 1)
        self.play_button.setEnabled(n > 1)
        if n:
            self.show_epoch(self.slider.value())

    @Slot(int)
    def show_epoch(self, epoch: int) -> None:
        if not self.frames:
            return
        epoch = int(min(max(epoch, 1), len(self.frames)))
        if self.slider.value() != epoch:
            self.slider.blockSignals(True)
            self.slider.setValue(epoch)
            self.slider.blockSignals(False)
        self.epoch = epoch
        z = self.frames[epoch - 1]
        xy = self._xy(z)
        if self.labels is not None and len(self.labels) == len(xy):
            n = max(len(self.class_names), int(self.labels.max()) + 1 if len(self.labels) else 1)
            brushes = [pg.mkBrush(*class_color(int(l), n), 190) for l in self.labels]
        else:
            brushes = pg.mkBrush(31, 119, 180, 190)
        self.scatter.setData(xy[:, 0], xy[:, 1], brush=brushes)
        spread = float(np.mean(np.var(z, axis=0))) if len(z) > 1 else 0.0
        self.info.setText(f"epoch {epoch} of {len(self.frames)}: {len(z):,} validation images; mean variance of "
                          f"z_mean per dimension {spread:.2f} (dashed circle: 2σ of the prior)")
        self.frameShown.emit(epoch)

    @Slot()
    def toggle_play(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.play_button.setText("▶ Play")
        elif len(self.frames) > 1:
            if self.epoch >= len(self.frames):
                self.show_epoch(1)
            self._timer.start()
            self.play_button.setText("■ Stop")

    def _next(self) -> None:
        if self.epoch >= len(self.frames):
            self.toggle_play()
        else:
            self.show_epoch(self.epoch + 1)

    # -- export -------------------------------------------------------------------------------------------
    def csv_text(self) -> str:
        if not self.frames:
            return rows_to_csv([], ["epoch"])
        z = self.frames[self.epoch - 1]
        rows = []
        for i, v in enumerate(z):
            row = {"epoch": self.epoch, "row": i}
            if self.labels is not None and len(self.labels) == len(z):
                lab = int(self.labels[i])
                row["class"] = self.class_names[lab] if lab < len(self.class_names) else lab
            row.update({f"z{j}": float(x) for j, x in enumerate(v)})
            rows.append(row)
        return rows_to_csv(rows)

    def export_csv(self, path) -> bool:
        return save_csv(self.csv_text(), path)

    def export_png(self, path) -> bool:
        return save_plot_png(self.plot, path, 900)

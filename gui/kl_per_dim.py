"""`KLPerDimPlot`: a live bar chart of the KL of each latent dimension, the number of active
units, and a warning when the posterior collapses."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gui.exporting import ask_path, save_csv, save_plot_png
from latentlab.tradeoff import COLLAPSE_KL_NATS, collapse_status, rows_to_csv

__all__ = ["KLPerDimPlot"]

ACTIVE = (31, 119, 180)
INACTIVE = (190, 190, 190)


class KLPerDimPlot(QWidget):
    """Feed it `set_kl(kl_per_dim, active_units, epoch)` (EpochEnd.kl_per_dim, .active_units)."""

    collapseChanged = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.kl = np.zeros(0)
        self.active_units: int | None = None
        self.epoch = 0
        self.collapsed = False
        self.rows: list[dict] = []
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setLabel("left", "KL", units="nats")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setLabel("bottom", "latent dimension")
        self.plot.showGrid(y=True, alpha=0.2)
        self.plot.setToolTip("KL(q(z_i|x) ‖ p(z_i)) of each dimension, averaged over the epoch's training "
                             "images: grey bars are dimensions the model does not use.")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, pen=pg.mkPen(None), brush=pg.mkBrush(ACTIVE))
        self.plot.addItem(self.bars)
        self.threshold_line = pg.InfiniteLine(pos=COLLAPSE_KL_NATS, angle=0,
                                              pen=pg.mkPen((200, 60, 60), style=Qt.DashLine))
        self.plot.addItem(self.threshold_line)
        self.title = QLabel("<b>KL per latent dimension</b>")
        self.units_label = QLabel("active units: —")
        self.units_label.setToolTip("Active units: dimensions whose posterior mean varies across the data "
                                    "(Cov_x E_q[z_u] > 0.01); raising β switches units off.")
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("background: #fde7e9; color: #8a0010; padding: 4px; border-radius: 3px;")
        self.warning.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #555;")
        self.export_png_button = QPushButton("PNG…")
        self.export_png_button.setToolTip("Save the bar chart as a PNG picture.")
        self.export_png_button.clicked.connect(self._ask_png)
        self.export_csv_button = QPushButton("CSV…")
        self.export_csv_button.setToolTip("Save the per-dimension KL of every epoch seen as CSV.")
        self.export_csv_button.clicked.connect(self._ask_csv)
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addStretch(1)
        top.addWidget(self.units_label)
        top.addWidget(self.export_csv_button)
        top.addWidget(self.export_png_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.warning)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)

    @Slot(object, object, object)
    def set_kl(self, kl_per_dim, active_units=None, epoch=None) -> None:
        self.kl = np.nan_to_num(np.asarray(kl_per_dim, np.float64).ravel(), nan=0.0)
        self.active_units = None if active_units is None else int(active_units)
        self.epoch = int(epoch) if epoch is not None else self.epoch + 1
        st = collapse_status(self.kl, self.active_units)
        low = set(st.inactive_dims)
        x = np.arange(len(self.kl))
        self.bars.setOpts(x=x, height=self.kl, width=0.7,
                          brushes=[pg.mkBrush(INACTIVE if i in low else ACTIVE) for i in x])
        ax = self.plot.getAxis("bottom")
        step = max(1, len(x) // 16)
        ax.setTicks([[(int(i), f"z{i}") for i in x[::step]]])
        top = max(float(self.kl.max()) if len(self.kl) else 0.0, COLLAPSE_KL_NATS * 5)
        self.plot.setXRange(-0.6, max(len(x) - 0.4, 0.6), padding=0)
        self.plot.setYRange(0, top * 1.1, padding=0)
        units = st.active_units
        self.units_label.setText(f"active units: <b>{units}</b> / {len(self.kl)}")
        self.status.setText(f"epoch {self.epoch}: total KL {self.kl.sum():.2f} nats. {'' if st.collapsed else st.message}")
        self.rows.append({"epoch": self.epoch, "active_units": units,
                          **{f"kl_z{i}": float(v) for i, v in enumerate(self.kl)}})
        if st.collapsed != self.collapsed:
            self.collapsed = st.collapsed
            self.collapseChanged.emit(st.collapsed)
        self.warning.setText("⚠ " + st.message if st.collapsed else "")
        self.warning.setVisible(st.collapsed)

    def clear(self) -> None:
        self.kl = np.zeros(0)
        self.rows = []
        self.epoch = 0
        self.active_units = None
        self.bars.setOpts(x=[], height=[], brushes=None, brush=pg.mkBrush(ACTIVE))
        self.units_label.setText("active units: —")
        self.status.setText("")
        self.warning.hide()
        if self.collapsed:
            self.collapsed = False
            self.collapseChanged.emit(False)

    @property
    def warning_shown(self) -> bool:
        return not self.warning.isHidden()

    def csv_text(self) -> str:
        return rows_to_csv(self.rows)

    def export_csv(self, path) -> bool:
        return save_csv(self.csv_text(), path)

    def export_png(self, path) -> bool:
        return save_plot_png(self.plot, path)

    def _ask_png(self) -> None:
        path = ask_path(self, "Save the KL bar chart", "kl-per-dimension.png", "png")
        if path:
            self.export_png(path)

    def _ask_csv(self) -> None:
        path = ask_path(self, "Save the KL per dimension", "kl-per-dimension.csv", "csv")
        if path:
            self.export_csv(path)

"""`KLPerDimPlot`: a live bar chart of the KL of each latent dimension, the number of active
units, and a warning when the posterior collapses."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QLabel, QWidget

from gui.exporting import export_button, save_csv, save_plot_png
from gui.widgets import STRETCH, alert_label, column, make_plot, note_label, row
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
        self.plot = make_plot(left=("KL", "nats"), bottom="latent dimension", grid=0.2, grid_x=False,
                              interactive=False,
                              tip="KL(q(z_i|x) ‖ p(z_i)) of each dimension, averaged over the epoch's training "
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
        self.warning = alert_label()
        self.status = note_label(wrap=True)
        self.export_png_button = export_button(self, "png", "Save the KL bar chart", "kl-per-dimension.png",
                                               self.export_png, "Save the bar chart as a PNG picture.")
        self.export_csv_button = export_button(self, "csv", "Save the KL per dimension", "kl-per-dimension.csv",
                                               self.export_csv,
                                               "Save the per-dimension KL of every epoch seen as CSV.")
        # per epoch: how many units are in use (collapse as it happens) and the prior's mass in holes
        self.units_plot = make_plot(left="active units", bottom="epoch", grid=0.2, interactive=False,
                                    tip="Active units after each epoch: a unit that drops out here has collapsed "
                                        "to the prior (its code says nothing).")
        self.units_curve = self.units_plot.plot([], [], pen=pg.mkPen(ACTIVE, width=2), symbol="o", symbolSize=5,
                                                symbolBrush=ACTIVE, stepMode=None)
        self.holes_plot = make_plot(left=("prior mass in holes", "%"), bottom="epoch", grid=0.2, interactive=False,
                                    tip="After each epoch: the share of the prior N(0, I)'s mass where the codes' "
                                        "aggregate posterior q(z) is under a tenth of the prior's density — prior "
                                        "samples there decode to nothing like the data (latentlab.surgery).")
        self.holes_curve = self.holes_plot.plot([], [], pen=pg.mkPen((200, 50, 50), width=2), symbol="o",
                                                symbolSize=5, symbolBrush=(200, 50, 50))
        self.holes_plot.setYRange(0, 100, padding=0.02)
        for p in (self.units_plot, self.holes_plot):
            p.setMinimumHeight(110)
        column(row(self.title, STRETCH, self.units_label, self.export_csv_button, self.export_png_button),
               self.warning, (self.plot, 2), self.status, (row(self.units_plot, self.holes_plot), 1), parent=self)

    def set_history(self, history: list[dict]) -> None:
        """The per-epoch figures of a run's history rows: active units and the prior's mass in holes."""
        epochs = [float(r.get("epoch", i + 1)) for i, r in enumerate(history)]
        units = [(e, float(r["active_units"])) for e, r in zip(epochs, history) if "active_units" in r]
        holes = [(e, 100.0 * float(r["val_hole_fraction"])) for e, r in zip(epochs, history)
                 if "val_hole_fraction" in r]
        self.units_curve.setData([e for e, _ in units], [u for _, u in units])
        self.holes_curve.setData([e for e, _ in holes], [h for _, h in holes])

    @Slot(object, object, object)
    def set_kl(self, kl_per_dim, active_units=None, epoch=None, source: str = "") -> None:
        """One epoch's KL per dimension and active units; ``source`` says where they come from when it is
        not the training's epoch (e.g. an opened run's latents.npz)."""
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
        self.status.setText(f"epoch {self.epoch}{f' ({source})' if source else ''}: total KL {self.kl.sum():.2f} "
                            f"nats. {'' if st.collapsed else st.message}")
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
        self.units_curve.setData([], [])
        self.holes_curve.setData([], [])
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

"""`RunComparison`: several runs side by side — their loss curves overlaid (one colour per β),
their latent maps next to each other (z_mean coloured by label over a decoded grid), and the
same clicked z decoded by every run's decoder at once; traversal, interpolation and nearest
images for the run chosen.

Runs are opened and their models loaded by a `gui.workers.Load` on its own thread; each run's
`latentlab.model.latent.Decoder` is then used on the GUI thread for single points and small strips.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QScrollArea,
                               QVBoxLayout, QWidget)

from gui.exporting import ask_path, save_csv, save_plot_png
from gui.palette import class_color
from gui.theme import colors, set_role
from gui.threads import Task
from gui.widgets import button, splitter
from gui.tradeoff.latent_tools import LatentTools, MosaicView, labeled_mosaic
from gui.tradeoff.rate_distortion import beta_color
from gui.workers import start_load
from latentlab.runs.folder import find_runs
from latentlab.tradeoff import rows_to_csv

__all__ = ["MiniLatentMap", "RunComparison"]

MAX_POINTS = 1500


def load_entry(path: str, job) -> dict:
    """One run to compare (`latentlab.runs.view.comparison_entry`), read on a `gui.workers.Load`'s thread."""
    from latentlab.runs.view import comparison_entry

    return comparison_entry(path)

QUANTITIES = {
    "validation −ELBO": "val_neg_elbo",
    "validation loss (β-weighted)": "val_loss",
    "validation reconstruction": "val_reconstruction_loss",
    "validation KL": "val_kl_loss",
    "training loss (β-weighted)": "loss",
    "training reconstruction": "reconstruction_loss",
    "training KL": "kl_loss",
}


PAGE_MAP_SIDE = 150     # the smallest a run's map gets inside a page that scrolls (the lesson)


class MiniLatentMap(QWidget):
    """One run's latent map (first two dimensions): decoded grid, z_mean coloured by label, and a
    marker at the point clicked in any map."""

    clicked = Signal(float, float)

    def __init__(self, entry: dict, parent=None):
        super().__init__(parent)
        self.entry = entry
        beta = entry["beta"]
        c = beta_color(beta)
        self.title = QLabel(f"<b style='color:rgb{c}'>■</b> <b>β = {beta:g}</b> · {Path(entry['path']).name}")
        self.title.setToolTip(entry["path"])
        self.plot = pg.PlotWidget(background=colors().map_bg)
        self.plot.setProperty("canvas", True)
        self.plot.setMenuEnabled(False)
        self.plot.setMinimumSize(230, 230)
        self.plot.setToolTip("Click anywhere: every run decodes this same z.")
        self.grid = pg.ImageItem(axisOrder="row-major")
        self.grid.setZValue(-10)
        self.grid.setOpacity(0.85)
        self.plot.addItem(self.grid)
        self.scatter = pg.ScatterPlotItem(size=4, pen=None)
        self.plot.addItem(self.scatter)
        self.marker = pg.ScatterPlotItem(size=16, symbol="+", pen=pg.mkPen((220, 0, 0), width=3), brush=None)
        self.marker.setZValue(20)
        self.plot.addItem(self.marker)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_click)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)
        self._draw()

    def _draw(self) -> None:
        e = self.entry
        xr, yr = e["x_range"], e["y_range"]
        if e["mosaic"] is not None:
            m = e["mosaic"]
            self.grid.setImage(m[..., 0] if m.shape[-1] == 1 else m, levels=(0, 1))
            self.grid.setRect(QRectF(xr[0], yr[0], xr[1] - xr[0], yr[1] - yr[0]))
        z = e["z"]
        if len(z) and z.shape[1] >= 2:
            step = max(1, len(z) // MAX_POINTS)
            idx = np.arange(0, len(z), step)
            labels = e["labels"]
            if labels is not None and len(labels) == len(z):
                n = max(len(e["class_names"]), int(labels.max()) + 1)
                brushes = [pg.mkBrush(*class_color(int(labels[i]), n), 170) for i in idx]
            else:
                brushes = pg.mkBrush(31, 119, 180, 170)
            self.scatter.setData(z[idx, 0], z[idx, 1], brush=brushes)
        self.plot.setRange(xRange=xr, yRange=yr, padding=0)
        self.plot.setLabel("bottom", "z0")
        self.plot.setLabel("left", "z1")

    def _on_scene_click(self, ev) -> None:
        if ev.button() != Qt.LeftButton:
            return
        p = self.plot.getViewBox().mapSceneToView(ev.scenePos())
        self.click_at(p.x(), p.y())

    @Slot(float, float)
    def click_at(self, x: float, y: float) -> None:
        """What a click at map coordinates (x, y) does (also called by the tests)."""
        self.clicked.emit(float(x), float(y))

    def set_marker(self, x: float, y: float) -> None:
        self.marker.setData([x], [y])


class RunComparison(QWidget):
    """``open_runs(paths)`` loads them off the GUI thread; ``click(x, y)`` decodes the same z in all."""

    runLoaded = Signal(str, float, object)   # path, β, history
    runFailed = Signal(str, str)
    loadingFinished = Signal()
    pointDecoded = Signal(object)            # z
    folderOpened = Signal(str)               # a sweep (or lesson) folder whose runs are being loaded

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list[dict] = []
        self.maps: list[MiniLatentMap] = []
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.task = Task("latentlab-compare", self)
        self.task.finished.connect(self._on_loading_finished)
        self.z = None
        self.decoded: list[tuple[float, np.ndarray]] = []
        self.selected = -1
        self._build_controls()
        self._build_views()
        self._build_layout()

    def _build_controls(self) -> None:
        """Open runs, Clear, the curve's quantity, the status line and the export buttons."""
        self.open_button = button("Open runs…", "Choose a run folder, or a sweep folder to open all the runs in it "
                                  "at once.", self._ask_open)
        self.clear_button = button("Clear", "Close all the runs compared here.", self.clear)
        self.quantity = QComboBox()
        self.quantity.addItems(list(QUANTITIES))
        self.quantity.setToolTip("Which curve to overlay: −ELBO compares runs fairly across β; the β-weighted loss "
                                 "is what each run minimised.")
        self.quantity.currentIndexChanged.connect(self._draw_curves)
        self.status = QLabel("Open a sweep folder to compare its runs.")
        set_role(self.status, "note")
        self.export_curves_png = button("curves PNG…", "Save the overlaid curves as a PNG picture.",
                                        lambda: self._ask("png-curves"))
        self.export_curves_csv = button("curves CSV…", "Save every run's history (all columns, with β) as one CSV "
                                        "table.", lambda: self._ask("csv-curves"))
        self.export_maps_png = button("maps PNG…", "Save the latent maps side by side as a PNG picture.",
                                      lambda: self._ask("png-maps"))
        self.export_decoded_png = button("decoded PNG…", "Save the clicked z decoded by every run as a PNG picture.",
                                         lambda: self._ask("png-decoded"))

    def _build_views(self) -> None:
        """The overlaid curves, the runs' latent maps, the decoded z, and the latent tools with their run."""
        self.curve_plot = pg.PlotWidget()
        self.curve_plot.setMenuEnabled(False)
        self.curve_plot.setLabel("bottom", "epoch")
        self.curve_plot.setLabel("left", "nats per image")
        self.curve_plot.getAxis("left").enableAutoSIPrefix(False)
        self.curve_plot.showGrid(x=True, y=True, alpha=0.2)
        self.curve_legend = self.curve_plot.addLegend(offset=(-10, 10), labelTextColor=colors().plot_fg,
                                                      brush=pg.mkBrush(255, 255, 255, 210))
        self.maps_box = QWidget()
        self.maps_layout = QHBoxLayout(self.maps_box)
        self.maps_layout.setContentsMargins(0, 0, 0, 0)
        self.maps_layout.addStretch(1)
        self.maps_scroll = QScrollArea()
        self.maps_scroll.setWidgetResizable(True)
        self.maps_scroll.setWidget(self.maps_box)
        self.maps_scroll.setMinimumHeight(280)
        self.decoded_view = MosaicView("Click any map: the same z is decoded by every run here.")
        self.decoded_view.setMinimumHeight(100)
        self.run_choice = QComboBox()
        self.run_choice.setToolTip("The run whose decoder the traversal, interpolation and nearest images use.")
        self.run_choice.currentIndexChanged.connect(self.select_run)
        self.tools = LatentTools()

    def _build_layout(self) -> None:
        """The buttons on top; the maps and the decoded z over the curves and the tools (splitters)."""
        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.clear_button)
        top.addWidget(self.status, 1)
        top.addWidget(self.export_curves_csv)
        top.addWidget(self.export_curves_png)
        top.addWidget(self.export_maps_png)
        top.addWidget(self.export_decoded_png)
        curves_box = QWidget()
        cl = QVBoxLayout(curves_box)
        cl.setContentsMargins(0, 0, 0, 0)
        crow = QHBoxLayout()
        crow.addWidget(QLabel("<b>Loss curves</b>"))
        crow.addWidget(self.quantity)
        crow.addStretch(1)
        cl.addLayout(crow)
        cl.addWidget(self.curve_plot, 1)
        tools_box = QWidget()
        tl = QVBoxLayout(tools_box)
        tl.setContentsMargins(0, 0, 0, 0)
        trow = QHBoxLayout()
        trow.addWidget(QLabel("<b>Explore</b> run"))
        trow.addWidget(self.run_choice, 1)
        tl.addLayout(trow)
        tl.addWidget(self.tools, 1)
        upper = splitter(Qt.Horizontal, [(curves_box, 0, 450), (tools_box, 0, 550)])
        middle = QWidget()
        ml = QVBoxLayout(middle)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.addWidget(QLabel("<b>Latent maps</b> (z0, z1; other dimensions at 0) — click one"))
        ml.addWidget(self.maps_scroll, 1)
        ml.addWidget(QLabel("<b>The clicked z, decoded by each run</b>"))
        ml.addWidget(self.decoded_view)
        split = splitter(Qt.Vertical, [(middle, 0, 480), (upper, 0, 320)])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(split, 1)

    def drop_scrolling(self) -> None:
        """No scroll areas of its own: inside a page that scrolls (the lesson), one level of scrolling."""
        if self.maps_scroll is None:
            return
        self.maps_scroll.takeWidget()
        self.maps_scroll.parentWidget().layout().replaceWidget(self.maps_scroll, self.maps_box)
        self.maps_scroll.setParent(None)
        self.maps_scroll.deleteLater()
        self.maps_scroll = None
        self.maps_box.setMinimumHeight(280)
        for view in self.findChildren(MosaicView):
            view.set_scrolling(False)

    # -- loading ----------------------------------------------------------------------------------------
    @property
    def is_loading(self) -> bool:
        return self.task.running

    def open_runs(self, paths, reload: bool = False) -> bool:
        """Load runs to compare; ``reload``: runs open already too (a followed run moved on: its entry is
        replaced when the new one arrives)."""
        paths = [p for p in (str(p) for p in paths) if reload or p not in {e["path"] for e in self.entries}]
        if self.is_loading or not paths:
            return False
        self.status.setText(f"loading {len(paths)} run{'s' if len(paths) != 1 else ''}…")
        start_load(self.task, load_entry, paths, self._on_loaded, self._on_failed)
        self.open_button.setEnabled(False)
        return True

    def open_folder(self, folder) -> bool:
        opened = self.open_runs(find_runs(folder))
        if opened:
            self.folderOpened.emit(str(folder))
        return opened

    def _ask_open(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run or a sweep folder")
        if folder and not self.open_folder(folder):
            self.status.setText(f"{folder}: no run folders found (they hold config.json)")

    @Slot(object)
    def _on_loaded(self, entry: dict) -> None:
        self.entries = [e for e in self.entries if e["path"] != entry["path"]] + [entry]   # reloaded: replaced
        self.entries.sort(key=lambda e: e["beta"])
        self._rebuild_maps()
        self._draw_curves()
        self.run_choice.blockSignals(True)
        self.run_choice.clear()
        self.run_choice.addItems([f"β = {e['beta']:g} ({Path(e['path']).name})" for e in self.entries])
        self.run_choice.blockSignals(False)
        self.select_run(max(0, min(self.selected, len(self.entries) - 1)) if self.selected >= 0 else 0)
        self.status.setText(f"{len(self.entries)} run{'s' if len(self.entries) != 1 else ''} open")
        self.runLoaded.emit(entry["path"], entry["beta"], entry["history"])
        if self.z is not None:
            self.decode_all(self.z)

    @Slot(str, str)
    def _on_failed(self, path: str, message: str) -> None:
        self.status.setText(f"{Path(path).name}: {message}")
        self.runFailed.emit(path, message)

    @Slot(object)
    def _on_loading_finished(self, worker) -> None:
        self.open_button.setEnabled(True)
        self.loadingFinished.emit()

    def shutdown(self) -> None:
        self.task.stop_and_wait("cancel")

    def clear(self) -> None:
        self.entries = []
        self._rebuild_maps()
        self._draw_curves()
        self.run_choice.clear()
        self.decoded = []
        self.z = None
        self.decoded_view.set_image(None, "Click any map: the same z is decoded by every run here.")
        self.tools.set_decoder(None)
        self.tools.set_data(None)
        self.status.setText("Open a sweep folder to compare its runs.")

    # -- views ---------------------------------------------------------------------------------------------
    def _rebuild_maps(self) -> None:
        for m in self.maps:
            self.maps_layout.removeWidget(m)
            m.deleteLater()
        self.maps = []
        for i, e in enumerate(self.entries):
            m = MiniLatentMap(e)
            if self.maps_scroll is None:      # in a page: smaller maps, so a row of them fits a narrow window
                m.plot.setMinimumSize(PAGE_MAP_SIDE, PAGE_MAP_SIDE)
            m.clicked.connect(self.click)
            self.maps_layout.insertWidget(i, m)
            self.maps.append(m)
        if self.z is not None and len(self.z) >= 2:
            for m in self.maps:
                m.set_marker(self.z[0], self.z[1])

    @Slot()
    def _draw_curves(self, *args) -> None:
        key = QUANTITIES[self.quantity.currentText()]
        self.curve_plot.clear()
        self.curve_legend.clear()
        self.curves = {}
        for e in self.entries:
            xs, ys = [], []
            for row in e["history"]:
                v = row.get(key)
                if v is None and key == "val_neg_elbo" and "neg_elbo" in row:
                    v = row["neg_elbo"]
                if v is not None and math.isfinite(v):
                    xs.append(row.get("epoch", len(xs) + 1))
                    ys.append(v)
            c = beta_color(e["beta"])
            self.curves[e["path"]] = self.curve_plot.plot(xs, ys, pen=pg.mkPen(c, width=2.5), symbol="o",
                                                          symbolSize=5, symbolBrush=c, symbolPen=None,
                                                          name=f"β = {e['beta']:g}")
        self.curve_plot.setLabel("left", f"{self.quantity.currentText()} [nats]")

    @Slot(int)
    def select_run(self, index: int) -> None:
        if not (0 <= index < len(self.entries)):
            return
        self.selected = index
        if self.run_choice.currentIndex() != index:
            self.run_choice.blockSignals(True)
            self.run_choice.setCurrentIndex(index)
            self.run_choice.blockSignals(False)
        e = self.entries[index]
        train = np.asarray(e["split"]) == 0 if len(e["split"]) == len(e["z"]) else np.ones(len(e["z"]), bool)
        idx = np.flatnonzero(train)
        images = e["images"][idx] if e["images"] is not None else None
        labels = e["labels"][idx] if e["labels"] is not None and len(e["labels"]) == len(e["z"]) else None
        paths = [e["paths"][i] for i in idx] if len(e["paths"]) == len(e["z"]) else None
        self.tools.set_decoder(e["decoder"])
        self.tools.traversal.set_data(e["z"])
        self.tools.nearest.set_data(e["z"][idx], images, labels, e["class_names"], paths)
        if self.z is not None:
            self.tools.set_point(self.z)

    @Slot(float, float)
    def click(self, x: float, y: float) -> None:
        """A click at (x, y) on any map: z = (x, y, 0, …), decoded by every run."""
        d = max((e["decoder"].latent_dim for e in self.entries), default=2)
        z = np.zeros(d, np.float32)
        z[0] = x
        if d > 1:
            z[1] = y
        for m in self.maps:
            m.set_marker(x, y)
        self.decode_all(z)

    def decode_all(self, z) -> list[tuple[float, np.ndarray]]:
        """The same z through every run's decoder (single points, GUI thread, ~1 ms each)."""
        z = np.asarray(z, np.float32).ravel()
        self.z = z
        self.decoded = []
        for e in self.entries:
            dec = e["decoder"]
            if dec.latent_dim == len(z):
                self.decoded.append((e["beta"], dec.decode(z[None])[0]))
        if self.decoded:
            caps = [f"β = {b:g}" for b, _ in self.decoded]
            self.decoded_view.set_image(labeled_mosaic([np.stack([im for _, im in self.decoded])],
                                                       captions=[caps], cell=80))
        else:
            self.decoded_view.set_image(None, "No run here has a latent space of this size.")
        self.tools.set_point(z, "(" + ", ".join(f"{v:.2f}" for v in z[:3]) + ("…)" if len(z) > 3 else ")"))
        self.pointDecoded.emit(z)
        return self.decoded

    # -- export --------------------------------------------------------------------------------------------
    def curves_csv(self) -> str:
        rows = []
        for e in self.entries:
            for row in e["history"]:
                rows.append({"run": Path(e["path"]).name, "beta_setting": e["beta"], **row})
        return rows_to_csv(rows)

    def export(self, what: str, path) -> bool:
        if what == "csv-curves":
            return save_csv(self.curves_csv(), path)
        if what == "png-curves":
            return save_plot_png(self.curve_plot, path)
        if what == "png-maps":
            return self.maps_box.grab().save(str(path), "PNG")
        if what == "png-decoded":
            return self.decoded_view.save(path)
        raise ValueError(what)

    def _ask(self, what: str) -> None:
        kind = what.split("-")[0]
        path = ask_path(self, "Save", f"comparison-{what.split('-')[1]}.{kind}", kind)
        if path:
            self.export(what, path)

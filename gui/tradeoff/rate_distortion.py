"""`RateDistortionPlot`: every run as a point on the rate–distortion plane (validation KL on x,
validation reconstruction on y, nats per image), the current run's trajectory epoch by epoch,
and lines of equal negative ELBO (rate + distortion = const) behind them. Each run has one marker, at
its last epoch, with its label beside it (a legend's sample would read as a second marker)."""

from __future__ import annotations

import math
import os

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QLabel, QWidget

from gui.exporting import export_button, save_csv, save_plot_png
from gui.theme import colors
from gui.widgets import STRETCH, check, column, make_plot, make_timer, note_label, row
from latentlab.tradeoff import equal_elbo_levels, equal_elbo_line, rate_distortion, rows_to_csv

__all__ = ["RateDistortionPlot", "beta_color"]


def beta_color(beta: float) -> tuple[int, int, int]:
    """A colour for β on a log scale (≤ 0.03 blue … 1 green … ≥ 30 red), the same in every view."""
    cmap = pg.colormap.get("turbo")
    t = (math.log10(max(float(beta), 1e-3)) + 1.5) / 3.0
    c = cmap.map(0.08 + 0.84 * min(max(t, 0.0), 1.0), mode="qcolor")
    return (c.red(), c.green(), c.blue())


def point_tip(e: dict, rate: float, dist: float) -> str:
    """A run's point in words: rate and distortion, and the rate's split (ELBO surgery) from its last epoch."""
    text = f"{e['label']}: rate {rate:.2f}, distortion {dist:.2f} nats"
    last = e["history"][-1] if e["history"] else {}
    if "val_mutual_info" in last and "val_marginal_kl" in last:
        text += (f"\nthe last epoch's rate {float(last.get('val_kl_loss', rate)):.2f} = I(x; z) "
                 f"{last['val_mutual_info']:.2f} (what a code says about its image) + KL(q(z) ‖ p(z)) "
                 f"{last['val_marginal_kl']:.2f} (codes the prior never draws)")
        if "val_hole_fraction" in last:
            text += f"\n{last['val_hole_fraction']:.0%} of the prior's mass in holes"
    return text


def _key(path: str) -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(str(path))))


def _label_item(text: str = "", color=None) -> pg.TextItem:
    """A run's label, just right of its marker (in the colour scheme's text colour unless ``color``)."""
    item = pg.TextItem(text, color=color or colors().text, anchor=(-0.12, 0.5), fill=pg.mkBrush(colors().label_fill))
    item.themed = color is None      # gui.theme recolours it when the scheme changes
    item.setZValue(5)
    return item


class RateDistortionPlot(QWidget):
    """``add_run(key, beta, history, label)`` puts a finished run on the plane (its last epoch as a
    point, the way there as a faint path); ``start_live(beta)`` then ``add_live_epoch(row)`` draws
    the run being trained. ``runClicked(key)`` when a run's point is clicked."""

    runClicked = Signal(str)
    REDRAW_MS = 50

    def __init__(self, parent=None):
        super().__init__(parent)
        self.runs: dict[str, dict] = {}
        self.live: dict | None = None
        self.extra = (np.zeros(0), np.zeros(0))     # more points the view must show (`include_points`)
        self.plot = make_plot(left="distortion = −E_q[log p(x|z)]  [nats]",
                              bottom="rate = KL(q(z|x) ‖ p(z))  [nats]", grid=0.15,
                              tip="Each run's validation rate (KL) and distortion (reconstruction). Grey lines "
                                  "join points of equal negative ELBO; high β sits top-left (low rate, blurry), "
                                  "low β bottom-right (high rate, sharp).")
        self.iso_curves: list[pg.PlotCurveItem] = []
        self.iso_labels: list[pg.TextItem] = []
        self.iso_levels = np.array([])
        self.title = QLabel("<b>Rate–distortion plane</b> (validation, nats per image)")
        self.title.setWordWrap(True)    # a row of its own, wrapping: a narrow page never scrolls sideways
        self.show_paths = check("paths", "Show how each run moved across the plane, epoch by epoch.",
                                self._schedule, checked=True)
        self.show_iso = check("equal −ELBO lines", "Lines where rate + distortion (the β = 1 negative ELBO) is "
                              "constant: a run on a lower line is a better density model whatever its β.",
                              self._schedule, checked=True)
        self.export_png_button = export_button(self, "png", "Save the rate–distortion plane", "rate-distortion.png",
                                               self.export_png, "Save the plane as a PNG picture.")
        self.export_csv_button = export_button(self, "csv", "Save rate and distortion", "rate-distortion.csv",
                                               self.export_csv,
                                               "Save every run's rate and distortion per epoch as CSV.")
        self.readout = note_label()
        self.readout.setTextInteractionFlags(Qt.TextSelectableByMouse)
        column(self.title, row(STRETCH, self.show_paths, self.show_iso, self.export_csv_button,
                               self.export_png_button),
               (self.plot, 1), self.readout, parent=self)
        self._timer = make_timer(self, self.REDRAW_MS, self.redraw)
        self.user_view = False     # the person zoomed or panned: runs added later leave their view alone
        item = self.plot.getPlotItem()
        item.vb.sigRangeChangedManually.connect(self._on_user_view)
        item.autoBtn.clicked.connect(self.fit)      # pyqtgraph's "A" corner button: frame the runs again

    # -- inputs --------------------------------------------------------------------------------------
    def add_run(self, key: str, beta: float, history: list[dict], label: str | None = None,
                final: tuple[float, float] | None = None) -> None:
        """A run on the plane (again: its entry is replaced). ``key``: its folder, the same run however
        the path is spelled. ``final``: the run's (rate, distortion) measured after training (e.g. the
        lesson's many-sample evaluation) places its point, instead of its last epoch's."""
        key = _key(key)
        rate, dist = rate_distortion(history)
        entry = self.runs.get(key)
        if entry is None:
            color = beta_color(beta)
            path = self.plot.plot([], [], pen=pg.mkPen((*color, 110), width=1.5))
            point = pg.ScatterPlotItem(size=13, pen=pg.mkPen((40, 40, 40), width=1), brush=pg.mkBrush(color),
                                       hoverable=True, tip=lambda x, y, data: data or "")
            point.sigClicked.connect(self._on_point_clicked)
            self.plot.addItem(point)
            text = _label_item()
            self.plot.addItem(text)
            entry = {"path_item": path, "point_item": point, "label_item": text}
            self.runs[key] = entry
        entry.update(beta=float(beta), label=label or f"β = {beta:g}", rate=rate, dist=dist,
                     history=list(history), final=final)
        entry["label_item"].setText(entry["label"])
        self._schedule()

    def include_points(self, rates, distortions) -> None:
        """Points drawn by an owner on this plot (e.g. each seed's runs) that the view must also show."""
        self.extra = (np.asarray(rates, np.float64).ravel(), np.asarray(distortions, np.float64).ravel())
        self._schedule()

    def labels(self) -> list[str]:
        """The labels on the plane: the runs' by β, then the run being trained."""
        names = [e["label"] for e in sorted(self.runs.values(), key=lambda e: e["beta"])]
        return names + ([self.live["label"]] if self.live is not None else [])

    def markers(self, key: str) -> int:
        """How many markers ``key``'s run has on the plane (one: its last epoch, or its final point)."""
        return len(self.runs[_key(key)]["point_item"].points())

    def remove_run(self, key: str) -> None:
        entry = self.runs.pop(_key(key), None)
        if entry:
            for item in ("path_item", "point_item", "label_item"):
                self.plot.removeItem(entry[item])
            self._schedule()

    def _on_user_view(self, *args) -> None:
        self.user_view = True

    def fit(self, *args) -> None:
        """Frame every run again (and keep doing so as runs are added)."""
        self.user_view = False
        self._schedule()

    def clear_runs(self) -> None:
        self.user_view = False
        self.extra = (np.zeros(0), np.zeros(0))
        for key in list(self.runs):
            self.remove_run(key)
        self.stop_live()

    def start_live(self, beta: float, label: str | None = None) -> None:
        """A new trajectory for the run being trained (replacing the previous live one)."""
        self.stop_live()
        color = beta_color(beta)
        label = label or f"training (β = {beta:g})"
        curve = self.plot.plot([], [], pen=pg.mkPen((200, 30, 30), width=2.5), symbol="o", symbolSize=7,
                               symbolBrush=color, symbolPen=pg.mkPen((200, 30, 30)))
        head = pg.ScatterPlotItem(size=18, symbol="star", pen=pg.mkPen((200, 30, 30), width=1.5),
                                  brush=pg.mkBrush(color))
        self.plot.addItem(head)
        text = _label_item(label, (200, 30, 30))
        self.plot.addItem(text)
        self.live = {"beta": float(beta), "label": label, "rows": [], "curve": curve, "head": head,
                     "label_item": text}
        self._schedule()

    def add_live_epoch(self, row: dict) -> None:
        if self.live is None:
            self.start_live(row.get("beta", 1.0))
        self.live["rows"].append(dict(row))
        self._schedule()

    def set_live_beta(self, beta: float) -> None:
        if self.live is not None:
            self.live["beta"] = float(beta)

    def stop_live(self) -> None:
        if self.live is not None:
            for item in ("curve", "head", "label_item"):
                self.plot.removeItem(self.live[item])
            self.live = None
            self._schedule()

    # -- drawing --------------------------------------------------------------------------------------------
    def _schedule(self, *args) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def all_points(self) -> tuple[np.ndarray, np.ndarray]:
        paths = self.show_paths.isChecked()      # hidden paths do not widen the view
        rs, ds = [self.extra[0]], [self.extra[1]]
        for e in self.runs.values():
            x, y = self._point(e)
            rs += [e["rate"], np.asarray(x)] if paths else [np.asarray(x)]
            ds += [e["dist"], np.asarray(y)] if paths else [np.asarray(y)]
        if self.live is not None:
            r, d = rate_distortion(self.live["rows"])
            rs.append(r)
            ds.append(d)
        return np.concatenate(rs), np.concatenate(ds)

    @staticmethod
    def _point(e: dict):
        """A run's point: its final (rate, distortion) when given, else its last epoch's."""
        return (e["rate"][-1:], e["dist"][-1:]) if e["final"] is None else ([e["final"][0]], [e["final"][1]])

    @Slot()
    def redraw(self) -> None:
        paths = self.show_paths.isChecked()
        for e in self.runs.values():
            e["path_item"].setData(e["rate"] if paths else [], e["dist"] if paths else [])
        lines = []
        if self.live is not None:
            r, d = rate_distortion(self.live["rows"])
            self.live["curve"].setData(r, d)
            self.live["head"].setData(r[-1:], d[-1:])
            self.live["label_item"].setVisible(len(r) > 0)
            if len(r):
                self.live["label_item"].setPos(float(r[-1]), float(d[-1]))
                lines.append(f"training: epoch {len(r)}, rate {r[-1]:.2f}, distortion {d[-1]:.2f}, "
                             f"−ELBO {r[-1] + d[-1]:.2f} nats")
        for e in self.runs.values():
            x, y = self._point(e)
            # one marker: the last epoch (or the final point); hovered, it says what its rate buys
            e["point_item"].setData(x, y, data=[point_tip(e, float(x[-1]), float(y[-1]))] * len(x))
            e["label_item"].setVisible(len(x) > 0)
            if len(x):
                e["label_item"].setPos(float(x[-1]), float(y[-1]))
        self._draw_iso()
        self.readout.setText(" · ".join(lines) if lines else
                             f"{len(self.runs)} run{'s' if len(self.runs) != 1 else ''} on the plane")

    def _draw_iso(self) -> None:
        for item in self.iso_curves + self.iso_labels:
            self.plot.removeItem(item)
        self.iso_curves, self.iso_labels = [], []
        r, d = self.all_points()
        if r.size == 0:
            self.iso_levels = np.array([])
            return
        # the view: the data with a margin, not the full lines
        pad_r = 0.08 * (float(r.max()) - float(r.min()) + 1.0)
        pad_d = 0.08 * (float(d.max()) - float(d.min()) + 1.0)
        label_room = 0.25 * (float(r.max()) - float(r.min()) + 1.0)    # the last run's label, right of it
        x0, x1 = max(0.0, float(r.min()) - pad_r), float(r.max()) + max(pad_r, label_room)
        y0, y1 = float(d.min()) - pad_d, float(d.max()) + pad_d
        if self.user_view:        # the person's view stays; the lines fill it
            (x0, x1), (y0, y1) = self.plot.getPlotItem().vb.viewRange()
        else:
            self.plot.setXRange(x0, x1, padding=0)
            self.plot.setYRange(y0, y1, padding=0)
        if not self.show_iso.isChecked():
            self.iso_levels = np.array([])
            return
        self.iso_levels = np.array([lv for lv in equal_elbo_levels(r, d, n=5) if x0 + y0 < lv < x1 + y1])
        pen = pg.mkPen((150, 150, 150), width=1, style=Qt.DashLine)
        for level in self.iso_levels:
            xs, ys = equal_elbo_line(level, x1 * 2 + 1)
            curve = pg.PlotCurveItem(xs, ys, pen=pen)
            curve.setZValue(-10)
            self.plot.addItem(curve)
            self.iso_curves.append(curve)
            # the label sits where the line meets the top edge (left part) or the right edge (lower
            # part)
            xt, yr_ = level - y1, level - x1
            if x0 <= xt <= x0 + 0.7 * (x1 - x0):
                pos, anchor = (xt, y1), (0.0, 0.0)
            elif y0 <= yr_ <= y0 + 0.7 * (y1 - y0):
                pos, anchor = (x1, yr_), (1.0, 1.0)
            else:
                continue
            text = pg.TextItem(f"−ELBO {level:g}", color=(110, 110, 110), anchor=anchor)
            text.setPos(*pos)
            text.setZValue(-9)
            self.plot.addItem(text)
            self.iso_labels.append(text)

    @Slot(object, object)
    def _on_point_clicked(self, item, points, *args) -> None:
        for key, e in self.runs.items():
            if e["point_item"] is item:
                self.runClicked.emit(key)
                return

    def click_run(self, key: str) -> None:
        """What a click on a run's point does."""
        item = self.runs[_key(key)]["point_item"]
        self._on_point_clicked(item, item.points())

    # -- export --------------------------------------------------------------------------------------------
    def csv_rows(self) -> list[dict]:
        rows = []
        for key, e in self.runs.items():
            for i, (r, d) in enumerate(zip(e["rate"], e["dist"]), start=1):
                rows.append({"run": e["label"], "beta": e["beta"], "epoch": i, "rate_kl": float(r),
                             "distortion_recon": float(d), "neg_elbo": float(r + d), "path": key})
        if self.live is not None:
            r, d = rate_distortion(self.live["rows"])
            for i, (a, b) in enumerate(zip(r, d), start=1):
                rows.append({"run": self.live["label"], "beta": self.live["beta"], "epoch": i, "rate_kl": float(a),
                             "distortion_recon": float(b), "neg_elbo": float(a + b), "path": ""})
        return rows

    def csv_text(self) -> str:
        return rows_to_csv(self.csv_rows(), ["run", "beta", "epoch", "rate_kl", "distortion_recon", "neg_elbo",
                                             "path"])

    def export_csv(self, path) -> bool:
        return save_csv(self.csv_text(), path)

    def export_png(self, path, width: int = 1200) -> bool:
        self.redraw()
        return save_plot_png(self.plot, path, width)

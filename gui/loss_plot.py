"""`LossPlot`: total, reconstruction and KL loss, train and validation, live.

Per batch: the engine reports running means of the epoch; the per-batch value is recovered
from consecutive means and smoothed with an exponential moving average. Per epoch: the
epoch means (train) and the validation means. Data arrive at any rate; the curves are
redrawn by a timer (5 Hz: each redraw and paint costs the training ~10 ms of CPU on two cores,
and 10 Hz looked no more alive) with ``setData`` on items that exist from the start.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QGraphicsItem, QLabel, QWidget

from gui.log_axis import LegibleAxis
from gui.theme import colors
from gui.widgets import check, column, make_plot, make_timer, row

__all__ = ["LossPlot"]

KEYS = ("loss", "reconstruction_loss", "kl_loss")
NAMES = {"loss": "total", "reconstruction_loss": "reconstruction", "kl_loss": "KL"}
COLORS = {"loss": (40, 40, 40), "reconstruction_loss": (31, 119, 180), "kl_loss": (230, 110, 20)}
END_MARGIN = 0.03   # x axis past the planned epochs, as a fraction of them (room for the end marker)


class LossPlot(QWidget):
    REDRAW_MS = 200
    MAX_SYMBOLS = 200   # epoch markers up to this many epochs; lines only after that

    def __init__(self, parent=None, ema: float = 0.9):
        super().__init__(parent)
        self.ema = ema
        # the log axis shows few labels when the plot is short (gui/log_axis.py)
        self.plot = make_plot(left=("loss per image", "nats"), bottom="epoch", grid=0.2,
                              axis_items={"left": LegibleAxis("left")})
        # an hour of training is 10^5 batch points: draw about two per pixel column, only those in view
        self.plot.getPlotItem().setDownsampling(auto=True, mode="peak")
        self.plot.getPlotItem().setClipToView(True)
        for side in ("left", "bottom"):
            # The axes draw the grid across the whole plot, so every curve update repainted them with
            # all their tick labels; cached as pixmaps, they re-render only when the range moves.
            self.plot.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.batch_curves, self.epoch_curves, self.val_curves = {}, {}, {}
        for key in KEYS:
            c = COLORS[key]
            self.batch_curves[key] = self.plot.plot([], [], pen=pg.mkPen((*c, 150), width=1.5))
            self.epoch_curves[key] = self.plot.plot([], [], pen=pg.mkPen(c, width=2), symbol="o", symbolSize=6,
                                                    symbolBrush=c, symbolPen=None)
            self.val_curves[key] = self.plot.plot([], [], pen=pg.mkPen(c, width=2, style=Qt.DashLine),
                                                  symbol="s", symbolSize=6, symbolBrush="w", symbolPen=c)
        self.log_y = check("log y", "Logarithmic loss axis: shows the small KL term and the large "
                           "reconstruction term together.", self.set_log_y)
        swatches = " &nbsp; ".join(f'<span style="color: rgb{COLORS[k]}; font-weight: bold;">&#9473;</span>&nbsp;'
                                   f'{NAMES[k]}' for k in KEYS)
        self.legend = QLabel(f"{swatches} &nbsp;&nbsp;<span style='color:{colors().note}'>thin: batches (smoothed) · "
                             f"solid ●: train epochs · dashed □: validation</span>")
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setToolTip("Total = reconstruction + β·KL, per image, in nats.")
        self.readout = QLabel("")
        self.readout.setTextInteractionFlags(Qt.TextSelectableByMouse)
        column(row("<b>Loss</b>", (self.readout, 1), self.log_y), self.legend, (self.plot, 1), parent=self)
        self.markers: list[pg.InfiniteLine] = []
        self.planned_epochs: int | None = None   # the run's length, when known: the x axis ends there
        # The view follows the data in steps (see _follow) instead of pyqtgraph's auto-range, which
        # moved both axes on every redraw and made each repaint re-render every tick label (~20 ms).
        self.following = True
        vb = self.plot.getPlotItem().getViewBox()
        vb.disableAutoRange()
        vb.sigRangeChangedManually.connect(self._user_moved_view)
        self.plot.getPlotItem().autoBtn.clicked.connect(lambda *_: self.follow_data(True))
        self.clear()
        self.log_y.setChecked(True)   # the KL term is ~1% of the reconstruction term: log shows both
        self.timer = make_timer(self, self.REDRAW_MS, self.redraw, single_shot=False)
        self.timer.start()

    # -- data in -----------------------------------------------------------------------------
    def clear(self) -> None:
        # per-batch series grow for hours (hundreds of thousands of points): numpy buffers, not lists
        self.batch_x = Series()
        self.batch_y = {k: Series() for k in KEYS}
        self.epoch_x: list[float] = []
        self.epoch_y = {k: [] for k in KEYS}
        self.val_y = {k: [] for k in KEYS}
        self._epochs_drawn = None
        self._ema_state = {k: None for k in KEYS}
        self._prev_mean = {k: 0.0 for k in KEYS}
        self._prev_step = 0
        for m in self.markers:
            self.plot.removeItem(m)
        self.markers = []
        self.readout.setText("")
        self._view = None          # (x_max, y_lo, y_hi) shown while following
        self.planned_epochs = None
        self.follow_data(True)
        self._dirty = True

    @Slot(object)
    def on_train_event(self, ev) -> None:
        """A training's events (latentlab.events): its length, each batch, each finished epoch."""
        from latentlab.events import BatchEnd, EpochEnd, Started

        if isinstance(ev, BatchEnd):
            self.add_batch(ev.epoch, ev.step, ev.steps, ev.logs)
        elif isinstance(ev, EpochEnd):
            self.add_epoch(ev.history[-1] if ev.history else {"epoch": ev.epoch, **ev.logs})
        elif isinstance(ev, Started):
            self.planned_epochs = ev.epochs

    def add_batch(self, epoch: int, step: int, steps: int, logs: dict) -> None:
        """``epoch`` 0-based, ``step`` 1-based, ``logs`` running means of the epoch."""
        if step == 1 or step <= self._prev_step:
            self._prev_mean = {k: 0.0 for k in KEYS}
            self._prev_step = 0
        for k in KEYS:
            mean = logs.get(k)
            if mean is None or not math.isfinite(mean):
                continue
            # value of this batch from consecutive running means (equal-size batches)
            value = step * mean - self._prev_step * self._prev_mean[k]
            self._prev_mean[k] = mean
            prev = self._ema_state[k]
            smoothed = value if prev is None else self.ema * prev + (1 - self.ema) * value
            self._ema_state[k] = smoothed
            self.batch_y[k].append(smoothed)
        self._prev_step = step
        self.batch_x.append(epoch + step / max(steps, 1))
        n = len(self.batch_x)
        for k in KEYS:  # keep lengths equal even if a key was missing
            while len(self.batch_y[k]) < n:
                self.batch_y[k].append(self.batch_y[k][-1] if self.batch_y[k] else float("nan"))
        self._dirty = True

    def add_epoch(self, row: dict) -> None:
        """One history row (epoch 1-based count, train and val_ keys)."""
        self.epoch_x.append(float(row.get("epoch", len(self.epoch_x) + 1)))
        for k in KEYS:
            self.epoch_y[k].append(float(row.get(k, float("nan"))))
            self.val_y[k].append(float(row.get("val_" + k, float("nan"))))
        parts = [f"{NAMES[k]} {row[k]:.2f}" for k in KEYS if k in row]
        if "val_loss" in row:
            parts.append(f"val total {row['val_loss']:.2f}")
        self.readout.setText(f"epoch {int(self.epoch_x[-1])}: " + ", ".join(parts) + " nats")
        self._dirty = True

    def set_history(self, history: list[dict], config=None) -> None:
        """A run's epochs (an opened run, or one about to be continued): the epoch axis fits them, and a
        marker stands where β changed (the engine's `beta_changes`; with the run's ``config``, a change at
        its first epoch too)."""
        from latentlab.config import TrainConfig
        from latentlab.runs.continuing import beta_changes

        self.clear()
        self.planned_epochs = len(history) or None
        for epoch_row in history:
            self.add_epoch(epoch_row)
        if config is None and history:   # no config: β changes after the first epoch only
            config = TrainConfig(beta=float(history[0].get("beta_target", history[0].get("beta", 1.0))))
        for epoch, beta in beta_changes(config, history) if config is not None else []:
            self.add_beta_marker(epoch - 1, beta)
        self.redraw()

    def add_beta_marker(self, x: float, beta: float) -> None:
        line = pg.InfiniteLine(pos=x, angle=90, movable=False,
                               pen=pg.mkPen((150, 0, 150), width=1, style=Qt.DotLine),
                               label=f"β={beta:g}", labelOpts={"position": 0.92, "color": (150, 0, 150),
                                                              "fill": (255, 255, 255, 180)})
        self.plot.addItem(line)
        self.markers.append(line)

    # -- drawing -------------------------------------------------------------------------------
    @Slot(bool)
    def set_log_y(self, on: bool) -> None:
        if self.log_y.isChecked() != on:
            self.log_y.setChecked(on)
            return
        self.plot.setLogMode(y=on)
        self._view = None
        self._dirty = True
        self.redraw()

    def _values(self, ys):
        a = ys.values() if isinstance(ys, Series) else np.asarray(ys, dtype=np.float64)
        if self.log_y.isChecked():
            a = np.where(a > 0, a, np.nan)  # log of ≤ 0 is undefined: leave a gap
        return a

    @Slot()
    def redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        bx = self.batch_x.values()
        ex = np.asarray(self.epoch_x, dtype=np.float64)
        epochs_changed = self._epochs_drawn != (len(ex), self.log_y.isChecked())
        for k in KEYS:
            self.batch_curves[k].setData(bx, self._values(self.batch_y[k]), connect="finite")
            if epochs_changed:   # symbols are costly to lay out: only when an epoch was added
                self.epoch_curves[k].setData(ex, self._values(self.epoch_y[k]), connect="finite",
                                             symbol="o" if len(ex) <= self.MAX_SYMBOLS else None)
                self.val_curves[k].setData(ex, self._values(self.val_y[k]), connect="finite",
                                           symbol="s" if len(ex) <= self.MAX_SYMBOLS else None)
        self._epochs_drawn = (len(ex), self.log_y.isChecked())
        if self.following:
            self._follow(bx, ex)

    # -- the view ----------------------------------------------------------------------------
    def follow_data(self, on: bool = True) -> None:
        """Keep the data in view (the default; again after a new run or the "A" button)."""
        self.following = on
        if on:
            self.plot.getPlotItem().getViewBox().disableAutoRange()
            self._view = None
            self._dirty = True

    def _user_moved_view(self, *args) -> None:
        self.following = False   # the user zoomed or panned: leave the view alone until "A"

    def _follow(self, bx, ex) -> None:
        """Move the view only when the data leave it or use under half of it: x to a round number
        of epochs ≥ 1.25× the last one (when it comes within 10 % of the edge; at most the run's planned
        epochs plus a small margin), y to the data's span
        plus a margin (log10 on a log axis)."""
        x_last = max([float(v[-1]) for v in (bx, ex) if len(v)] or [0.0])
        log = self.log_y.isChecked()
        bounds = [self.batch_y[k].bounds(log) for k in KEYS]
        ys = np.concatenate([np.asarray(c, np.float64) for k in KEYS for c in (self.epoch_y[k], self.val_y[k])])
        ys = ys[np.isfinite(ys) & ((ys > 0) if log else True)]
        lows = [b[0] for b in bounds if b] + ([float(ys.min())] if len(ys) else [])
        highs = [b[1] for b in bounds if b] + ([float(ys.max())] if len(ys) else [])
        if x_last <= 0 or not lows:
            return
        lo, hi = min(lows), max(highs)
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
        x_max, y_lo, y_hi = self._view or (0.0, math.inf, -math.inf)
        if 1.1 * x_last > x_max:               # keep some room ahead of the newest point
            x_max = _nice_ceil(1.25 * x_last)
            if self.planned_epochs and x_last <= self.planned_epochs:   # a hair past the end: the
                x_max = min(x_max, self.planned_epochs * (1 + END_MARGIN))   # last epoch's marker shows whole
        if lo < y_lo or hi > y_hi or (hi - lo) < 0.5 * (y_hi - y_lo):
            span = max(hi - lo, 0.05 if log else 1e-3 * max(abs(hi), 1.0))
            y_lo, y_hi = lo - 0.08 * span, hi + 0.08 * span
        if (x_max, y_lo, y_hi) != self._view:
            self._view = (x_max, y_lo, y_hi)
            self.plot.getPlotItem().getViewBox().setRange(xRange=(0.0, x_max), yRange=(y_lo, y_hi), padding=0)

    def view_range(self):
        """((x0, x1), (y0, y1)) shown now (y in log10 on a log axis)."""
        return tuple(tuple(r) for r in self.plot.getPlotItem().getViewBox().viewRange())

    def point_counts(self) -> dict:
        """How many points each kind of curve shows (for tests and status)."""
        return {"batches": len(self.batch_curves["loss"].xData if self.batch_curves["loss"].xData is not None
                               else []),
                "epochs": len(self.epoch_curves["loss"].xData if self.epoch_curves["loss"].xData is not None
                              else [])}


class Series:
    """A growing float64 array (amortised O(1) append) that keeps its finite min/max and its
    smallest positive value, so a redraw never walks the whole history in Python."""

    def __init__(self):
        self._buf = np.empty(256, np.float64)
        self._n = 0
        self._min = self._max = self._min_pos = None

    def append(self, v: float) -> None:
        if self._n == len(self._buf):
            self._buf = np.concatenate([self._buf, np.empty(len(self._buf), np.float64)])
        v = float(v)
        self._buf[self._n] = v
        self._n += 1
        if math.isfinite(v):
            self._min = v if self._min is None else min(self._min, v)
            self._max = v if self._max is None else max(self._max, v)
            if v > 0:
                self._min_pos = v if self._min_pos is None else min(self._min_pos, v)

    def bounds(self, positive: bool = False):
        """(min, max) of the finite values (only the positive ones with ``positive``), or None."""
        lo = self._min_pos if positive else self._min
        return None if lo is None else (lo, self._max)

    def values(self) -> np.ndarray:
        return self._buf[:self._n]

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        return self.values()[i]

    def __bool__(self) -> bool:
        return self._n > 0


def _nice_ceil(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ x."""
    if x <= 0:
        return 1.0
    k = math.floor(math.log10(x))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * 10 ** k >= x - 1e-12:
            return m * 10 ** k
    return 10.0 ** (k + 1)

"""`PointCloud`: many coloured points (10^5 and more) as one light pyqtgraph item that pans, zooms and
hovers at screen rate.

pyqtgraph's ``ScatterPlotItem`` spends about as long in Python per paint as Qt spends drawing (a
100,000-point paint took ~26 ms here: 12 ms in ``drawPixmapFragments``, the rest masks, stacks and
style look-ups), and it draws every point again on every frame of a pan. This item keeps only what a
latent map needs:

- one round stamp per class, pre-rendered into an atlas; the points in a fixed shuffled order (no class
  is buried under the class drawn after it); coordinates mapped with the painter's transform in numpy
  and handed to Qt as one fragment array;
- where more points are visible than there are pixels to show them, only the last point drawn in each
  2×2-pixel cell is drawn (it hides the ones below it in any case);
- the dots are drawn into an image a margin larger than the view, and while the view moves that image is
  drawn moved and scaled: a pan within the margin is exact, a zoom shows the dots scaled for at most
  `REFRESH_S` before they are drawn again at their size (and again once the view rests).
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import internals
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap, QTransform

__all__ = ["PointCloud", "point_size"]

DEDUP_ABOVE = 20_000   # visible points above which one per 2×2-pixel cell is drawn
CELL = 2.0             # pixels
REFRESH_S = 0.1        # while the view zooms, the dots are drawn again at their size at least this often
MARGIN = 0.25          # the image of the dots reaches this fraction of the view beyond each edge


def point_size(n: int) -> float:
    """The dot's diameter in pixels for ``n`` points: smaller as they crowd (they stay separable)."""
    return 7.0 if n <= 5_000 else 5.0 if n <= 30_000 else 4.0


class PointCloud(pg.GraphicsObject):
    """``set_data(xy, color_index, colors)``: points (N, 2) in view units, each drawn in
    ``colors[color_index[i]]`` (RGB tuples)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.xy = np.zeros((0, 2), np.float32)
        self.color_index = np.zeros(0, np.int32)
        self.colors: list[tuple[int, int, int]] = []
        self.size = 7.0
        self._atlas: QPixmap | None = None
        self._atlas_key = None
        self._order = np.zeros(0, np.int64)
        self._bounds = QRectF()
        self._frags = internals.PrimitiveArray(QPainter.PixmapFragment, 10)
        self.drawn = 0          # points the last full drawing drew (after culling and thinning)
        self.renders = 0        # full drawings so far (the other paints reused the image)
        self._cache = None      # (QImage, transform it was drawn with, margin px, key)
        self._cache_time = 0.0
        self._refresh = QTimer()
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(int(REFRESH_S * 1000))
        self._refresh.timeout.connect(self.update)

    # -- data ---------------------------------------------------------------------------------------
    def set_data(self, xy, color_index, colors) -> None:
        xy = np.asarray(xy, np.float32).reshape(-1, 2)
        n = len(xy)
        if n != len(self._order):   # a fixed shuffle per size: the same points keep their order
            self._order = np.random.default_rng(0).permutation(n)
        self.xy = np.ascontiguousarray(xy[self._order])
        ci = np.zeros(n, np.int32) if color_index is None else np.asarray(color_index, np.int32)
        self.color_index = np.clip(ci, 0, max(len(colors) - 1, 0))[self._order]
        self.colors = [tuple(int(v) for v in c[:3]) for c in colors]
        self.size = point_size(n)
        self._cache = None
        self.prepareGeometryChange()
        if n:
            lo, hi = self.xy.min(axis=0), self.xy.max(axis=0)
            self._bounds = QRectF(float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
        else:
            self._bounds = QRectF()
        self.update()

    def indices(self) -> np.ndarray:
        """Row of ``xy`` as given to `set_data` for each point in drawing order."""
        return self._order

    # -- geometry ------------------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        if self._bounds.isNull() and not len(self.xy):
            return QRectF()
        # the dots stick out of the data's rectangle by their radius in pixels
        px, py = self.pixelWidth(), self.pixelHeight()
        r = self.size
        return self._bounds.adjusted(-r * px, -r * py, r * px, r * py)

    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()

    def dataBounds(self, ax, frac=1.0, orthoRange=None):
        if not len(self.xy):
            return None, None
        v = self.xy[:, ax]
        return float(v.min()), float(v.max())

    # -- drawing -------------------------------------------------------------------------------------
    def _stamps(self, dpr: float) -> QPixmap:
        """One antialiased dot per colour, side by side (outlined in white while they are large)."""
        key = (tuple(self.colors), self.size, dpr)
        if self._atlas is not None and self._atlas_key == key:
            return self._atlas
        side = int(np.ceil((self.size + 2) * dpr))
        atlas = QPixmap(side * max(len(self.colors), 1), side)
        atlas.fill(Qt.transparent)
        p = QPainter(atlas)
        p.setRenderHint(QPainter.Antialiasing)
        outline = self.size >= 6
        p.setPen(QPen(QColor(255, 255, 255, 200), 0.8 * dpr) if outline else Qt.NoPen)
        d = self.size * dpr
        for k, c in enumerate(self.colors):
            p.setBrush(QColor(*c, 230))
            p.drawEllipse(QPointF(k * side + side / 2, side / 2), d / 2, d / 2)
        p.end()
        self._atlas, self._atlas_key = atlas, key
        return atlas

    def visible(self, transform, width: float, height: float) -> np.ndarray:
        """Indices (into ``xy``, drawing order) of the points a paint with ``transform`` (view units → pixels,
        no rotation) on ``width`` × ``height`` pixels draws; with ``(px, py)`` their pixel positions."""
        sx, sy, dx, dy = transform.m11(), transform.m22(), transform.dx(), transform.dy()
        px = self.xy[:, 0] * np.float32(sx) + np.float32(dx)
        py = self.xy[:, 1] * np.float32(sy) + np.float32(dy)
        r = self.size
        idx = np.flatnonzero((px > -r) & (px < width + r) & (py > -r) & (py < height + r))
        if len(idx) > DEDUP_ABOVE:
            cols = int((width + 2 * r) / CELL) + 1
            cell = ((py[idx] + r) / CELL).astype(np.int64) * cols + ((px[idx] + r) / CELL).astype(np.int64)
            last = np.full(int(cell.max()) + 1, -1, np.int64)
            np.maximum.at(last, cell, np.arange(len(idx)))   # the last drawn in each cell
            idx = idx[np.sort(last[last >= 0])]
        return idx, px[idx], py[idx]

    def paint(self, p: QPainter, option, widget=None) -> None:
        if not len(self.xy) or self.colors == []:
            self.drawn = 0
            return
        t = p.transform()
        if t.isRotating():   # never in a map (no rotation): draw nothing rather than wrongly
            return
        if widget is None:   # an export into an image: straight into its pixels
            self._draw(p, t, 0.0, 0.0, p.device().width(), p.device().height(), 1.0)
            return
        width, height, dpr = widget.width(), widget.height(), widget.devicePixelRatioF()
        key = (width, height, dpr, self.size)
        cache = self._cache
        now = time.monotonic()
        if cache is not None and cache[3] == key:
            image, t0, margin, _ = cache
            same = all(abs(a - b) < 1e-9 for a, b in ((t.m11(), t0.m11()), (t.m22(), t0.m22())))
            shift_x, shift_y = t.dx() - t0.dx(), t.dy() - t0.dy()
            inside = same and abs(shift_x) <= margin and abs(shift_y) <= margin
            if inside or now - self._cache_time < REFRESH_S:
                # the dots as drawn then, moved (and scaled) to where the view puts them now
                inv, _ = t0.inverted()
                p.setTransform(inv * t)
                p.drawImage(QPointF(-margin, -margin), image)
                if not inside and not self._refresh.isActive():
                    self._refresh.start()   # a zoom: draw them at their size again soon
                return
        margin = max(width, height) * MARGIN
        image = QImage(int((width + 2 * margin) * dpr), int((height + 2 * margin) * dpr),
                       QImage.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(dpr)
        image.fill(Qt.transparent)
        q = QPainter(image)
        self._draw(q, t, margin, margin, width + 2 * margin, height + 2 * margin, dpr)
        q.end()
        self._cache, self._cache_time = (image, QTransform(t), margin, key), now
        self.renders += 1
        p.resetTransform()
        p.drawImage(QPointF(-margin, -margin), image)

    def _draw(self, p: QPainter, t, ox: float, oy: float, width: float, height: float, dpr: float) -> None:
        """Every dot that falls on ``width`` × ``height`` pixels, the view's transform ``t`` shifted by
        (``ox``, ``oy``)."""
        shifted = QTransform(t.m11(), 0.0, 0.0, t.m22(), t.dx() + ox, t.dy() + oy)
        idx, px, py = self.visible(shifted, width, height)
        self.drawn = len(idx)
        if not len(idx):
            return
        atlas = self._stamps(dpr)
        side = atlas.height()
        self._frags.resize(len(idx))
        frags = self._frags.ndarray()
        frags[:, 0] = px
        frags[:, 1] = py
        frags[:, 2] = self.color_index[idx] * side   # source rect in the atlas
        frags[:, 3] = 0.0
        frags[:, 4] = side
        frags[:, 5] = side
        frags[:, 6:10] = [1.0 / dpr, 1.0 / dpr, 0.0, 1.0]
        p.resetTransform()
        p.drawPixmapFragments(*self._frags.drawargs(), atlas)

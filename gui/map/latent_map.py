"""`LatentMap`: the encoded validation images as a scatter coloured by class, over a grid of
images decoded across the visible latent range.

The map is a 2-D plane of the latent space: the latent itself when it has two dimensions;
otherwise either the first two principal components of the data's z_mean (the other
components held at the data mean) or two chosen dimensions with the others held at slider
values. The widget never decodes: it says which z a position means (`z_at`), asks for grids
(``gridRequested``) and reports clicks and hovers; the main window decodes.
"""

from __future__ import annotations

import html
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QScrollArea, QWidget
from superqt import QLabeledDoubleSlider

from gui.image_panel import PixelView, array_to_qimage
from gui.map.point_cloud import PointCloud
from gui.map.prior_layers import PriorLayers
from gui.palette import class_colors
from gui.widgets import STRETCH, as_widget, button, check, column, make_plot, make_timer, note_label, row

__all__ = ["LatentMap"]

MAX_LEGEND = 20
GRID_OPACITY_UNDER_POINTS = 0.9
HOVER_MS = 15                   # previews under the mouse at most this often (~60 a second)
GRID_PAUSE_MS = 40              # a grid is asked for once the view has rested this long...
GRID_PAUSE_DRAGGING_MS = 150    # ... or this long while a drag pans it (each grid competes with the frames)


class LatentMap(QWidget):
    gridRequested = Signal()
    clicked = Signal(object, object)          # z (D,), (x, y) on the map
    hovered = Signal(object, object)          # z (D,), (x, y) on the map
    pointClicked = Signal(int, object)        # dataset index, z_mean (D,)

    MODE_PCA, MODE_DIMS = "PCA of z_mean", "two dimensions"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.latent_dim = 2
        self.z = np.zeros((0, 2), np.float32)
        self.labels = np.zeros(0, np.int32)
        self.indices = np.zeros(0, np.int64)
        self.class_names: list[str] = []
        self.projection = None       # latentlab.model.latent.PCA when mode is PCA
        self.autofit = True
        self._fitted = False         # the first points of a model are fitted
        self.grid_rect = None
        self.mosaic = None
        self.mosaic_tiles = None   # (cols, rows) of the mosaic
        self._hover_xy = None
        self._setting_range = False
        self._units_per_px = None    # the view's scale, kept when the plot is resized

        # -- the plot
        self.plot = make_plot(canvas=True)
        self.plot.setLabel("bottom", "z0")
        self.plot.setLabel("left", "z1")
        self.vb = self.plot.getViewBox()
        self.vb.setAspectLocked(True, ratio=1.0)   # equal units on both axes: square tiles, round clouds
        self.grid_item = pg.ImageItem(axisOrder="row-major")
        self.grid_item.setZValue(-10)
        self.grid_item.setOpacity(GRID_OPACITY_UNDER_POINTS)
        self.plot.addItem(self.grid_item)
        self.points_item = PointCloud()       # one light item for every point (10^5 pan at screen rate)
        self.points_item.setZValue(10)
        self.plot.addItem(self.points_item)
        self.lattice = None                   # the tiles the last grid request covered
        self.click_marker = pg.ScatterPlotItem(size=16, symbol="+", pen=pg.mkPen((220, 0, 0), width=3),
                                               brush=None)
        self.click_marker.setZValue(20)
        self.plot.addItem(self.click_marker)
        self.z_log_var = None              # the points' posteriors' log-variances (N, D), when known
        self.layers = PriorLayers(self.plot)
        self._layers_stale = False         # the layer was off when the points changed: redraw when it is on
        self.plot.scene().sigMouseClicked.connect(self._on_scene_click)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.vb.sigRangeChanged.connect(self._on_range_changed)
        self.vb.sigRangeChangedManually.connect(self._on_manual_range)
        self.vb.sigResized.connect(self._on_resized)

        # -- controls
        self.show_points = check("data", "Show the encoded validation images (z_mean), coloured by class; "
                                 "unchecked, the map is the decoder's manifold alone.", self._apply_visibility,
                                 checked=True)
        self.show_grid = check("decoded grid", "Show images decoded on a grid over the visible part of the map, "
                               "each tile about the image's own size on screen (zoom in for finer steps).",
                               self._apply_visibility, checked=True)
        self.show_prior = check("prior && q(z)", "Show the prior N(0, I) (dashed: 1σ and 2σ), the codes' aggregate "
                                "posterior q(z) (blue: the mixture of every image's q(z|x)) and the holes (red: where "
                                "the prior has mass and q(z) under a tenth of it: prior samples there decode to "
                                "nothing like the data). A clicked image shows its own q(z|x) as red ellipses.",
                                self._apply_visibility, checked=True)
        self.fit_button = button("Fit", "Zoom to every point (F). The view then stays where you put it while training goes on.",
                                 self.fit)
        self.mode = QComboBox()
        self.mode.addItems([self.MODE_PCA, self.MODE_DIMS])
        self.mode.setToolTip("With more than two latent dimensions: show the plane of the first two principal "
                             "components, or two chosen dimensions with the others held at the sliders' values.")
        self.mode.currentIndexChanged.connect(self._on_mode_changed)
        self.x_dim = QComboBox()
        self.y_dim = QComboBox()
        self.x_dim.setToolTip("Latent dimension on the horizontal axis.")
        self.y_dim.setToolTip("Latent dimension on the vertical axis.")
        self.x_dim.currentIndexChanged.connect(self._on_dims_changed)
        self.y_dim.currentIndexChanged.connect(self._on_dims_changed)
        self.preview = PixelView(56)
        self.preview.setFixedSize(72, 72)
        self.preview.setToolTip("Live preview of the image decoded under the mouse.")
        self.preview_label = note_label("hover the map\nfor a live preview")
        self.preview_label.setMinimumWidth(150)
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setToolTip("Classes (the dataset's subfolders) and their colours on the map.")

        self.dim_controls = as_widget(row(self.mode, "x", self.x_dim, "y", self.y_dim))

        self.sliders_box = QWidget()
        self.sliders_layout = QGridLayout(self.sliders_box)
        self.sliders_layout.setContentsMargins(0, 0, 0, 0)
        self.sliders: dict[int, QLabeledDoubleSlider] = {}
        self.sliders_scroll = QScrollArea()
        self.sliders_scroll.setWidgetResizable(True)
        self.sliders_scroll.setWidget(self.sliders_box)
        self.sliders_scroll.setMaximumHeight(110)
        self.sliders_scroll.setToolTip("Values at which the dimensions not shown are held for the grid and clicks.")

        column(row("<b>Latent map</b>", self.dim_controls, STRETCH, self.show_points, self.show_grid, self.show_prior,
                   self.fit_button),
               (self.plot, 1), row(self.preview, self.preview_label, (self.legend, 1)), self.sliders_scroll,
               parent=self)

        self._grid_urgent = False
        self._grid_timer = make_timer(self, GRID_PAUSE_MS, self.gridRequested)
        self._dragging = False       # a mouse button is down on the plot (a pan)
        self.plot.viewport().installEventFilter(self)
        for side in ("left", "bottom"):   # major ticks only: the axes redraw on every frame of a pan
            self.plot.getAxis(side).setStyle(maxTickLevel=0, maxTextLevel=0)
        self._hover_timer = make_timer(self, HOVER_MS, self._emit_hover)
        self._last_hover = 0.0       # time.monotonic() of the last preview
        self.set_latent_dim(2)
        self.vb.setRange(xRange=(-3, 3), yRange=(-3, 3), padding=0)

    # -- configuration -------------------------------------------------------------------------
    def set_latent_dim(self, d: int) -> None:
        d = int(d)
        self.latent_dim = d
        self.z = np.zeros((0, d), np.float32)
        self.labels = np.zeros(0, np.int32)
        self.indices = np.zeros(0, np.int64)
        self.projection = None
        for w in (self.mode, self.x_dim, self.y_dim):
            w.blockSignals(True)
        self.x_dim.clear()
        self.y_dim.clear()
        names = [f"z{i}" for i in range(d)]
        self.x_dim.addItems(names)
        self.y_dim.addItems(names)
        self.x_dim.setCurrentIndex(0)
        self.y_dim.setCurrentIndex(min(1, d - 1))
        self.mode.setCurrentIndex(0 if d != 2 else 1)
        for w in (self.mode, self.x_dim, self.y_dim):
            w.blockSignals(False)
        self.dim_controls.setVisible(d > 2)
        self.vb.setAspectLocked(d >= 2, ratio=1.0)   # a 1-D latent has no second axis to keep equal
        for s in self.sliders.values():
            s.deleteLater()
        self.sliders = {}
        while self.sliders_layout.count():
            item = self.sliders_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        for i in range(d):
            label = QLabel(f"z{i}")
            slider = QLabeledDoubleSlider(Qt.Horizontal)
            slider.setRange(-4.0, 4.0)
            slider.setValue(0.0)
            slider.setDecimals(2)
            slider.setToolTip(f"Value at which z{i} is held when it is not on an axis.")
            slider.valueChanged.connect(self._on_slider)
            row, col = divmod(i, 2)
            self.sliders_layout.addWidget(label, row, 2 * col)
            self.sliders_layout.addWidget(slider, row, 2 * col + 1)
            self.sliders[i] = slider
        self.clear_grid()
        self.click_marker.setData([], [])
        self.z_log_var = None
        self.layers.clear()
        self._update_scatter()
        self._update_controls()
        self.autofit = True
        self._fitted = False         # the first points of a model are fitted

    def _update_controls(self) -> None:
        dims_mode = self.mode_is_dims()
        self.x_dim.setEnabled(dims_mode)
        self.y_dim.setEnabled(dims_mode)
        shown = set(self.dims()) if dims_mode else set()
        for i, s in self.sliders.items():
            s.setEnabled(i not in shown)
        self.sliders_scroll.setVisible(dims_mode and self.latent_dim > 2)
        if self.latent_dim == 1:
            self.plot.setLabel("bottom", "z0")
            self.plot.setLabel("left", "(unused: latent size 1)")
        elif dims_mode:
            x, y = self.dims()
            self.plot.setLabel("bottom", f"z{x}")
            self.plot.setLabel("left", f"z{y}")
        else:
            ev = getattr(self.projection, "explained", None)
            if ev is not None and len(ev) == 2:
                self.plot.setLabel("bottom", f"PC1 of z_mean ({ev[0]:.0%} of variance)")
                self.plot.setLabel("left", f"PC2 of z_mean ({ev[1]:.0%})")
            else:
                self.plot.setLabel("bottom", "PC1 of z_mean")
                self.plot.setLabel("left", "PC2 of z_mean")

    def mode_is_dims(self) -> bool:
        return self.latent_dim == 2 or (self.latent_dim > 2 and self.mode.currentText() == self.MODE_DIMS)

    def dims(self) -> tuple[int, int]:
        if self.latent_dim < 2:
            return (0, 0)
        return (self.x_dim.currentIndex(), self.y_dim.currentIndex())

    def set_mode(self, pca: bool) -> None:
        self.mode.setCurrentIndex(0 if pca else 1)

    def set_dims(self, x: int, y: int) -> None:
        self.x_dim.setCurrentIndex(x)
        self.y_dim.setCurrentIndex(y)

    # -- data ----------------------------------------------------------------------------------
    def set_points(self, z_mean: np.ndarray, labels: np.ndarray | None, class_names: list[str],
                   indices: np.ndarray | None = None, z_log_var: np.ndarray | None = None) -> None:
        """The encoded images to show: z_mean (N, D), labels (N; -1 unlabeled), dataset indices, and their
        posteriors' log-variances (N, D) when known (the prior, q(z) and hole layers need them)."""
        z = np.asarray(z_mean, np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            self.set_latent_dim(z.shape[1] if z.ndim == 2 else 2)
        self.z = z
        lv = None if z_log_var is None else np.asarray(z_log_var, np.float32)
        self.z_log_var = lv if lv is not None and lv.shape == z.shape else None
        n = len(z)
        self.labels = np.full(n, -1, np.int32) if labels is None else np.asarray(labels, np.int32)
        self.indices = np.arange(n) if indices is None else np.asarray(indices, np.int64)
        if list(class_names) != self.class_names or not self.legend.text():
            self.class_names = list(class_names)
            self._update_legend()
        self._refresh_projection()
        self._update_scatter()
        if self.autofit and (not self._fitted or not self._all_in_view()):
            self.fit(keep_autofit=True)      # the first points, or codes that spread past the view
        self.request_grid(urgent=False)
        self.update_layers()

    # -- the prior, q(z) and the holes --------------------------------------------------------------
    def plane_frame(self):
        """The map's plane as (components (2, D), centre (D,)): map = (z − centre) @ componentsᵀ; None for a
        1-D latent or a projection not made yet."""
        from latentlab.surgery import plane_axes

        if self.latent_dim < 2:
            return None
        if self.mode_is_dims():
            return plane_axes(self.latent_dim, self.dims())
        if self.projection is None:
            return plane_axes(self.latent_dim, (0, 1))
        return np.asarray(self.projection.components, np.float64), np.asarray(self.projection.mean, np.float64)

    def layer_extent(self) -> tuple[float, float, float, float]:
        """The square the layers cover: the prior's 3.5σ and the codes' range, whichever is larger."""
        p = self.plane(self.z) if len(self.z) else np.zeros((0, 2))
        frame = self.plane_frame()
        centre = (-frame[1]) @ frame[0].T if frame is not None else np.zeros(2)
        lo, hi = centre - 3.5, centre + 3.5
        if len(p):
            lo, hi = np.minimum(lo, p.min(axis=0) - 0.5), np.maximum(hi, p.max(axis=0) + 0.5)
        half = float(max(hi - lo)) / 2
        mid = (lo + hi) / 2
        return (float(mid[0] - half), float(mid[0] + half), float(mid[1] - half), float(mid[1] + half))

    def update_layers(self) -> None:
        """Redraw the prior, q(z) and the holes for the points shown (and the clicked image's ellipses); while
        the layer is switched off, only when it is switched on again."""
        self._layers_stale = not self.show_prior.isChecked()
        if self._layers_stale:
            return
        selected = self.layers.selected
        self.layers.update(self.z, self.z_log_var, self.plane_frame(), self.layer_extent())
        if selected is not None:
            self.select_posterior(selected["index"])

    def select_posterior(self, index: int):
        """Show the q(z|x) of the image with dataset index ``index`` (its ellipses); what was selected or None."""
        rows = np.flatnonzero(self.indices == int(index))
        if not len(rows):
            self.layers.deselect()
            return None
        selected = self.layers.select(int(rows[0]), self.z, self.z_log_var)
        if selected is not None:
            selected["index"] = int(index)
        return selected

    def _refresh_projection(self) -> None:
        from latentlab.model.latent import PCA

        if not self.mode_is_dims() and len(self.z) >= 2:
            self.projection = PCA(self.z)
        elif not self.mode_is_dims():
            self.projection = None
        self._update_controls()

    def show_classes(self, class_names: list[str]) -> None:
        """The classes of the dataset loaded (the legend names them before the first points arrive)."""
        if len(self.z) == 0 and list(class_names) != self.class_names:
            self.class_names = list(class_names)
            self._update_legend()

    def _update_legend(self) -> None:
        groups = self.class_names if self.class_names else ["images (unlabeled)"]
        colors = class_colors(len(groups))
        entries = []
        for i, name in enumerate(groups):
            c = colors[i]
            if i < MAX_LEGEND:
                entries.append(f'<span style="color: rgb{tuple(c)}; font-size: 14pt;">&#9679;</span>'
                               f'&nbsp;{html.escape(name)}')
        if len(groups) > MAX_LEGEND:
            entries.append(f"… {len(groups) - MAX_LEGEND} more classes")
        self.legend.setText(" &nbsp; ".join(entries))
        self._apply_visibility()

    def plane(self, z: np.ndarray) -> np.ndarray:
        """Map coordinates (N, 2) of latent vectors (N, D)."""
        z = np.asarray(z, np.float32).reshape(-1, self.latent_dim)
        if self.latent_dim == 1:
            return np.stack([z[:, 0], np.zeros(len(z), np.float32)], axis=1)
        if self.mode_is_dims():
            x, y = self.dims()
            return z[:, [x, y]]
        if self.projection is None:
            return z[:, :2]
        return self.projection.transform(z)

    def base_z(self) -> np.ndarray:
        return np.array([self.sliders[i].value() for i in range(self.latent_dim)], np.float32)

    def z_at(self, x: float, y: float) -> np.ndarray:
        """The latent vector the map position (x, y) stands for."""
        if self.latent_dim == 1:
            return np.array([x], np.float32)
        if self.mode_is_dims():
            z = self.base_z()
            dx, dy = self.dims()
            z[dx], z[dy] = x, y
            return z
        if self.projection is None:
            z = np.zeros(self.latent_dim, np.float32)
            z[0], z[1] = x, y
            return z
        return self.projection.inverse(np.array([[x, y]]))[0]

    def _update_scatter(self) -> None:
        if not self.legend.text():
            self._update_legend()
        p = self.plane(self.z) if len(self.z) else np.zeros((0, 2), np.float32)
        groups = max(len(self.class_names), 1)
        colour = np.where((self.labels >= 0) & (self.labels < groups), self.labels, 0) if self.class_names \
            else np.zeros(len(p), np.int32)
        self.points_item.set_data(p, colour, class_colors(groups))

    def fit(self, keep_autofit: bool = False) -> None:
        """Zoom to every point, with a margin so none is cut (a model's first points, and the Fit button /
        F). Until the person zooms or pans, the view stays put at each epoch while every point is in it, and
        fits again only when codes spread past it (never jumping for points that stay in view); after a
        zoom or pan it stays where the person put it. With no points yet: the prior's ±3."""
        from latentlab.model.latent import grid_range

        self.autofit = True
        self._fitted = len(self.z) >= 2
        if len(self.z) >= 2:
            lo, hi = grid_range(self.plane(self.z), 0.0, 100.0, margin=0.06)
        else:
            lo, hi = np.array([-3.0, -3.0]), np.array([3.0, 3.0])
        # an unused dimension has almost no spread: show at least one prior unit (σ = 1) per axis
        mid, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 0.5)
        lo, hi = mid - half, mid + half
        if self.latent_dim == 1:
            lo[1], hi[1] = -1.0, 1.0
            self._set_range((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1])))
        else:   # equal units: the data's box, centred, at the scale that shows all of it
            w, h = max(self.vb.width(), 1.0), max(self.vb.height(), 1.0)
            self._set_view(float(mid[0]), float(mid[1]), max((hi[0] - lo[0]) / w, (hi[1] - lo[1]) / h))
        self.request_grid(urgent=not keep_autofit)

    def _set_range(self, x_range, y_range) -> None:
        self._setting_range = True
        try:
            self.vb.setRange(xRange=x_range, yRange=y_range, padding=0)
        finally:
            self._setting_range = False

    def _set_view(self, cx: float, cy: float, units_per_px: float) -> None:
        """Centre the view on (cx, cy) at ``units_per_px`` on both axes: a range that already has the
        plot's aspect, so pyqtgraph's aspect lock keeps it as it is (a range it has to correct makes the
        next pan jump to another zoom)."""
        w, h = max(self.vb.width(), 1.0), max(self.vb.height(), 1.0)
        self._units_per_px = units_per_px
        self._set_range((cx - units_per_px * w / 2, cx + units_per_px * w / 2),
                        (cy - units_per_px * h / 2, cy + units_per_px * h / 2))

    def _all_in_view(self) -> bool:
        if len(self.z) == 0:
            return True
        p = self.plane(self.z)
        (x0, x1), (y0, y1) = self.vb.viewRange()
        return bool(p[:, 0].min() >= x0 and p[:, 0].max() <= x1 and p[:, 1].min() >= y0 and p[:, 1].max() <= y1)

    def _on_resized(self, *args) -> None:
        """The plot changed size: keep its scale and centre (a larger window shows more of the plane, as
        a map does), or the data in view while the view follows them."""
        if self.latent_dim < 2:
            return
        if self.autofit:
            self.fit(keep_autofit=True)
        elif self._units_per_px:
            (x0, x1), (y0, y1) = self.vb.viewRange()
            self._set_view((x0 + x1) / 2, (y0 + y1) / 2, self._units_per_px)

    # -- the decoded grid -------------------------------------------------------------------------
    def request_grid(self, urgent: bool = True) -> None:
        """Ask for a new grid (``gridRequested`` once the view rests: `GRID_PAUSE_MS`). Not urgent: only the data
        changed (new weights, the view following new points); urgent: the user changed the view."""
        self._grid_urgent = self._grid_urgent or urgent
        self._grid_timer.start(GRID_PAUSE_DRAGGING_MS if self._dragging else GRID_PAUSE_MS)

    def eventFilter(self, obj, event) -> bool:
        """Whether a button is down on the plot: while it pans, the grid waits for a longer pause."""
        kind = event.type()
        if kind == QEvent.MouseButtonPress:
            self._dragging = True
        elif kind == QEvent.MouseButtonRelease:
            self._dragging = False
            if self._grid_timer.isActive():
                self._grid_timer.start(GRID_PAUSE_MS)
        return False

    def take_grid_urgency(self) -> bool:
        """Whether any request since the last call was urgent (and forget it)."""
        urgent, self._grid_urgent = self._grid_urgent, False
        return urgent

    def grid_params(self, image_shape) -> dict:
        """What the next grid should be: the tiles (a `latentlab.model.latent.Lattice`) that cover the visible
        range, each drawn about its image's own size in screen pixels, and the plane they lie in."""
        from latentlab.model.latent import Lattice, view_lattice

        (x0, x1), (y0, y1) = self.vb.viewRange()
        h, w = int(image_shape[0]), int(image_shape[1])
        dpr = self.plot.devicePixelRatioF() or 1.0
        lattice = view_lattice((x0, x1), (y0, y1), self.vb.width() or 1.0, w / dpr, aspect=h / w)
        if self.latent_dim == 1:    # one row of tiles along z0, stretched over the height
            lattice = Lattice(lattice.step, lattice.i0, lattice.i1, 0, 0)
            params = {"dims": (0, 1), "base_z": None, "projection": _Line1D()}
        elif self.mode_is_dims():
            params = {"dims": self.dims(), "base_z": self.base_z(), "projection": None}
        else:
            params = {"dims": (0, 1), "base_z": None, "projection": self.projection}
        self.lattice = lattice
        return {"lattice": lattice, **params}

    def tile_shape(self) -> tuple[int, int] | None:
        """(height, width) of one tile of the grid's mosaic (None without a grid)."""
        if self.mosaic is None or getattr(self, "mosaic_tiles", None) is None:
            return None
        cols, rows = self.mosaic_tiles
        return self.mosaic.shape[0] // max(rows, 1), self.mosaic.shape[1] // max(cols, 1)

    def set_grid(self, mosaic: np.ndarray, x_range, y_range, n) -> None:
        """Place a mosaic (row 0 = highest y) so that each tile is centred on its grid point; ``n`` the
        tiles a side, or (cols, rows)."""
        img = np.asarray(mosaic)
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        img = img[::-1]  # the view's y axis points up; image row 0 is drawn at the bottom
        cols, rows = (n, n) if np.ndim(n) == 0 else n
        cw = (x_range[1] - x_range[0]) / max(cols - 1, 1)
        ch = (y_range[1] - y_range[0]) / max(rows - 1, 1) if rows > 1 else cw * img.shape[0] / img.shape[1] * cols
        if self.latent_dim == 1:
            (_, _), (vy0, vy1) = self.vb.viewRange()
            rect = QRectF(x_range[0] - cw / 2, vy0, cw * cols, vy1 - vy0)
        else:
            rect = QRectF(x_range[0] - cw / 2, y_range[0] - ch / 2, cw * cols, ch * rows)
        self.mosaic = np.asarray(mosaic)
        self.mosaic_tiles = (cols, rows)
        self.grid_item.setImage(img, levels=(0.0, 1.0), autoLevels=False)
        self.grid_item.setRect(rect)
        self.grid_rect = rect
        self._apply_visibility()

    def clear_grid(self) -> None:
        self.mosaic = None
        self.grid_item.clear()

    @Slot()
    def _apply_visibility(self) -> None:
        points = self.show_points.isChecked()
        self.points_item.setVisible(points)
        self.legend.setVisible(points)
        # without the points, the grid alone: the decoder's manifold, as the keras.io VAE example draws it
        self.grid_item.setOpacity(GRID_OPACITY_UNDER_POINTS if points else 1.0)
        self.grid_item.setVisible(self.show_grid.isChecked())
        self.layers.set_visible(self.show_prior.isChecked())
        if self.show_prior.isChecked() and self._layers_stale:
            self.update_layers()

    # -- interaction ---------------------------------------------------------------------------------
    def clear_preview(self) -> None:
        self.preview.set_image(None, "")
        self.preview_label.setText("hover the map\nfor a live preview")

    def show_preview(self, image: np.ndarray | None, xy=None) -> None:
        if image is None:
            self.preview.set_image(None, "")
            return
        self.preview.set_image(array_to_qimage(image))
        if xy is not None:
            self.preview_label.setText(f"under the mouse:\n({xy[0]:+.2f}, {xy[1]:+.2f})")

    def view_to_widget(self, x: float, y: float):
        """Widget (plot viewport) pixel position of map point (x, y), for tests and tools."""
        scene = self.vb.mapViewToScene(QPointF(x, y))
        return self.plot.mapFromScene(scene)

    def click_at(self, x: float, y: float) -> None:
        """What a left click at map position (x, y) does."""
        hit = self._point_at(x, y)
        self.click_marker.setData([x], [y])
        if hit is not None:
            idx, zpt = hit
            self.select_posterior(idx)     # its q(z|x) ellipses, before the click is shown
            self.click_marker.setData([float(self.plane(zpt)[0, 0])], [float(self.plane(zpt)[0, 1])])
            self.pointClicked.emit(idx, zpt)
        else:
            self.layers.deselect()
            self.clicked.emit(self.z_at(x, y), (x, y))

    def _point_at(self, x: float, y: float):
        if not self.show_points.isChecked() or not len(self.z):
            return None
        p = self.plane(self.z)
        # within 5 screen pixels
        px = self.vb.viewPixelSize()
        dx = (p[:, 0] - x) / max(px[0], 1e-12)
        dy = (p[:, 1] - y) / max(px[1], 1e-12)
        d2 = dx * dx + dy * dy
        i = int(np.argmin(d2))
        if d2[i] <= 25.0:
            return int(self.indices[i]), self.z[i].copy()
        return None

    def _on_scene_click(self, ev) -> None:
        if ev.button() != Qt.LeftButton or ev.double():
            return
        scene_pos = ev.scenePos()
        if not self.vb.sceneBoundingRect().contains(scene_pos):
            return
        pos = self.vb.mapSceneToView(scene_pos)
        self.click_at(pos.x(), pos.y())

    def _on_mouse_moved(self, scene_pos) -> None:
        if not self.vb.sceneBoundingRect().contains(scene_pos):
            return
        if self._dragging:       # a drag pans the map: the same z stays under the mouse
            return
        pos = self.vb.mapSceneToView(scene_pos)
        self._hover_xy = (pos.x(), pos.y())
        if not self._hover_timer.isActive():   # at once, unless the last preview was under HOVER_MS ago
            wait = HOVER_MS - (time.monotonic() - self._last_hover) * 1000
            if wait <= 0:
                self._emit_hover()
            else:
                self._hover_timer.start(int(wait) + 1)

    @Slot()
    def _emit_hover(self) -> None:
        self._last_hover = time.monotonic()
        if self._hover_xy is not None:
            x, y = self._hover_xy
            self._hover_posterior(x, y)
            self.hovered.emit(self.z_at(x, y), (x, y))

    def _hover_posterior(self, x: float, y: float) -> None:
        """The q(z|x) ellipse of the image under the mouse, when the layers are shown."""
        if self.z_log_var is None or not self.show_prior.isChecked():
            self.layers.hover(None)
            return
        hit = self._point_at(x, y)
        rows = np.flatnonzero(self.indices == hit[0]) if hit is not None else []
        self.layers.hover(int(rows[0]) if len(rows) else None, self.z, self.z_log_var)

    def _on_range_changed(self, *args) -> None:
        # not urgent by itself: the range also moves when the plot is resized (its aspect is locked) or
        # follows the data; the user's pan or zoom comes through _on_manual_range as well
        self.request_grid(urgent=False)

    def _on_manual_range(self, *args) -> None:
        if not self._setting_range:
            self.autofit = False
            (x0, x1), _ = self.vb.viewRange()
            self._units_per_px = (x1 - x0) / max(self.vb.width(), 1.0)
            self.request_grid(urgent=True)

    @Slot()
    def _on_mode_changed(self) -> None:
        self._refresh_projection()
        self._update_scatter()
        self.clear_grid()
        self.fit()
        self.update_layers()

    @Slot()
    def _on_dims_changed(self) -> None:
        if self.latent_dim > 2 and self.x_dim.currentIndex() == self.y_dim.currentIndex():
            other = (self.x_dim.currentIndex() + 1) % self.latent_dim
            self.y_dim.blockSignals(True)
            self.y_dim.setCurrentIndex(other)
            self.y_dim.blockSignals(False)
        self._update_controls()
        self._update_scatter()
        if self.mode_is_dims():
            self.clear_grid()
            self.fit()
        self.update_layers()

    @Slot()
    def _on_slider(self) -> None:
        self.request_grid()


class _Line1D:
    """Projection for a 1-D latent: the map's x is z0, y is ignored."""

    def inverse(self, p, base_z=None):
        p = np.asarray(p, np.float32).reshape(-1, 2)
        return p[:, :1].copy()

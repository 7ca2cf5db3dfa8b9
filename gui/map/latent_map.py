"""`LatentMap`: the encoded validation images as a scatter coloured by class, over a grid of
images decoded across the visible latent range.

The map is a 2-D plane of the latent space: the latent itself when it has two dimensions;
otherwise either the first two principal components of the data's z_mean (the other
components held at the data mean) or two chosen dimensions with the others held at slider
values. The widget never decodes: it says which z a position means (`z_at`), asks for grids
(``gridRequested``) and reports clicks and hovers; the main window decodes.

This module is the map's one door (the window, the map controller and the tests import `LatentMap` from
here); its parts live beside it, one concern each: the plane and its controls (`map_plane`), the view's
fitting and zoom (`map_viewport`), the decoded grid (`map_grid`), hover and click (`map_pointer`), and the
points, legend and prior layers with their check boxes (`map_layers`).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from gui.map.map_grid import GridMixin
from gui.map.map_layers import GRID_OPACITY_UNDER_POINTS, LayersMixin
from gui.map.map_plane import PlaneMixin
from gui.map.map_pointer import PointerMixin
from gui.map.map_viewport import ViewportMixin
from gui.map.point_cloud import PointCloud
from gui.map.prior_layers import PriorLayers
from gui.widgets import STRETCH, button, column, make_plot, row

__all__ = ["LatentMap"]


class LatentMap(PlaneMixin, ViewportMixin, GridMixin, PointerMixin, LayersMixin, QWidget):
    gridRequested = Signal()
    clicked = Signal(object, object)          # z (D,), (x, y) on the map
    hovered = Signal(object, object)          # z (D,), (x, y) on the map
    pointClicked = Signal(int, object)        # dataset index, z_mean (D,)

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

        self._build_plot()
        self._build_layer_controls()
        self.fit_button = button("Fit", "Zoom to every point (F). The view then stays where you put it while training goes on.",
                                 self.fit)
        self._build_plane_controls()
        self._build_preview()
        column(row("<b>Latent map</b>", self.dim_controls, STRETCH, self.show_points, self.show_grid, self.show_prior,
                   self.show_ellipses, self.fit_button),
               (self.plot, 1), row(self.preview, self.preview_label, (self.legend, 1)), self.sliders_scroll,
               parent=self)

        self._init_grid_requests()
        self._init_hover()
        for side in ("left", "bottom"):   # major ticks only: the axes redraw on every frame of a pan
            self.plot.getAxis(side).setStyle(maxTickLevel=0, maxTextLevel=0)
        self.set_latent_dim(2)
        self.vb.setRange(xRange=(-3, 3), yRange=(-3, 3), padding=0)

    def _build_plot(self) -> None:
        """The plot and its items: the grid under the points, the points, the click marker, the prior layers."""
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

    # -- configuration -------------------------------------------------------------------------
    def set_latent_dim(self, d: int) -> None:
        d = int(d)
        self.latent_dim = d
        self.z = np.zeros((0, d), np.float32)
        self.labels = np.zeros(0, np.int32)
        self.indices = np.zeros(0, np.int64)
        self.projection = None
        self._set_plane_dim(d)
        self.clear_grid()
        self.click_marker.setData([], [])
        self.z_log_var = None
        self.layers.clear()
        self._update_scatter()
        self._update_controls()
        self.autofit = True
        self._fitted = False         # the first points of a model are fitted

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

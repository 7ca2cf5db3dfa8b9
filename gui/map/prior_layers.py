"""`PriorLayers`: what the KL term is for, drawn on the latent map under the points.

- the prior N(0, I)'s 1σ and 2σ contours (dashed circles; in a PCA plane the prior's own plane image);
- the aggregate posterior q(z), the mixture of every shown image's q(z|x), as a blue density layer;
- the **holes**: where the prior has mass and q(z) has almost none (under a tenth of the prior's density),
  shaded red — a code drawn there decodes to nothing the data looks like;
- the clicked image's own q(z|x): its 1σ and 2σ ellipses;
- optionally (``sample_toggle``, off by default, a sub-layer of the others) the 1σ ellipses of a fixed sample of
  ``SAMPLE_SIZE`` shown images' q(z|x), redrawn with the codes (live while training: a larger β widens them).

All the numbers come from `latentlab.surgery` (densities, holes, ellipses in a map's plane); this module only
draws them. The map calls `update` with its points' posteriors and its plane, `select` for a clicked image.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt

__all__ = ["PriorLayers", "DENSITY_RGB", "HOLE_RGBA", "GRID_RES", "SAMPLE_SIZE"]

GRID_RES = 64                      # density cells a side
DENSITY_RGB = (40, 90, 200)        # q(z): blue, opaque where it is densest
DENSITY_MAX_ALPHA = 150
HOLE_RGBA = (220, 40, 40, 110)     # a hole: translucent red
PRIOR_PEN = (30, 30, 30)
ELLIPSE_PEN = (220, 0, 0)
MAX_POSTERIORS = 500               # the mixture drawn: at most this many images (a fixed subset; ~0.1 s a redraw)
SAMPLE_SIZE = 100                  # the sample of images whose q(z|x) 1σ ellipses are drawn when asked
SAMPLE_PEN = (150, 30, 160, 150)   # translucent purple: not the clicked image's red
SAMPLE_POINTS = 32                 # points on each sample ellipse


class PriorLayers:
    """The items on ``plot`` (a pyqtgraph PlotWidget), created once and updated in place."""

    def __init__(self, plot):
        self.plot = plot
        self.density_item = pg.ImageItem(axisOrder="row-major")
        self.density_item.setZValue(2)
        self.holes_item = pg.ImageItem(axisOrder="row-major")
        self.holes_item.setZValue(3)
        self.prior_items = [pg.PlotCurveItem(pen=pg.mkPen(PRIOR_PEN, width=w, style=Qt.DashLine))
                            for w in (1.6, 1.0)]                      # 1σ, 2σ
        self.ellipse_items = [pg.PlotCurveItem(pen=pg.mkPen(ELLIPSE_PEN, width=w)) for w in (2.2, 1.2)]
        # the image under the mouse: its 1σ ellipse, dashed
        self.hover_item = pg.PlotCurveItem(pen=pg.mkPen(ELLIPSE_PEN, width=1.5, style=Qt.DashLine))
        self.hover_item.setZValue(15)
        self.hovered = None        # the row whose ellipse is under the mouse
        # a sample of the shown images' q(z|x), one curve broken between ellipses (NaN)
        self.sample_item = pg.PlotCurveItem(pen=pg.mkPen(SAMPLE_PEN, width=1.0), connect="finite")
        self.sample_item.setZValue(5)
        self.sample_item.setVisible(False)
        plot.addItem(self.sample_item)
        self.sample = None         # {"rows", "ellipses"} drawn
        self.sample_on = False
        self._posteriors = None    # (z_mean, z_log_var) of the last update, for the sample
        for item in self.prior_items:
            item.setZValue(4)
        for item in self.ellipse_items:
            item.setZValue(15)
        for item in (self.density_item, self.holes_item, *self.prior_items, *self.ellipse_items, self.hover_item):
            plot.addItem(item)
        self.grid = None           # the last latentlab.surgery.DensityGrid drawn
        self.frame = None          # (components, centre) of the plane drawn
        self.selected = None       # {"row", "mean", "log_var", "kl_per_dim", "ellipses"}
        self.visible = True

    # -- the layers -------------------------------------------------------------------------------------
    def update(self, z_mean, z_log_var, frame, extent) -> None:
        """Draw the prior, q(z) and the holes for posteriors (z_mean, z_log_var) (N, d) in the plane
        ``frame`` = (components (2, d), centre (d,)) over ``extent`` (x0, x1, y0, y1); None clears them."""
        from latentlab import surgery

        if frame is None or z_log_var is None or not len(z_mean):
            self.clear()
            return
        self.frame = frame
        comps, centre = frame
        p_mean, p_cov = surgery.plane_prior(comps, centre)
        for item, k in zip(self.prior_items, (1.0, 2.0)):
            ring = surgery.ellipse_2d(p_mean, p_cov, sigmas=k, points=96)
            item.setData(ring[:, 0], ring[:, 1])
        grid = surgery.density_grid(z_mean, z_log_var, extent=extent, res=GRID_RES, components=comps,
                                    center=centre, max_images=MAX_POSTERIORS)
        self.grid = grid
        x0, x1, y0, y1 = grid.extent
        rect = QRectF(x0, y0, x1 - x0, y1 - y0)
        # opaque from q's 95th percentile up: a few sharp peaks (small β: narrow posteriors) must not hide the rest
        top = np.percentile(grid.log_q, 95)
        q = np.exp(np.minimum(grid.log_q - top, 0.0))
        density = np.zeros((*q.shape, 4), np.uint8)     # row 0 = lowest y, as the view's y axis points up
        density[..., :3] = DENSITY_RGB
        density[..., 3] = (DENSITY_MAX_ALPHA * np.sqrt(q)).astype(np.uint8)
        holes = np.zeros_like(density)
        holes[grid.holes] = HOLE_RGBA
        for item, image in ((self.density_item, density), (self.holes_item, holes)):
            item.setImage(image, autoLevels=False, levels=(0, 255))
            item.setRect(rect)
        self._posteriors = (z_mean, z_log_var)
        self._draw_sample()
        self.set_visible(self.visible)

    # -- the sample's ellipses ---------------------------------------------------------------------------
    def sample_toggle(self, parent_check):
        """The check box that shows the sample's ellipses: enabled while ``parent_check`` (the map's prior and
        q(z) layer) is checked, as the ellipses are drawn with those layers."""
        from gui.widgets import check

        box = check("ellipses", f"Show the q(z|x) 1σ ellipse of a sample of {SAMPLE_SIZE} images: how uncertain "
                    "each code is; a larger β widens them towards the prior's circle. Drawn with the prior && "
                    "q(z) layer.", self.set_sample)
        box.setEnabled(parent_check.isChecked())
        parent_check.toggled.connect(box.setEnabled)
        return box

    def set_sample(self, on: bool) -> None:
        """Show (and draw) or hide the sample's ellipses."""
        self.sample_on = bool(on)
        self._draw_sample()
        self.set_visible(self.visible)

    @staticmethod
    def sample_rows(n: int) -> np.ndarray:
        """The rows sampled of ``n`` shown images: the same for the same ``n`` (epoch after epoch)."""
        if n <= SAMPLE_SIZE:
            return np.arange(n)
        return np.sort(np.random.default_rng(0).choice(n, SAMPLE_SIZE, replace=False))

    def _draw_sample(self) -> None:
        from latentlab import surgery

        if not self.sample_on or self.frame is None or self._posteriors is None:
            self.sample = None
            self.sample_item.setData([], [])
            return
        z_mean, z_log_var = self._posteriors
        rows = self.sample_rows(len(z_mean))
        means, covs = surgery.plane_gaussians(np.asarray(z_mean, np.float64)[rows],
                                              np.asarray(z_log_var, np.float64)[rows], *self.frame)
        rings = [surgery.ellipse_2d(m, c, sigmas=1.0, points=SAMPLE_POINTS) for m, c in zip(means, covs)]
        gap = np.full((1, 2), np.nan)
        xy = np.concatenate([a for ring in rings for a in (ring, gap)]) if rings else np.zeros((0, 2))
        self.sample = {"rows": rows, "ellipses": rings}
        self.sample_item.setData(xy[:, 0], xy[:, 1])

    def select(self, row: int, z_mean, z_log_var) -> dict | None:
        """Draw the 1σ/2σ ellipses of posterior ``row``; returns what was selected (with its closed-form KL
        per dimension), or None without posteriors or a plane."""
        from latentlab import surgery

        if self.frame is None or z_log_var is None or not 0 <= row < len(z_mean):
            self.deselect()
            return None
        mean, log_var = np.asarray(z_mean[row], np.float64), np.asarray(z_log_var[row], np.float64)
        means, covs = surgery.plane_gaussians(mean[None], log_var[None], *self.frame)
        rings = [surgery.ellipse_2d(means[0], covs[0], sigmas=k) for k in (1.0, 2.0)]
        for item, ring in zip(self.ellipse_items, rings):
            item.setData(ring[:, 0], ring[:, 1])
        self.selected = {"row": int(row), "mean": mean, "log_var": log_var,
                         "kl_per_dim": surgery.kl_per_dim(mean, log_var)[0], "ellipses": rings}
        return self.selected

    def hover(self, row: int | None, z_mean=None, z_log_var=None) -> None:
        """The 1σ ellipse of posterior ``row`` (the image under the mouse); None takes it away."""
        from latentlab import surgery

        if row is None or self.frame is None or z_log_var is None or not 0 <= row < len(z_mean):
            self.hovered = None
            self.hover_item.setData([], [])
            return
        means, covs = surgery.plane_gaussians(np.asarray(z_mean[row:row + 1], np.float64),
                                              np.asarray(z_log_var[row:row + 1], np.float64), *self.frame)
        ring = surgery.ellipse_2d(means[0], covs[0], sigmas=1.0)
        self.hovered = int(row)
        self.hover_item.setData(ring[:, 0], ring[:, 1])

    def deselect(self) -> None:
        self.selected = None
        for item in self.ellipse_items:
            item.setData([], [])

    def clear(self) -> None:
        self.grid = self.frame = self._posteriors = self.sample = None
        self.sample_item.setData([], [])
        self.deselect()
        self.hover(None)
        for item in self.prior_items:
            item.setData([], [])
        for item in (self.density_item, self.holes_item):
            item.clear()

    def set_visible(self, on: bool) -> None:
        self.visible = bool(on)
        for item in (self.density_item, self.holes_item, *self.prior_items):
            item.setVisible(self.visible)
        self.sample_item.setVisible(self.visible and self.sample_on)

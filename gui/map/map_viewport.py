"""How a `gui.map.latent_map.LatentMap`'s view moves: fitted to the points (the Fit button, F, a model's
first points, codes spreading past the view), kept at its scale when the plot is resized, and left where the
person put it after a zoom or pan. `ViewportMixin` is a part of `LatentMap` (its attributes are the map's
own); nothing outside the map wing imports it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ViewportMixin"]


class ViewportMixin:
    """The view of a `LatentMap`: ``autofit``, ``_fitted`` and ``_units_per_px`` (the scale kept on resizes)."""

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

"""The decoded grid under a `gui.map.latent_map.LatentMap`: when one is asked for (``gridRequested`` once the
view rests, later while a drag pans it), which tiles it should cover (`grid_params`) and where the mosaic that
comes back is drawn (`set_grid`). The map never decodes: `gui.map.map_controller` does, on the grid thread.
`GridMixin` is a part of `LatentMap` (its attributes are the map's own); nothing outside the map wing imports it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QRectF

from gui.widgets import make_timer

__all__ = ["GridMixin", "GRID_PAUSE_MS", "GRID_PAUSE_DRAGGING_MS"]

GRID_PAUSE_MS = 40              # a grid is asked for once the view has rested this long...
GRID_PAUSE_DRAGGING_MS = 150    # ... or this long while a drag pans it (each grid competes with the frames)


class GridMixin:
    """The grid of a `LatentMap`: ``grid_item``, ``mosaic`` / ``mosaic_tiles``, ``grid_rect`` and ``lattice``."""

    def _init_grid_requests(self) -> None:
        self._grid_urgent = False
        self._grid_timer = make_timer(self, GRID_PAUSE_MS, self.gridRequested)
        self._dragging = False       # a mouse button is down on the plot (a pan)
        self.plot.viewport().installEventFilter(self)

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


class _Line1D:
    """Projection for a 1-D latent: the map's x is z0, y is ignored."""

    def inverse(self, p, base_z=None):
        p = np.asarray(p, np.float32).reshape(-1, 2)
        return p[:, :1].copy()

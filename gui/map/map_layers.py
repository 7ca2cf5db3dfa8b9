"""What a `gui.map.latent_map.LatentMap` draws over its grid, and the check boxes that show or hide it: the
encoded images coloured by class (with their legend), the decoded grid's opacity under them, and the prior,
q(z) and holes layers (`gui.map.prior_layers`) with the clicked or hovered image's q(z|x).
`LayersMixin` is a part of `LatentMap` (its attributes are the map's own); nothing outside the map wing imports it.
"""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QLabel

from gui.palette import class_colors
from gui.widgets import check

__all__ = ["LayersMixin", "MAX_LEGEND", "GRID_OPACITY_UNDER_POINTS"]

MAX_LEGEND = 20
GRID_OPACITY_UNDER_POINTS = 0.9


class LayersMixin:
    """The layers of a `LatentMap`: ``show_points`` / ``show_grid`` / ``show_prior``, ``legend``, ``points_item``
    and ``layers`` (a `PriorLayers`)."""

    def _build_layer_controls(self) -> None:
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
        self.show_ellipses = self.layers.sample_toggle(self.show_prior)   # a sample's q(z|x) (gui.map.prior_layers)
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setToolTip("Classes (the dataset's subfolders) and their colours on the map.")

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

    def _update_scatter(self) -> None:
        if not self.legend.text():
            self._update_legend()
        p = self.plane(self.z) if len(self.z) else np.zeros((0, 2), np.float32)
        groups = max(len(self.class_names), 1)
        colour = np.where((self.labels >= 0) & (self.labels < groups), self.labels, 0) if self.class_names \
            else np.zeros(len(p), np.int32)
        self.points_item.set_data(p, colour, class_colors(groups))

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

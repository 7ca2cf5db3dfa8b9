"""What the mouse does on a `gui.map.latent_map.LatentMap`: a hover asks for the image decoded under it (at
most every `HOVER_MS`, shown in the preview beside the map) and shows the q(z|x) of the image under it; a
click on a point selects that image (``pointClicked``), a click elsewhere decodes the z there (``clicked``).
`PointerMixin` is a part of `LatentMap` (its attributes are the map's own); nothing outside the map wing imports it.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QPointF, Qt, Slot

from gui.image_panel import PixelView, array_to_qimage
from gui.widgets import make_timer, note_label

__all__ = ["PointerMixin", "HOVER_MS"]

HOVER_MS = 15                   # previews under the mouse at most this often (~60 a second)


class PointerMixin:
    """The mouse on a `LatentMap`: ``preview`` / ``preview_label``, ``click_marker`` and the hover's timing."""

    def _build_preview(self) -> None:
        self.preview = PixelView(56)
        self.preview.setFixedSize(72, 72)
        self.preview.setToolTip("Live preview of the image decoded under the mouse.")
        self.preview_label = note_label("hover the map\nfor a live preview")
        self.preview_label.setMinimumWidth(150)

    def _init_hover(self) -> None:
        self._hover_timer = make_timer(self, HOVER_MS, self._emit_hover)
        self._last_hover = 0.0       # time.monotonic() of the last preview

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

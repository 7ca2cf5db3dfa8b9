"""The plane a `gui.map.latent_map.LatentMap` shows of the latent space, and the controls that choose it.

With two dimensions the plane is the latent itself; with more, either the first two principal components of
the data's z_mean (the other components held at the data mean) or two chosen dimensions with the others held
at the sliders' values. `PlaneMixin` holds the mode and dimension choosers, the sliders, the projection and
the conversions both ways (`plane`: z → map, `z_at`: map → z). A part of `LatentMap` (its attributes are the
map's own); nothing outside the map wing imports it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QScrollArea, QWidget
from superqt import QLabeledDoubleSlider

from gui.widgets import as_widget, row

__all__ = ["PlaneMixin"]


class PlaneMixin:
    """The plane of a `LatentMap`: ``mode``, ``x_dim`` / ``y_dim``, ``sliders`` and ``projection``."""

    MODE_PCA, MODE_DIMS = "PCA of z_mean", "two dimensions"

    def _build_plane_controls(self) -> None:
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

    def _set_plane_dim(self, d: int) -> None:
        """The choosers and sliders for a latent of ``d`` dimensions (the plane of its first two)."""
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

    def _refresh_projection(self) -> None:
        from latentlab.model.latent import PCA

        if not self.mode_is_dims() and len(self.z) >= 2:
            self.projection = PCA(self.z)
        elif not self.mode_is_dims():
            self.projection = None
        self._update_controls()

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

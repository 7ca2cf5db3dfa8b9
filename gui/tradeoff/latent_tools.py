"""Looking into a latent point: `TraversalView` (each dimension swept while the others stay at
the point), `InterpolationView` (the straight line between two points) and `NearestView` (the
training images encoded closest to the point), gathered in `LatentTools`.

They take plain data: a `latentlab.model.latent.Decoder` (used on the GUI thread only, one batched
decode per picture), z_mean arrays and images. Pictures are drawn into one QImage with labels,
which is also what their PNG export saves.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QRect, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QLabel, QLineEdit, QScrollArea, QTabWidget, QWidget

from gui.exporting import export_button, save_csv
from gui.image_panel import ShrinkingImage, array_to_qimage
from gui.theme import colors, set_role
from gui.widgets import STRETCH, button, check, column, note_label, row, spin
from latentlab.model import latent
from latentlab.tradeoff import nearest_images, rows_to_csv, traversal_values

__all__ = ["labeled_mosaic", "MosaicView", "TraversalView", "InterpolationView", "NearestView", "LatentTools",
           "parse_dims"]


def labeled_mosaic(rows: list[np.ndarray], row_labels: list[str] | None = None,
                   captions: list[list[str]] | None = None, cell: int = 56, pad: int = 3,
                   label_width: int = 56) -> QImage:
    """Rows of images (each (n, H, W, C) in [0, 1]; rows may differ in length) drawn as one picture
    with nearest-neighbour scaling to ``cell`` pixels, a label left of each row and optionally a
    caption under each image (``captions[row][col]``)."""
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=0)
    lw = label_width if row_labels else 0
    lines = max((c.count("\n") + 1 for row in (captions or []) for c in row), default=0)
    ch = 13 * lines + 1 if captions else 0
    w = lw + n_cols * (cell + pad) + pad
    h = n_rows * (cell + pad + ch) + pad
    img = QImage(max(w, 1), max(h, 1), QImage.Format_RGB32)
    img.fill(QColor(colors().card_bg))
    p = QPainter(img)
    font = QFont()
    font.setPixelSize(11)
    p.setFont(font)
    p.setPen(QColor(colors().card_fg))
    for r, images in enumerate(rows):
        y = pad + r * (cell + pad + ch)
        if row_labels:
            p.drawText(QRect(0, y, lw - 4, cell), Qt.AlignRight | Qt.AlignVCenter, row_labels[r])
        for c, im in enumerate(images):
            x = lw + pad + c * (cell + pad)
            q = array_to_qimage(im).scaled(cell, cell, Qt.KeepAspectRatio, Qt.FastTransformation)
            p.drawImage(x + (cell - q.width()) // 2, y + (cell - q.height()) // 2, q)
            if captions and r < len(captions) and c < len(captions[r]):
                p.drawText(QRect(x - pad, y + cell, cell + 2 * pad, ch), Qt.AlignCenter, captions[r][c])
    p.end()
    return img


class MosaicView(QWidget):
    """Shows a QImage at its own size, scrolling when it is larger than the view; ``set_scrolling(False)``
    inside a page that scrolls itself (one level of scrolling: the view then asks for the image's size)."""

    def __init__(self, placeholder: str, parent=None):
        super().__init__(parent)
        self.label = ShrinkingImage(placeholder)
        self.label.setAlignment(Qt.AlignCenter)
        set_role(self.label, "note")
        self.scroll: QScrollArea | None = None
        self._layout = column(parent=self)
        self.image: QImage | None = None
        self.set_scrolling(True)

    def set_scrolling(self, on: bool) -> None:
        self.label.shrink = not on       # in a page: scaled down to the page's width rather than cut
        if on == (self.scroll is not None):
            return
        if on:
            self._layout.removeWidget(self.label)
            self.scroll = QScrollArea()
            self.scroll.setWidgetResizable(True)
            self.scroll.setWidget(self.label)
            self._layout.addWidget(self.scroll, 1)
        else:
            self.scroll.takeWidget()
            self._layout.removeWidget(self.scroll)
            self.scroll.setParent(None)
            self.scroll.deleteLater()
            self.scroll = None
            self._layout.addWidget(self.label, 1)
            self.setMinimumHeight(0)    # the image's own size holds: no floor that would hide it

    def set_image(self, image: QImage | None, placeholder: str = "") -> None:
        from PySide6.QtGui import QPixmap

        self.image = image
        if image is None:
            self.label.setPixmap(QPixmap())
            self.label.setText(placeholder)
        else:
            self.label.setText("")
            self.label.setPixmap(QPixmap.fromImage(image))

    def save(self, path) -> bool:
        return self.image is not None and self.image.save(str(path), "PNG")


def parse_dims(text: str, latent_dim: int) -> list[int]:
    """'all' / '' → every dimension; '0, 2-4' → [0, 2, 3, 4]; out-of-range values dropped."""
    text = text.strip().lower()
    if text in ("", "all"):
        return list(range(latent_dim))
    dims = []
    for part in text.replace(";", ",").split(","):
        part = part.strip().lstrip("z")
        if not part:
            continue
        try:
            if "-" in part:
                a, b = (int(v.strip().lstrip("z")) for v in part.split("-", 1))
                dims += list(range(a, b + 1))
            else:
                dims.append(int(part))
        except ValueError:
            continue
    return [d for d in dict.fromkeys(dims) if 0 <= d < latent_dim]


class _Tool(QWidget):
    """Shared state: a decoder, the data's z_mean, the current point."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.decoder = None
        self.z_data = None
        self.point = None
        self.last_ms = 0.0

    def set_decoder(self, decoder) -> None:
        self.decoder = decoder
        self._changed()

    def set_data(self, z_mean, images=None, labels=None, class_names=None, paths=None) -> None:
        self.z_data = None if z_mean is None else np.asarray(z_mean, np.float32)
        self._changed()

    @Slot(object)
    def set_point(self, z) -> None:
        self.point = None if z is None else np.asarray(z, np.float32).ravel()
        self._changed()

    def _changed(self) -> None:
        """Redraw now if the tool is on screen, else when it is next shown: a click on the map
        while the tool is hidden (another tab, the dock closed) costs the GUI thread nothing."""
        if self.isVisible():
            self._stale = False
            self.refresh()
        else:
            self._stale = True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if getattr(self, "_stale", False):
            self._stale = False
            self.refresh()

    def refresh(self) -> None:
        raise NotImplementedError


class TraversalView(_Tool):
    """One row per chosen dimension: images decoded as it sweeps its range, the others at the point."""

    MAX_ROWS = 16

    def __init__(self, parent=None):
        super().__init__(parent)
        self.dims_edit = QLineEdit("all")
        self.dims_edit.setToolTip("Dimensions to traverse: 'all', or a list such as 0, 2-4. With a high β the "
                                  "rows of switched-off dimensions stay the same image.")
        self.dims_edit.editingFinished.connect(self.refresh)
        self.steps_spin = spin((3, 21), 9, "Images per row: the values each dimension takes across its range.",
                               self.refresh)
        self.prior_range = check("prior range ±3", "Sweep each dimension over ±3 standard deviations of the prior "
                                 "instead of the range the data's z_mean covers.", self.refresh)
        self.export_button = export_button(self, "png", "Save the traversal", "traversal.png", self.export_png,
                                           "Save the traversal as a PNG picture.")
        self.view = MosaicView("Click a point on a latent map to traverse its dimensions.")
        self.info = note_label()
        column(row("dimensions", self.dims_edit, "steps", self.steps_spin, self.prior_range, STRETCH,
                   self.export_button),
               (self.view, 1), self.info, parent=self)
        self.rows: list[np.ndarray] = []
        self.values: dict[int, np.ndarray] = {}

    def refresh(self) -> None:
        if self.decoder is None or self.point is None or len(self.point) != self.decoder.latent_dim:
            self.rows = []
            self.view.set_image(None, "Click a point on a latent map to traverse its dimensions.")
            return
        d = self.decoder.latent_dim
        dims = parse_dims(self.dims_edit.text(), d) or list(range(d))
        note = ""
        if len(dims) > self.MAX_ROWS:   # keep the GUI-thread decode small: the most used dimensions
            if self.z_data is not None and len(self.z_data) > 1:
                var = np.var(self.z_data[:, dims], axis=0)
                dims = sorted(int(dims[i]) for i in np.argsort(-var)[:self.MAX_ROWS])
            else:
                dims = dims[:self.MAX_ROWS]
            note = f" (the {self.MAX_ROWS} dimensions whose z_mean varies most; list others to see them)"
        steps = self.steps_spin.value()
        zs, self.values = [], {}
        for dim in dims:
            vals = traversal_values(None if self.prior_range.isChecked() else self.z_data, dim, steps)
            self.values[dim] = vals
            z = np.tile(self.point, (steps, 1))
            z[:, dim] = vals
            zs.append(z)
        t0 = time.perf_counter()
        images = self.decoder.decode(np.concatenate(zs))           # one batched call
        self.last_ms = (time.perf_counter() - t0) * 1000
        self.rows = [images[i * steps:(i + 1) * steps] for i in range(len(dims))]
        labels = [f"z{dim}\n{self.values[dim][0]:+.1f}…{self.values[dim][-1]:+.1f}" for dim in dims]
        self.view.set_image(labeled_mosaic(self.rows, labels, label_width=86))
        self.dims = dims
        self.info.setText(f"{len(dims)} dimension{'s' if len(dims) != 1 else ''}{note} × {steps} images, others at "
                          f"({', '.join(f'{v:.2f}' for v in self.point[:6])}{', …' if d > 6 else ''}); "
                          f"decoded in {self.last_ms:.0f} ms")

    def export_png(self, path) -> bool:
        return self.view.save(path)


class InterpolationView(_Tool):
    """The strip of images along the straight line from A to B (both included)."""

    endpointsChanged = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.a = self.b = None
        self.a_name = self.b_name = ""
        self.strip = None
        self.set_a_button = button("Set A", "Use the point clicked last (a click on the map or a data point) as "
                                   "the start.", lambda: self.set_endpoint("a", self.point, self._point_name))
        self.set_b_button = button("Set B", "Use the point clicked last (a click on the map or a data point) as "
                                   "the end.", lambda: self.set_endpoint("b", self.point, self._point_name))
        self.steps_spin = spin((2, 30), 10, "Images along the line, A and B included: a smooth strip means a "
                               "regular latent space (higher β), jumps mean holes between the encoded images "
                               "(lower β).", self.refresh)
        self.export_button = export_button(self, "png", "Save the interpolation", "interpolation.png",
                                           self.export_png, "Save the strip as a PNG picture.")
        self.ends_label = QLabel("A: —   B: —")
        self.view = MosaicView("Click a point, press Set A; click another, press Set B.")
        column(row(self.set_a_button, self.set_b_button, "steps", self.steps_spin, (self.ends_label, 1),
                   self.export_button),
               (self.view, 1), parent=self)
        self._point_name = ""

    def set_point(self, z, name: str = "") -> None:
        """The clicked point: what Set A / Set B take. The strip depends on A and B only."""
        self._point_name = name
        self.point = None if z is None else np.asarray(z, np.float32).ravel()

    def set_endpoint(self, which: str, z, name: str = "") -> None:
        if z is None:
            return
        z = np.asarray(z, np.float32).ravel().copy()
        if which == "a":
            self.a, self.a_name = z, name
        else:
            self.b, self.b_name = z, name
        self.endpointsChanged.emit()
        self.refresh()

    def refresh(self) -> None:
        def desc(z, name):
            if z is None:
                return "—"
            return name or "(" + ", ".join(f"{v:.2f}" for v in z[:4]) + (", …)" if len(z) > 4 else ")")

        self.ends_label.setText(f"A: {desc(self.a, self.a_name)}   B: {desc(self.b, self.b_name)}")
        ok = (self.decoder is not None and self.a is not None and self.b is not None
              and len(self.a) == len(self.b) == self.decoder.latent_dim)
        if not ok:
            self.strip = None
            self.view.set_image(None, "Click a point, press Set A; click another, press Set B.")
            return
        steps = self.steps_spin.value()
        self.strip = latent.interpolate(self.decoder, self.a, self.b, steps)
        cols = ["A"] + [f"{t:.2f}" for t in np.linspace(0, 1, steps)[1:-1]] + ["B"]
        self.view.set_image(labeled_mosaic([self.strip], captions=[cols], cell=64))

    def export_png(self, path) -> bool:
        return self.view.save(path)


class NearestView(_Tool):
    """The training images whose z_mean lies closest to the point."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.images = None
        self.labels = None
        self.class_names: list[str] = []
        self.paths = None
        self.found = np.zeros(0, np.int64)
        self.distances = np.zeros(0)
        self.k_spin = spin((1, 64), 12, "How many of the closest training images to show: with a low β neighbours "
                           "look alike in detail, with a high β only in broad shape.", self.refresh)
        self.export_png_button = export_button(self, "png", "Save the nearest images", "nearest.png",
                                               self.export_png, "Save the nearest images as a PNG picture.")
        self.export_csv_button = export_button(self, "csv", "Save the nearest images", "nearest.csv",
                                               self.export_csv,
                                               "Save the nearest images' index, file, class and distance as CSV.")
        self.view = MosaicView("Click a point on a latent map to see the training images encoded nearest to it.")
        self.info = note_label()
        column(row("nearest", self.k_spin, STRETCH, self.export_csv_button, self.export_png_button),
               (self.view, 1), self.info, parent=self)

    def set_data(self, z_mean, images=None, labels=None, class_names=None, paths=None) -> None:
        """z_mean and images of the training images (row i of each is the same image)."""
        self.images = None if images is None else np.asarray(images)
        self.labels = None if labels is None else np.asarray(labels)
        self.class_names = list(class_names or [])
        self.paths = paths
        super().set_data(z_mean)

    def refresh(self) -> None:
        if self.z_data is None or self.point is None or len(self.z_data) == 0 \
                or self.z_data.shape[1] != len(self.point):
            self.found = np.zeros(0, np.int64)
            self.view.set_image(None, "Click a point on a latent map to see the training images encoded nearest "
                                      "to it." if self.z_data is not None else "No encoded training images yet.")
            return
        self.found, self.distances = nearest_images(self.z_data, self.point, self.k_spin.value())
        if self.images is None:
            self.view.set_image(None, "The images themselves are not loaded (open the run's dataset).")
            return
        per_row = 6
        imgs = self.images[self.found]
        caps = [f"{self._class(i)}\n{d:.3f}" for i, d in zip(self.found, self.distances)]
        rows = [imgs[i:i + per_row] for i in range(0, len(imgs), per_row)]
        cap_rows = [caps[i:i + per_row] for i in range(0, len(caps), per_row)]
        self.view.set_image(labeled_mosaic(rows, captions=cap_rows, cell=72))
        self.info.setText(f"distance in latent space (z_mean); nearest {self.distances[0]:.3f}, "
                          f"farthest shown {self.distances[-1]:.3f}")

    def _class(self, i) -> str:
        if self.labels is None or not self.class_names:
            return f"#{i}"
        lab = int(self.labels[i])
        return self.class_names[lab] if 0 <= lab < len(self.class_names) else f"#{i}"

    def csv_text(self) -> str:
        rows = []
        for i, d in zip(self.found, self.distances):
            rows.append({"index": int(i), "path": "" if self.paths is None else str(self.paths[i]),
                         "class": self._class(i), "distance": float(d)})
        return rows_to_csv(rows, ["index", "path", "class", "distance"])

    def export_png(self, path) -> bool:
        return self.view.save(path)

    def export_csv(self, path) -> bool:
        return save_csv(self.csv_text(), path)


class LatentTools(QTabWidget):
    """Traversal, interpolation and nearest images for one model and one clicked point."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.traversal = TraversalView()
        self.interpolation = InterpolationView()
        self.nearest = NearestView()
        self.addTab(self.traversal, "Traversal")
        self.addTab(self.interpolation, "Interpolation")
        self.addTab(self.nearest, "Nearest images")
        self.setTabToolTip(0, "Each dimension swept across its range, the others held at the clicked point.")
        self.setTabToolTip(1, "Images along the straight line between two points.")
        self.setTabToolTip(2, "The training images encoded closest to the clicked point.")

    def set_decoder(self, decoder) -> None:
        self.traversal.set_decoder(decoder)
        self.interpolation.set_decoder(decoder)

    def set_data(self, z_mean, images=None, labels=None, class_names=None, paths=None) -> None:
        """All images' z_mean (for ranges) and the training images (for nearest)."""
        self.traversal.set_data(z_mean)
        self.nearest.set_data(z_mean, images, labels, class_names, paths)

    @Slot(object)
    def set_point(self, z, name: str = "") -> None:
        self.traversal.set_point(z)
        self.interpolation.set_point(z, name)
        self.nearest.set_point(z)

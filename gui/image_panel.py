"""`ImagePanel`: the decoded image at a latent point, large and crisp (nearest-neighbour
scaling), with its coordinates; or a data point's original beside its reconstruction."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGroupBox, QLabel, QSizePolicy

from gui.exporting import ask_and_save
from gui.widgets import button, column, row

__all__ = ["ImagePanel", "array_to_qimage", "save_png"]


def array_to_qimage(image: np.ndarray) -> QImage:
    """(H, W), (H, W, 1) or (H, W, 3) floats in [0, 1] → a QImage that owns its pixels; (H, W, 2) and
    (H, W, 4) (gray or RGB + alpha) keep their alpha: the view's own background shows through."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[-1] == 2:
        a = np.concatenate([np.repeat(a[..., :1], 3, axis=-1), a[..., 1:]], axis=-1)
    a8 = np.ascontiguousarray(np.clip(np.nan_to_num(a) * 255.0 + 0.5, 0, 255).astype(np.uint8))
    h, w = a8.shape[:2]
    if a8.ndim == 2:
        img = QImage(a8.data, w, h, w, QImage.Format_Grayscale8)
    elif a8.shape[-1] == 4:
        img = QImage(a8.data, w, h, 4 * w, QImage.Format_RGBA8888)
    else:
        img = QImage(a8.data, w, h, 3 * w, QImage.Format_RGB888)
    return img.copy()  # detach from the numpy buffer


def save_png(image: np.ndarray, path: str, scale: int = 1) -> bool:
    img = array_to_qimage(image)
    if scale > 1:
        img = img.scaled(img.width() * scale, img.height() * scale, Qt.IgnoreAspectRatio, Qt.FastTransformation)
    return img.save(str(path), "PNG")


class PixelView(QLabel):
    """A QLabel that shows an image scaled by the largest integer factor that fits, with nearest-neighbour
    pixels (an image larger than the view is scaled down smoothly to fit, never clipped). What the image
    leaves free is the window's own background, not a black box around a small picture."""

    def __init__(self, min_side: int = 96, parent=None):
        super().__init__(parent)
        self._image: QImage | None = None
        self.setAlignment(Qt.AlignCenter)
        self.setMinimumSize(min_side, min_side)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setStyleSheet("QLabel { color: palette(mid); }")

    def set_image(self, image: QImage | None, placeholder: str = "") -> None:
        self._image = image
        if image is None:
            self.setPixmap(QPixmap())
            self.setText(placeholder)
        else:
            self.setText("")
            self._rescale()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._rescale()

    def sizeHint(self) -> QSize:
        return QSize(200, 200)

    def _rescale(self) -> None:
        if self._image is None or self._image.isNull():
            return
        dpr = self.devicePixelRatioF()
        w, h = self._image.width(), self._image.height()
        avail_w, avail_h = max(1, int(self.width() * dpr)), max(1, int(self.height() * dpr))
        factor = min(avail_w // w, avail_h // h)
        if factor >= 1:
            pix = QPixmap.fromImage(self._image.scaled(w * factor, h * factor, Qt.IgnoreAspectRatio,
                                                       Qt.FastTransformation))
        else:                      # larger than the view: fit it, smoothly, rather than cut it
            pix = QPixmap.fromImage(self._image.scaled(avail_w, avail_h, Qt.KeepAspectRatio,
                                                       Qt.SmoothTransformation))
        pix.setDevicePixelRatio(dpr)
        self.setPixmap(pix)


class ImagePanel(QGroupBox):
    """Shows the image decoded at the last clicked latent point (or a data point's original and
    reconstruction) with its coordinates; 'Save PNG…' writes it."""

    saved = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Decoded image", parent)
        self.image: np.ndarray | None = None      # the decoded image shown (H, W, C)
        self.original: np.ndarray | None = None
        self.z: np.ndarray | None = None
        self.kl_per_dim: np.ndarray | None = None   # the shown image's KL per latent dimension (nats)
        self.view = PixelView(160)
        self.view.setToolTip("The decoder's output at the clicked latent point, pixels scaled without smoothing.")
        self.original_view = PixelView(160)
        self.original_view.setToolTip("The original image of the clicked data point.")
        self.original_view.hide()
        self.caption = QLabel("Click the latent map to decode a point.")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.save_button = button("Save PNG…", "Save the decoded image as a PNG file (enlarged, crisp pixels).",
                                  self._ask_save, enabled=False)
        self.original_title = QLabel("original")
        self.decoded_title = QLabel("decoded")
        for t in (self.original_title, self.decoded_title):
            t.setAlignment(Qt.AlignCenter)
            t.hide()
        self.titles = row(self.original_title, self.decoded_title)
        column((row(self.original_view, self.view), 1), self.titles, row((self.caption, 1), self.save_button),
               parent=self, margins=None)
        self.view.set_image(None, "no decoder yet")

    # -- showing ------------------------------------------------------------------------------
    def show_decoded(self, image: np.ndarray, z, plane_xy=None, title: str = "") -> None:
        self.kl_per_dim = None
        self.image, self.z, self.original = np.asarray(image), np.asarray(z, np.float32), None
        self.original_view.hide()
        self.original_title.hide()
        self.decoded_title.hide()
        self.view.set_image(array_to_qimage(self.image))
        self.caption.setText((title + "\n" if title else "") + describe_z(self.z, plane_xy))
        self.save_button.setEnabled(True)

    def show_pair(self, original: np.ndarray | None, reconstruction: np.ndarray, z, title: str = "",
                  kl_per_dim=None) -> None:
        """An image beside its reconstruction; ``kl_per_dim`` (d,): its KL(q(z|x) ‖ p(z)) per dimension, shown
        under it (``self.kl_per_dim``)."""
        self.kl_per_dim = None if kl_per_dim is None else np.asarray(kl_per_dim, np.float64)
        self.image, self.z = np.asarray(reconstruction), np.asarray(z, np.float32)
        self.original = None if original is None else np.asarray(original)
        self.original_view.show()
        self.original_title.show()
        self.decoded_title.setText("reconstruction")
        self.decoded_title.show()
        if original is None:
            self.original_view.set_image(None, "original not loaded")
        else:
            self.original_view.set_image(array_to_qimage(original))
        self.view.set_image(array_to_qimage(self.image))
        self.caption.setText((title + "\n" if title else "") + describe_z(self.z)
                             + ("" if self.kl_per_dim is None else "\n" + describe_kl(self.kl_per_dim)))
        self.save_button.setEnabled(True)

    def clear(self, message: str = "Click the latent map to decode a point.") -> None:
        self.image = self.original = self.z = self.kl_per_dim = None
        self.original_view.hide()
        self.original_title.hide()
        self.decoded_title.hide()
        self.view.set_image(None, "")
        self.caption.setText(message)
        self.save_button.setEnabled(False)

    # -- saving --------------------------------------------------------------------------------
    def save(self, path: str, scale: int | None = None) -> bool:
        """The image as a PNG, each pixel enlarged ``scale`` times (default: to at least
        ``MIN_IMAGE_PX`` a side, `latentlab.model.latent.export_scale`)."""
        if self.image is None:
            return False
        if scale is None:
            from latentlab.model.latent import MIN_IMAGE_PX, export_scale

            h, w = np.shape(self.image)[:2]
            scale = export_scale(h, w, MIN_IMAGE_PX)
        ok = save_png(self.image, path, scale)
        if ok:
            self.saved.emit(str(path))
        return ok

    @Slot()
    def _ask_save(self) -> None:
        ask_and_save(self, "png", "Save decoded image", "decoded.png", self.save, report_at=self.save_button)


def describe_z(z, plane_xy=None) -> str:
    z = np.asarray(z, np.float32).ravel()
    shown = ", ".join(f"{v:+.3f}" for v in z[:8]) + (", …" if len(z) > 8 else "")
    text = f"z = ({shown})"
    if plane_xy is not None and len(z) > 2:
        text += f"\nmap position ({plane_xy[0]:+.3f}, {plane_xy[1]:+.3f})"
    return text


def describe_kl(kl_per_dim) -> str:
    """An image's KL(q(z|x) ‖ N(0, I)) per dimension in words (closed form, nats), the largest first past 8."""
    kl = np.asarray(kl_per_dim, np.float64).ravel()
    order = np.argsort(-kl)[:8] if len(kl) > 8 else np.arange(len(kl))
    parts = ", ".join(f"z{i} {kl[i]:.2f}" for i in order) + (", …" if len(kl) > 8 else "")
    return f"KL per dimension (nats): {parts}; total {kl.sum():.2f}"


class ShrinkingImage(QLabel):
    """A label showing its pixmap at the pixmap's own size, or, when its layout gives it less room, scaled down
    to fit it whole (aspect kept, never scaled up): a page of mosaics fits a narrow window instead of scrolling
    sideways. ``shrink = False`` keeps QLabel's own sizing (inside a scroll area of its own)."""

    MIN_WIDTH = 96

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.shrink = True

    def _pixmap(self) -> QPixmap | None:
        pm = self.pixmap()
        return pm if self.shrink and pm is not None and not pm.isNull() else None

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        pm = self._pixmap()
        if pm is None:
            return hint
        # as narrow as MIN_WIDTH; as tall as the image is at the width it has now (its layout keeps that room)
        at = min(1.0, self.width() / max(pm.width(), 1)) if self.width() > 0 else 1.0
        return QSize(min(hint.width(), self.MIN_WIDTH), max(1, round(pm.height() * at)))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._pixmap() is not None and event.size().width() != event.oldSize().width():
            self.updateGeometry()      # its height follows its width

    def paintEvent(self, event) -> None:
        pm = self._pixmap()
        if pm is None or (pm.width() <= self.width() and pm.height() <= self.height()):
            super().paintEvent(event)
            return
        from PySide6.QtGui import QPainter

        scaled = pm.scaled(self.size(), Qt.KeepAspectRatio, Qt.SmoothTransformation)   # whole, never cut
        left = (self.width() - scaled.width()) // 2 if self.alignment() & Qt.AlignHCenter else 0
        top = (self.height() - scaled.height()) // 2 if self.alignment() & Qt.AlignVCenter else 0
        painter = QPainter(self)
        painter.drawPixmap(max(0, left), max(0, top), scaled)
        painter.end()

"""`PriorSamples`: what the model generates — a grid of images decoded from z ~ N(0, I), the prior the
KL term pulls the codes toward. "New samples" draws other z; "PNG…" saves the grid.

It needs only a decoder's ``decode(z) -> images`` and ``latent_dim`` (the map's point decoder, or any
decoder a run brings), and decodes on the GUI thread in one batched call (as the traversal view does),
only while it is shown: new weights while it is hidden are decoded when it is shown again.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Slot
from PySide6.QtWidgets import QWidget

from gui.exporting import export_button
from gui.image_panel import PixelView, array_to_qimage, save_png
from gui.widgets import STRETCH, button, column, note_label, row, spin

__all__ = ["PriorSamples"]

PAD = 1   # pixels of white between the samples in the grid


class PriorSamples(QWidget):
    def __init__(self, parent=None, side: int = 8, seed: int = 0):
        super().__init__(parent)
        self.decoder = None
        self.rng = np.random.default_rng(seed)
        self.z: np.ndarray | None = None          # (side², latent_dim): the samples shown
        self.images: np.ndarray | None = None     # what the decoder gave for them (side², H, W, C)
        self.mosaic: np.ndarray | None = None
        self.last_ms = 0.0
        self._stale = False
        # () -> (z_mean, z_log_var) of the codes shown on the map (or None): samples in a hole get a red frame
        self.codes = lambda: None
        self.in_hole: np.ndarray | None = None    # per sample: q(z) < p(z)/10 (latentlab.surgery.in_hole)
        self.side_spin = spin((2, 16), side, "Samples per row and column.", self._on_side)
        self.new_button = button("New samples", "Draw other z from the prior N(0, I) and decode them.",
                                 self.new_samples, enabled=False)
        self.export_png_button = export_button(self, "png", "Save the samples from the prior", "prior-samples.png",
                                               self.export_png, "Save the grid of samples as a PNG (4× enlarged).")
        self.view = PixelView(160)
        self.view.setToolTip("Images the decoder makes from z drawn from the prior N(0, I): what the model "
                             "generates. A high β makes them plausible but blurry; a low β sharper, with "
                             "more of them off the data.")
        self.caption = note_label(wrap=True)
        column(row("<b>Samples from the prior</b>", STRETCH), row("grid", self.side_spin, STRETCH, self.new_button),
               (self.view, 1), row((self.caption, 1), self.export_png_button), parent=self, margins=4)
        self.view.set_image(None, "no decoder yet")

    # -- inputs ---------------------------------------------------------------------------------------
    @Slot(object)
    def set_decoder(self, decoder) -> None:
        """A decoder (``decode(z)``, ``latent_dim``), or None."""
        self.decoder = decoder
        self.new_button.setEnabled(decoder is not None)
        if decoder is None:
            self.z = self.images = self.mosaic = None
            self.view.set_image(None, "no decoder yet")
            self.caption.setText("")
            return
        if self.z is None or self.z.shape != (self.side_spin.value() ** 2, decoder.latent_dim):
            self._draw_z()
        self.refresh()

    @Slot()
    def on_weights_changed(self) -> None:
        """The decoder's weights changed: decode the same z again (now if shown, else when shown)."""
        self.refresh()

    @Slot()
    def new_samples(self) -> None:
        if self.decoder is not None:
            self._draw_z()
            self.refresh(force=True)

    @Slot(int)
    def _on_side(self, _value: int) -> None:
        if self.decoder is not None:
            self._draw_z()
            self.refresh(force=True)

    def _draw_z(self) -> None:
        n = self.side_spin.value() ** 2
        self.z = self.rng.standard_normal((n, self.decoder.latent_dim)).astype(np.float32)

    # -- decoding -------------------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        if self.decoder is None or self.z is None:
            return
        if not (force or self.isVisible()):
            self._stale = True
            return
        from latentlab.model.latent import tile

        t0 = time.perf_counter()
        images = np.asarray(self.decoder.decode(self.z))
        self.last_ms = (time.perf_counter() - t0) * 1000
        side = self.side_spin.value()
        self.images = images
        self.in_hole = self._holes()
        if self.in_hole is None:
            self.mosaic = tile(images.reshape(side, side, *images.shape[1:]), pad=PAD)[:-PAD, :-PAD]
        else:
            from latentlab.sweeps.lesson import framed_mosaic

            self.mosaic = framed_mosaic(images, self.in_hole, side)
        self._stale = False
        self.view.set_image(array_to_qimage(self.mosaic))
        holes = ("" if self.in_hole is None else
                 f"; <b>{int(self.in_hole.sum())}</b> in holes of the codes (red frame: q(z) under a tenth of p(z) "
                 f"there, so no image's code is near)")
        self.caption.setText(f"{len(self.z)} samples, z ~ N(0, I) in {self.z.shape[1]} dimension"
                             f"{'s' if self.z.shape[1] != 1 else ''}; decoded in {self.last_ms:.0f} ms{holes}")

    def _holes(self) -> np.ndarray | None:
        from latentlab.surgery import in_hole

        codes = self.codes()
        if codes is None or codes[1] is None or not len(codes[0]) or codes[0].shape[1] != self.z.shape[1]:
            return None
        return in_hole(self.z, *codes)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self.refresh()

    # -- export ---------------------------------------------------------------------------------------
    def export_png(self, path, scale: int | None = None) -> bool:
        """The samples' mosaic as a PNG, each pixel enlarged ``scale`` times (default: tiles of at least
        ``MIN_TILE_PX`` a side, as ``latentlab export --samples``)."""
        if self.mosaic is None:
            return False
        if scale is None:
            from latentlab.model.latent import export_scale

            scale = export_scale(*np.shape(self.images)[1:3]) if self.images is not None else 1
        return save_png(self.mosaic, str(path), scale)

"""The app's picture exports are readable: Export grid PNG, the prior samples' PNG… and the decoded
image's Save PNG… enlarge each pixel (nearest neighbour) by the same rule as ``latentlab export``
(`latentlab.model.latent.export_scale`: tiles of at least MIN_TILE_PX a side; a lone image MIN_IMAGE_PX)."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from _runs import open_run, tiny_run  # noqa: F401  (a fixture)
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def test_the_windows_picture_exports_are_enlarged_to_a_readable_size(window, qtbot, tiny_run, tmp_path, monkeypatch):
    import gui.exporting
    import gui.run_files
    from latentlab.model.latent import MIN_IMAGE_PX, MIN_TILE_PX, export_scale

    win = window
    open_run(qtbot, win, tiny_run)                       # 16×16 digits: 4× makes 64-pixel tiles
    m = win.latent_map
    h, w = m.tile_shape()
    assert (h, w) == (16, 16) and export_scale(h, w) == 4 and min(h, w) * export_scale(h, w) >= MIN_TILE_PX

    # File ▸ Export grid PNG…
    monkeypatch.setattr(gui.run_files, "ask_path", lambda *a: str(tmp_path / "grid.png"))
    shape = m.mosaic.shape
    win.export_grid_action.trigger()
    with Image.open(tmp_path / "grid.png") as im:
        assert im.size == (shape[1] * 4, shape[0] * 4)
        px = np.asarray(im)
    assert np.array_equal(px[::4, ::4], px[3::4, 3::4])  # whole pixels, not smoothed

    # the prior samples' PNG… button
    saved = {}
    monkeypatch.setattr(gui.exporting, "ask_path", lambda parent, title, name, kind: saved.setdefault(name, str(tmp_path / name)))
    win.prior.refresh(force=True)
    qtbot.waitUntil(lambda: win.prior.mosaic is not None, timeout=WAIT_MS)
    shape = win.prior.mosaic.shape
    win.prior.export_png_button.click()
    with Image.open(saved["prior-samples.png"]) as im:
        assert im.size == (shape[1] * 4, shape[0] * 4)

    # a click on the map decodes a point; the image panel's Save PNG… writes it at MIN_IMAGE_PX or more
    vp = m.plot.viewport()
    qtbot.mouseClick(vp, Qt.LeftButton, pos=QPoint(vp.width() // 2, vp.height() // 2))
    qtbot.waitUntil(lambda: win.image_panel.save_button.isEnabled(), timeout=WAIT_MS)
    win.image_panel.save_button.click()
    scale = export_scale(16, 16, MIN_IMAGE_PX)
    with Image.open(saved["decoded.png"]) as im:
        assert im.size == (16 * scale, 16 * scale) and min(im.size) >= MIN_IMAGE_PX

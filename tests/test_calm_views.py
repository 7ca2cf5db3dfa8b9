"""A calm window, the views (issue 28): "What β does" scrolls at one level only, the map's hover text never
overlaps its legend, and the rate–distortion plane frames all its runs as they are added unless the person
zoomed."""

import pytest
from PySide6.QtWidgets import QScrollArea

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def test_what_beta_does_has_one_level_of_scrolling(window, qtbot):
    view = window.tradeoff.lesson
    window.show_tradeoff(window.tradeoff.TAB_LESSON)
    qtbot.waitUntil(view.isVisible)
    areas = view.findChildren(QScrollArea)
    assert len(areas) == 1, [a.objectName() or type(a.parentWidget()).__name__ for a in areas]
    page = areas[0]
    assert page.widget() is not None and not page.widget().findChildren(QScrollArea)
    # the reconstructions and the comparison's views are sized by their images, inside the page
    from PySide6.QtGui import QImage
    image = QImage(900, 700, QImage.Format_RGB32)
    image.fill(0)
    view.recon_view.set_image(image)
    label = view.recon_view.label            # grown to the image at the width it has (scaled down, never cut)
    qtbot.waitUntil(lambda: label.height() >= 0.95 * 700 * min(1.0, label.width() / 900) > 100)
    assert not view.findChildren(QScrollArea)[0].widget().findChildren(QScrollArea)


@pytest.mark.parametrize("width,points", [(300, 10), (420, 10), (420, 16), (700, 16), (1100, 10)])
def test_the_hover_text_never_overlaps_the_legend(qtbot, width, points):
    """At any width and font size: the hover text and the legend side by side, neither drawn over the other, the
    hover text never clipped."""
    import numpy as np
    from gui.map.latent_map import LatentMap

    m = LatentMap()
    qtbot.addWidget(m)
    font = m.font()
    font.setPointSize(points)
    m.setFont(font)
    m.show_classes([f"a rather long class name {i}" for i in range(10)])
    m.resize(width, 600)
    m.show()
    qtbot.waitExposed(m)
    m.show_preview(np.zeros((28, 28, 1), np.float32), (-12.345, 10.5))
    qtbot.wait(50)
    text, legend = m.preview_label, m.legend
    assert text.isVisible() and legend.isVisible()
    qtbot.waitUntil(lambda: not text.geometry().intersects(legend.geometry()))
    assert not text.geometry().intersects(m.preview.geometry())
    needed = text.fontMetrics().boundingRect(0, 0, 10_000, 10_000, 0, text.text()).width()
    assert text.width() >= needed, (text.width(), needed)              # the hover text whole, never clipped
    assert legend.geometry().right() <= m.width() and text.geometry().right() <= m.width()
    # the legend's own text fits in its rectangle (wrapped, never drawn past it)
    assert legend.heightForWidth(legend.width()) <= legend.height() + 1


def _in_view(plane, rates, dists) -> bool:
    import numpy as np
    (x0, x1), (y0, y1) = plane.plot.getPlotItem().vb.viewRange()
    r, d = np.asarray(rates, float), np.asarray(dists, float)
    ok = np.isfinite(r) & np.isfinite(d)
    r, d = r[ok], d[ok]
    margin_x, margin_y = 0.02 * (x1 - x0), 0.02 * (y1 - y0)
    return bool(np.all((r >= x0 + margin_x) & (r <= x1 - margin_x) & (d >= y0 + margin_y) & (d <= y1 - margin_y)))


def _history(rates, dists, nan_first=False):
    rows = []
    for i, (r, d) in enumerate(zip(rates, dists)):
        row = {"epoch": i + 1, "val_kl_loss": r, "val_reconstruction_loss": d, "kl_loss": r, "reconstruction_loss": d}
        if nan_first and i == 0:
            row["val_kl_loss"] = row["val_reconstruction_loss"] = float("nan")
        rows.append(row)
    return rows


def test_the_plane_frames_its_runs_as_they_are_added_unless_the_person_zoomed(window, qtbot):
    import numpy as np
    from gui.tradeoff.rate_distortion import rate_distortion

    win = window
    win.show_tradeoff(win.tradeoff.TAB_RD)
    plane = win.tradeoff.rd_plot
    qtbot.waitUntil(plane.plot.isVisible)
    runs = [("/tmp/rd-a", 0.5, _history([30, 22, 18, 16], [260, 240, 230, 226], nan_first=True)),
            ("/tmp/rd-b", 4.0, _history([9, 6, 5, 4.5], [300, 290, 285, 283])),
            ("/tmp/rd-c", 0.05, _history([80, 70, 60, 55], [180, 170, 160, 150]))]
    shown_r, shown_d = [], []
    for key, beta, history in runs:
        plane.add_run(key, beta, history)
        r, d = rate_distortion(history)
        shown_r += list(r)
        shown_d += list(d)
        qtbot.waitUntil(lambda r=shown_r, d=shown_d: _in_view(plane, r, d))   # every point, with a margin
    # a person zooms in: later runs do not move their view
    vb = plane.plot.getPlotItem().vb
    vb.scaleBy((0.3, 0.3))
    vb.sigRangeChangedManually.emit(vb.state["mouseEnabled"])
    zoomed = [list(v) for v in vb.viewRange()]
    plane.add_run("/tmp/rd-d", 10.0, _history([2, 1.5], [400, 380]))
    qtbot.wait(3 * plane.REDRAW_MS)
    assert np.allclose(vb.viewRange(), zoomed)
    # clearing the plane (a new sweep) frames again
    plane.clear_runs()
    plane.add_run("/tmp/rd-e", 1.0, _history([12, 10], [250, 240]))
    qtbot.waitUntil(lambda: _in_view(plane, [12, 10], [250, 240]))


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_the_plane_is_whole_in_its_docked_tab(window, qtbot, size):
    """The trade-off dock scrolls only for the tab shown: a tall tab elsewhere (the comparison, the lesson) does
    not push the rate–distortion plane below the fold."""
    win = window
    win.resize(*size)
    win.show_tradeoff(win.tradeoff.TAB_RD)
    plot = win.tradeoff.rd_plot.plot
    qtbot.waitUntil(plot.isVisible)
    area = next(a for a in win.tradeoff_dock.findChildren(QScrollArea) if a.widget() is win.tradeoff)

    def whole() -> bool:
        top = plot.mapTo(area.viewport(), plot.rect().topLeft())
        bottom = plot.mapTo(area.viewport(), plot.rect().bottomLeft())
        return top.y() >= 0 and bottom.y() <= area.viewport().height() and plot.height() >= 100

    qtbot.waitUntil(whole)
    assert not area.verticalScrollBar().isVisible()

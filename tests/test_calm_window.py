"""A calm window (issue 28, first part): the map fits when a model's first points arrive and follows the codes
only as they spread past the view (no point cut off), and keeps the person's view across epochs once they
zoom; labels say the truth of
the moment: the legend names a labelled folder's classes before the first epoch, *Export grid PNG* waits for
a decoder."""

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def _epochs(win) -> int:
    return len(win.loss_plot.epoch_x)


def _view(m):
    """The view as a person sees it: its centre and its scale (the plot's width may change by a few pixels
    as the axis labels change; the map keeps centre and scale then, as it does on a resize)."""
    (x0, x1), (y0, y1) = m.vb.viewRange()
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, (y1 - y0) / max(m.vb.height(), 1.0)])


def test_the_map_fits_once_then_keeps_the_view_across_epochs(window, qtbot, gui_digits):
    win, m = window, window.latent_map
    with qtbot.waitSignal(win.dataset_panel.datasetLoaded, timeout=WAIT_MS):
        win.open_dataset(gui_digits)
    assert "digit_0" in m.legend.text() and "unlabeled" not in m.legend.text()   # classes known from the folder
    assert not win.export_grid_action.isEnabled()                                # no decoder, no grid to export
    win.training_panel.apply_settings(epochs=40, batch_size=32, latent_dim=2)
    with qtbot.waitSignal(win.trainingFinished, timeout=WAIT_MS):
        qtbot.mouseClick(win.training_panel.train_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: len(m.z) > 0 and _epochs(win) >= 1, timeout=WAIT_MS)
        (x0, x1), (y0, y1) = m.vb.viewRange()
        first = _view(m)
        p = m.plane(m.z)                                           # the first fit: every point inside
        assert x0 < p[:, 0].min() and p[:, 0].max() < x1 and y0 < p[:, 1].min() and p[:, 1].max() < y1
        qtbot.waitUntil(lambda: win.export_grid_action.isEnabled(), timeout=WAIT_MS)
        for _ in range(2):       # untouched: the view follows the codes only as far as they spread, never cuts one
            seen, before, (bx, by) = _epochs(win), _view(m), m.vb.viewRange()
            qtbot.waitUntil(lambda seen=seen: _epochs(win) >= seen + 1, timeout=WAIT_MS)
            qtbot.wait(50)
            assert m._all_in_view(), "a point was cut off"
            if np.allclose(_view(m), before):
                continue
            p = m.plane(m.z)             # it moved: only because codes had spread past the old view
            inside = (p[:, 0].min() >= bx[0] and p[:, 0].max() <= bx[1] and p[:, 1].min() >= by[0]
                      and p[:, 1].max() <= by[1])
            assert not inside, "the map moved under the cursor though every point was in view"
        vp = m.plot.viewport()                                     # the person zooms in with the wheel
        at = QPointF(vp.width() / 2, vp.height() / 2)
        QApplication.sendEvent(vp, QWheelEvent(at, QPointF(vp.mapToGlobal(at.toPoint())), QPoint(0, 0),
                                               QPoint(0, 120), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False))
        zoomed = _view(m)
        assert not np.allclose(zoomed, first)
        seen = _epochs(win)
        qtbot.waitUntil(lambda: _epochs(win) >= seen + 2, timeout=WAIT_MS)
        assert np.allclose(_view(m), zoomed), "the person's zoom was lost at an epoch"
        m.fit()                                                    # Fit: every point again
        p = m.plane(m.z)
        (x0, x1), (y0, y1) = m.vb.viewRange()
        assert x0 < p[:, 0].min() and p[:, 0].max() < x1 and y0 < p[:, 1].min() and p[:, 1].max() < y1
        win.training.stop()


def test_the_wheel_over_a_plot_in_a_scrolling_page_scrolls_the_page(window, qtbot):
    """One rule (gui.wheel): over a plot inside a scrolling page the wheel scrolls the page; Ctrl+wheel, or a
    click on the plot first, zooms the plot. The latent map (in no scrolling page) zooms as always."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QScrollArea, QVBoxLayout, QWidget

    page_content = QWidget()
    lay = QVBoxLayout(page_content)
    plot = pg.PlotWidget()
    plot.setMinimumHeight(300)
    plot.plot([0, 1, 2], [0, 1, 4])
    lay.addWidget(plot)
    filler = QWidget()
    filler.setMinimumHeight(1500)
    lay.addWidget(filler)
    page = QScrollArea()
    page.setWidgetResizable(True)
    page.setWidget(page_content)
    page.resize(500, 400)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitExposed(page, timeout=WAIT_MS)
    bar = page.verticalScrollBar()
    assert bar.maximum() > 0

    def wheel(view, modifiers=Qt.NoModifier):
        vp = view.viewport()
        at = QPointF(vp.width() / 2, vp.height() / 2)
        QApplication.sendEvent(vp, QWheelEvent(at, QPointF(vp.mapToGlobal(at.toPoint())), QPoint(0, 0),
                                               QPoint(0, -120), Qt.NoButton, modifiers, Qt.NoScrollPhase, False))

    before = plot.getViewBox().viewRange()
    wheel(plot)
    assert bar.value() > 0, "the page did not scroll"
    assert np.allclose(plot.getViewBox().viewRange(), before), "the plot zoomed instead"
    scrolled = bar.value()
    wheel(plot, Qt.ControlModifier)                                # Ctrl: the plot zooms, the page stays
    assert bar.value() == scrolled and not np.allclose(plot.getViewBox().viewRange(), before)
    m = window.latent_map                                          # the map: not in a page, zooms
    map_before = m.vb.viewRange()
    wheel(m.plot)
    assert not np.allclose(m.vb.viewRange(), map_before)


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 800)])
def test_the_settings_form_is_never_wider_than_its_dock_after_a_long_path(window, qtbot, gui_digits, tmp_path, size):
    """A folder deep in a file system (a path with no spaces to wrap at) must not push the settings form past its
    dock: the form is not scrollable sideways, so whatever is wider is cut (the Stop button, the Fit box)."""
    deep = tmp_path.joinpath(*(["a_rather_long_folder_name_of_a_lab_share"] * 4))
    deep.parent.mkdir(parents=True)
    deep.symlink_to(gui_digits, target_is_directory=True)
    window.resize(*size)
    with qtbot.waitSignal(window.dataset_panel.datasetLoaded, timeout=WAIT_MS):
        window.open_dataset(deep)
    area = window.layout_state.setup_dock.widget()
    qtbot.waitUntil(lambda: area.widget().width() <= area.viewport().width(), timeout=2000)
    assert window.dataset_panel.path_label.toolTip() == str(deep)      # the whole path, a hover away


def test_the_lesson_page_is_not_wider_than_its_dock_before_a_lesson(window, qtbot):
    """At 1280×800 the empty "What β does" page fits its dock: no sideways scrolling for its text (the plane's
    title row would not shrink and made the page 1,128 px wide in an 870 px dock)."""
    from PySide6.QtWidgets import QScrollArea

    window.show_tradeoff(window.tradeoff.TAB_LESSON)
    page = window.tradeoff.lesson.findChild(QScrollArea)
    qtbot.waitUntil(lambda: page.isVisible() and page.viewport().width() > 300, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: page.widget().width() <= page.viewport().width(), timeout=2000)
    assert page.horizontalScrollBar().maximum() == 0

"""The window as a daily tool, driven as a person would: the map takes the middle and keeps half the
height whatever the docks do; the layout survives a restart and View → Reset layout puts it back; the
map's units are equal on both axes, its tiles square and about their image's size, following a zoom;
unchecking the data leaves the decoder's manifold alone; 100,000 points stay one light item."""

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from _runs import open_run, tiny_run  # noqa: F401  (a fixture)
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def settle(qtbot, n: int = 5):
    for _ in range(n):
        QApplication.processEvents()
        qtbot.wait(20)


def test_the_map_has_the_most_room_and_keeps_half_the_height(window, qtbot):
    win = window
    areas = {"map": win.latent_map, "image": win.image_panel, "curves": win.loss_plot,
             "settings": win.layout_state.setup_dock}
    sizes = {k: w.width() * w.height() for k, w in areas.items()}
    assert max(sizes, key=sizes.get) == "map", sizes
    assert win.latent_map.height() >= win.height() / 2 and win.loss_plot.isVisible()

    dock = win.tradeoff_dock
    QTest.keyClick(win, Qt.Key_B, Qt.ControlModifier)        # the trade-off views at 1280×800: docked below the
    qtbot.waitUntil(dock.isVisible, timeout=WAIT_MS)            # map, tabbed with the curves, never floating
    settle(qtbot)
    assert (win.width(), win.height()) == (1280, 800)
    assert not dock.isFloating() and win.tradeoff.isVisible() and win.dockWidgetArea(dock) == Qt.BottomDockWidgetArea
    assert win.latent_map.height() >= win.height() / 2 and win.latent_map.width() >= 500
    assert dock.height() >= 200 and dock.width() >= 600          # as tall as the map allows: usable, scrolls
    dock.setFloating(True)                                   # a person may drag it out ...
    settle(qtbot)
    dock.setFloating(False)                                  # ... and dock it again: below the map, capped
    settle(qtbot)
    assert not dock.isFloating() and win.tradeoff.isVisible() and win.latent_map.height() >= win.height() / 2
    win.resizeDocks([dock], [win.height()], Qt.Vertical)     # its edge dragged to the top
    settle(qtbot)
    assert win.latent_map.height() >= win.height() / 2
    for w, h in ((1280, 700), (1024, 640), (1920, 1080), (1280, 800)):
        win.resize(w, h)
        qtbot.waitUntil(lambda h=h: win.height() == h, timeout=WAIT_MS)
        settle(qtbot)
        assert win.latent_map.height() >= h / 2, (w, h, win.latent_map.height())
    win.tradeoff_toggle_action.trigger()                     # hidden, then shown where it was
    qtbot.waitUntil(lambda: not dock.isVisible(), timeout=WAIT_MS)
    win.tradeoff_toggle_action.trigger()
    qtbot.waitUntil(dock.isVisible, timeout=WAIT_MS)
    assert not dock.isFloating()
    dock.setFloating(True)                                   # floating: any height
    qtbot.waitUntil(lambda: dock.maximumHeight() > 10_000, timeout=WAIT_MS)


def test_the_tradeoff_views_open_docked_at_any_size_and_a_floating_state_is_not_restored(qtbot, no_thread_leaks,
                                                                                           gui_env):
    from gui.layout import KEYS, LAYOUT_VERSION
    from gui.main_window import MainWindow
    from gui.settings import settings

    def new_window(w, h):
        win = MainWindow(runs_root=gui_env / "runs")
        win.confirm_stop = lambda: True
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        win.resize(w, h)
        qtbot.waitUntil(lambda: win.height() == h, timeout=WAIT_MS)
        settle(qtbot)
        return win

    for w, h in ((1280, 800), (1024, 640), (1920, 1080)):
        win = new_window(w, h)
        win.show_tradeoff(win.tradeoff.TAB_RD)
        settle(qtbot)
        dock = win.tradeoff_dock
        assert dock.isVisible() and not dock.isFloating(), (w, h)
        assert win.latent_map.height() >= h / 2 and win.latent_map.width() >= w * 0.35, (w, h)
        if (w, h) == (1280, 800):                      # a layout saved by the old version, floating
            win.tradeoff_dock.setFloating(True)
            settle(qtbot)
            win.close()
            settings().setValue(KEYS["version"], LAYOUT_VERSION - 1)
            settings().sync()
            win.shutdown()
            again = new_window(1280, 800)
            assert not again.tradeoff_dock.isVisible() and not again.tradeoff_dock.isFloating()
            again.close()
            again.shutdown()
        else:
            if (w, h) == (1920, 1080):                 # a taller window: the views take what the map leaves
                win.resize(2560, 1440)
                qtbot.waitUntil(lambda win=win: win.height() == 1440, timeout=WAIT_MS)
                settle(qtbot)
                qtbot.waitUntil(lambda dock=dock: dock.height() >= 0.3 * 1440, timeout=WAIT_MS)
                assert win.latent_map.height() >= 1440 / 2 and not dock.isFloating()
            win.close()
            win.shutdown()


def test_a_tall_window_docks_the_tradeoff_views_below_the_map(window, qtbot):
    win, dock = window, window.tradeoff_dock
    win.resize(1920, 1200)
    qtbot.waitUntil(lambda: win.height() == 1200, timeout=WAIT_MS)
    settle(qtbot)
    win.show_tradeoff(win.tradeoff.TAB_LOSS)
    settle(qtbot)
    assert not dock.isFloating() and dock.height() >= 360            # room for them: docked, as tall as allowed
    assert win.latent_map.height() >= win.height() / 2 and win.tradeoff.currentIndex() == win.tradeoff.TAB_LOSS


def test_the_layout_survives_a_restart_and_resets(qtbot, no_thread_leaks, gui_env):
    from gui.layout import FIRST_SIZE, first_size
    from gui.main_window import MainWindow

    assert first_size(QRect(0, 0, 1920, 1080)) == (1632, 918)           # most of a large screen
    assert first_size(QRect(0, 0, 1366, 768)) == (1280, 768)            # at least 1280 wide where it fits
    assert first_size(QRect(0, 0, 1024, 600)) == (1024, 600)            # never more than the screen

    def new_window():
        win = MainWindow(runs_root=gui_env / "runs")
        win.confirm_stop = lambda: True
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        settle(qtbot)
        return win

    first = new_window()
    assert (first.width(), first.height()) == FIRST_SIZE                 # a first start (offscreen: no screen)
    assert not first.tradeoff_dock.isVisible() and first.loss_plot.isVisible()
    first.resize(1500, 950)
    qtbot.waitUntil(lambda: first.height() == 950, timeout=WAIT_MS)
    first.show_tradeoff(first.tradeoff.TAB_RD)
    first.layout_state.map_split.setSizes([800, 420])
    settle(qtbot)
    split = first.layout_state.map_split.sizes()
    dock_height = first.tradeoff_dock.height()
    first.close()
    first.shutdown()

    second = new_window()                                                # the same QSettings file
    assert (second.width(), second.height()) == (1500, 950)
    assert second.tradeoff_dock.isVisible() and second.layout_state.map_split.sizes() == split
    assert abs(second.tradeoff_dock.height() - dock_height) <= 4
    assert second.latent_map.height() >= second.height() / 2
    reset = [a for a in second.menuBar().actions() if a.text() == "&View"][0].menu()
    [a for a in reset.actions() if a.text() == "&Reset layout"][0].trigger()
    settle(qtbot)
    assert not second.tradeoff_dock.isVisible() and second.loss_plot.isVisible()
    assert second.layout_state.setup_dock.isVisible() and not second.layout_state.setup_dock.isFloating()
    second.close()
    second.shutdown()


def wheel(win, clicks: int) -> None:
    vp = win.latent_map.plot.viewport()
    at = QPointF(vp.width() / 2, vp.height() / 2)
    QApplication.sendEvent(vp, QWheelEvent(at, QPointF(vp.mapToGlobal(at.toPoint())), QPoint(0, 0),
                                           QPoint(0, 120 * clicks), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase,
                                           False))


def tile_pixels(win):
    """(width, height) in screen pixels of a tile of the grid shown."""
    m = win.latent_map
    cols, rows = m.mosaic.shape[1] // 16, m.mosaic.shape[0] // 16
    px, py = m.vb.viewPixelSize()
    return m.grid_rect.width() / cols / px, m.grid_rect.height() / rows / py


def test_tiles_are_square_about_an_image_wide_and_follow_a_zoom(window, qtbot, tiny_run):
    win = window
    m = win.latent_map
    open_run(qtbot, win, tiny_run)
    assert m.vb.state["aspectLocked"] == 1.0                             # equal units on both axes
    px, py = m.vb.viewPixelSize()
    assert px == pytest.approx(py, rel=1e-6)
    w, h = tile_pixels(win)
    assert w == pytest.approx(h, rel=1e-6) and 16 * 2 ** -0.25 - 0.5 <= w <= 16 * 2 ** 0.75   # square, ~16 px
    (x0, x1), (y0, y1) = m.vb.viewRange()
    r = m.grid_rect                                                      # the grid covers the view
    assert r.left() <= x0 and r.right() >= x1 and r.top() <= y0 and r.bottom() >= y1
    before = m.mosaic.shape

    with qtbot.waitSignal(win.gridShown, timeout=WAIT_MS):
        wheel(win, 1)                                                    # one wheel click in
    qtbot.waitUntil(win.is_idle, timeout=WAIT_MS)
    assert not m.autofit and m.mosaic.shape != before, "the zoom did not change the grid's tiles"
    w2, h2 = tile_pixels(win)
    assert w2 == pytest.approx(h2, rel=1e-6) and 16 * 2 ** -0.25 - 0.5 <= w2 <= 16 * 2 ** 0.75
    (x0, x1), (y0, y1) = m.vb.viewRange()
    r = m.grid_rect
    assert r.left() <= x0 and r.right() >= x1 and r.top() <= y0 and r.bottom() >= y1
    # the tiles are what the decoder gives at their centres
    lat = m.lattice
    z = np.array([[lat.i0 * lat.step, lat.j1 * lat.step]], np.float32)
    assert np.allclose(m.mosaic[:16, :16], win.map_view.point_decoder.decode(z)[0], atol=1e-4)

    m.show_points.click()                                                # data off: the manifold alone
    assert not m.points_item.isVisible() and m.grid_item.isVisible() and m.grid_item.opacity() == 1.0
    m.show_points.click()
    assert m.points_item.isVisible() and m.grid_item.opacity() < 1.0


def test_a_hundred_thousand_points_are_one_light_item(qtbot):
    from gui.map.latent_map import LatentMap
    from gui.map.point_cloud import REFRESH_S

    m = LatentMap()
    qtbot.addWidget(m)
    m.resize(900, 600)
    m.show()
    qtbot.waitExposed(m)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((100_000, 2)).astype(np.float32)
    labels = rng.integers(0, 10, len(z))
    m.set_points(z, labels, [f"c{i}" for i in range(10)])
    item = m.points_item
    qtbot.waitUntil(lambda: item.renders >= 1, timeout=WAIT_MS)
    settle(qtbot)
    qtbot.wait(int(REFRESH_S * 1000) + 50)                              # a redraw at the dots' size is due
    m.plot.viewport().repaint()
    assert not item._refresh.isActive() and 0 < item.drawn < len(z)    # thinned: one dot per 2×2 pixels
    renders = item.renders
    for _ in range(5):                                                   # a pan inside the margin: no redraw
        m.vb.translateBy(x=0.01)
        m.plot.viewport().repaint()
    assert item.renders == renders
    # every class is drawn (the order is shuffled, no class buries another)
    assert set(item.color_index[:1000]) == set(range(10))
    idx = 12_345
    assert np.array_equal(item.xy[np.flatnonzero(item.indices() == idx)[0]], z[idx])
    # a click on a point still finds it
    got = []
    m.pointClicked.connect(lambda i, zz: got.append(i))
    x, y = float(z[idx, 0]), float(z[idx, 1])
    m.vb.setRange(xRange=(x - 0.01, x + 0.01), yRange=(y - 0.01, y + 0.01), padding=0)
    m.click_at(float(z[idx, 0]), float(z[idx, 1]))
    assert got == [idx]


def test_every_shortcut_does_one_thing(window):
    """Two actions on one key: Qt runs neither ('ambiguous shortcut'), so a key a menu shows would do nothing."""
    from PySide6.QtGui import QAction

    seen = {}
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            text = key.toString()
            assert text not in seen, f"{text}: {seen[text]!r} and {action.text()!r}"
            seen[text] = action.text()
    assert len(seen) >= 8, seen      # the menus' shortcuts were found

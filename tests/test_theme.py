"""Light and dark (issue 28): View ▸ Colour scheme recolours the plots (background, axes, point labels) and the
coloured labels (errors, notes, the lesson's verdict) at once, keeps the choice for the next start, and in
System follows the desktop's colorSchemeChanged."""

import pytest
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


@pytest.fixture
def themed_window(window):
    yield window
    window.theme.set_scheme(window.theme.scheme.SYSTEM)    # the next test starts as the desktop says


def _bg(plot) -> str:
    return plot.backgroundBrush().color().name()


def _text_color(label) -> str:
    label.ensurePolished()
    return label.palette().color(QPalette.WindowText).name()


def test_the_scheme_menu_recolours_plots_and_labels_and_is_kept(themed_window, qtbot):
    from gui.settings import settings
    from gui.theme import DARK, LIGHT, SETTINGS_KEY, Scheme

    win = themed_window
    win.dataset_panel.error.setText("no images in /tmp/x: choose a folder with images")
    win.tradeoff.lesson.verdict.setText("β 0.1: …")
    win.scheme_actions[Scheme.LIGHT].trigger()
    assert _bg(win.loss_plot.plot) == LIGHT.plot_bg
    assert _bg(win.latent_map.plot) == LIGHT.map_bg
    assert _text_color(win.dataset_panel.error) == LIGHT.error
    light_window = QApplication.palette().color(QPalette.Window)

    win.scheme_actions[Scheme.DARK].trigger()
    assert win.scheme_actions[Scheme.DARK].isChecked() and not win.scheme_actions[Scheme.LIGHT].isChecked()
    assert settings().value(SETTINGS_KEY) == "dark"
    assert QApplication.palette().color(QPalette.Window).lightness() < 100 < light_window.lightness()
    for plot in (win.loss_plot.plot, win.tradeoff.lesson.plane.plot, win.tradeoff.rd_plot.plot):
        assert _bg(plot) == DARK.plot_bg
    assert _bg(win.latent_map.plot) == DARK.map_bg
    axis = win.loss_plot.plot.getAxis("left")
    assert axis.textPen().color().name() == DARK.plot_fg and axis.pen().color().name() == DARK.plot_fg
    assert _text_color(win.dataset_panel.error) == DARK.error
    verdict = win.tradeoff.lesson.verdict
    verdict.ensurePolished()
    assert verdict.palette().color(QPalette.Window).name() == DARK.card_bg
    assert _text_color(verdict) == DARK.card_fg
    # a plot made after the change is dark from the start (pyqtgraph's defaults follow)
    from gui.widgets import make_plot
    fresh = make_plot()
    qtbot.addWidget(fresh)
    assert _bg(fresh) == DARK.plot_bg

    win.scheme_actions[Scheme.LIGHT].trigger()
    assert _bg(win.loss_plot.plot) == LIGHT.plot_bg and _bg(fresh) == LIGHT.plot_bg
    assert _text_color(win.dataset_panel.error) == LIGHT.error
    assert QApplication.palette().color(QPalette.Window).lightness() > 200


def test_point_labels_on_the_plane_follow_the_scheme(themed_window):
    from gui.theme import DARK, LIGHT, Scheme

    win = themed_window
    plane = win.tradeoff.lesson.plane
    history = [{"epoch": 1, "val_reconstruction_loss": 120.0, "val_kl_loss": 5.0, "reconstruction_loss": 121.0,
                "kl_loss": 5.1, "loss": 126.0, "val_loss": 125.0}]
    plane.add_run("/tmp/run-a", 1.0, history, "β = 1")
    labels = [item for item in plane.plot.getPlotItem().items if getattr(item, "themed", False)]
    assert labels, "the run's label is on the plane"
    win.theme.set_scheme(Scheme.DARK)
    assert all(item.color.name() == DARK.text for item in labels)
    win.theme.set_scheme(Scheme.LIGHT)
    assert all(item.color.name() == LIGHT.text for item in labels)


def test_system_follows_the_desktops_colour_scheme(themed_window, monkeypatch):
    from gui.theme import DARK, LIGHT, Scheme, Theme

    win = themed_window
    win.theme.set_scheme(Scheme.SYSTEM)
    desktop_dark = {"on": False}
    monkeypatch.setattr(Theme, "system_is_dark", lambda self: desktop_dark["on"])
    win.theme.apply()
    assert _bg(win.loss_plot.plot) == LIGHT.plot_bg
    hints = QGuiApplication.styleHints()
    desktop_dark["on"] = True
    from PySide6.QtCore import Qt
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)      # what Qt sends when the desktop turns dark
    assert _bg(win.loss_plot.plot) == DARK.plot_bg
    assert _text_color(win.dataset_panel.error) == DARK.error
    win.theme.set_scheme(Scheme.LIGHT)                         # a forced scheme ignores the desktop
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert _bg(win.loss_plot.plot) == LIGHT.plot_bg
    assert QColor(LIGHT.plot_bg).lightness() > 200
    desktop_dark["on"] = False      # the patch outlives this test's window: later tests start light

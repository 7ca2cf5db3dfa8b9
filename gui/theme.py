"""Light and dark: the colour scheme the app uses, pyqtgraph's plots and the app's few coloured labels included.

``Scheme.SYSTEM`` (the default) follows the desktop: Qt's ``QStyleHints.colorScheme()`` and its
``colorSchemeChanged`` signal (Qt ≥ 6.5), or the platform palette's lightness where the platform does
not say. ``Scheme.LIGHT`` and ``Scheme.DARK`` force one (View ▸ Colour scheme; kept in QSettings under
``view/colour_scheme``). A forced scheme is asked of the platform (``QStyleHints.setColorScheme``, Qt ≥
6.8, so window frames follow) and set as the application palette, which works on every platform
(offscreen and Xvfb included).

Widgets never hard-code a colour: a label declares what it is with ``set_role(label, "error")`` (roles:
note, error, warn, alert, banner, verdict) and the app-wide style sheet (``style_sheet``) colours each
role from the scheme in use; rich text takes ``colors().error`` etc. when it is written. Plots are made
after ``install`` set pyqtgraph's background and foreground, and ``Theme.apply`` recolours the plots that
exist (background, axes, legends) when the scheme changes; ``changed`` tells views that paint their own
pictures (``colors()`` is what to paint with)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory, QWidget

from gui.settings import settings

__all__ = ["Scheme", "Colors", "LIGHT", "DARK", "Theme", "install", "theme", "colors", "set_role", "style_sheet",
           "SETTINGS_KEY"]

SETTINGS_KEY = "view/colour_scheme"


class Scheme(enum.Enum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


@dataclass(frozen=True)
class Colors:
    """What the app paints with in one scheme (``#rrggbb`` strings; plots take them as they are)."""
    dark: bool
    plot_bg: str          # plots' background
    map_bg: str           # the latent map's and the replay's (a touch off the plots' so the map reads as a canvas)
    plot_fg: str          # axes, ticks, axis labels, legends
    text: str             # text drawn on a plot (labels of points)
    label_fill: str       # the box behind that text (#rrggbbaa)
    note: str             # secondary text
    error: str            # errors, failed runs
    accent: str           # β where the loss is written out
    warn: str             # a caution (e.g. an epoch will be slow)
    alert_bg: str
    alert_fg: str
    card_bg: str          # a verdict box, a picture card
    card_border: str
    card_fg: str


LIGHT = Colors(dark=False, plot_bg="#ffffff", map_bg="#fafafa", plot_fg="#464646", text="#1e1e1e",
               label_fill="#ffffffaa", note="#555555", error="#b00020", accent="#c0392b", warn="#8a5a00", alert_bg="#fde7e9",
               alert_fg="#8a0010", card_bg="#f4f7fb", card_border="#d5deea", card_fg="#282828")
DARK = Colors(dark=True, plot_bg="#1e1f22", map_bg="#232428", plot_fg="#c8c8c8", text="#e6e6e6",
              label_fill="#1e1f22aa", note="#a8a8a8", error="#ff7a85", accent="#ff8a65", warn="#e8b04a", alert_bg="#4a1c22",
              alert_fg="#ffc9ce", card_bg="#262a31", card_border="#3d4654", card_fg="#e0e0e0")


def style_sheet(c: Colors) -> str:
    """The app-wide style sheet: each label role coloured from ``c``."""
    return (f'*[role="note"] {{ color: {c.note}; }}\n'
            f'*[role="error"] {{ color: {c.error}; }}\n'
            f'*[role="warn"] {{ color: {c.warn}; }}\n'
            f'*[role="alert"] {{ background: {c.alert_bg}; color: {c.alert_fg}; padding: 4px; border-radius: 3px; }}\n'
            f'*[role="banner"] {{ background: {c.alert_bg}; color: {c.alert_fg}; padding: 4px 8px; '
            f'border-radius: 3px; }}\n'
            f'*[role="verdict"] {{ background: {c.card_bg}; color: {c.card_fg}; border: 1px solid {c.card_border}; '
            f'border-radius: 4px; padding: 6px; }}\n')


def set_role(widget: QWidget, role: str | None) -> None:
    """Colour ``widget`` as ``role`` (None: as plain text) from the scheme in use, now and after a change."""
    if widget.property("role") == role:
        return
    widget.setProperty("role", role)
    widget.style().unpolish(widget)
    widget.style().polish(widget)
    widget.update()


def _dark_palette() -> QPalette:
    p = QPalette()
    window, base, text = QColor(45, 46, 50), QColor(30, 31, 34), QColor(225, 225, 225)
    for role, color in ((QPalette.Window, window), (QPalette.WindowText, text), (QPalette.Base, base),
                        (QPalette.AlternateBase, QColor(40, 41, 45)), (QPalette.ToolTipBase, QColor(55, 56, 60)),
                        (QPalette.ToolTipText, text), (QPalette.Text, text), (QPalette.Button, QColor(55, 56, 61)),
                        (QPalette.ButtonText, text), (QPalette.BrightText, QColor(255, 90, 90)),
                        (QPalette.Light, QColor(75, 76, 82)), (QPalette.Midlight, QColor(62, 63, 68)),
                        (QPalette.Mid, QColor(110, 110, 115)), (QPalette.Dark, QColor(25, 25, 28)),
                        (QPalette.Shadow, QColor(10, 10, 10)), (QPalette.Highlight, QColor(61, 117, 196)),
                        (QPalette.HighlightedText, QColor(255, 255, 255)), (QPalette.Link, QColor(110, 170, 255)),
                        (QPalette.LinkVisited, QColor(170, 140, 255)), (QPalette.PlaceholderText, QColor(140, 140, 145))):
        p.setColor(role, color)
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        p.setColor(QPalette.Disabled, role, QColor(120, 120, 125))
    return p


class Theme(QObject):
    """The scheme in use, for one QApplication (``install`` makes it; ``theme()`` finds it).

    ``scheme`` is the person's choice; ``dark`` what it resolves to; ``changed(Colors)`` after every
    change of either (the plots are recoloured by then)."""

    changed = Signal(object)

    def __init__(self, app: QApplication):
        super().__init__(app)
        self.app = app
        self.scheme = Scheme.SYSTEM
        self.colors = LIGHT
        self._platform_palette = QPalette(app.palette())   # what the platform gave, for System
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._on_system_change)
        try:
            self.scheme = Scheme(str(settings().value(SETTINGS_KEY, Scheme.SYSTEM.value)))
        except ValueError:
            self.scheme = Scheme.SYSTEM
        self.apply()

    # -- the choice ------------------------------------------------------------------------------
    def set_scheme(self, scheme: Scheme) -> None:
        """Use ``scheme`` from now on (kept for the next start)."""
        self.scheme = Scheme(scheme)
        settings().setValue(SETTINGS_KEY, self.scheme.value)
        self.apply()

    def system_is_dark(self) -> bool:
        hints = QGuiApplication.styleHints()
        scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else Qt.ColorScheme.Unknown
        if scheme == Qt.ColorScheme.Dark:
            return True
        if scheme == Qt.ColorScheme.Light:
            return False
        return self._platform_palette.color(QPalette.Window).lightness() < 128

    @property
    def dark(self) -> bool:
        return self.system_is_dark() if self.scheme is Scheme.SYSTEM else self.scheme is Scheme.DARK

    def _on_system_change(self, *_):
        if self.scheme is Scheme.SYSTEM:
            self.apply()

    # -- applying it -----------------------------------------------------------------------------
    def apply(self) -> None:
        """Palette, style sheet, pyqtgraph's defaults and every existing plot, from the scheme in use."""
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "setColorScheme"):          # Qt ≥ 6.8: the platform's frames and dialogs follow
            with _blocked(hints):
                if self.scheme is Scheme.SYSTEM:
                    hints.unsetColorScheme()
                else:
                    hints.setColorScheme(Qt.ColorScheme.Dark if self.scheme is Scheme.DARK else Qt.ColorScheme.Light)
        dark = self.dark
        self.colors = DARK if dark else LIGHT
        if self.scheme is Scheme.SYSTEM:
            self.app.setPalette(self._platform_palette)
        elif dark:
            self.app.setStyle(QStyleFactory.create("Fusion"))   # Fusion draws any palette; native styles may not
            self.app.setPalette(_dark_palette())
        else:
            self.app.setPalette(self.app.style().standardPalette())
        self.app.setStyleSheet(style_sheet(self.colors))
        pg.setConfigOptions(background=self.colors.plot_bg, foreground=self.colors.plot_fg)
        for widget in self.app.allWidgets():
            if isinstance(widget, pg.GraphicsView):
                recolor_plot(widget, self.colors)
        self.changed.emit(self.colors)


class _blocked:
    """Signals of ``obj`` blocked inside the block (our own setColorScheme is not a system change)."""

    def __init__(self, obj):
        self.obj = obj

    def __enter__(self):
        self.was = self.obj.blockSignals(True)

    def __exit__(self, *exc):
        self.obj.blockSignals(self.was)


def recolor_plot(view: pg.GraphicsView, c: Colors) -> None:
    """``view``'s background (the map's stays a canvas colour), axes and legends in ``c``'s colours."""
    view.setBackground(c.map_bg if view.property("canvas") else c.plot_bg)
    for item in view.scene().items():
        if isinstance(item, pg.AxisItem):
            item.setPen(c.plot_fg)
            item.setTextPen(c.plot_fg)
        elif isinstance(item, pg.LegendItem):
            item.setLabelTextColor(c.plot_fg)
        elif isinstance(item, pg.TextItem) and getattr(item, "themed", False):   # labels of points
            item.setColor(c.text)
            item.fill = pg.mkBrush(c.label_fill)
            item.update()
        elif isinstance(item, pg.LabelItem):      # plot titles
            item.setText(item.text, color=c.plot_fg)


def install(app: QApplication | None = None) -> Theme:
    """The app's Theme, made (and applied) on first use: call before making plots."""
    app = app or QApplication.instance()
    found = app.findChild(Theme)
    return found if found is not None else Theme(app)


def theme() -> Theme | None:
    """The installed Theme, or None (widgets made outside the app, e.g. in a test of one view)."""
    app = QApplication.instance()
    return app.findChild(Theme) if app is not None else None


def colors() -> Colors:
    """The colours of the scheme in use (light when no Theme is installed)."""
    t = theme()
    return t.colors if t is not None else LIGHT

"""`WindowLayout`: where the main window's views sit, and keeping that across starts.

The latent map takes the middle of the window, the decoded image (and the prior samples, a tab beside
it) its right; the dataset and training settings are a dock on the left, the loss curves a dock below.
The trade-off views are a dock too, tabbed with the loss curves: whatever is docked above or below the
map never takes it under half the window's height (their height is capped as the window resizes). No
dock ever floats by itself, at any window size (the trade-off views scroll inside their tab when the
room below the map is short); a person may still drag a dock out into a window of its own. Dock and window state, the map's splitter and the window's
geometry go to QSettings (`gui.settings.settings`) when the window closes and come back at the next
start; View → Reset layout puts everything back. The first start sizes the window to its screen.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QByteArray, QEvent, QObject, QSize, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDockWidget, QScrollArea, QStyle, QTabWidget, QToolBar

from gui.settings import settings
from gui.widgets import STRETCH, as_widget, column, make_action, splitter

__all__ = ["WindowLayout", "LAYOUT_VERSION", "FIRST_SIZE", "first_size"]

LAYOUT_VERSION = 2          # raise when the docks change: a saved state of another version is ignored
                            # (2: the trade-off views no longer float by themselves; a floating state
                            # saved by version 1 is not restored)
FIRST_SIZE = (1280, 800)    # at least this at the first start when the screen has room
SCREEN_SHARE = 0.85         # of the screen the first start takes (when that is more)
MIN_DOCK_HEIGHT = 80
QWIDGETSIZE_MAX = 16_777_215
KEYS = {"version": "layout/version", "geometry": "layout/geometry", "state": "layout/state",
        "split": "layout/map-split", "size": "layout/size"}
# No real screen (headless screenshots): the window takes FIRST_SIZE, or the size it was closed at; a saved
# geometry would be fitted to the platform's small virtual screen.
VIRTUAL_PLATFORMS = ("offscreen", "minimal")


def first_size(available) -> tuple[int, int]:
    """The window's size at its first start on a screen whose free area is ``available`` (a QRect):
    most of the screen, at least FIRST_SIZE when it fits, never more than the screen."""
    w = min(available.width(), max(FIRST_SIZE[0], int(available.width() * SCREEN_SHARE)))
    h = min(available.height(), max(FIRST_SIZE[1], int(available.height() * SCREEN_SHARE)))
    return w, h


def _dock(window, title: str, name: str, widget, areas) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(name)          # saveState/restoreState find docks by name
    dock.setWidget(widget)
    dock.setAllowedAreas(areas)
    return dock


def _scrolled(widget) -> QScrollArea:
    """``widget`` in a scroll area: a dock of it may be smaller than the widget's own minimum."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(widget)
    area.setFrameShape(QScrollArea.NoFrame)
    return area


class WindowLayout(QObject):
    """Builds the window's central widget and docks from its views (``window.latent_map``,
    ``image_panel``, ``loss_plot``, ``tradeoff``, ``dataset_panel``, ``training_panel``, ``banner``, and
    ``extra_side`` tabs beside the decoded image), keeps the map at least half the window's height, and
    saves and restores the arrangement."""

    def __init__(self, window, extra_side=()):
        super().__init__(window)
        self.window = window
        w = window
        self.side_tabs = QTabWidget()
        self.side_tabs.setDocumentMode(True)
        self.side_tabs.addTab(w.image_panel, "Decoded image")
        w.image_panel.setTitle("")       # the tab names it
        for widget, title, tip in extra_side:
            self.side_tabs.setTabToolTip(self.side_tabs.addTab(widget, title), tip)
        self.side_tabs.setMinimumWidth(240)
        self.map_split = splitter(Qt.Horizontal, [(w.latent_map, 1, 900), (self.side_tabs, 0, 300)])
        self.map_split.setObjectName("map-split")
        self.map_split.setChildrenCollapsible(False)
        w.setCentralWidget(as_widget(column(w.banner, (self.map_split, 1), margins=4)))

        setup = column(w.dataset_panel, w.training_panel, STRETCH, margins=4)
        self.setup_dock = _dock(w, "Dataset and training", "setup-dock", _scrolled(as_widget(setup)),
                                Qt.LeftDockWidgetArea | Qt.RightDockWidgetArea)
        self.setup_dock.widget().setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setup_dock.widget().setMinimumWidth(300)
        self.loss_dock = _dock(w, "Loss curves", "loss-dock", w.loss_plot, Qt.AllDockWidgetAreas)
        self.tradeoff_dock = _dock(w, "Trade-off: rate, distortion and β", "tradeoff-dock", _scrolled(w.tradeoff),
                                   Qt.AllDockWidgetAreas)
        w.setCorner(Qt.BottomLeftCorner, Qt.LeftDockWidgetArea)    # the settings run the window's full height
        w.setCorner(Qt.TopLeftCorner, Qt.LeftDockWidgetArea)
        w.setDockOptions(w.dockOptions() | w.DockOption.AllowTabbedDocks | w.DockOption.AnimatedDocks)
        self._place_docks()
        self.default_state = None        # saveState() of the arrangement above, once the window has a size
        for dock in self.docks:
            dock.topLevelChanged.connect(lambda floating, d=dock: self._on_top_level(d, floating))
            dock.dockLocationChanged.connect(self._schedule_cap)
            dock.visibilityChanged.connect(self._schedule_cap)
        self.tradeoff_dock.toggleViewAction().triggered.connect(   # (Qt has shown it by then)
            lambda on: on and self.show_dock(self.tradeoff_dock, appears=True))
        # a click on the map shows its image (the samples tab may be in front)
        w.latent_map.clicked.connect(lambda *_: self.side_tabs.setCurrentWidget(w.image_panel))
        w.latent_map.pointClicked.connect(lambda *_: self.side_tabs.setCurrentWidget(w.image_panel))
        self.reset_action = None
        w.installEventFilter(self)

    @property
    def docks(self) -> list[QDockWidget]:
        return [self.setup_dock, self.loss_dock, self.tradeoff_dock]

    def _place_docks(self) -> None:
        w = self.window
        for dock in self.docks:
            dock.setFloating(False)
        w.addDockWidget(Qt.LeftDockWidgetArea, self.setup_dock)
        w.addDockWidget(Qt.BottomDockWidgetArea, self.loss_dock)
        w.addDockWidget(Qt.BottomDockWidgetArea, self.tradeoff_dock)
        w.tabifyDockWidget(self.loss_dock, self.tradeoff_dock)
        self.setup_dock.show()
        self.loss_dock.show()
        self.tradeoff_dock.hide()
        self.loss_dock.raise_()

    def _default_sizes(self) -> None:
        w = self.window
        w.resizeDocks([self.setup_dock], [self._setup_width()], Qt.Horizontal)
        w.resizeDocks([self.loss_dock], [max(MIN_DOCK_HEIGHT, int(w.height() * 0.3))], Qt.Vertical)
        side = max(260, min(380, int(w.width() * 0.22)))
        self.map_split.setSizes([max(300, w.width() - self._setup_width() - side), side])

    def _setup_width(self) -> int:
        """The settings dock's width: its form's own (nothing cut), within 340 px and 30 % of the window."""
        area = self.setup_dock.widget()
        want = area.widget().sizeHint().width() + area.verticalScrollBar().sizeHint().width() + 8
        return max(340, min(want, int(self.window.width() * 0.3)))

    def show_dock(self, dock, appears: bool | None = None) -> None:
        """Show ``dock`` in front of the docks it is tabbed with, as tall as the map allows below it. It
        stays docked wherever it is (never floated here: at a short window it scrolls in its tab)."""
        w = self.window
        dock.show()
        dock.raise_()
        self.cap_docks()
        vertical = w.dockWidgetArea(dock) in (Qt.TopDockWidgetArea, Qt.BottomDockWidgetArea)
        if dock.isFloating() or not vertical:
            return
        w.resizeDocks([dock], [dock.maximumHeight()], Qt.Vertical)

    def _on_top_level(self, dock, floating: bool) -> None:
        self._schedule_cap()

    # -- the menu --------------------------------------------------------------------------------------
    def add_to_menu(self, menu) -> None:
        """Show/hide entries for the docks and View → Reset layout."""
        menu.addSeparator()
        for dock, text in ((self.setup_dock, "Dataset and &training settings"), (self.loss_dock, "Loss &curves")):
            action = dock.toggleViewAction()
            action.setText(text)
            action.setStatusTip(f"Show or hide the {text.replace('&', '').lower()} (a dock: drag it elsewhere, "
                                "or double-click its title to open it in a window of its own)")
            menu.addAction(action)
        self.reset_action = make_action(self.window, "&Reset layout", self.reset, None,
                                        "Put the map, the image, the curves and the docks back where they "
                                        "were at the first start", menu)

    # -- the map keeps half the height --------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() in (QEvent.Resize, QEvent.Show):
            self.cap_docks()
            if event.type() == QEvent.Resize and event.size().height() != event.oldSize().height():
                QTimer.singleShot(0, self._grow_tradeoff)
        return False

    def _grow_tradeoff(self) -> None:
        """A window whose height changed gives the shown trade-off views what the map leaves below it (they
        stayed ~230 px tall in a 1440-pixel window while the map took the rest)."""
        dock, w = self.tradeoff_dock, self.window
        if (dock.isVisible() and not dock.isFloating() and not dock.visibleRegion().isEmpty()
                and w.dockWidgetArea(dock) in (Qt.TopDockWidgetArea, Qt.BottomDockWidgetArea)):
            self.cap_docks()
            w.resizeDocks([dock], [dock.maximumHeight()], Qt.Vertical)

    def _schedule_cap(self, *args) -> None:
        QTimer.singleShot(0, self.cap_docks)

    def cap_docks(self) -> None:
        """Cap the height of the docks above and below the map so that it keeps half the window's height
        (floating docks and docks beside it are free)."""
        w = self.window
        central = w.centralWidget()
        overhead = max(0, central.height() - w.latent_map.height())          # the banner, margins
        top = (w.menuBar().height() if w.menuBar().isVisible() else 0) + self._toolbar_height()
        bottom = w.statusBar().height() if w.statusBar().isVisible() else 0
        sep = w.style().pixelMetric(QStyle.PM_DockWidgetSeparatorExtent, None, w)
        tabs = 32 if self._tabbed_below() else 0
        cap = w.height() - top - bottom - sep - tabs - overhead - math.ceil(w.height() / 2)
        cap = max(MIN_DOCK_HEIGHT, cap)
        for dock in self.docks:
            vertical = w.dockWidgetArea(dock) in (Qt.TopDockWidgetArea, Qt.BottomDockWidgetArea)
            dock.setMaximumHeight(cap if vertical and not dock.isFloating() else QWIDGETSIZE_MAX)

    def _toolbar_height(self) -> int:
        w = self.window
        return sum(tb.height() for tb in w.findChildren(QToolBar)
                   if tb.isVisible() and not tb.isFloating() and w.toolBarArea(tb) == Qt.TopToolBarArea)

    def _tabbed_below(self) -> bool:
        w = self.window
        shown = [d for d in (self.loss_dock, self.tradeoff_dock) if d.isVisible() and not d.isFloating()]
        return len(shown) == 2 and bool(w.tabifiedDockWidgets(self.loss_dock))

    # -- saving and restoring ------------------------------------------------------------------------------
    def restore(self) -> bool:
        """Size the window and restore the arrangement saved at the last close (True), or size it to the
        screen at the first start (False)."""
        s = settings()
        w = self.window
        self._first_size()
        self._default_sizes()
        self.default_state = w.saveState(LAYOUT_VERSION)
        if int(s.value(KEYS["version"], 0) or 0) != LAYOUT_VERSION:
            return False
        geometry, state, split, size = (s.value(KEYS[k]) for k in ("geometry", "state", "split", "size"))
        if QGuiApplication.platformName() in VIRTUAL_PLATFORMS:
            ok = isinstance(size, QSize) and size.isValid()
            if ok:
                w.resize(size)
        else:
            ok = isinstance(geometry, QByteArray) and w.restoreGeometry(geometry)
        ok = isinstance(state, QByteArray) and w.restoreState(state, LAYOUT_VERSION) and ok
        if isinstance(split, QByteArray):
            self.map_split.restoreState(split)
        self.cap_docks()
        return bool(ok)

    def save(self) -> None:
        w = self.window
        s = settings()
        s.setValue(KEYS["version"], LAYOUT_VERSION)
        s.setValue(KEYS["geometry"], w.saveGeometry())
        s.setValue(KEYS["size"], w.size())
        s.setValue(KEYS["state"], w.saveState(LAYOUT_VERSION))
        s.setValue(KEYS["split"], self.map_split.saveState())
        s.sync()

    def reset(self) -> None:
        """Back to the first start's arrangement (the window keeps its size and place)."""
        self._place_docks()
        if self.default_state is not None:
            self.window.restoreState(self.default_state, LAYOUT_VERSION)
        self._default_sizes()
        self.cap_docks()

    def _first_size(self) -> None:
        w = self.window
        screen = w.screen() or QGuiApplication.primaryScreen()
        if screen is None or QGuiApplication.platformName() in VIRTUAL_PLATFORMS:
            w.resize(*FIRST_SIZE)
            return
        avail = screen.availableGeometry()
        width, height = first_size(avail)
        w.resize(width, height)
        w.move(avail.left() + (avail.width() - width) // 2, avail.top() + (avail.height() - height) // 2)

"""One rule for the mouse wheel over plots, everywhere in the app: a plot inside a scrolling page does not
take the wheel from the page. The wheel scrolls the page, unless Ctrl is held or the pointer rests on the
plot after a click on it — then the plot zooms. A plot that is not inside a scrolling page (the latent map,
the loss curves) zooms as always.

`WheelRouter` is an application-wide event filter (installed once, by the main window).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QApplication, QGraphicsView, QScrollArea, QWidget

__all__ = ["WheelRouter", "install_wheel_router", "RULE"]

RULE = "Mouse wheel over a plot in a scrolling page: scrolls the page; Ctrl+wheel, or a click on the plot first, zooms it"


def _plot_view(obj) -> QGraphicsView | None:
    """The graphics view (a pyqtgraph plot) whose viewport ``obj`` is, or that ``obj`` is."""
    if isinstance(obj, QGraphicsView):
        return obj
    parent = obj.parent() if isinstance(obj, QWidget) else None
    if isinstance(parent, QGraphicsView) and parent.viewport() is obj:
        return parent
    return None


def _page_of(view: QWidget) -> QScrollArea | None:
    """The nearest scrolling page around ``view`` that can scroll (None when there is none)."""
    w = view.parentWidget()
    while w is not None:
        if isinstance(w, QScrollArea):
            bar = w.verticalScrollBar()
            if bar.maximum() > bar.minimum() or w.horizontalScrollBar().maximum() > 0:
                return w
        w = w.parentWidget()
    return None


class WheelRouter(QObject):
    """The app-wide wheel rule (see the module's doc)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.engaged: QGraphicsView | None = None     # the plot clicked last, while the pointer stays on it

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        if kind not in (QEvent.Wheel, QEvent.MouseButtonPress, QEvent.Leave):
            return False
        view = _plot_view(obj)
        if view is None:
            return False
        if kind == QEvent.MouseButtonPress:
            self.engaged = view
            return False
        if kind == QEvent.Leave:
            if self.engaged is view:
                self.engaged = None
            return False
        if event.modifiers() & Qt.ControlModifier or self.engaged is view:
            return False                                  # the plot zooms
        page = _page_of(view)
        if page is None:
            return False                                  # nothing to scroll: the plot zooms, as before
        QApplication.sendEvent(page.verticalScrollBar(), event)
        return True


_ROUTER: WheelRouter | None = None


def install_wheel_router() -> WheelRouter:
    """Install the rule on the application once (idempotent)."""
    global _ROUTER
    app = QApplication.instance()
    if _ROUTER is None and app is not None:
        _ROUTER = WheelRouter(app)
        app.installEventFilter(_ROUTER)
    return _ROUTER

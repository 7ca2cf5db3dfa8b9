"""Small builders for the widgets every panel makes the same way, so that a panel's ``__init__``
says what it shows rather than how Qt sets it up.

Each builder makes one widget or layout, sets what nearly every use sets, and returns it for
the caller to keep and adjust (``label.setTextInteractionFlags(...)``, ``b.setEnabled(False)``)::

    self.fit_button = button("Fit", "Zoom to the data.", self.fit)
    self.show_grid = check("decoded grid", "Show the decoded images.", self._apply, checked=True)
    self.steps_spin = spin((3, 21), 9, "Images per row.", self.refresh)
    self.info = note_label()
    self.plot = make_plot(left=("KL", "nats"), bottom="latent dimension", grid=0.2, grid_x=False)
    self._timer = make_timer(self, 50, self.redraw)
    column(row("<b>Title</b>", STRETCH, self.fit_button), (self.plot, 1), self.info, parent=self)

API
---
``button(text, tip, slot=None, *, enabled=True) -> QPushButton``
``check(text, tip, slot=None, *, checked=False) -> QCheckBox`` (``slot`` gets ``toggled(bool)``)
``spin(value_range, value, tip, slot=None) -> QSpinBox``
``double_spin(value_range, value, tip, slot=None, *, decimals=3, step=0.1) -> QDoubleSpinBox``
``SciSpinBox`` a QDoubleSpinBox for values across decades (learning rates): shows ``%g``
(1e-06, 0.001), accepts typed ``1e-6``, arrow steps along 1-2-5-10.
``note_label(text="", *, wrap=False) -> QLabel`` grey secondary text.
``alert_label(text="") -> QLabel`` a red banner (word-wrapped), hidden until shown.
``make_plot(left="", bottom="", *, grid=0.0, grid_x=True, background="default", tip="",
interactive=True, axis_items=None, canvas=False) -> pg.PlotWidget``
``make_timer(parent, interval_ms, slot, *, single_shot=True) -> QTimer`` (not started).
``row(*items, margins=0) -> QHBoxLayout`` and ``column(*items, parent=None, margins=0) -> QVBoxLayout``
``as_widget(layout) -> QWidget``
"""

from __future__ import annotations

import math
import re

import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QBoxLayout, QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QLayout,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from gui.theme import colors, set_role

__all__ = ["button", "check", "spin", "double_spin", "SciSpinBox", "note_label", "alert_label", "Banner", "make_action", "splitter", "make_plot",
           "make_timer", "row", "column", "as_widget", "STRETCH", "NOTE_STYLE", "ALERT_STYLE"]

NOTE_STYLE = "note"     # roles (gui.theme.set_role): the colours come from the scheme in use
ALERT_STYLE = "alert"


# -- controls -----------------------------------------------------------------------------------------
def button(text: str, tip: str, slot=None, *, enabled: bool = True) -> QPushButton:
    """A push button with its tooltip; ``slot`` (if any) connected to ``clicked``."""
    b = QPushButton(text)
    b.setToolTip(tip)
    if slot is not None:
        b.clicked.connect(slot)
    b.setEnabled(enabled)
    return b


def check(text: str, tip: str, slot=None, *, checked: bool = False) -> QCheckBox:
    """A check box with its tooltip and initial state; ``slot`` (if any) connected to ``toggled``
    after the state is set (so it is not called for the initial state)."""
    c = QCheckBox(text)
    c.setChecked(checked)
    c.setToolTip(tip)
    if slot is not None:
        c.toggled.connect(slot)
    return c


def spin(value_range: tuple[int, int], value: int, tip: str, slot=None) -> QSpinBox:
    """An integer spin box over ``value_range`` (lo, hi) showing ``value``; ``slot`` (if any)
    connected to ``valueChanged`` after the value is set."""
    s = QSpinBox()
    s.setRange(*value_range)
    s.setValue(value)
    s.setToolTip(tip)
    if slot is not None:
        s.valueChanged.connect(slot)
    return s


def combo(items, tip: str = "", *, chars: int = 8) -> QComboBox:
    """A drop-down of ``items`` (texts, or (text, data) pairs) that a narrow form may shrink to ``chars``
    characters (Qt's default is as wide as its longest item, which pushed the settings form past its dock); the
    open list is as wide as its longest item."""
    box = QComboBox()
    for item in items:
        text, data = item if isinstance(item, tuple) else (item, item)
        box.addItem(text, data)
    box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(chars)
    box.view().setMinimumWidth(box.view().sizeHintForColumn(0) + 2 * box.view().frameWidth() + 8)
    box.setToolTip(tip)
    return box


def double_spin(value_range: tuple[float, float], value: float, tip: str, slot=None, *, decimals: int = 3,
                step: float = 0.1) -> QDoubleSpinBox:
    """A decimal spin box over ``value_range``, like `spin`. Qt rounds values to ``decimals``."""
    s = QDoubleSpinBox()
    s.setDecimals(decimals)
    s.setRange(*value_range)
    s.setSingleStep(step)
    s.setValue(value)
    s.setToolTip(tip)
    if slot is not None:
        s.valueChanged.connect(slot)
    return s


_PARTIAL_NUMBER = re.compile(r"[+-]?[0-9]*\.?[0-9]*([eE][+-]?[0-9]*)?")


class SciSpinBox(QDoubleSpinBox):
    """A spin box for a value that spans decades (a learning rate from 1e-7 to 10): it shows the
    value as ``%g`` (``1e-06``, ``0.001``), takes typed numbers in either notation, and its arrows
    step along 1, 2, 5, 10, 20 … (clamped to the range). Values keep 15 decimals; a typed number
    outside the range becomes the nearest end when editing finishes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setDecimals(15)   # QDoubleSpinBox rounds every value to its decimals

    def textFromValue(self, value: float) -> str:
        return f"{value:.10g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        s = text.strip()
        try:
            v = float(s)
        except ValueError:
            state = QValidator.Intermediate if _PARTIAL_NUMBER.fullmatch(s) else QValidator.Invalid
            return state, text, pos
        ok = math.isfinite(v) and self.minimum() <= v <= self.maximum()
        return (QValidator.Acceptable if ok else QValidator.Intermediate), text, pos

    def fixup(self, text: str) -> str:
        try:
            v = float(text.strip())
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            return self.textFromValue(self.value())
        return self.textFromValue(min(max(v, self.minimum()), self.maximum()))

    def stepBy(self, steps: int) -> None:
        self.setValue(step_125(self.value(), steps))


def step_125(value: float, steps: int) -> float:
    """``value`` (> 0) moved ``steps`` places along 1, 2, 5 × 10^k (from off the sequence, the
    first step down lands on the value below)."""
    value = max(value, 1e-300)
    k = math.floor(math.log10(value) + 1e-9)
    m = value / 10 ** k
    i = 2 if m >= 5 - 1e-9 else 1 if m >= 2 - 1e-9 else 0
    if steps < 0 and abs(m - (1, 2, 5)[i]) > 1e-6:
        steps += 1
    pos = 3 * k + i + steps
    return float(f"{(1, 2, 5)[pos % 3] * 10.0 ** (pos // 3):.12g}")


# -- labels -------------------------------------------------------------------------------------------
def note_label(text: str = "", *, wrap: bool = False) -> QLabel:
    """Secondary text in grey: a status line, a readout, a hint."""
    label = QLabel(text)
    label.setWordWrap(wrap)
    set_role(label, NOTE_STYLE)
    return label


class WrappedLabel(QLabel):
    """A word-wrapped label whose minimum height is what its text needs at its present width: a plain wrapped
    QLabel's minimum ignores that, so a layout squeezed for height (a splitter's pane) drew the next widget
    over its last lines. ``role``: a theme role (`gui.theme.set_role`)."""

    def __init__(self, text: str = "", role: str | None = None):
        super().__init__(text)
        self.setWordWrap(True)
        if role:
            set_role(self, role)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        if self.width() <= 0:
            return hint
        return QSize(hint.width(), max(hint.height(), self.heightForWidth(self.width())))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.updateGeometry()      # a new width, a new height: the layout asks again

    def setText(self, text: str) -> None:
        super().setText(text)
        self.updateGeometry()


def alert_label(text: str = "") -> QLabel:
    """A red warning banner, word-wrapped and hidden: ``show()`` it when something is wrong."""
    label = QLabel(text)
    label.setWordWrap(True)
    set_role(label, ALERT_STYLE)
    label.hide()
    return label


class Banner(QWidget):
    """A dismissable red message across a window: ``show_message(text)``, ``hide()``; ``label`` holds
    the text (selectable, word-wrapped)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = alert_label()
        set_role(self.label, "banner")
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.label.show()
        close = button("✕", "Dismiss this message.", self.hide)
        close.setFlat(True)
        close.setFixedWidth(28)
        self.setLayout(row((self.label, 1), close))
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()


def make_action(parent, text: str, slot, shortcut: str | None = None, tip: str = "", menu=None, icon=None):
    """A QAction of ``parent`` (added to it, so its shortcut works anywhere in the window) calling
    ``slot``; its tooltip names the shortcut; added to ``menu`` when given; ``icon`` a QStyle icon."""
    from PySide6.QtGui import QAction, QKeySequence

    a = QAction(text, parent)
    if icon is not None:
        a.setIcon(parent.style().standardIcon(icon))
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
    if tip:
        a.setStatusTip(tip)
        a.setToolTip(tip + (f" ({QKeySequence(shortcut).toString()})" if shortcut else ""))
    a.triggered.connect(slot)
    if menu is not None:
        menu.addAction(a)
    parent.addAction(a)
    return a


# -- plots and timers ---------------------------------------------------------------------------------
def make_plot(left: str | tuple[str, str] = "", bottom: str | tuple[str, str] = "", *, grid: float = 0.0,
              grid_x: bool = True, background="default", tip: str = "", interactive: bool = True,
              axis_items: dict | None = None, canvas: bool = False) -> pg.PlotWidget:
    """A pyqtgraph plot without its context menu.

    ``left`` / ``bottom``: an axis label, or (label, units); a labelled axis shows plain numbers
    (no SI prefix: nats and epochs are not scaled to "k" or "m"). ``grid``: the grid's alpha
    (0 = none), on y and, with ``grid_x``, on x. ``interactive=False`` fixes the view (no mouse
    pan or zoom). ``axis_items``: pyqtgraph AxisItems by side (e.g. gui.log_axis.LegibleAxis).
    ``background``: "default" is the colour scheme's (gui.theme); ``canvas=True``: the scheme's canvas
    colour (the map's), kept when the scheme changes."""
    plot = pg.PlotWidget(background=colors().map_bg if canvas else background, axisItems=axis_items)
    plot.setProperty("canvas", canvas)
    plot.setMenuEnabled(False)
    for side, label in (("left", left), ("bottom", bottom)):
        if label:
            text, units = (label, None) if isinstance(label, str) else label
            plot.setLabel(side, text, units=units)
            plot.getAxis(side).enableAutoSIPrefix(False)
    if grid:
        plot.showGrid(x=grid_x, y=True, alpha=grid)
    if tip:
        plot.setToolTip(tip)
    if not interactive:
        plot.setMouseEnabled(x=False, y=False)
    return plot


def make_timer(parent, interval_ms: int, slot, *, single_shot: bool = True) -> QTimer:
    """A QTimer owned by ``parent`` calling ``slot`` on timeout; not started."""
    timer = QTimer(parent)
    timer.setSingleShot(single_shot)
    timer.setInterval(interval_ms)
    timer.timeout.connect(slot)
    return timer


# -- layouts ------------------------------------------------------------------------------------------
STRETCH = None
"""In `row` / `column`: an empty space that takes what is left (``addStretch(1)``)."""


def _fill(layout: QBoxLayout, items, margins) -> QBoxLayout:
    if margins is not None:
        layout.setContentsMargins(margins, margins, margins, margins)
    for item in items:
        factor = 0
        if isinstance(item, tuple):
            item, factor = item
        if item is STRETCH:
            layout.addStretch(1)
        elif isinstance(item, str):
            layout.addWidget(QLabel(item), factor)
        elif isinstance(item, QLayout):
            layout.addLayout(item, factor)
        else:
            layout.addWidget(item, factor)
    return layout


def row(*items, margins: int | None = 0) -> QHBoxLayout:
    """A horizontal layout of ``items``, left to right. Each item is a widget, a layout, a string
    (shown as a QLabel, rich text allowed), `STRETCH`, or ``(item, stretch_factor)``.
    ``margins``: pixels on every side (None: the style's)."""
    return _fill(QHBoxLayout(), items, margins)


def column(*items, parent: QWidget | None = None, margins: int | None = 0) -> QVBoxLayout:
    """A vertical layout of ``items``, top to bottom (items as in `row`); with ``parent``, it is
    that widget's layout. ``margins`` as in `row` (None keeps a group box's frame margins)."""
    return _fill(QVBoxLayout(parent) if parent is not None else QVBoxLayout(), items, margins)


def splitter(orientation, parts):
    """A QSplitter of ``parts``: (widget, stretch factor, initial size in pixels) each."""
    from PySide6.QtWidgets import QSplitter

    split = QSplitter(orientation)
    for i, (widget, stretch, _) in enumerate(parts):
        split.addWidget(widget)
        split.setStretchFactor(i, stretch)
    split.setSizes([size for _, _, size in parts])
    return split


def as_widget(layout: QLayout) -> QWidget:
    """A plain QWidget holding ``layout`` (for a form row or a widget that is shown and hidden)."""
    w = QWidget()
    w.setLayout(layout)
    return w

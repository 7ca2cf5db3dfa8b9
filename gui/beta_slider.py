"""`BetaSlider`: β on a slider whose steps are finest where people work (around β = 1).

The slider's position u ∈ [-1, 1] maps to log10 β = mid + half · sinh(K·u) / sinh(K): a log scale over
BETA_SLIDER_RANGE (0.01–100) that is about 2.4 times finer around β = 1 than a plain log slider and
coarser toward the ends, over STEPS positions (a step of a few thousandths of a decade near 1). The keys
move β by factors, whatever the position: ←/→ (and ↑/↓) by SMALL_FACTOR, PageUp/PageDown by
LARGE_FACTOR, Home/End to the ends; the panel applies them to its spin box (which can go past the
slider's ends).
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QSlider

from latentlab.config import BETA_SLIDER_RANGE

__all__ = ["BetaSlider", "beta_to_slider", "slider_to_beta", "STEPS", "SMALL_FACTOR", "LARGE_FACTOR"]

BETA_MIN, BETA_MAX = BETA_SLIDER_RANGE
STEPS = 4000                  # positions 0 … STEPS; the middle is β = √(BETA_MIN·BETA_MAX) = 1
K = 2.5                       # how much finer the middle is than the ends
SMALL_FACTOR = 1.05           # ← → ↑ ↓
LARGE_FACTOR = 1.5            # PageUp / PageDown
_MID = (math.log10(BETA_MIN) + math.log10(BETA_MAX)) / 2
_HALF = (math.log10(BETA_MAX) - math.log10(BETA_MIN)) / 2


def beta_to_slider(beta: float) -> int:
    """The slider position of ``beta`` (clamped to the slider's ends)."""
    if not beta > 0:
        return 0
    x = (math.log10(min(max(beta, BETA_MIN), BETA_MAX)) - _MID) / _HALF      # -1 … 1
    u = math.asinh(x * math.sinh(K)) / K
    return int(round((u + 1) / 2 * STEPS))


def slider_to_beta(pos: int) -> float:
    """β at slider position ``pos``, to three significant digits."""
    u = 2 * pos / STEPS - 1
    value = 10 ** (_MID + _HALF * math.sinh(K * u) / math.sinh(K))
    return float(f"{value:.3g}")


class BetaSlider(QSlider):
    """A horizontal slider over `beta_to_slider`'s positions; keys ask for multiplicative steps
    (`stepRequested` with the factor) instead of moving by positions."""

    stepRequested = Signal(float)      # multiply β by this
    endRequested = Signal(float)       # Home / End: this β

    KEYS = {Qt.Key_Right: SMALL_FACTOR, Qt.Key_Up: SMALL_FACTOR, Qt.Key_Left: 1 / SMALL_FACTOR,
            Qt.Key_Down: 1 / SMALL_FACTOR, Qt.Key_PageUp: LARGE_FACTOR, Qt.Key_PageDown: 1 / LARGE_FACTOR}

    def __init__(self, parent=None):
        super().__init__(Qt.Horizontal, parent)
        self.setRange(0, STEPS)
        self.setSingleStep(1)
        self.setPageStep(STEPS // 40)
        self.setValue(beta_to_slider(1.0))
        self.setFocusPolicy(Qt.StrongFocus)

    def keyPressEvent(self, event) -> None:
        factor = self.KEYS.get(event.key())
        if factor is not None:
            self.stepRequested.emit(factor)
        elif event.key() in (Qt.Key_Home, Qt.Key_End):
            self.endRequested.emit(BETA_MIN if event.key() == Qt.Key_Home else BETA_MAX)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

"""`LegibleAxis`: a pyqtgraph axis whose log-scale ticks thin out when the plot is short.

pyqtgraph puts a tick at 1…9 × 10^k on a log axis whatever its height, and at the loss plot's launch
height (~150 px over three decades) their labels piled on each other. Here each label gets at least
MIN_LABEL_PX: the decades (10^k) first, every second or third one when even those do not fit; then
2 and 5 × 10^k; all of 2…9 × 10^k only where a decade has room for nine labels. A range inside one
decade gets as many of 1…9 × 10^k as fit, so that the axis is never bare.
"""

from __future__ import annotations

import math

import pyqtgraph as pg

__all__ = ["LegibleAxis", "log_ticks", "MIN_LABEL_PX"]

MIN_LABEL_PX = 28        # a label's height and its gap (the axis font is ~13 px)


def log_ticks(lo: float, hi: float, size: float, min_px: float = MIN_LABEL_PX) -> list[tuple[float, list]]:
    """Tick levels ``[(spacing, values)]`` in log10 units for a log axis showing log10 values ``lo``…``hi``
    over ``size`` pixels: at most one label per ``min_px`` pixels."""
    lo, hi = sorted((lo, hi))
    span = hi - lo
    if not (math.isfinite(lo) and math.isfinite(hi)) or span <= 0 or size <= 0:
        return []
    per_decade = size / span                 # pixels
    most = max(1, int(size // min_px))      # labels that fit
    first, last = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
    decades = list(range(first, last + 1))
    levels: list[tuple[float, list]] = []
    if decades:
        step = max(1, math.ceil(len(decades) / most))
        levels.append((float(step), [float(d) for d in decades if d % step == 0] or [float(decades[0])]))
    shown = sum(len(v) for _, v in levels)
    groups = ((2, 5), (3, 4, 6, 7, 8, 9)) if levels else ((1, 2, 3, 4, 5, 6, 7, 8, 9),)
    for mantissas in groups:
        if levels and per_decade < min_px * (3 if mantissas == (2, 5) else 9):
            break
        values = [d + math.log10(m) for d in range(math.floor(lo), math.ceil(hi)) for m in mantissas]
        values = [v for v in values if lo - 1e-9 <= v <= hi + 1e-9]
        if shown + len(values) > most:
            values = values[::math.ceil(len(values) / max(1, most - shown))]
        if values:
            levels.append((None, values))
            shown += len(values)
    return levels


class LegibleAxis(pg.AxisItem):
    """An AxisItem whose log-mode ticks are `log_ticks` for its length in pixels (linear mode as pyqtgraph)."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        return log_ticks(minVal, maxVal, size)

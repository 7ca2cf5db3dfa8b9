"""The class colours every view of the app uses (the latent map, the epoch replay, the run comparison), so
that a class has one colour everywhere: matplotlib's tab10 for up to ten classes, evenly spaced hues for more."""

from __future__ import annotations

import pyqtgraph as pg

__all__ = ["TAB10", "class_color", "class_colors"]

TAB10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
         (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def class_color(i: int, n: int) -> tuple[int, int, int]:
    """The colour of class ``i`` of ``n`` (``i`` wraps around)."""
    return TAB10[i % len(TAB10)] if n <= len(TAB10) else tuple(pg.intColor(i, hues=n).getRgb()[:3])


def class_colors(n: int) -> list[tuple[int, int, int]]:
    """The colours of classes 0 … n-1 (one colour at least)."""
    return [class_color(i, n) for i in range(max(n, 1))]

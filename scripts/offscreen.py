"""The offscreen window the screenshot scripts (calm_screens.py, readme_screenshots.py) share: a QApplication
drawing offscreen with its settings in a folder of its own (the layout of a first start), and the two waits
that keep it painting while the window trains, loads or resizes."""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["offscreen_app", "wait", "settle"]


def offscreen_app(config_dir: Path):
    """The QApplication (made once), drawing offscreen, with its QSettings under ``config_dir``."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["latentlab"])
    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(config_dir))
    return app


def wait(predicate, seconds: float) -> None:
    """Process events until ``predicate()`` holds or ``seconds`` have passed."""
    from PySide6.QtWidgets import QApplication

    t_end = time.monotonic() + seconds
    while not predicate() and time.monotonic() < t_end:
        QApplication.processEvents()
        time.sleep(0.01)


def settle(n: int = 15) -> None:
    """Process events ``n`` times, 20 ms apart: what was asked to paint has painted."""
    from PySide6.QtWidgets import QApplication

    for _ in range(n):
        QApplication.processEvents()
        time.sleep(0.02)

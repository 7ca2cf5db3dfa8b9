"""Where the app keeps what outlives a window: its QSettings (recent folders, and later the layout) and
the folder new runs go to."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

__all__ = ["settings", "default_runs_root", "MAX_RECENT", "recent_folders", "add_recent_folder"]

MAX_RECENT = 8


def settings() -> QSettings:
    """The app's settings. Tests redirect them with ``QSettings.setPath``."""
    return QSettings(QSettings.defaultFormat(), QSettings.UserScope, "latentlab", "latentlab")


def default_runs_root() -> Path:
    """``$LATENTLAB_RUNS_DIR``, else ``runs`` in the app's data folder (a temporary folder without one)."""
    env = os.environ.get("LATENTLAB_RUNS_DIR")
    if env:
        return Path(env)
    base = QStandardPaths.writableLocation(QStandardPaths.AppLocalDataLocation)
    return Path(base) / "runs" if base else Path(tempfile.gettempdir()) / "latentlab-runs"


def recent_folders() -> list[str]:
    """Dataset folders opened lately, newest first."""
    return list(settings().value("recent/datasets", [], type=list) or [])


def add_recent_folder(folder: str) -> None:
    s = settings()
    s.setValue("recent/datasets", [folder] + [f for f in recent_folders() if f != folder][:MAX_RECENT - 1])
    s.sync()

"""Saving what the trade-off views show: pictures as PNG, numbers as CSV (atomic writes)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from latentlab.runs import atomic_write_text

__all__ = ["save_widget_png", "save_plot_png", "save_csv", "ask_path"]


def save_widget_png(widget: QWidget, path) -> bool:
    """A screenshot of ``widget`` as it is drawn now."""
    return widget.grab().save(str(path), "PNG")


def save_plot_png(plot_widget, path, width: int = 1200) -> bool:
    """A pyqtgraph PlotWidget rendered at ``width`` pixels (independent of its size on screen)."""
    import pyqtgraph.exporters as pe

    exporter = pe.ImageExporter(plot_widget.plotItem)
    exporter.parameters()["width"] = int(width)
    try:
        exporter.export(str(path))
    except Exception:
        return save_widget_png(plot_widget, path)
    return Path(path).is_file()


def save_csv(text: str, path) -> bool:
    try:
        atomic_write_text(Path(path), text)
    except OSError:
        return False
    return True


def ask_path(parent: QWidget, title: str, default_name: str, kind: str) -> str:
    """A save dialog for ``kind`` "png" or "csv"; '' when cancelled."""
    flt = "PNG image (*.png)" if kind == "png" else "CSV table (*.csv)"
    path, _ = QFileDialog.getSaveFileName(parent, title, default_name, flt)
    if path and not path.lower().endswith(f".{kind}"):
        path += f".{kind}"
    return path

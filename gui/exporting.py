"""Saving what the views show: pictures as PNG, numbers as CSV (atomic writes), and the one way
every panel offers it — a "PNG…" / "CSV…" button that asks for a path and saves.

Export buttons
--------------
``export_button(parent, kind, title, default_name, save, tip, *, text=None, on_result=None) -> QPushButton``

* ``kind``: "png" or "csv" (the file filter, the suffix added to a bare name, the default
  text "PNG…" / "CSV…"; ``text`` replaces that, e.g. "curves PNG…").
* ``title`` / ``default_name``: the save dialog's title and proposed file name;
  ``default_name`` may be a callable returning the name when the button is pressed
  (``lambda: f"latent-epoch-{self.epoch}.png"``).
* ``save(path) -> bool``: the panel's own ``export_png`` / ``export_csv``; False means it
  failed (nothing to save, a disk error).
* ``on_result(path, ok)``: called after each save. Without it a failure is reported where the
  user looks: the main window's status bar (if the panel sits in a QMainWindow) and a tooltip
  at the button; a success stays quiet, as before.

``ask_and_save(parent, kind, title, default_name, save, on_result=None, *, report_at=None) -> str``
is what the button runs (use it for a menu action or a shortcut): the path saved to, or ""
when cancelled; a failure is reported at ``report_at`` (default ``parent``).

    self.export_png_button = export_button(self, "png", "Save the KL bar chart", "kl-per-dimension.png",
                                           self.export_png, "Save the bar chart as a PNG picture.")
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMainWindow, QPushButton, QToolTip, QWidget

from latentlab.runs.folder import atomic_write_text

__all__ = ["save_widget_png", "save_plot_png", "save_csv", "ask_path", "ask_and_save", "export_button",
           "report_failure"]


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


def report_failure(widget: QWidget, path) -> None:
    """Say that saving to ``path`` failed: in the window's status bar (if it has one) and as a
    tooltip at ``widget``."""
    message = f"Could not save {path}"
    window = widget.window()
    if isinstance(window, QMainWindow):
        window.statusBar().showMessage(message, 8000)
    QToolTip.showText(widget.mapToGlobal(widget.rect().bottomLeft()), message, widget)


def ask_and_save(parent: QWidget, kind: str, title: str, default_name, save, on_result=None, *,
                 report_at: QWidget | None = None) -> str:
    """Ask for a path (see `ask_path`), call ``save(path)`` and report the outcome: ``on_result(path,
    ok)`` if given, else `report_failure` at ``report_at`` (default ``parent``) when ``save``
    returned False. Returns the path, '' when cancelled."""
    name = default_name() if callable(default_name) else default_name
    path = ask_path(parent, title, name, kind)
    if not path:
        return ""
    ok = bool(save(path))
    if on_result is not None:
        on_result(path, ok)
    elif not ok:
        report_failure(report_at or parent, path)
    return path


def export_button(parent: QWidget, kind: str, title: str, default_name, save, tip: str, *, text: str | None = None,
                  on_result=None) -> QPushButton:
    """A "PNG…" / "CSV…" button that runs `ask_and_save` (the arguments as there; see the module's
    docstring); a failure is reported at the button."""
    b = QPushButton(text or f"{kind.upper()}…")
    b.setToolTip(tip)
    b.clicked.connect(lambda: ask_and_save(parent, kind, title, default_name, save, on_result, report_at=b))
    return b

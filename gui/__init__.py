"""The latentlab desktop app (PySide6 + pyqtgraph)."""

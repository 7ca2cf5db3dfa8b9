"""Helpers for the trade-off view tests: a fake decoder (no TensorFlow), a tiny real β sweep
trained once per session, and clicks at plot coordinates."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt


class FakeDecoder:
    """A `latentlab.model.latent.Decoder` stand-in: the top half of the image is sigmoid(z0), the
    bottom half sigmoid(z1); a deterministic, instant decode."""

    def __init__(self, latent_dim: int = 2, side: int = 8):
        self.latent_dim = latent_dim
        self.image_shape = (side, side, 1)
        self.calls = 0

    def decode(self, z) -> np.ndarray:
        self.calls += 1
        z = np.asarray(z, np.float32).reshape(-1, self.latent_dim)
        s = self.image_shape[0]
        out = np.zeros((len(z), s, s, 1), np.float32)
        out[:, : s // 2] = (1 / (1 + np.exp(-z[:, 0])))[:, None, None, None]
        out[:, s // 2:] = (1 / (1 + np.exp(-z[:, min(1, self.latent_dim - 1)])))[:, None, None, None]
        return out


def click_plot(qtbot, plot_widget, x: float, y: float) -> None:
    """A left click on a pyqtgraph PlotWidget at view coordinates (x, y), as a person's mouse does."""
    scene_pt = plot_widget.getViewBox().mapViewToScene(QPointF(x, y))
    pos = plot_widget.mapFromScene(scene_pt)
    qtbot.mouseClick(plot_widget.viewport(), Qt.LeftButton, pos=pos)


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory):
    """Two real runs (β 0.5 and 4) on 100 digit images, 16×16, latent 2, 2 epochs, batch 32."""
    import _engine

    from latentlab.config import TrainConfig
    from latentlab.sweeps.sweep import Sweep

    root = tmp_path_factory.mktemp("tradeoff-sweep")
    mp = pytest.MonkeyPatch()
    mp.setenv("LATENTLAB_CACHE_DIR", str(root / "cache"))
    folder = _engine.write_digits_folder(root / "digits", per_class=10, size=16)
    cfg = TrainConfig(dataset=str(folder), latent_dim=2, epochs=2, batch_size=32, val_fraction=0.2, seed=1)
    sweep = Sweep(cfg, [0.5, 4.0], root / "sweep")
    results = sweep.run()
    assert all(type(r).__name__ == "Finished" for _, _, r in results), results
    yield {"folder": folder, "out": root / "sweep", "config": cfg, "runs": [str(d) for _, d, _ in results]}
    mp.undo()

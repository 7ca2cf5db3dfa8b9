"""A tiny trained run for the window's tests (trained once per session), and opening a run in a window
as the File menu does, waiting until its decoder and grid are shown."""

from __future__ import annotations

import shutil

import pytest
from _wait import WAIT_MS

EPOCHS = 3


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, gui_digits):
    """A finished run: 300 digit images (16×16, 10 classes), latent 2, 3 epochs, batch 32."""
    from latentlab.config import TrainConfig
    from latentlab.events import Finished
    from latentlab.training.trainer import Trainer

    root = tmp_path_factory.mktemp("tiny-run")
    mp = pytest.MonkeyPatch()
    mp.setenv("LATENTLAB_CACHE_DIR", str(root / "cache"))
    cfg = TrainConfig(dataset=str(gui_digits), latent_dim=2, epochs=EPOCHS, batch_size=32, seed=0)
    result = Trainer(cfg, run_dir=root / "run").run()
    mp.undo()
    assert isinstance(result, Finished), result
    return root / "run"


def copy_run(run, dest):
    """A copy of ``run`` to train further (the session's run stays as it is)."""
    shutil.copytree(run, dest)
    return dest


def open_run(qtbot, win, path) -> None:
    with qtbot.waitSignal(win.runOpened, timeout=WAIT_MS):
        assert win.open_run_path(path)
    qtbot.waitUntil(lambda: win.map_view.point_decoder is not None and win.latent_map.mosaic is not None
                    and win.is_idle(), timeout=WAIT_MS)

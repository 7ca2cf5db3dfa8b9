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


def followed_again_from_weights(run_dir, first):
    """`load_followed_epoch` of ``run_dir`` as a window that already shows ``first`` (that epoch's model key)
    reads it: from the decoder's weights file alone, never through `open_run_view` (Keras). Checks that, and
    that the weights are ``first``'s; returns the epoch read."""
    import numpy as np

    import latentlab.runs.view as rv
    from latentlab.runs.follow import load_followed_epoch

    loaded = []
    real = rv.open_run_view
    rv.open_run_view = lambda *a, **k: loaded.append(a) or real(*a, **k)
    try:
        again = load_followed_epoch(run_dir, first.view.model_key)
    finally:
        rv.open_run_view = real
    assert not loaded, "the decoder's weights file was not enough: the run was opened with Keras"
    assert len(again.view.decoder_weights) == len(first.view.decoder_weights)
    assert all(np.array_equal(a, b) for a, b in zip(again.view.decoder_weights, first.view.decoder_weights))
    return again

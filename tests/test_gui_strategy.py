"""The training panel offers every GPU at once (MirroredStrategy) when more than one GPU is visible: the
choice appears when the window learns the GPU count, and goes to the training; on a machine where it
cannot be set up, training says why in one line."""

import os

import pytest
from PySide6.QtCore import Qt

from test_gui_training import load
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def test_the_devices_choice_shows_with_two_gpus_and_reaches_the_training(window, qtbot, gui_digits, tmp_path):
    win, tp = window, window.training_panel
    qtbot.waitUntil(lambda: tp.gpu_count is not None, timeout=WAIT_MS)   # the preload has counted the GPUs
    assert tp.gpu_count == 0 and not tp._form.isRowVisible(tp.strategy_combo)
    assert tp.strategy() == "default"                             # this machine: no GPU, no choice
    win.map_view.renderer.gpusVisible.emit(2)                     # as the preload reports on a 2-GPU machine
    qtbot.waitUntil(lambda: tp._form.isRowVisible(tp.strategy_combo), timeout=WAIT_MS)
    assert tp.strategy_combo.itemText(1) == "all 2 GPUs (mirrored)" and len(tp.strategy_combo.toolTip()) > 40
    tp.strategy_combo.setCurrentIndex(1)
    assert tp.strategy() == "mirrored"
    tp.grab().save(str(tmp_path / "devices.png"))
    if os.environ.get("LATENTLAB_SCREENSHOTS"):
        tp.grab().save(os.path.join(os.environ["LATENTLAB_SCREENSHOTS"], "training-devices.png"))
    load(qtbot, win, gui_digits)
    with qtbot.waitSignal(win.training.finished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(tp.train_button, Qt.LeftButton)
    result = blocker.args[0]     # the training thread tried MirroredStrategy: there is no GPU to mirror over here
    assert type(result).__name__ == "Failed" and "GPU" in result.message and "\n" not in result.message
    win.map_view.renderer.gpusVisible.emit(1)
    qtbot.waitUntil(lambda: not tp._form.isRowVisible(tp.strategy_combo), timeout=WAIT_MS)
    assert tp.strategy() == "default"

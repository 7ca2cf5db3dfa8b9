"""The dataset panel's transparency and fit choices, arrays opened the way the Arrays… dialog opens them,
and what the panel says about sizes, transparency and duplicates."""

import numpy as np
import pytest
from PIL import Image, ImageDraw
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def _open(qtbot, panel, path, **kw):
    with qtbot.waitSignal(panel.datasetLoaded, timeout=WAIT_MS) as blocker:
        assert panel.open_folder(path, **kw)
    qtbot.waitUntil(lambda: not panel.is_loading, timeout=WAIT_MS)
    return blocker.args[0]


def test_npz_opens_like_the_arrays_dialog_and_trains_config(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    rng = np.random.default_rng(0)
    x = (rng.random((40, 16, 16)) * 255).astype(np.uint8)
    y = rng.integers(0, 4, 40)
    np.savez(tmp_path / "keras.npz", x_train=x, y_train=y, x_test=x[:3], y_test=y[:3])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "keras.npz"), ""))
    panel = window.dataset_panel
    with qtbot.waitSignal(panel.datasetLoaded, timeout=WAIT_MS) as blocker:
        panel.arrays_button.click()
    ds = blocker.args[0]
    qtbot.waitUntil(lambda: not panel.is_loading, timeout=WAIT_MS)
    assert ds.num_images == 40 and ds.class_names == ["0", "1", "2", "3"]
    assert "40 used" in panel.count_label.text() and "16×16" in panel.shape_label.text()
    assert "not used: x_test, y_test" in panel.notes_label.text()
    cfg = window.training_panel.config_for(ds)
    assert cfg.dataset.endswith("keras.npz") and cfg.image_size == [16, 16]


def test_transparency_choice_reloads_and_is_said(window, qtbot, tmp_path):
    for i in range(3):
        im = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
        ImageDraw.Draw(im).line((2, 2 + i, 37, 17), fill=(0, 0, 0, 255), width=2)
        im.save(tmp_path / f"art{i}.png")
    Image.fromarray((np.random.default_rng(1).random((20, 20)) * 255).astype(np.uint8)).save(tmp_path / "sq.png")
    panel = window.dataset_panel
    ds = _open(qtbot, panel, tmp_path)
    assert panel.background == "auto" and ds.report.on_white == 3
    assert "3 images had some: 3 filled with white" in panel.notes_label.text()
    assert "aspect kept, padded" in panel.shape_label.text() and "20×40" in panel.shape_label.text()
    with qtbot.waitSignal(panel.datasetLoaded, timeout=WAIT_MS) as blocker:
        panel.background_box.setCurrentText("alpha")
        panel.background_box.activated.emit(panel.background_box.currentIndex())
    qtbot.waitUntil(lambda: not panel.is_loading, timeout=WAIT_MS)
    alpha = blocker.args[0]
    assert alpha.image_shape[-1] == 2 and "grayscale + alpha" in panel.shape_label.text()
    assert window.training_panel.config_for(alpha).background == "alpha"
    from gui.image_panel import array_to_qimage

    assert array_to_qimage(alpha.images[0]).hasAlphaChannel()


def test_a_slow_choice_says_its_epoch_time(window, qtbot, tmp_path, monkeypatch):
    import latentlab.epoch_time as et
    from latentlab.epoch_time import estimate_epoch_seconds, slow_note

    assert slow_note(estimate_epoch_seconds(60_000, (28, 28, 1), cores=2), (28, 28, 1)) == ""
    assert "Expected epoch time" in slow_note(estimate_epoch_seconds(40_000, (128, 128, 3), cores=2), (128, 128, 3))
    monkeypatch.setattr(et, "SLOW_EPOCH_SECONDS", 1e-3)   # a tiny array is "slow" here: the panel says so
    rng = np.random.default_rng(2)
    np.save(tmp_path / "big.npy", (rng.random((50, 64, 64, 3)) * 255).astype(np.uint8))
    panel = window.dataset_panel
    _open(qtbot, panel, tmp_path / "big.npy")
    assert panel.epoch_label.isVisibleTo(panel) and "Expected epoch time" in panel.epoch_label.text()

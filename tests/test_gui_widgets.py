"""The app's panels without training: dataset loading and its errors, the form's ranges, the
loss plot and the latent map's geometry, opening a bad run, the platform hint."""

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def wait_loaded(qtbot, win, folder):
    with qtbot.waitSignal(win.dataset_panel.datasetLoaded, timeout=WAIT_MS):
        assert win.dataset_panel.open_folder(folder)
    qtbot.waitUntil(lambda: not win.dataset_panel.is_loading, timeout=WAIT_MS)


def test_open_folder_shows_what_was_found(window, qtbot, gui_digits, tmp_path):
    import shutil

    folder = tmp_path / "digits-with-junk"
    shutil.copytree(gui_digits, folder)
    (folder / "digit_3" / "broken.png").write_bytes(b"not a png at all")
    (folder / "notes.txt").write_text("hello")
    wait_loaded(qtbot, window, folder)
    panel = window.dataset_panel
    assert window.dataset.num_images == 300
    assert "300 used" in panel.count_label.text()
    assert "16×16" in panel.shape_label.text() and "1 channel" in panel.shape_label.text()
    assert "digit_3 (30)" in panel.classes_label.text() and panel.classes_label.text().startswith("10:")
    assert panel.thumbs.count() >= 10
    skipped = [panel.skipped.item(i).text() for i in range(panel.skipped.count())]
    assert any("broken.png" in s and ":" in s for s in skipped), skipped
    assert panel.skipped.isVisible() and not panel.error.isVisible()
    assert window.training_panel.train_button.isEnabled()
    assert str(folder) in window.dataset_panel.recent_folders()
    assert window.dataset_panel.recent_folders()[0] == str(folder)


def test_a_load_that_ends_before_the_line_after_start_is_still_reported(window, qtbot, gui_digits, monkeypatch):
    """A cached folder loads in milliseconds: on a busy machine the load's thread can end before the
    GUI thread runs the line after the thread's ``start()``. The window must still get the dataset (it
    once waited forever, the progress bar spinning). Here the GUI thread is held up that long."""
    import gui.threads as th

    wait_loaded(qtbot, window, gui_digits)            # now the folder is in the cache

    start = th.WorkerThread.start

    def late_start(self):
        start(self)
        assert self.wait(WAIT_MS), "the load's thread did not end"   # it ends before start() returns

    monkeypatch.setattr(th.WorkerThread, "start", late_start)
    with qtbot.waitSignal(window.dataset_panel.datasetLoaded, timeout=WAIT_MS) as blocker:
        assert window.dataset_panel.open_folder(gui_digits)
    assert blocker.args[0].from_cache and not window.dataset_panel.is_loading
    assert window.dataset_panel.open_button.isEnabled() and not window.dataset_panel.progress.isVisible()


def test_unusable_folder_shows_its_reason_in_the_window(window, qtbot, tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images")
    with qtbot.waitSignal(window.dataset_panel.loadFailed, timeout=WAIT_MS) as blocker:
        window.open_dataset(empty)
    message = blocker.args[0]
    assert "no images" in message and str(empty) in message and "\n" not in message
    panel = window.dataset_panel
    qtbot.waitUntil(lambda: not panel.is_loading, timeout=WAIT_MS)
    assert panel.error.isVisible() and panel.error.text() == message
    assert window.statusBar().currentMessage() == message
    assert not window.training_panel.train_button.isEnabled()   # nothing to train on

    with qtbot.waitSignal(panel.loadFailed, timeout=WAIT_MS) as blocker:
        window.open_dataset(tmp_path / "does-not-exist")
    assert "does-not-exist" in blocker.args[0]


def test_beta_slider_and_spin_box_stay_in_sync_and_ranges_hold(window, qtbot):
    from latentlab.config import BETA_RANGE, LR_RANGE

    tp = window.training_panel
    from gui.beta_slider import STEPS, beta_to_slider

    tp.beta_spin.setValue(10.0)
    assert tp.beta_slider.value() == beta_to_slider(10.0) and beta_to_slider(1.0) == STEPS // 2
    tp.beta_slider.setValue(beta_to_slider(0.1))
    assert tp.beta_spin.value() == pytest.approx(0.1)
    tp.beta_spin.setValue(5000)                     # past BETA_RANGE's end (1000): clamped
    assert tp.beta_spin.value() == BETA_RANGE[1]
    assert tp.beta_slider.value() == STEPS          # the slider stays at its end
    tp.latent_spin.setValue(500)
    assert tp.latent_spin.value() == 64
    tp.batch_spin.setValue(0)
    assert tp.batch_spin.value() == 1
    tp.lr_spin.setValue(50.0)
    assert tp.lr_spin.value() <= LR_RANGE[1]
    assert tp.hidden_spin.text() == "auto (128)" and tp.settings()["hidden_units"] == 0
    tp.hidden_spin.setValue(-5)
    assert tp.hidden_spin.value() == 0
    tp.apply_settings(hidden_units=16)
    assert tp.settings()["hidden_units"] == 16
    for w in (tp.beta_slider, tp.beta_spin, tp.latent_spin, tp.hidden_spin, tp.epochs_spin, tp.batch_spin,
              tp.lr_spin, tp.schedule_combo, tp.warmup_spin):
        assert w.toolTip() and len(w.toolTip()) > 20
    with qtbot.waitSignal(tp.betaChanged, timeout=WAIT_MS) as blocker:
        tp.beta_spin.setValue(2.5)
    assert blocker.args == [2.5]
    assert not tp.train_button.isEnabled()           # no dataset yet


def test_beta_moves_in_fine_steps_near_one_by_drag_keys_and_spin_box(window, qtbot):
    """The β slider is finest around 1: a 45-pixel drag from 1 stays under 2.5 (it reached 33.9); the keys
    step β by factors (← → 5 %, PageUp/PageDown 50 %), the spin box by a tenth (1 → 1.1 → 1.2)."""
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QStyle, QStyleOptionSlider

    tp = window.training_panel
    slider = tp.beta_slider
    tp.beta_spin.setValue(1.0)
    qtbot.waitUntil(lambda: slider.width() > 150, timeout=WAIT_MS)       # the form's full width
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    handle = slider.style().subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderHandle, slider).center()
    QTest.mousePress(slider, Qt.LeftButton, Qt.NoModifier, handle)
    for dx in range(5, 50, 5):                                            # a person's drag, 45 pixels right
        QTest.mouseMove(slider, handle + QPoint(dx, 0))
    QTest.mouseRelease(slider, Qt.LeftButton, Qt.NoModifier, handle + QPoint(45, 0))
    assert 1.0 < tp.beta() < 2.5, tp.beta()

    tp.beta_spin.setValue(1.0)
    slider.setFocus()
    QTest.keyClick(slider, Qt.Key_Right)
    assert tp.beta() == pytest.approx(1.05)
    QTest.keyClick(slider, Qt.Key_Left)
    assert tp.beta() == pytest.approx(1.0)
    QTest.keyClick(slider, Qt.Key_PageUp)
    assert tp.beta() == pytest.approx(1.5)
    QTest.keyClick(slider, Qt.Key_PageDown)
    assert tp.beta() == pytest.approx(1.0)
    QTest.keyClick(slider, Qt.Key_End)
    assert tp.beta() == pytest.approx(100.0) and slider.value() == slider.maximum()
    tp.beta_spin.setValue(1.0)
    seen = []
    for _ in range(3):
        tp.beta_spin.stepBy(1)
        seen.append(round(tp.beta_spin.value(), 3))
    assert seen == [1.1, 1.2, 1.3]
    tp.beta_spin.setValue(9.9)
    tp.beta_spin.stepBy(1)
    tp.beta_spin.stepBy(1)
    assert tp.beta_spin.value() == pytest.approx(11.0)
    tp.beta_spin.setValue(0.01)
    tp.beta_spin.stepBy(1)
    assert tp.beta_spin.value() == pytest.approx(0.011)


def test_form_shows_a_runs_settings_unclamped_within_the_config_ranges(qtbot):
    """A run trained headless with settings beyond the slider's or the old form's ranges reads back
    as it was; every spin box spans the range latentlab.config allows."""
    from gui.training_panel import BETA_MAX, TrainingPanel
    from latentlab import config
    from latentlab.config import TrainConfig

    tp = TrainingPanel()
    qtbot.addWidget(tp)
    cfg = TrainConfig(beta=500.0, epochs=50_000, batch_size=10_000, learning_rate=1e-6, warmup_epochs=5000)
    fields = ("beta", "latent_dim", "hidden_units", "epochs", "batch_size", "learning_rate", "kl_schedule",
              "warmup_epochs")
    tp.apply_settings(**{k: getattr(cfg, k) for k in fields})
    got = tp.settings()
    assert (got["beta"], got["epochs"], got["batch_size"], got["learning_rate"], got["warmup_epochs"]) == \
        (500.0, 50_000, 10_000, 1e-6, 5000)
    assert tp.beta_slider.value() == tp.beta_slider.maximum() and BETA_MAX == config.BETA_SLIDER_RANGE[1]
    assert tp.lr_spin.text() == "1e-06"
    for spin, rng in [(tp.beta_spin, config.BETA_RANGE), (tp.latent_spin, config.LATENT_RANGE),
                      (tp.hidden_spin, config.HIDDEN_RANGE), (tp.epochs_spin, config.EPOCHS_RANGE),
                      (tp.batch_spin, config.BATCH_RANGE), (tp.lr_spin, config.LR_RANGE),
                      (tp.warmup_spin, config.WARMUP_RANGE)]:
        assert (spin.minimum(), spin.maximum()) == pytest.approx(rng), spin
    tp.apply_settings(beta=0.001, learning_rate=0.00025)
    assert tp.settings()["beta"] == 0.001 and tp.beta_slider.value() == 0
    assert tp.settings()["learning_rate"] == 0.00025
    tp.lr_spin.setValue(0.001)
    tp.lr_spin.stepBy(1)
    assert tp.lr_spin.value() == pytest.approx(0.002)          # arrows step 1-2-5 across decades
    tp.lr_spin.stepBy(-2)
    assert tp.lr_spin.value() == pytest.approx(0.0005)


def test_export_button_asks_saves_and_reports_a_failure(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QWidget

    from gui import exporting
    from gui.exporting import export_button

    parent = QWidget()
    qtbot.addWidget(parent)
    answer = {"path": str(tmp_path / "table")}
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (answer["path"], ""))
    saved, results, failures = [], [], []
    b = export_button(parent, "csv", "Save it", lambda: "name.csv", lambda p: saved.append(p) or True, "Save as CSV.")
    assert b.text() == "CSV…" and b.toolTip() == "Save as CSV."
    b.click()
    assert saved == [str(tmp_path / "table.csv")]               # the suffix added
    monkeypatch.setattr(exporting, "report_failure", lambda w, p: failures.append((w, p)))
    bad = export_button(parent, "png", "Save it", "x.png", lambda p: False, "Save as PNG.", text="map PNG…")
    bad.click()
    assert bad.text() == "map PNG…" and failures == [(bad, str(tmp_path / "table.png"))]
    told = export_button(parent, "png", "Save it", "x.png", lambda p: False, "tip",
                         on_result=lambda p, ok: results.append((p, ok)))
    told.click()
    assert results == [(str(tmp_path / "table.png"), False)] and len(failures) == 1
    answer["path"] = ""                                         # cancelled: nothing saved or reported
    b.click()
    assert len(saved) == 1


def test_loss_plot_streams_and_toggles_log_scale(qtbot):
    from gui.loss_plot import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.show()
    qtbot.waitExposed(plot, timeout=WAIT_MS)
    for step in range(1, 11):
        plot.add_batch(0, step, 10, {"loss": 100.0 - step, "reconstruction_loss": 90.0 - step, "kl_loss": 10.0})
    plot.add_epoch({"epoch": 1, "loss": 95.0, "reconstruction_loss": 85.0, "kl_loss": 10.0,
                    "val_loss": 96.0, "val_reconstruction_loss": 86.0, "val_kl_loss": 10.0})
    plot.add_beta_marker(0.5, 4.0)
    plot.redraw()
    assert plot.point_counts() == {"batches": 10, "epochs": 1}
    x = plot.batch_curves["loss"].xData
    assert x[0] == pytest.approx(0.1) and x[-1] == pytest.approx(1.0)
    # per-batch values recovered from running means: the KL stays 10 throughout
    assert plot.batch_curves["kl_loss"].yData[-1] == pytest.approx(10.0)
    assert plot.log_y.isChecked() and plot.plot.getPlotItem().ctrl.logYCheck.isChecked()   # log by default
    qtbot.mouseClick(plot.log_y, Qt.LeftButton)
    assert not plot.log_y.isChecked() and not plot.plot.getPlotItem().ctrl.logYCheck.isChecked()
    assert len(plot.markers) == 1 and "4" in plot.markers[0].label.toPlainText()
    assert "epoch 1" in plot.readout.text()
    plot.clear()
    plot.redraw()
    assert plot.point_counts() == {"batches": 0, "epochs": 0} and not plot.markers


def test_log_loss_axis_shows_few_labels_when_short_and_more_when_tall(qtbot):
    """At launch height the log axis piled 1…9 × 10^k labels on each other: now each label has room."""
    from gui.log_axis import MIN_LABEL_PX
    from gui.loss_plot import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.show()
    qtbot.waitExposed(plot, timeout=WAIT_MS)
    for step in range(1, 11):                               # the KL ~ 0.5, the total ~ 500: three decades
        plot.add_batch(0, step, 10, {"loss": 500.0 - step, "reconstruction_loss": 490.0 - step, "kl_loss": 0.5})
    plot.add_epoch({"epoch": 1, "loss": 495.0, "reconstruction_loss": 485.0, "kl_loss": 0.5})
    axis = plot.plot.getAxis("left")

    def ticks_at(height):
        plot.resize(500, height)
        qtbot.waitUntil(lambda: plot.height() == height, timeout=WAIT_MS)
        plot.redraw()
        lo, hi = axis.range
        values = sorted(v for _, vs in axis.tickValues(lo, hi, axis.height()) for v in vs)
        return values, axis.height(), hi - lo

    values, px, span = ticks_at(150)
    assert plot.log_y.isChecked() and span > 2 and 1 <= len(values) <= max(1, px // MIN_LABEL_PX)
    gaps = [(b - a) / span * px for a, b in zip(values, values[1:])]
    assert all(g >= MIN_LABEL_PX - 1 for g in gaps), (gaps, px)
    tall, tall_px, _ = ticks_at(900)
    assert len(tall) > len(values)                          # more labels where there is room


def test_loss_plot_view_follows_the_data_in_steps_and_leaves_a_zoom_alone(qtbot):
    from gui.loss_plot import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.show()
    qtbot.waitExposed(plot, timeout=WAIT_MS)

    def batch(epoch, step, loss):
        plot.add_batch(epoch, step, 10, {"loss": loss, "reconstruction_loss": loss - 5.0, "kl_loss": 5.0})
        plot.redraw()

    for step in range(1, 6):
        batch(0, step, 200.0)
    (x0, x1), (y0, y1) = plot.view_range()
    assert x0 == 0.0 and x1 >= 1.1 * 0.5 and y0 <= np.log10(5.0) and y1 >= np.log10(200.0)
    view = plot.view_range()
    for step in range(6, 10):                      # data inside the view: the axes stay still
        batch(0, step, 190.0)
    assert plot.view_range() == view
    batch(1, 5, 1000.0)                            # past both edges: the view moves to hold it
    (x0, x1), (y0, y1) = plot.view_range()
    top = np.log10(max(plot.batch_curves[k].yData.max() for k in ("loss", "reconstruction_loss", "kl_loss")))
    assert x1 >= 1.5 and y1 >= top > view[1][1]
    plot.plot.getPlotItem().getViewBox().sigRangeChangedManually.emit([True, True])   # the user zooms
    assert not plot.following
    view = plot.view_range()
    batch(9, 5, 5000.0)
    assert plot.view_range() == view               # the zoom is left alone…
    button = plot.plot.getPlotItem().autoBtn
    button.clicked.emit(button)                    # …until "A"
    plot.redraw()
    top = np.log10(max(plot.batch_curves[k].yData.max() for k in ("loss", "reconstruction_loss", "kl_loss")))
    assert plot.following and plot.view_range()[0][1] >= 9.5 and plot.view_range()[1][1] >= top
    plot.clear()
    assert plot.following
    plot.planned_epochs = 3                        # a 3-epoch run: the x axis ends just past 3
    for step in range(1, 11):
        batch(2, step, 100.0)
    assert 3.0 < plot.view_range()[0][1] <= 3.1   # room for the last epoch's marker, no empty epoch


def test_latent_map_planes_and_clicks(qtbot):
    from gui.map.latent_map import LatentMap

    m = LatentMap()
    qtbot.addWidget(m)
    m.resize(600, 500)
    m.show()
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 5)).astype(np.float32) * [3, 2, 0.5, 0.2, 0.1]
    m.set_points(z, rng.integers(0, 3, 200), ["a", "b", "c"], np.arange(200))
    assert m.latent_dim == 5 and not m.mode_is_dims() and m.projection is not None
    assert "PC1" in m.plot.getAxis("bottom").labelText
    p = m.plane(z[:3])
    back = m.z_at(*p[0])
    assert m.plane(back)[0] == pytest.approx(p[0], abs=1e-4)     # the map position round-trips
    m.set_mode(pca=False)
    m.set_dims(2, 4)
    m.sliders[0].setValue(1.5)
    zz = m.z_at(0.25, -0.5)
    assert zz[2] == pytest.approx(0.25) and zz[4] == pytest.approx(-0.5) and zz[0] == pytest.approx(1.5)
    assert m.plot.getAxis("bottom").labelText == "z2" and m.plot.getAxis("left").labelText == "z4"
    assert not m.sliders[2].isEnabled() and m.sliders[1].isEnabled()
    assert "&#9679;" in m.legend.text() and "b" in m.legend.text()
    got = []
    m.clicked.connect(lambda z, xy: got.append(("z", z)))
    m.pointClicked.connect(lambda i, z: got.append(("point", i)))
    far = (1e3, 1e3)
    m.click_at(*far)
    target = m.plane(z[7:8])[0]
    m.click_at(float(target[0]), float(target[1]))
    assert got[0][0] == "z" and got[1] == ("point", 7)
    # a grid mosaic lands centred on its points, row 0 at the top
    mosaic = np.zeros((3 * 4, 3 * 4, 1), np.float32)
    mosaic[:4] = 1.0    # top row bright
    m.set_grid(mosaic, (0, 2), (0, 2), 3)
    r = m.grid_rect
    assert (r.left(), r.top(), r.width(), r.height()) == pytest.approx((-0.5, -0.5, 3.0, 3.0))
    assert m.grid_item.image[-1, 0] == 1.0 and m.grid_item.image[0, 0] == 0.0


def test_opening_a_bad_run_shows_why(window, qtbot, tmp_path):
    bad = tmp_path / "not-a-run"
    bad.mkdir()
    with qtbot.waitSignal(window.runOpenFailed, timeout=WAIT_MS) as blocker:
        window.open_run_path(bad)
    assert "config.json" in blocker.args[0]
    assert window.banner.isVisible() and "config.json" in window.banner.label.text()
    qtbot.waitUntil(lambda: window.open_run_action.isEnabled(), timeout=WAIT_MS)   # the loader thread ends


def test_platform_hint_without_a_display(monkeypatch):
    from gui.app import platform_problem

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    problem = platform_problem()
    assert problem and "QT_QPA_PLATFORM=offscreen" in problem and "\n" not in problem
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert platform_problem() is None


def test_app_reports_a_missing_dataset_and_a_bad_run(capsys, tmp_path):
    from gui.app import main

    assert main(["--dataset", str(tmp_path / "nope"), "--quit-when-done"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0] and "does not exist" in err[0]
    assert main(["--run", str(tmp_path), "--quit-when-done"]) == 2
    assert "config.json" in capsys.readouterr().err
    assert main(["--beta", "1e6"]) == 2


def test_pixel_view_fills_its_panel_at_integer_zoom_and_never_clips(qtbot):
    """Decoded images and prior samples: the largest integer zoom that fits (a 28-pixel image in a 600×400
    view is 392 pixels tall, not a small picture in a large black box); larger than the view: fitted."""
    from PySide6.QtGui import QColor, QImage, QPalette

    from gui.image_panel import PixelView

    view = PixelView(96)
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    qtbot.waitExposed(view, timeout=WAIT_MS)
    image = QImage(28, 28, QImage.Format_Grayscale8)
    image.fill(255)
    view.set_image(image)
    dpr = view.devicePixelRatioF()
    size = view.pixmap().size() / dpr
    assert (size.width(), size.height()) == (392, 392)             # 14 × 28: within one step of the height
    assert view.pixmap().width() % 28 == 0
    corner = view.grab().toImage().pixelColor(2, 2)                # what the image leaves free: the window's
    assert corner == view.palette().color(QPalette.Window) and corner != QColor("#202020")
    big = QImage(900, 300, QImage.Format_Grayscale8)
    big.fill(128)
    view.set_image(big)
    size = view.pixmap().size() / dpr
    assert size.width() <= 600 and size.width() >= 590 and size.height() <= 400   # fitted, not cut

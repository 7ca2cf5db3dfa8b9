"""The trade-off views inside the main window: the Trade-off dock and menu, live training feeding
the loss terms, the KL bars, the rate–distortion plane and replay; clicks on the main map feeding
traversal and nearest images; a β sweep with the form's settings; closing mid-sweep."""

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def load(qtbot, win, folder):
    with qtbot.waitSignal(win.dataset_panel.datasetLoaded, timeout=WAIT_MS):
        win.dataset_panel.open_folder(folder)
    qtbot.waitUntil(lambda: win.training_panel.train_button.isEnabled(), timeout=WAIT_MS)


def set_spin(spin, value):
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, str(value))
    QTest.keyClick(spin, Qt.Key_Enter)
    assert spin.value() == pytest.approx(value)


def test_tradeoff_dock_and_menu(window, qtbot):
    win = window
    dock, panel = win.tradeoff_dock, win.tradeoff
    titles = [a.text().replace("&", "") for a in win.tradeoff_menu.actions() if a.text()]
    assert any("Loss" in t for t in titles) and any("sweep" in t.lower() for t in titles)
    assert any("Compare" in t for t in titles) and any("Replay" in t for t in titles)
    win.show_tradeoff(panel.TAB_RD)
    qtbot.waitUntil(dock.isVisible, timeout=WAIT_MS)
    assert panel.currentIndex() == panel.TAB_RD
    win.tradeoff_toggle_action.trigger()
    qtbot.waitUntil(lambda: not dock.isVisible(), timeout=WAIT_MS)
    for a in win.tradeoff_menu.actions():
        if a.text():
            assert len(a.statusTip()) > 20


def test_training_feeds_the_tradeoff_views_live(window, qtbot, gui_digits):
    win, tp, panel = window, window.training_panel, window.tradeoff
    win.show_tradeoff(panel.TAB_LOSS)
    load(qtbot, win, gui_digits)
    set_spin(tp.epochs_spin, 2)
    set_spin(tp.batch_spin, 32)
    set_spin(tp.beta_spin, 2.0)
    qtbot.waitUntil(lambda: panel.loss_terms.beta == 2.0, timeout=WAIT_MS)      # the formula shows the form's β
    assert ">2<" in panel.loss_terms.formula.text()
    with qtbot.waitSignal(win.trainingFinished, timeout=WAIT_MS):
        qtbot.mouseClick(tp.train_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: panel.rd_plot.live is not None, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: panel.loss_terms.train is not None, timeout=WAIT_MS)
    hist = win.last_result.history
    assert len(panel.kl_plot.rows) == 2 and len(panel.kl_plot.kl) == tp.latent_spin.value()
    assert panel.loss_terms.value("kl", "val") == pytest.approx(hist[-1]["val_kl_loss"])
    assert str(win.run_dir) in panel.rd_plot.runs and panel.rd_plot.live is None
    assert len(panel.replay.frames) == 2 and panel.replay.labels is not None
    # the run's training images back the nearest-image look-up; a click on the main map feeds the tools
    qtbot.waitUntil(lambda: win.map_view.point_decoder is not None, timeout=WAIT_MS)
    assert panel.tools.nearest.images is not None
    z = np.zeros(tp.latent_spin.value(), np.float32)
    win.latent_map.clicked.emit(z, (0.0, 0.0))
    assert np.allclose(panel.tools.traversal.point, z)
    win.show_tradeoff(panel.TAB_EXPLORE)                   # hidden tools catch up when shown
    assert len(panel.tools.traversal.rows) == len(z)
    panel.tools.setCurrentWidget(panel.tools.nearest)
    assert len(panel.tools.nearest.found) > 0


def test_sweep_from_the_window_uses_the_forms_settings(window, qtbot, gui_digits, tmp_path):
    win, tp, panel = window, window.training_panel, window.tradeoff
    sp = panel.sweep_panel
    win.show_tradeoff(panel.TAB_RD)
    load(qtbot, win, gui_digits)
    set_spin(tp.epochs_spin, 1)
    set_spin(tp.batch_spin, 64)
    sp.betas_edit.setText("0.5, 2")
    sp.out_edit.setText(str(tmp_path / "sw"))
    with qtbot.waitSignal(sp.sweepFinished, timeout=WAIT_MS):
        qtbot.mouseClick(sp.start_button, Qt.LeftButton)
        assert sp.is_running
        assert not tp.train_button.isEnabled()       # one training at a time
    assert sp.config.batch_size == 64 and sp.config.epochs == 1
    assert set(panel.rd_plot.runs) >= {str(tmp_path / "sw" / "beta-0.5"), str(tmp_path / "sw" / "beta-2")}
    assert tp.train_button.isEnabled()


def test_closing_the_window_mid_sweep_stops_it(window, qtbot, gui_digits, tmp_path):
    win, tp, sp = window, window.training_panel, window.tradeoff.sweep_panel
    load(qtbot, win, gui_digits)
    set_spin(tp.epochs_spin, 50)
    sp.out_edit.setText(str(tmp_path / "sw"))
    sp.betas_edit.setText("1, 2")
    sp.start()
    qtbot.waitUntil(lambda: sp.rows.get(1.0, {}).get("status") in ("training", "shared start"), timeout=WAIT_MS)
    win.confirm_stop = lambda: True
    win.close()
    assert not sp.is_running

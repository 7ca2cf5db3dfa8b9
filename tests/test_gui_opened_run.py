"""An opened run behaves like a just-trained one, driven through the window: the epoch axis fits its
epochs, the KL panel shows its per-dimension KL and active units (from latents.npz), the rate–distortion
plane one marker at its last epoch; Continue training (and ``--run R --autostart --epochs N``) trains it
further with its history going on; the prior-samples panel shows what the decoder makes of the z it shows."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from _runs import EPOCHS, copy_run, open_run, tiny_run  # noqa: F401  (a fixture)
from _tradeoff import FakeDecoder
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def test_an_opened_run_shows_its_epochs_kl_per_dimension_and_one_marker(window, qtbot, tiny_run):
    from latentlab.runs.folder import open_run as read_run
    from latentlab.tradeoff import latents_kl

    win, panel = window, window.tradeoff
    open_run(qtbot, win, tiny_run)
    win.loss_plot.redraw()
    (x0, x1), _ = win.loss_plot.view_range()
    assert EPOCHS <= x1 <= EPOCHS * 1.05, x1                              # the axis ends at its last epoch
    run = read_run(tiny_run)
    expected = latents_kl(run.latents)
    assert np.allclose(panel.kl_plot.kl, expected.kl_per_dim) and len(panel.kl_plot.kl) == 2
    assert panel.kl_plot.active_units == expected.active_units
    assert f"<b>{expected.active_units}</b> / 2" in panel.kl_plot.units_label.text()
    assert "latents.npz" in panel.kl_plot.status.text()
    rd = panel.rd_plot
    rd.redraw()
    assert list(rd.runs) == [str(tiny_run)] and rd.markers(str(tiny_run)) == 1 and rd.labels() == ["β = 1"]
    last = run.history[-1]
    pt = rd.runs[str(tiny_run)]["point_item"].points()[0].pos()
    assert (pt.x(), pt.y()) == pytest.approx((last["val_kl_loss"], last["val_reconstruction_loss"]))
    label = rd.runs[str(tiny_run)]["label_item"].pos()
    assert (label.x(), label.y()) == pytest.approx((pt.x(), pt.y()))      # the label sits on the last epoch
    # the form offers to go on with it
    tp = win.training_panel
    qtbot.waitUntil(lambda: tp.continue_button.isEnabled(), timeout=WAIT_MS)
    assert tp.continue_button.isVisible() and tp.train_button.text() == "New run"


def test_continue_training_goes_on_from_the_last_epoch(window, qtbot, tiny_run, tmp_path):
    from latentlab.runs.folder import open_run as read_run

    win, tp = window, window.training_panel
    run_dir = copy_run(tiny_run, tmp_path / "run")
    before = read_run(run_dir).history
    open_run(qtbot, win, run_dir)
    qtbot.waitUntil(lambda: tp.continue_button.isEnabled(), timeout=WAIT_MS)
    tp.epochs_spin.setValue(EPOCHS)                                      # nothing to add: a clear reason
    qtbot.mouseClick(tp.continue_button, Qt.LeftButton)
    assert not win.is_training and f"has {EPOCHS} epochs already" in win.banner.label.text()
    tp.epochs_spin.setValue(EPOCHS + 2)
    with qtbot.waitSignal(win.trainingFinished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(tp.continue_button, Qt.LeftButton)
        assert win.is_training
    result = blocker.args[0]
    assert result.epochs_done == EPOCHS + 2 and not result.stopped
    after = read_run(run_dir).history
    assert len(after) == EPOCHS + 2 and after[:EPOCHS] == before               # the earlier rows unchanged
    assert [r["epoch"] for r in after] == list(range(1, EPOCHS + 3))
    win.loss_plot.redraw()
    assert win.loss_plot.point_counts()["epochs"] == EPOCHS + 2
    assert list(win.runs_root.glob("run-*")) == []                            # no new run folder
    rd = win.tradeoff.rd_plot
    qtbot.waitUntil(lambda: str(run_dir) in rd.runs and rd.live is None, timeout=WAIT_MS)
    assert len(rd.runs) == 1 and rd.markers(str(run_dir)) == 1


def test_the_app_continues_a_run_with_autostart(qapp, gui_env, tiny_run, tmp_path, capsys):
    from gui.app import main
    from latentlab.runs.folder import open_run as read_run

    run_dir = copy_run(tiny_run, tmp_path / "run")
    before = read_run(run_dir).history
    code = main(["--run", str(run_dir), "--autostart", "--epochs", str(EPOCHS + 1), "--quit-when-done"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"finished {EPOCHS + 1} epochs" in out.out and str(run_dir) in out.out
    run = read_run(run_dir)
    assert len(run.history) == EPOCHS + 1 and run.history[:EPOCHS] == before and run.status == "finished"
    assert run.config.epochs == EPOCHS + 1
    assert main(["--run", str(run_dir), "--autostart", "--epochs", str(EPOCHS), "--quit-when-done"]) != 0
    assert "already" in capsys.readouterr().err                                # nothing to add: one line


def test_prior_samples_show_what_the_decoder_makes_of_their_z(qtbot, tmp_path):
    from gui.map.prior_samples import PriorSamples
    from latentlab.model.latent import tile

    w = PriorSamples(side=5)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    dec = FakeDecoder(latent_dim=3, side=8)
    w.set_decoder(dec)
    assert w.z.shape == (25, 3) and abs(float(w.z.mean())) < 0.6 and 0.5 < float(w.z.std()) < 1.5   # N(0, I)
    assert np.array_equal(w.images, dec.decode(w.z))
    assert np.array_equal(w.mosaic, tile(w.images.reshape(5, 5, 8, 8, 1), pad=1)[:-1, :-1])
    assert w.view._image is not None and w.view._image.width() == 5 * 9 - 1
    first = w.z.copy()
    qtbot.mouseClick(w.new_button, Qt.LeftButton)                         # new samples
    assert not np.allclose(first, w.z) and np.array_equal(w.images, dec.decode(w.z))
    w.side_spin.setValue(3)
    assert w.z.shape == (9, 3) and w.mosaic.shape == (3 * 9 - 1, 3 * 9 - 1, 1)
    assert w.export_png(tmp_path / "prior.png") and (tmp_path / "prior.png").stat().st_size > 100
    w.set_decoder(None)
    assert w.mosaic is None and not w.new_button.isEnabled()


def test_the_windows_prior_samples_use_the_runs_decoder(window, qtbot, tiny_run):
    win = window
    open_run(qtbot, win, tiny_run)
    win.layout_state.side_tabs.setCurrentWidget(win.prior)
    qtbot.waitUntil(lambda: win.prior.images is not None, timeout=WAIT_MS)
    assert win.prior.z.shape[1] == 2
    assert np.allclose(win.prior.images, win.map_view.point_decoder.decode(win.prior.z), atol=1e-5)
    win.latent_map.click_at(0.1, 0.2)                                     # a click on the map shows its image
    assert win.layout_state.side_tabs.currentWidget() is win.image_panel and win.image_panel.image is not None


def test_continue_after_a_live_beta_change_trains_at_the_last_beta(window, qtbot, gui_digits, tmp_path):
    """Issue 23: train, move β mid-run, stop, open the run again, Continue: it goes on at the β it ended at
    (not config.json's first β); the form, the status line, the plane's label and the loss plot say so."""
    from latentlab.runs.folder import open_run as read_run

    win, tp = window, window.training_panel
    with qtbot.waitSignal(win.dataset_panel.datasetLoaded, timeout=WAIT_MS):
        win.open_dataset(gui_digits)
    tp.apply_settings(beta=1.0, epochs=40, batch_size=32, latent_dim=2)
    with qtbot.waitSignal(win.trainingFinished, timeout=WAIT_MS):
        qtbot.mouseClick(tp.train_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: len(win.loss_plot.epoch_x) >= 1, timeout=WAIT_MS)
        tp.beta_spin.setValue(33.9)                                       # the slider's box, mid-run
        qtbot.waitUntil(lambda: abs(win.training.trainer.beta - 33.9) < 1e-6, timeout=WAIT_MS)
        # an epoch finished at the new β (the trainer's rows, not the plot's: the plot may still be catching up
        # on an epoch that ended before the change)
        trainer = win.training.trainer
        qtbot.waitUntil(lambda: trainer.history and trainer.history[-1]["beta_target"] == pytest.approx(33.9),
                        timeout=WAIT_MS)
        qtbot.mouseClick(tp.stop_button, Qt.LeftButton)
    run_dir = win.run_dir
    history = read_run(run_dir).history
    assert history[0]["beta_target"] == 1.0 and history[-1]["beta_target"] == pytest.approx(33.9)
    changed_at = next(r["epoch"] for r in history if r["beta_target"] > 1)
    done = len(history)

    tp.apply_settings(beta=1.0)                      # what the form held before: the run must put it right
    said = []
    win.statusBar().messageChanged.connect(said.append)
    open_run(qtbot, win, run_dir)
    assert tp.beta_spin.value() == pytest.approx(33.9)
    assert any(m.startswith("Opened run") and f"β 33.9, from 1 at epoch {changed_at}" in m for m in said), said
    assert [m.value() for m in win.loss_plot.markers] == [changed_at - 1]
    assert win.tradeoff.rd_plot.labels() == [f"β = 33.9, from 1 at epoch {changed_at}"]

    tp.epochs_spin.setValue(done + 1)
    with qtbot.waitSignal(win.trainingFinished, timeout=WAIT_MS):
        qtbot.mouseClick(tp.continue_button, Qt.LeftButton)
        assert win.training.trainer.beta == pytest.approx(33.9)
    after = read_run(run_dir).history
    assert len(after) == done + 1 and after[-1]["beta_target"] == pytest.approx(33.9)
    assert after[-1]["beta"] == pytest.approx(33.9)                       # a constant schedule: β in effect too

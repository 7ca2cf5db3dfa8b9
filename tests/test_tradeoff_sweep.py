"""The β sweep from the app: values typed in, Start pressed, runs trained one after another in a
worker thread, each a normal run folder, on the rate–distortion plane and in the table."""

import pytest
from PySide6.QtCore import Qt

from _tradeoff import tiny_sweep  # noqa: F401  (fixture)
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


@pytest.fixture
def dataset(tiny_sweep, tmp_path, monkeypatch):  # noqa: F811
    from latentlab.data import load_folder

    monkeypatch.setenv("LATENTLAB_CACHE_DIR", str(tmp_path / "cache"))
    return load_folder(tiny_sweep["folder"])


def test_sweep_trains_each_beta_into_a_run_folder_and_onto_the_plane(qtbot, tmp_path, tiny_sweep, dataset):  # noqa: F811
    from gui.tradeoff.tradeoff_panel import TradeoffPanel
    from latentlab.runs import folder as runs

    panel = TradeoffPanel()
    qtbot.addWidget(panel)
    panel.resize(1100, 700)
    panel.show()
    sp = panel.sweep_panel
    assert not sp.start_button.isEnabled()                       # nothing to sweep over yet
    cfg = tiny_sweep["config"].replace(epochs=1)
    panel.set_sweep_source(cfg, dataset)
    assert sp.start_button.isEnabled() and "100 images" in sp.source_label.text()
    for w in (sp.betas_edit, sp.out_edit, sp.start_button, sp.stop_button):
        assert len(w.toolTip()) > 30

    sp.betas_edit.setText("1, banana")                           # a typo: one clear line, nothing starts
    qtbot.mouseClick(sp.start_button, Qt.LeftButton)
    assert "banana" in sp.message.text() and not sp.is_running

    out = tmp_path / "sweep"
    sp.design_check.setChecked(False)                            # every β from scratch (the designed one: test_lesson_app)
    sp.betas_edit.setText("0.2, 5")
    sp.out_edit.setText(str(out))
    live_rates = []
    panel.sweep_panel.sweepEvent.connect(
        lambda ev: live_rates.append(len(panel.rd_plot.live["rows"])) if panel.rd_plot.live else None)
    with qtbot.waitSignal(sp.sweepFinished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(sp.start_button, Qt.LeftButton)
        assert sp.is_running and not sp.start_button.isEnabled() and sp.stop_button.isEnabled()
    results = blocker.args[0]
    assert [b for b, _, _ in results] == [0.2, 5.0]
    assert all(type(r).__name__ == "Finished" and not r.stopped for _, _, r in results)
    for r, beta in enumerate(("0.2", "5")):
        run = runs.open_run(out / f"beta-{beta}")               # each a normal run folder
        assert run.config.beta == float(beta) and run.config.seed == cfg.seed and run.epochs_done == 1
        last = run.history[-1]
        assert sp.table.item(r, 0).text() == beta
        assert float(sp.table.item(r, 1).text()) == pytest.approx(last["val_reconstruction_loss"], abs=0.051)
        assert float(sp.table.item(r, 2).text()) == pytest.approx(last["val_kl_loss"], abs=0.0051)
        assert sp.table.item(r, 4).text() == str(last["active_units"])
    assert [sp.table.item(r, 5).text() for r in range(2)] == ["finished", "finished"]
    assert set(panel.rd_plot.runs) == {str(out / "beta-0.2"), str(out / "beta-5")}
    assert panel.rd_plot.live is None and max(live_rates) >= 1  # the live trajectory was drawn as it trained
    assert panel.kl_plot.rows and len(panel.kl_plot.kl) == 2
    assert sp.start_button.isEnabled() and not sp.stop_button.isEnabled()
    assert sp.export_csv(tmp_path / "sweep.csv")
    lines = (tmp_path / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("beta,val_reconstruction,val_kl,val_neg_elbo,active_units") and len(lines) == 3

    # the same folder again: every run is finished, so nothing starts (more epochs would resume them)
    qtbot.mouseClick(sp.start_button, Qt.LeftButton)
    assert "epochs already" in sp.message.text() and not sp.is_running


def test_stopping_a_sweep_keeps_the_current_run_and_skips_the_rest(qtbot, tmp_path, tiny_sweep, dataset):  # noqa: F811
    from gui.tradeoff.sweep_panel import SweepPanel
    from latentlab.events import BatchEnd

    sp = SweepPanel()
    qtbot.addWidget(sp)
    sp.show()
    sp.set_source(tiny_sweep["config"].replace(epochs=50), dataset)
    sp.design_check.setChecked(False)
    sp.betas_edit.setText("1, 2, 3")
    sp.out_edit.setText(str(tmp_path / "stopped"))
    seen = []

    def on_event(ev):
        seen.append(type(ev).__name__)
        if isinstance(ev, BatchEnd) and sp.is_running and "stopping" not in sp.progress.format():
            qtbot.mouseClick(sp.stop_button, Qt.LeftButton)

    sp.sweepEvent.connect(on_event)
    with qtbot.waitSignal(sp.sweepFinished, timeout=WAIT_MS) as blocker:
        assert sp.start()
    results = blocker.args[0]
    assert len(results) == 1 and results[0][2].stopped
    assert seen.count("SweepStep") == 1
    statuses = [sp.table.item(r, 5).text() for r in range(3)]
    assert statuses[0] == "stopped" and statuses[1:] == ["skipped", "skipped"]
    assert not sp.is_running

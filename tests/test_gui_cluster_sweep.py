"""The app's sweep panel pointed at a Dask cluster (a scheduler and two workers on 127.0.0.1): the runs
train on the workers at the same time, and the table and the rate–distortion plane move while they do."""

import os

import pytest
from PySide6.QtCore import Qt

import _engine
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def test_the_sweep_panel_trains_on_a_cluster_and_shows_the_runs_moving(qtbot, tmp_path, dask_cluster):
    from gui.tradeoff.tradeoff_panel import TradeoffPanel
    from latentlab.runs import folder as runs
    from latentlab.config import TrainConfig
    from latentlab.data import load_folder
    from latentlab.events import EpochEnd, RunEvent

    dask_cluster.ensure_workers(2)
    folder = _engine.write_digits_folder(tmp_path / "digits", per_class=10, size=16)   # 100 images
    dataset = load_folder(folder, cache=False)
    panel = TradeoffPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 700)
    panel.setCurrentIndex(panel.TAB_RD)
    panel.show()
    sp = panel.sweep_panel
    cfg = TrainConfig(dataset=str(folder), latent_dim=2, epochs=6, batch_size=8, val_fraction=0.2, seed=1)
    panel.set_sweep_source(cfg, dataset)
    assert len(sp.cluster_edit.toolTip()) > 30 and "tcp://" in sp.cluster_edit.placeholderText()

    sp.cluster_edit.setText("tcp://127.0.0.1:1 2")                 # a typo: one line, nothing starts
    sp.betas_edit.setText("0.5, 4")
    sp.out_edit.setText(str(tmp_path / "sweep"))
    qtbot.mouseClick(sp.start_button, Qt.LeftButton)
    assert "tcp://HOST:PORT" in sp.message.text() and not sp.is_running

    sp.cluster_edit.setText(dask_cluster.address)
    assert not sp.design_check.isEnabled() and "cluster" in sp.design_check.toolTip()   # each β from scratch there
    assert "from scratch" in sp.design_check.text()
    live = []   # (runs on the plane, rows with a finished epoch, rows still training) after each remote epoch

    def on_event(ev):
        if isinstance(ev, RunEvent) and isinstance(ev.event, EpochEnd):
            statuses = [sp.table.item(r, 5).text() for r in range(sp.table.rowCount())]
            live.append((len(panel.rd_plot.runs), sum(bool(sp.table.item(r, 1).text()) for r in range(2)),
                         sum(s.startswith(("training", "epoch")) for s in statuses)))
            if len(live) == 3:
                panel.rd_plot.redraw()
                panel.grab().save(str(tmp_path / "cluster-sweep.png"))
                if os.environ.get("LATENTLAB_SCREENSHOTS"):
                    panel.grab().save(os.path.join(os.environ["LATENTLAB_SCREENSHOTS"], "cluster-sweep.png"))

    sp.sweepEvent.connect(on_event)
    with qtbot.waitSignal(sp.sweepFinished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(sp.start_button, Qt.LeftButton)
        assert sp.is_running and not sp.cluster_edit.isEnabled()
    results = blocker.args[0]
    assert sorted(b for b, _, _ in results) == [0.5, 4.0]
    assert all(type(r).__name__ == "Finished" and not r.stopped for _, _, r in results), results
    # while the runs trained remotely, the plane and the table showed them (both at once at some moment)
    assert live and max(n for n, _, _ in live) >= 1 and any(t >= 1 and n >= 1 for n, _, t in live), live
    assert any(rows == 2 for _, rows, t in live if t >= 1) or max(r for _, r, _ in live) == 2, live
    assert (tmp_path / "cluster-sweep.png").stat().st_size > 10_000
    for r, beta in enumerate(("0.5", "4")):
        run = runs.open_run(tmp_path / "sweep" / f"beta-{beta}")       # written here by the client
        assert run.epochs_done == 6 and run.status == "finished"
        assert sp.table.item(r, 5).text() == "finished"
        assert float(sp.table.item(r, 2).text()) == pytest.approx(run.history[-1]["val_kl_loss"], abs=0.0051)
    assert set(panel.rd_plot.runs) == {str(tmp_path / "sweep" / "beta-0.5"), str(tmp_path / "sweep" / "beta-4")}
    assert sp.cluster_edit.isEnabled() and "2 of 2 runs finished" in sp.progress.format()

"""Comparing runs: a sweep folder opened at once, curves overlaid by β, latent maps side by side,
one click decoded by every run's decoder, traversal / interpolation / nearest for a chosen run,
replay of an opened run, and the exports."""

import csv
import io

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from _tradeoff import click_plot, tiny_sweep  # noqa: F401  (fixture)
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


@pytest.fixture
def panel(qtbot, tiny_sweep, monkeypatch):  # noqa: F811
    from gui.tradeoff.tradeoff_panel import TradeoffPanel

    monkeypatch.setenv("LATENTLAB_CACHE_DIR", str(tiny_sweep["out"].parent / "cache"))
    p = TradeoffPanel()
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    qtbot.waitExposed(p, timeout=WAIT_MS)
    yield p
    p.shutdown()


def test_compare_a_sweep_folder_click_once_decode_in_every_run(qtbot, panel, tiny_sweep, tmp_path):  # noqa: F811
    cmp = panel.comparison
    panel.setCurrentIndex(panel.TAB_COMPARE)
    with qtbot.waitSignal(cmp.loadingFinished, timeout=WAIT_MS):
        assert cmp.open_folder(tiny_sweep["out"])
        assert cmp.is_loading and not cmp.open_button.isEnabled()
    assert [e["beta"] for e in cmp.entries] == [0.5, 4.0]
    assert cmp.status.text() == "2 runs open"
    # curves: one per run, legend by β, each as long as its history
    assert [item[1].text for item in cmp.curve_legend.items] == ["β = 0.5", "β = 4"]
    assert all(len(c.getData()[0]) == 2 for c in cmp.curves.values())
    cmp.quantity.setCurrentText("validation KL")
    ys = cmp.curves[cmp.entries[0]["path"]].getData()[1]
    assert np.allclose(ys, [row["val_kl_loss"] for row in cmp.entries[0]["history"]])
    # the plane got both runs as points
    assert set(panel.rd_plot.runs) == {e["path"] for e in cmp.entries}
    # latent maps side by side: scatter of z_mean over a decoded grid
    assert len(cmp.maps) == 2
    for m in cmp.maps:
        assert m.grid.image is not None and len(m.scatter.getData()[0]) == 100
    # one click on the second map: the same z through both decoders
    m = cmp.maps[1]
    xr, yr = m.entry["x_range"], m.entry["y_range"]
    x, y = (xr[0] + xr[1]) / 2, (yr[0] + yr[1]) / 2
    with qtbot.waitSignal(cmp.pointDecoded, timeout=WAIT_MS) as blocker:
        click_plot(qtbot, m.plot, x, y)
    z = blocker.args[0]
    assert z.shape == (2,) and abs(z[0] - x) < 0.05 * (xr[1] - xr[0]) and abs(z[1] - y) < 0.05 * (yr[1] - yr[0])
    assert [b for b, _ in cmp.decoded] == [0.5, 4.0]
    for (_beta, image), e in zip(cmp.decoded, cmp.entries):
        assert image.shape == (16, 16, 1)
        assert np.allclose(image, e["decoder"].decode(z[None])[0], atol=1e-6)
    assert not np.allclose(cmp.decoded[0][1], cmp.decoded[1][1])        # two models, two pictures
    for mm in cmp.maps:                                                   # the marker shows on every map
        mx, my = mm.marker.getData()
        assert np.allclose([mx[0], my[0]], z)

    # the chosen run's tools follow the click
    tools = cmp.tools
    assert len(tools.traversal.rows) == 2 and len(tools.traversal.rows[0]) == 9
    assert len(tools.nearest.found) == 0                    # a hidden tab does no work on a click…
    tools.setCurrentWidget(tools.nearest)                   # …and catches up when shown
    assert len(tools.nearest.found) == 12 and tools.nearest.images is not None   # dataset found again
    train_z = cmp.entries[0]["z"][cmp.entries[0]["split"] == 0]
    d = np.sum((train_z - z) ** 2, axis=1)
    assert tools.nearest.found[0] == int(np.argmin(d))
    cmp.run_choice.setCurrentIndex(1)                                     # explore the other run
    assert tools.traversal.decoder is cmp.entries[1]["decoder"]
    qtbot.mouseClick(tools.interpolation.set_a_button, Qt.LeftButton)
    click_plot(qtbot, cmp.maps[0].plot, xr[0], yr[0])
    qtbot.mouseClick(tools.interpolation.set_b_button, Qt.LeftButton)
    strip = tools.interpolation.strip
    assert strip is not None and len(strip) == 10
    # a click on a run's point on the plane picks that run to explore
    panel.rd_plot.click_run(cmp.entries[0]["path"])
    assert cmp.run_choice.currentIndex() == 0

    # exports
    for what in ("png-curves", "png-maps", "png-decoded"):
        path = tmp_path / f"{what}.png"
        assert cmp.export(what, path) and not QImage(str(path)).isNull(), what
    assert tools.interpolation.export_png(tmp_path / "strip.png")
    assert tools.traversal.export_png(tmp_path / "trav.png")
    assert cmp.export("csv-curves", tmp_path / "curves.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "curves.csv").read_text())))
    assert len(rows) == 4 and {r["beta_setting"] for r in rows} == {"0.5", "4.0"}
    cmp.clear()
    assert cmp.entries == [] and cmp.maps == []


def test_opened_run_shows_its_terms_plane_point_and_replay(qtbot, panel, tiny_sweep):  # noqa: F811
    from latentlab.runs import folder as runs

    run = runs.open_run(tiny_sweep["runs"][1])
    panel.show_run(run)
    assert panel.loss_terms.value("kl", "val") == pytest.approx(run.history[-1]["val_kl_loss"])
    assert "<b style='color:#c0392b'>4</b>" in panel.loss_terms.formula.text()
    assert str(run.path) in panel.rd_plot.runs
    rep = panel.replay
    assert len(rep.frames) == 2 and rep.slider.maximum() == 2 and rep.epoch == 2
    rep.slider.setValue(1)
    x, _ = rep.scatter.getData()
    assert np.allclose(x, run.epoch_latents["z_mean"][0][:, 0])
    assert rep.labels is not None and len(rep.labels) == 20


def test_a_run_that_cannot_be_opened_says_why(qtbot, panel, tmp_path):
    bad = tmp_path / "not-a-run"
    bad.mkdir()
    (bad / "config.json").write_text("{ not json")
    with qtbot.waitSignal(panel.comparison.runFailed, timeout=WAIT_MS) as blocker:
        panel.comparison.open_folder(tmp_path)
    assert "not-a-run" in blocker.args[0] and "JSON" in blocker.args[1]
    qtbot.waitUntil(lambda: not panel.comparison.is_loading, timeout=WAIT_MS)
    assert "not-a-run" in panel.comparison.status.text()

""""Show the trade-off" in the app: the menu/toolbar action runs the lesson on the loaded folder in the
background, then the comparison opens with one entry per β (plane, reconstructions, maps, one z decoded by
every β, the verdict); Stop ends it cleanly; the sweep panel's designed sweeps (on by default)."""

import os

import pytest
from PySide6.QtCore import Qt
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

SHOT = os.environ.get("LATENTLAB_LESSON_SCREENSHOT")   # set it to keep the comparison's screenshot


def load(qtbot, win, folder):
    with qtbot.waitSignal(win.dataset_panel.datasetLoaded, timeout=WAIT_MS):
        win.dataset_panel.open_folder(folder)
    qtbot.waitUntil(lambda: win.training_panel.train_button.isEnabled(), timeout=WAIT_MS)


def tiny_design(**kw):
    from latentlab.sweeps.lesson import Design

    return Design(**{"betas": (0.1, 1.0, 10.0), "warm_epochs": 2, "epochs": 1, "draws": 4, **kw})


def test_show_the_tradeoff_opens_the_comparison_with_one_entry_per_beta(window, qtbot, gui_digits, tmp_path):
    from PySide6.QtWidgets import QToolBar

    win, panel = window, window.tradeoff
    view = panel.lesson
    assert not win.lesson_action.isEnabled()                         # nothing loaded yet
    load(qtbot, win, gui_digits)
    assert win.lesson_action.isEnabled() and len(win.lesson_action.statusTip()) > 40
    assert win.lesson_action in win.tradeoff_menu.actions()
    assert win.lesson_action in win.findChild(QToolBar, "main-toolbar").actions()
    view.design = tiny_design()
    with qtbot.waitSignal(view.comparisonReady, timeout=WAIT_MS):
        win.lesson_action.trigger()
        assert view.is_running and panel.currentIndex() == panel.TAB_LESSON and win.tradeoff_dock.isVisible()
        assert not win.training_panel.train_button.isEnabled() and not win.lesson_action.isEnabled()
        qtbot.waitUntil(lambda: view.progress.value() > 0, timeout=WAIT_MS)   # the window stays responsive
    s = view.summary
    betas = [0.1, 1.0, 10.0]
    assert [r["beta"] for r in s["runs"]] == betas
    cmp = view.comparison
    assert [e["beta"] for e in cmp.entries] == betas and len(cmp.maps) == 3          # maps side by side
    assert [b for b, _ in cmp.decoded] == betas                                       # one z, every β
    assert list(cmp.z) == [0.0, 0.0]
    assert set(view.plane.runs) == {r["run_dirs"][0] for r in s["runs"]}             # the plane: one point per β
    for r in s["runs"]:                                          # the mean over both seeds, each seed's curve
        point = view.plane.runs[r["run_dirs"][0]]["point_item"].getData()
        assert point[0][0] == pytest.approx(r["rate"]) and point[1][0] == pytest.approx(r["distortion"])
        assert len(r["run_dirs"]) == 2 and "vs_first" in r
    assert len(view.seed_curves) == 2 and all(len(c.getData()[0]) == 3 for c in view.seed_curves)
    import pyqtgraph as pg                                       # one label per β on the plane, beside its dot
    texts = [i.toPlainText() for i in view.plane.plot.getPlotItem().items if isinstance(i, pg.TextItem)]
    assert sorted(t for t in texts if t.startswith("β")) == sorted(f"β = {b:g}" for b in betas), texts
    rec = view.recon_view.image                                  # originals + one row of reconstructions per β
    assert rec is not None and rec.height() >= 4 * 52
    text = view.verdict.text()
    assert "Raising β from 0.1 to 10" in text and "β 10: rate" in text and "vs β 0.1" in text
    assert "rate" in view.intro.text() and "distortion" in view.intro.text()
    from PySide6.QtWidgets import QLabel                         # what β buys: prior samples and the split per β
    assert [b.objectName() for b in view.prior_labels] == [f"prior-beta-{b:g}" for b in betas]
    for box, r in zip(view.prior_labels, s["runs"]):
        picture, caption = box.findChildren(QLabel)
        assert not picture.pixmap().isNull() and picture.pixmap().width() >= 200
        assert f"KL(q(z) ‖ p(z)) {r['marginal_kl']:.2f}" in caption.text() and "samples in holes" in caption.text()
    assert "codes the prior never draws" in text
    assert win.training_panel.train_button.isEnabled() and win.lesson_action.isEnabled()
    assert (win.runs_root / view.out_dir.name / "lesson.json").is_file()
    if SHOT:
        win.tradeoff_dock.setFloating(True)
        win.tradeoff_dock.resize(1500, 1050)
        qtbot.wait(200)
        view.grab().save(SHOT)
    # the same lesson, opened later from its folder
    view.open_folder(view.out_dir)
    qtbot.waitUntil(lambda: len(cmp.entries) == 3 and not cmp.is_loading, timeout=WAIT_MS)
    # at 1280×800 the page fits its dock: its mosaics and maps shrink rather than push it sideways (issue 28)
    from PySide6.QtWidgets import QScrollArea
    page = view.findChild(QScrollArea)
    try:
        qtbot.waitUntil(lambda: page.widget().width() <= page.viewport().width(), timeout=5000)
    except Exception:
        from PySide6.QtWidgets import QWidget
        wide = [(type(c).__name__, c.minimumSizeHint().width()) for c in page.widget().findChildren(QWidget)
                if c.isVisibleTo(page.widget()) and c.minimumSizeHint().width() > 400]
        least = page.widget().minimumSizeHint().width()
        raise AssertionError(f"the page is {page.widget().width()} px (at least {least}) in a "
                             f"{page.viewport().width()} px dock; window {win.width()} px; wide parts: {wide}") from None
    assert page.horizontalScrollBar().maximum() == 0


def test_the_lesson_puts_each_run_on_the_plane_as_it_finishes(window, qtbot, gui_digits):
    """Not only at the end: the first β's point (and its prior samples) appear while later runs still train,
    and the progress bar says the stage and, once under way, the time left, on a row of its own."""
    from latentlab.events import LessonRunDone

    win, view = window, window.tradeoff.lesson
    load(qtbot, win, gui_digits)
    view.design = tiny_design(seeds=(0,))
    seen, formats, on_plane_while_running = [], [], []

    def watch(value):          # on the GUI thread, in the order the view handles the lesson's events
        formats.append(view.progress.format())
        if value >= (view._runs - 1) * 100 and not on_plane_while_running:   # the last run is under way
            on_plane_while_running.append(set(view.plane.runs))

    view.progress.valueChanged.connect(watch)
    with qtbot.waitSignal(view.comparisonReady, timeout=WAIT_MS):
        assert win.start_lesson()
        view.task.worker.event.connect(lambda ev: seen.append(type(ev).__name__))
    assert seen.count(LessonRunDone.__name__) == 3 and view._runs == 4            # a shared start, three β
    assert on_plane_while_running and len(on_plane_while_running[0]) >= 1, on_plane_while_running
    assert on_plane_while_running[0] <= set(view.plane.runs)
    assert any("run 1 of 4" in f for f in formats) and any("left" in f for f in formats), formats
    assert view.progress.width() > 0.6 * view.width()       # the full width: not clipped
    assert view.progress.format().startswith("done in")
    assert [b.objectName() for b in view.prior_labels] == ["prior-beta-0.1", "prior-beta-1", "prior-beta-10"]


def test_the_lesson_shows_a_runs_reconstructions_before_the_last_run_finishes(window, qtbot, gui_digits):
    """ "What each β rebuilds" gains a row as each β's run finishes (loaded on a thread of its own while the next
    trains), not only when the comparison opens at the end."""
    from latentlab.events import LessonRunDone

    win, view = window, window.tradeoff.lesson
    load(qtbot, win, gui_digits)
    view.design = tiny_design(seeds=(0,), epochs=2)
    done, shown = [], []

    def on_shown(beta):
        image = view.recon_view.image
        shown.append((beta, len(done), view.is_running, image.height() if image is not None else 0))

    view.runReconstructed.connect(on_shown)
    with qtbot.waitSignal(view.comparisonReady, timeout=WAIT_MS):
        assert win.start_lesson()
        view.task.worker.event.connect(lambda ev: done.append(ev) if isinstance(ev, LessonRunDone) else None)
    assert shown, "no run's reconstructions appeared before the comparison"
    beta, runs_done, running, height = shown[0]
    assert beta == 0.1 and running and runs_done < 3, shown       # the first β's row, the last β still training
    assert height >= 2 * 52                                          # the validation images and one β's row
    rec = view.recon_view.image                                      # then the comparison's: every β
    assert rec is not None and rec.height() >= 4 * 52


def test_stop_ends_the_lesson_cleanly(window, qtbot, gui_digits):
    from latentlab.events import BatchEnd

    win, view = window, window.tradeoff.lesson
    load(qtbot, win, gui_digits)
    view.design = tiny_design(warm_epochs=30)
    seen = []
    with qtbot.waitSignal(view.lessonFinished, timeout=WAIT_MS) as blocker:
        assert win.start_lesson()
        view.task.worker.event.connect(lambda ev: seen.append(ev) if isinstance(ev, BatchEnd) else None)
        qtbot.waitUntil(lambda: len(seen) > 0, timeout=WAIT_MS)
        qtbot.mouseClick(view.stop_button, Qt.LeftButton)
    assert blocker.args[0] is None and not view.is_running           # stopped during the shared start
    assert view.progress.format() == "stopped" and view.start_button.isEnabled()
    assert win.training_panel.train_button.isEnabled()


def test_the_sweep_panel_designs_user_sweeps_by_default(qtbot, gui_digits, tmp_path, monkeypatch):
    from gui.tradeoff.tradeoff_panel import TradeoffPanel
    from latentlab.runs import folder as runs
    from latentlab.config import TrainConfig
    from latentlab.data import load_folder

    monkeypatch.setenv("LATENTLAB_CACHE_DIR", str(tmp_path / "cache"))
    panel = TradeoffPanel()               # the sweep panel with the rate–distortion plane it feeds
    qtbot.addWidget(panel)
    panel.show()
    sp = panel.sweep_panel
    assert sp.design_check.isChecked() and len(sp.design_check.toolTip()) > 80
    panel.set_sweep_source(TrainConfig(dataset=str(gui_digits), epochs=3, batch_size=64, seed=2),
                           load_folder(gui_digits))
    sp.betas_edit.setText("0.5, 4")
    sp.out_edit.setText(str(tmp_path / "sw"))
    statuses = []
    sp.sweepEvent.connect(lambda ev: statuses.append(sp.rows[0.5].get("status")))
    with qtbot.waitSignal(sp.sweepFinished, timeout=WAIT_MS):
        qtbot.mouseClick(sp.start_button, Qt.LeftButton)
        assert not sp.design_check.isEnabled()
    assert "shared start" in statuses and [sp.table.item(r, 5).text() for r in range(2)] == ["finished"] * 2
    warm = runs.open_run(tmp_path / "sw" / "warm-start" / "seed-2")
    for beta in ("0.5", "4"):
        run = runs.open_run(tmp_path / "sw" / f"beta-{beta}")
        assert run.epochs_done == 3 and run.history[:2] == warm.history and run.config.beta == float(beta)
    assert sp.message.text().startswith("Raising β from 0.5 to 4")
    assert sp.progress.format() == "2 of 2 runs finished"
    # the plane: one point per β; the shared start, which every β continues, is none of them
    assert sorted(panel.rd_plot.labels()) == ["β = 0.5", "β = 4"], panel.rd_plot.labels()


def test_closing_the_window_mid_lesson_stops_it(window, qtbot, gui_digits):
    from latentlab.events import BatchEnd

    win, view = window, window.tradeoff.lesson
    load(qtbot, win, gui_digits)
    view.design = tiny_design(warm_epochs=30)
    seen = []
    assert win.start_lesson()
    view.task.worker.event.connect(lambda ev: seen.append(ev) if isinstance(ev, BatchEnd) else None)
    qtbot.waitUntil(lambda: len(seen) > 0, timeout=WAIT_MS)
    asked = []
    win.confirm_stop = lambda: asked.append(True) or True
    win.close()
    assert asked and not view.is_running

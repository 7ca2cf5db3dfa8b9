"""The real window driven through sequences of user actions (Hypothesis' rule-based state machine): open the
sample, a folder or a run (through the Open run dialog's code path), train, pause, resume, change β, stop,
continue, show the trade-off views, start and stop the lesson, export, close. After every step: no exception
reached ``sys.excepthook`` (a slot's or a worker thread's), the GUI thread answers within 5 s, the window's
state agrees with the trainer's; after close, no thread is left running.

Bounded for CI (a few examples of a dozen steps). ``scripts/soak-app`` runs it for as long as it is asked
(``LATENTLAB_SOAK_MINUTES``) and prints the process' RSS after each finished training.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import time

from _runs import tiny_run  # noqa: F401  (a fixture)
from _wait import WAIT_MS, WAIT_S
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)
from PySide6.QtCore import QTimer

SOAK_MINUTES = float(os.environ.get("LATENTLAB_SOAK_MINUTES", "0"))
SOAK_SKIP = os.environ.get("LATENTLAB_SOAK_SKIP", "").split(",")   # actions the soak leaves out (e.g. lesson)
CTX: dict = {}      # what the machine needs of the running test (the test sets it)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Window(RuleBasedStateMachine):
    """The window and what a person does with it; CTX (set by the test) holds qtbot, the folder, tmp_path,
    the recorded errors, the finished trainings and the counters."""

    def __init__(self):
        super().__init__()
        CTX["counter"]["example"] += 1
        from gui.main_window import MainWindow

        self.root = CTX["tmp_path"] / f"example-{CTX['counter']['example']}"
        self.win = MainWindow(runs_root=self.root / "runs", snapshot_seconds=0.3)
        self.win.confirm_stop = lambda: True
        self.win.resize(1280, 800)
        self.win.show()
        CTX["qtbot"].waitExposed(self.win, timeout=WAIT_MS)
        self.win.trainingFinished.connect(self._trained)

    def _trained(self, result) -> None:
        CTX["trainings"].append((len(CTX["trainings"]) + 1, _rss_mb()))
        if SOAK_MINUTES:
            print(f"soak: training {len(CTX['trainings'])} ended; RSS {CTX['trainings'][-1][1]:.0f} MB", flush=True)

    def did(self, what: str) -> None:
        CTX["done"][what] = CTX["done"].get(what, 0) + 1

    @initialize()
    def a_person_opens_a_folder_first(self):
        """Most sessions start with a folder (the rules open others, the sample and runs later)."""
        with CTX["qtbot"].waitSignal(self.win.dataset_panel.datasetLoaded, timeout=WAIT_MS):
            assert self.win.open_dataset(CTX["folder"])

    # -- helpers ---------------------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        return self.win.training.state == "idle" and not self.win.tradeoff.training_busy

    def settle(self) -> None:
        """Let queued work land, the form's β among it (it reaches the trainer 250 ms after the last change)."""
        CTX["qtbot"].wait(400)

    # -- what a person does --------------------------------------------------------------------------
    @precondition(lambda self: self.idle)
    @rule()
    def open_sample(self):
        self.did("open_sample")
        with CTX["qtbot"].waitSignal(self.win.dataset_panel.datasetLoaded, timeout=WAIT_MS):
            self.win.sample_action.trigger()

    @precondition(lambda self: self.idle)
    @rule()
    def open_folder(self):
        self.did("open_folder")
        with CTX["qtbot"].waitSignal(self.win.dataset_panel.datasetLoaded, timeout=WAIT_MS):
            assert self.win.open_dataset(CTX["folder"])

    @precondition(lambda self: self.idle and not self.win.files.loading)
    @rule()
    def open_run_from_the_dialog(self):
        self.did("open_run_from_the_dialog")
        with CTX["qtbot"].waitSignal(self.win.runOpened, timeout=WAIT_MS):
            self.win.open_run_action.trigger()
        CTX["qtbot"].waitUntil(lambda: self.win.map_view.point_decoder is not None, timeout=WAIT_MS)

    @precondition(lambda self: self.idle and self.win.dataset is not None
                  and self.win.training_panel.train_button.isEnabled())
    @rule(epochs=st.integers(1, 3))
    def train(self, epochs):
        self.did("train")
        self.win.training_panel.apply_settings(epochs=epochs, batch_size=64, latent_dim=2)
        self.win.train_action.trigger()
        CTX["qtbot"].waitUntil(lambda: self.win.training.state != "starting", timeout=WAIT_MS)

    @precondition(lambda self: self.win.training.state in ("training", "paused"))
    @rule()
    def pause_or_resume(self):
        self.did("pause_or_resume")
        self.win.pause_action.trigger()

    @rule(beta=st.sampled_from([0.1, 0.5, 1.0, 4.0, 33.9]))
    def change_beta(self, beta):
        self.did("change_beta")
        self.win.training_panel.beta_spin.setValue(beta)

    @precondition(lambda self: self.win.training.state in ("starting", "training", "paused"))
    @rule()
    def stop(self):
        self.did("stop")
        self.win.stop_action.trigger()
        CTX["qtbot"].waitUntil(lambda: self.win.training.state == "idle", timeout=WAIT_MS)

    @precondition(lambda self: self.win.training.state == "idle" and self.win.continue_action.isEnabled())
    @rule(more=st.integers(1, 2))
    def continue_training(self, more):
        self.did("continue_training")
        done = len(self.win.loss_plot.epoch_x)
        self.win.training_panel.apply_settings(epochs=done + more)
        self.win.continue_action.trigger()

    @precondition(lambda self: self.win.training.state in ("training", "starting"))
    @rule()
    def wait_for_the_training_to_end(self):
        self.did("wait_for_the_training_to_end")
        CTX["qtbot"].waitUntil(lambda: self.win.training.state == "idle", timeout=WAIT_MS)

    @rule()
    def toggle_the_tradeoff_views(self):
        self.did("toggle_the_tradeoff_views")
        self.win.tradeoff_toggle_action.trigger()

    @precondition(lambda self: self.idle and self.win.lesson_action.isEnabled())
    @rule()
    def start_and_stop_the_lesson(self):
        self.did("start_and_stop_the_lesson")
        view = self.win.tradeoff.lesson
        with CTX["qtbot"].waitSignal(view.lessonFinished, timeout=WAIT_MS):
            self.win.lesson_action.trigger()
            CTX["qtbot"].wait(300)
            view.stop()

    @rule()
    def export_grid(self):
        self.did("export_grid")
        if self.win.latent_map.mosaic is not None:
            assert self.win.export_grid(self.root / f"grid-{CTX['counter']['steps']}.png")

    # -- what must hold after every step ------------------------------------------------------------------
    @invariant()
    def nothing_went_wrong_and_the_window_answers(self):
        CTX["counter"]["steps"] += 1
        self.settle()
        assert not CTX["errors"], CTX["errors"]
        answered = []
        QTimer.singleShot(0, lambda: answered.append(time.monotonic()))
        CTX["qtbot"].waitUntil(lambda: bool(answered), timeout=5000)          # the GUI thread answers within 5 s
        state, trainer = self.win.training.state, self.win.training.trainer
        if state in ("training", "paused"):
            assert trainer is not None and trainer.paused == (state == "paused"), state
        if state == "idle":
            assert not self.win.training_panel.stop_button.isEnabled()
        if trainer is not None and state in ("training", "paused"):
            assert abs(trainer.beta - self.win.training_panel.beta_spin.value()) < 1e-6, "β: form ≠ trainer"

    def teardown(self):
        from gui.threads import running_threads

        self.win.close()
        self.win.shutdown()
        deadline = time.monotonic() + WAIT_S
        while running_threads() and time.monotonic() < deadline:
            CTX["qtbot"].wait(50)
        left = [t.objectName() for t in running_threads()]
        self.win.deleteLater()
        CTX["qtbot"].wait(10)
        assert not left, f"threads left running after close: {left}"
        assert not CTX["errors"], CTX["errors"]


def test_the_window_survives_any_sequence_of_user_actions(qapp, qtbot, gui_digits, tiny_run, tmp_path, monkeypatch):
    import gui.run_files as run_files

    monkeypatch.setenv("LATENTLAB_CACHE_DIR", str(tmp_path / "cache"))
    opened = tmp_path / "opened-run"
    shutil.copytree(tiny_run, opened)
    # the Open run dialog answers with the run's folder, as a person choosing it would
    monkeypatch.setattr(run_files.QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(opened)))
    errors: list[str] = []
    hook = sys.excepthook

    def record(kind, value, tb):
        errors.append(f"{kind.__name__}: {value}")
        hook(kind, value, tb)

    monkeypatch.setattr(sys, "excepthook", record)
    trainings: list[tuple[int, float]] = []     # (trainings finished, RSS MB) for the soak
    counter = {"example": 0, "steps": 0}
    CTX.update(qtbot=qtbot, folder=gui_digits, tmp_path=tmp_path, errors=errors, trainings=trainings, counter=counter,
               done={})

    if SOAK_MINUTES:      # scripts/soak-app: one window, one long session, the actions in a cycle
        _soak(SOAK_MINUTES)
        return
    run_state_machine_as_test(Window, settings=settings(
        max_examples=3, stateful_step_count=12, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck)))
    print(f"window states: {counter['steps']} steps; actions {dict(sorted(CTX['done'].items()))}")
    assert counter["steps"] >= 12 and CTX["done"].get("train", 0) >= 1, CTX["done"]


def _soak(minutes: float) -> None:
    """A person's long session: one window, the actions of `Window` in a cycle (random β and epochs), the
    invariants after each; RSS printed after every training and summed up at the end."""
    import random

    rng = random.Random(0)
    machine = Window()
    end = time.monotonic() + minutes * 60
    cycle = 0
    try:
        while time.monotonic() < end:
            cycle += 1
            for act in (lambda: machine.open_folder(), lambda: machine.train(rng.randint(1, 3)),
                        lambda: machine.change_beta(rng.choice([0.1, 0.5, 1.0, 4.0, 33.9])),
                        lambda: machine.wait_for_the_training_to_end(),
                        lambda: machine.continue_training(rng.randint(1, 2)) if machine.win.continue_action.isEnabled()
                        else None,
                        lambda: machine.wait_for_the_training_to_end() if machine.win.training.state != "idle" else None,
                        lambda: machine.open_run_from_the_dialog(), lambda: machine.toggle_the_tradeoff_views(),
                        lambda: machine.start_and_stop_the_lesson()
                        if machine.win.lesson_action.isEnabled() and "lesson" not in SOAK_SKIP else None,
                        lambda: machine.export_grid(), lambda: machine.open_sample()):
                act()
                machine.nothing_went_wrong_and_the_window_answers()
    finally:
        machine.teardown()
    rss = [mb for _, mb in CTX["trainings"]]
    print(f"soak: {len(rss)} trainings in {cycle} cycles over {minutes:g} min; RSS MB first/last/max "
          f"{rss[0] if rss else 0:.0f}/{rss[-1] if rss else 0:.0f}/{max(rss, default=0):.0f}", flush=True)

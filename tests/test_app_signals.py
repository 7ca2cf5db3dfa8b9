"""The app's process as a terminal treats it: Ctrl+C (SIGINT) and SIGTERM while it trains behave like
Stop then Quit, a second Ctrl+C quits at once, and the run folder opens and resumes either way; the
watchdog writes every thread's stack when the GUI thread stops answering."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _reliability import child_env, committed_epochs, default_sigint, run_cli
from _wait import WAIT_S, wait_for

from latentlab.runs import folder as runs


class AppProcess:
    """The app (offscreen) in a child process, its output read as it comes."""

    def __init__(self, tmp_path: Path, *args):
        self.runs_root = tmp_path / "runs"
        env = child_env(QT_QPA_PLATFORM="offscreen", LATENTLAB_RUNS_DIR=self.runs_root,
                        LATENTLAB_CACHE_DIR=tmp_path / "cache", XDG_CONFIG_HOME=tmp_path / "config",
                        LATENTLAB_LOG_DIR=tmp_path / "log")
        self.proc = subprocess.Popen([sys.executable, "-m", "gui.app", *map(str, args)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env, preexec_fn=default_sigint)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def run_dir(self) -> Path | None:
        found = sorted(p for p in self.runs_root.glob("*") if p.is_dir()) if self.runs_root.is_dir() else []
        return found[0] if found else None

    def wait_for_epochs(self, n: int) -> Path:
        def ready():
            assert self.proc.poll() is None, f"the app exited ({self.proc.returncode}):\n{self.output[-3000:]}"
            run = self.run_dir()
            return run if run is not None and committed_epochs(run) >= n else None
        return wait_for(ready, f"{n} committed epoch(s)")

    def wait(self) -> int:
        try:
            code = self.proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)       # PYTHONFAULTHANDLER: every thread's stack
            self.proc.wait(30)
            self._reader.join(5)
            raise AssertionError(f"the app did not exit:\n{self.output[-6000:]}") from None
        self._reader.join(10)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _train_app(tmp_path, folder):
    return AppProcess(tmp_path, "--dataset", folder, "--autostart", "--epochs", 60, "--batch-size", 16)


def _check_resumes(run_dir: Path) -> None:
    """The run opens, and `latentlab train --resume` takes it one epoch further."""
    run = runs.open_run(run_dir)
    done = len(run.history)
    assert done >= 1
    code, out, err = run_cli("train", "--resume", run_dir, "--epochs", done + 1, "--quiet",
                             env=child_env(LATENTLAB_CACHE_DIR=run_dir.parent / "cache-cli"))
    assert code == 0, err
    assert len(runs.open_run(run_dir).history) == done + 1


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_training_stops_then_quits_and_the_run_resumes(tmp_path, gui_digits, sig, code):
    app = _train_app(tmp_path, gui_digits)
    try:
        run_dir = app.wait_for_epochs(1)
        app.proc.send_signal(sig)
        assert app.wait() == code, app.output[-3000:]
    finally:
        app.kill()
    out = app.output
    assert "Traceback" not in out and "KeyboardInterrupt" not in out and "Fatal Python error" not in out, out[-3000:]
    name = signal.Signals(sig).name
    assert f"latentlab: {name}: stopping after the current batch" in out
    assert f"the run folder is {run_dir}" in out
    state = json.loads((run_dir / "state.json").read_text())
    assert state["status"] == "stopped", state
    if sig == signal.SIGINT:          # resuming is the same after either (and checked after two Ctrl+C too)
        _check_resumes(run_dir)
    else:
        assert len(runs.open_run(run_dir).history) == state["epochs_done"]


def test_a_second_ctrl_c_quits_at_once_and_the_run_still_resumes(tmp_path, gui_digits):
    app = _train_app(tmp_path, gui_digits)
    try:
        run_dir = app.wait_for_epochs(1)
        app.proc.send_signal(signal.SIGINT)
        wait_for(lambda: "SIGINT: stopping" in app.output or app.proc.poll() is not None, "the first Ctrl+C's line")
        app.proc.send_signal(signal.SIGINT)
        assert app.wait() == 130, app.output[-3000:]
    finally:
        app.kill()
    out = app.output
    assert "Traceback" not in out and "Fatal Python error" not in out and "Segmentation" not in out, out[-3000:]
    _check_resumes(run_dir)


def test_the_watchdog_writes_every_threads_stack_when_the_gui_thread_stops_answering(qapp, qtbot, tmp_path):
    from gui.lifecycle import Watchdog

    log = tmp_path / "app.log"
    dog = Watchdog(seconds=0.5, log_path=log)
    stalls = []
    dog.stalled.connect(lambda s, where: stalls.append((s, where)))
    dog.start()
    try:
        qtbot.wait(300)                         # answering: nothing written
        assert "Thread" not in log.read_text()
        time.sleep(1.5)                         # the GUI thread does not answer
        qtbot.waitUntil(lambda: bool(stalls), timeout=5000)
    finally:
        dog.stop()
    text = log.read_text()
    assert "most recent call first" in text and "test_app_signals.py" in text, text[-2000:]
    assert stalls[0][0] >= 1.0 and stalls[0][1] == str(log)

"""One writer per run folder (latentlab.runs.lock): a second trainer is refused with one line that says
who holds the run, a killed trainer leaves no lock, new run folders are never shared, readers never
touch a live writer's files, and the app shows a refusal as a banner.

The holders here are real `latentlab train` processes started as a user starts them in a terminal.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import _engine
import _reliability as R
import pytest
from _wait import WAIT_MS, WAIT_S, wait_for

from latentlab.runs import folder as runs
from latentlab.runs.writer import RunWriter
from latentlab.cli import main
from latentlab.config import TrainConfig
from latentlab.events import Failed, Finished
from latentlab.training.trainer import Trainer

BATCH = 16
pytestmark = pytest.mark.usefixtures("dataset_cache")


@pytest.fixture(scope="module")
def trained_run(digits_dataset, tmp_path_factory):
    return _engine.train_run(digits_dataset, tmp_path_factory.mktemp("trained") / "run", epochs=1, batch_size=BATCH)


@pytest.fixture
def run_dir(trained_run, tmp_path):
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def _terminal_training(*args, cache=None) -> R.TrainProcess:
    """`latentlab train ... --epochs 100000` in a child, as from a terminal (stopped by the test)."""
    env = R.child_env(**({"LATENTLAB_CACHE_DIR": cache} if cache else {}))
    return R.TrainProcess(R.cli_argv("train", *args, "--epochs", 100_000, "--batch-size", BATCH), env=env)


def _until_it_trains(p: R.TrainProcess, epochs: int = 1) -> None:
    wait_for(lambda: p.epoch_lines >= epochs or p.proc.poll() is not None, f"{epochs} epoch(s) from the child")
    assert p.proc.poll() is None, "the training child ended:\n" + "\n".join(p.lines[-10:])


def _interrupt(p: R.TrainProcess) -> int:
    """Ctrl+C, as in a terminal: the child stops after the batch, keeping its last epoch."""
    if p.proc.poll() is None:
        p.proc.send_signal(signal.SIGINT)
    try:
        return p.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        stacks = p.stacks()
        p.kill()
        raise AssertionError(f"the child did not stop on Ctrl+C within {WAIT_S:.0f} s; its last lines and "
                             f"stacks:\n{stacks}") from None


def _status(run_dir) -> str:
    return json.loads((Path(run_dir) / runs.STATE_FILE).read_text())["status"]


# -- a second writer --------------------------------------------------------------------------------------
def test_a_second_trainer_is_refused_with_one_line_and_the_first_is_unharmed(run_dir, dataset, tmp_path, capsys):
    kept = runs.open_run(run_dir).history
    first = _terminal_training("--resume", run_dir, cache=tmp_path / "child-cache")
    try:
        _until_it_trains(first)
        assert runs.is_locked(run_dir)
        # a second `latentlab train --resume` from another terminal: refused before it loads anything
        code = main(["train", "--resume", str(run_dir), "--epochs", "50", "--quiet"])
        _, err = capsys.readouterr()
        line = R.one_line_error(code, err, str(run_dir), f"process {first.proc.pid}", "train --resume",
                                "read-only", "wait")
        assert "since" in line
        # the trainer itself (what the app, a sweep and a Dask worker call): a Failed event, nothing written
        seen = []
        state_before = (run_dir / runs.STATE_FILE).read_bytes()
        result = Trainer(runs.open_run(run_dir).config.replace(epochs=50), dataset, run_dir, seen.append,
                         resume=True).run()
        assert isinstance(result, Failed) and seen == [result], seen
        assert f"process {first.proc.pid}" in result.message and "\n" not in result.message
        assert _status(run_dir) == "running" and json.loads(state_before)["status"] == "running"
        # and the first goes on training
        n = first.epoch_lines
        wait_for(lambda: first.epoch_lines > n or first.proc.poll() is not None, "another epoch from the first")
        assert first.proc.poll() is None
    finally:
        code = _interrupt(first)
    assert code == 0, "\n".join(first.lines[-10:])
    check = R.check_run_folder(run_dir)
    assert check.epochs_done >= len(kept) + 2 and R.same_rows(kept, check.history)
    assert not check.stray_temp_files and _status(run_dir) == "stopped"
    assert not runs.is_locked(run_dir) and (run_dir / runs.LOCK_FILE).read_bytes() == b""


def test_two_trainings_started_together_into_one_new_folder(gui_digits, tmp_path):
    """`latentlab train DIR --out RUN` twice at the same moment: one trains, the other is refused."""
    out = tmp_path / "new-run"
    procs = [_terminal_training(gui_digits, "--out", out, cache=tmp_path / f"cache{i}") for i in range(2)]
    try:
        wait_for(lambda: any(p.proc.poll() is not None for p in procs), "one of the two to give up")
        loser = next(p for p in procs if p.proc.poll() is not None)
        winner = procs[1 - procs.index(loser)]
        code = loser.wait(timeout=WAIT_S)
        err = "\n".join(loser.lines)
        assert code == 2 and "Traceback" not in err, err
        lines = R.user_lines(err)
        errors = [line for line in lines if line.startswith("latentlab: error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], err
        assert all(" images of " in line for line in lines[:-1]), err   # at most the dataset line before it
        assert str(out) in errors[0] and f"process {winner.proc.pid}" in errors[0], errors[0]
        _until_it_trains(winner)
    finally:
        codes = [_interrupt(p) for p in procs]
    assert codes[procs.index(winner)] == 0, "\n".join(winner.lines[-10:])
    check = R.check_run_folder(out)
    assert check.epochs_done >= 1 and not check.stray_temp_files


def test_training_into_a_folder_that_already_holds_a_run_is_refused(run_dir, dataset):
    """A new training (not --resume) into a finished run's folder: one line, the run unchanged."""
    kept = R.snapshot(run_dir)
    result = Trainer(TrainConfig(dataset=str(dataset.root), batch_size=BATCH, epochs=1), dataset, run_dir).run()
    assert isinstance(result, Failed) and "already holds a run" in result.message and "--resume" in result.message
    assert R.snapshot(run_dir) == kept


# -- a killed writer -------------------------------------------------------------------------------------
def test_a_killed_trainer_leaves_no_lock_behind(run_dir, dataset, tmp_path):
    p = _terminal_training("--resume", run_dir, cache=tmp_path / "child-cache")
    try:
        _until_it_trains(p)
        with pytest.raises(runs.RunLocked, match=f"process {p.proc.pid}"):
            runs.RunLock(run_dir).acquire()
    finally:
        p.kill()   # SIGKILL: nothing of it runs any more, not even a finally
    assert p.proc.returncode == -signal.SIGKILL
    assert not runs.is_locked(run_dir)
    assert json.loads((run_dir / runs.LOCK_FILE).read_text())["pid"] == p.proc.pid   # its note is still there
    done = R.check_run_folder(run_dir, decode=False).epochs_done
    result = Trainer(runs.open_run(run_dir).config.replace(epochs=done + 1), dataset, run_dir, resume=True).run()
    assert isinstance(result, Finished) and len(result.history) == done + 1, result
    assert not runs.is_locked(run_dir)


def test_the_lock_is_released_on_every_way_out(gui_digits, dataset, tmp_path, monkeypatch):
    """Finished, stopped, failed, and an exception nothing catches: the next writer always gets in."""
    from latentlab.data import load_folder

    cfg = TrainConfig(dataset=str(dataset.root), batch_size=BATCH, epochs=1)
    finished = Trainer(cfg, dataset, tmp_path / "a").run()
    assert isinstance(finished, Finished) and not runs.is_locked(tmp_path / "a")

    stopper = Trainer(cfg.replace(epochs=5), dataset, tmp_path / "b")
    stopper.on_event = lambda e: stopper.stop() if type(e).__name__ == "EpochEnd" else None
    stopped = stopper.run()
    assert isinstance(stopped, Finished) and stopped.stopped and not runs.is_locked(tmp_path / "b")

    other_size = load_folder(gui_digits, image_size=12, cache=False)   # the run's model takes 16x16 images
    failed = Trainer(cfg.replace(epochs=3), other_size, tmp_path / "a", resume=True).run()
    assert isinstance(failed, Failed) and "images" in failed.message and not runs.is_locked(tmp_path / "a")

    class Unplugged(BaseException):
        pass

    def unplug(*a, **k):
        raise Unplugged()

    monkeypatch.setattr(RunWriter, "save_latents", lambda self, *a: unplug())
    with pytest.raises(Unplugged):
        Trainer(cfg, dataset, tmp_path / "c").run()
    assert not runs.is_locked(tmp_path / "c")
    with runs.RunLock(tmp_path / "c"):
        pass


def test_a_run_that_fails_before_its_first_write_leaves_no_folder(tmp_path):
    """Training from a folder without images: one line, and no empty run folder left behind."""
    (tmp_path / "empty").mkdir()
    result = Trainer(TrainConfig(dataset=str(tmp_path / "empty"), epochs=1), None, tmp_path / "runs" / "r").run()
    assert isinstance(result, Failed) and "no images" in result.message
    assert not (tmp_path / "runs").exists()


# -- new folders ------------------------------------------------------------------------------------------
def test_runs_started_in_the_same_second_get_a_folder_each(tmp_path):
    """Eight threads and three processes ask for a run folder of the same second: eleven folders."""
    when = time.time()
    barrier = threading.Barrier(8)
    made, errors = [], []

    def one():
        try:
            barrier.wait()
            made.append(runs.new_run_dir(tmp_path, when=when))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    code = ("import sys, time; from latentlab.runs.folder import new_run_dir\n"
            f"while time.time() < {time.time() + 3.0!r}: pass\n"      # start together
            f"print(new_run_dir({str(tmp_path)!r}, when={when!r}))\n")
    children = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=R.child_env())
                for _ in range(3)]
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    outs = [c.communicate(timeout=WAIT_S)[0].strip() for c in children]
    assert not errors and all(c.returncode == 0 for c in children), (errors, outs)
    folders = [str(p) for p in made] + outs
    assert len(folders) == 11 and len(set(folders)) == 11, folders
    assert all(Path(f).is_dir() and not any(Path(f).iterdir()) for f in folders)
    stamp = time.strftime("run-%Y%m%d-%H%M%S", time.localtime(when))
    assert sorted(Path(f).name for f in folders)[0] == stamp


# -- readers ----------------------------------------------------------------------------------------------
def test_a_reader_never_touches_a_live_writers_files(run_dir):
    """open_run while a writer is mid-commit: it leaves the staged model alone and reads the committed
    epoch; once the writer is gone, the next reader finishes the interrupted commit."""
    state = json.loads((run_dir / runs.STATE_FILE).read_text())
    n = state["epochs_done"]
    staged = runs.staged_model_path(run_dir, n + 1)
    with runs.RunLock(run_dir):
        shutil.copy(run_dir / runs.MODEL_FILE, staged)       # epoch n+1 staged, not committed
        run = runs.open_run(run_dir)
        assert staged.exists() and run.epochs_done == n and run.model_path == run_dir / runs.MODEL_FILE
        runs.write_state(run_dir, **{**state, "epochs_done": n + 1, "model_epoch": n + 1})   # the commit
        run = runs.open_run(run_dir)
        assert staged.exists() and run.model_path == staged   # committed but not yet renamed
        assert run.load_model() is not None
    # the writer died before its rename: a reader rolls the commit forward
    run = runs.open_run(run_dir)
    assert not staged.exists() and run.model_path == run_dir / runs.MODEL_FILE


def test_copying_a_run_leaves_its_lock_behind(run_dir, tmp_path):
    assert (run_dir / runs.LOCK_FILE).exists()
    runs.copy_run(run_dir, tmp_path / "copy")
    assert not (tmp_path / "copy" / runs.LOCK_FILE).exists()


# -- the app ---------------------------------------------------------------------------------------------
def test_the_app_shows_a_refusal_as_a_banner(window, qtbot, run_dir, dataset, tmp_path):
    """A terminal trains a run; the window opens it (a reader: fine) and tries to train it on."""
    first = _terminal_training("--resume", run_dir, cache=tmp_path / "child-cache")
    try:
        _until_it_trains(first)
        with qtbot.waitSignal(window.runOpened, timeout=WAIT_MS):
            assert window.open_run_path(run_dir)
        qtbot.waitUntil(window.is_idle, timeout=WAIT_MS)
        cfg = runs.open_run(run_dir).config.replace(epochs=500)
        with qtbot.waitSignal(window.trainingFinished, timeout=WAIT_MS) as blocker:
            assert window.training.start(cfg, dataset, run_dir, snapshot_seconds=None, resume=True)
        assert isinstance(blocker.args[0], Failed)
        text = window.banner.label.text()
        assert window.banner.isVisible() and f"process {first.proc.pid}" in text, text
        assert "read-only" in text and "Traceback" not in text and "\n" not in text
        assert window.training_panel.progress.format() == "failed" and window.training_panel.progress.maximum() == 1
        window.grab().save(str(tmp_path / "refusal.png"))
        assert window.training.state == "idle"
        n = first.epoch_lines
        wait_for(lambda: first.epoch_lines > n or first.proc.poll() is not None, "the terminal's next epoch")
    finally:
        code = _interrupt(first)
    assert code == 0 and _status(run_dir) == "stopped", "\n".join(first.lines[-10:])
    R.check_run_folder(run_dir, decode=False)

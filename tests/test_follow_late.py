"""Following a run at the edges of its writing: a run folder opened in the window before its writer
(`latentlab train` in a child process) committed a first epoch waits for it, then is followed to the end;
a finished run shown in the window is followed again when `latentlab train --resume` takes its lock in
another process."""

from __future__ import annotations

import socket
from contextlib import contextmanager

import pytest
from _reliability import TrainProcess, child_env, cli_argv, committed_epochs, run_cli
from _wait import WAIT_MS, wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


@contextmanager
def _writer(*args, cache):
    """``latentlab ARGS --quiet`` in a child process, killed on the way out if it still runs."""
    child = TrainProcess(cli_argv(*args, "--quiet"), env=child_env(LATENTLAB_CACHE_DIR=cache))
    try:
        yield child
    finally:
        if child.proc.poll() is None:
            child.kill()


def _followed_to_its_end(qtbot, win, child) -> str:
    """Wait for the window's following to end and the child to exit cleanly: how it ended."""
    with qtbot.waitSignal(win.following.ended, timeout=WAIT_MS) as ended:
        pass
    assert child.wait(60) == 0, "\n".join(child.lines)
    return ended.args[0]


def test_a_run_opened_before_its_first_epoch_is_followed(window, qtbot, gui_digits, tmp_path):
    from latentlab.runs.lock import is_locked
    from latentlab.runtime import import_tensorflow

    import_tensorflow()   # as a window that has run a while has it: opening is then a short read
    win, run_dir, epochs = window, tmp_path / "run", 5
    with _writer("train", gui_digits, "--latent-dim", 2, "--epochs", epochs, "--batch-size", 2, "--out", run_dir,
                 cache=tmp_path / "cache") as child:
        wait_for(lambda: (run_dir.is_dir() and is_locked(run_dir)) or child.proc.poll() is not None, "the child's lock")
        assert child.proc.poll() is None and committed_epochs(run_dir) == 0, "\n".join(child.lines)
        win.following.timer.setInterval(100)
        opened, shown = [], []
        win.runOpened.connect(opened.append)
        win.following.epochShown.connect(shown.append)
        awaited, failed = [], []
        win.files.awaiting.connect(lambda path, u: awaited.append(path))
        win.runOpenFailed.connect(failed.append)
        assert win.open_run_path(run_dir)            # as File → Open run does: no epoch yet, so no run yet
        qtbot.waitUntil(lambda: bool(awaited or opened or failed), timeout=WAIT_MS)
        assert awaited == [str(run_dir)], (opened, failed, committed_epochs(run_dir), child.lines[-3:])
        texts = [win.following.text]
        assert not win.banner.isVisible()            # not a problem: a run on its way
        assert texts[0] == f"following: written by {child.proc.pid} on {socket.gethostname()}, " \
                           "waiting for the first epoch", (texts, child.lines[-3:])
        assert not opened and committed_epochs(run_dir) <= 1
        with qtbot.waitSignal(win.runOpened, timeout=WAIT_MS):   # its first epoch commits: it opens as a run
            pass
        assert win.following.following, win.following.text
        texts.append(win.following.text)
        win.following.updated.connect(lambda u: texts.append(win.following.text))
        assert _followed_to_its_end(qtbot, win, child) == "finished"
    assert win.following.text == f"finished: {epochs} epochs"
    assert any(f"epoch {n} of {epochs}, last update" in t for t in texts for n in range(1, epochs)), texts
    assert opened == [str(run_dir)]
    assert len(win.loss_plot.epoch_x) == epochs
    assert shown and shown == sorted(shown) and shown[-1] == epochs, shown   # the map advanced with it
    # with the codes' posteriors (the map's prior and posterior layers follow them too)
    import numpy as np

    from latentlab.runs.folder import open_run

    lat, m = open_run(run_dir).latents, win.latent_map
    assert m.z_log_var is not None and np.allclose(m.z_log_var, lat["z_log_var"][m.indices])
    assert m.layers.grid is not None


def test_a_shown_run_resumed_elsewhere_is_followed_again(window, qtbot, gui_digits, tmp_path):
    from latentlab.runs.folder import open_run

    win, run_dir = window, tmp_path / "run"
    code, out, err = run_cli("train", gui_digits, "--latent-dim", 2, "--epochs", 2, "--batch-size", 8,
                             "--out", run_dir, "--quiet", env=child_env(LATENTLAB_CACHE_DIR=tmp_path / "cache"))
    assert code == 0, err
    win.following.timer.setInterval(100)
    with qtbot.waitSignal(win.runOpened, timeout=WAIT_MS):
        assert win.open_run_path(run_dir)
    assert not win.following.following and win.following.watching      # finished: only its lock is watched
    assert len(win.loss_plot.epoch_x) == 2
    shown = []
    win.following.epochShown.connect(shown.append)
    with _writer("train", "--resume", run_dir, "--epochs", 6, cache=tmp_path / "cache") as child:
        qtbot.waitUntil(lambda: win.following.following or child.proc.poll() is not None, timeout=WAIT_MS)
        assert win.following.following, (win.following.text, child.lines[-3:])
        assert win.following.text.startswith(f"following: written by {child.proc.pid} on {socket.gethostname()}")
        assert _followed_to_its_end(qtbot, win, child) == "finished"
    assert win.following.text == "finished: 6 epochs"
    assert list(win.loss_plot.epoch_x) == list(range(1, 7))
    assert shown and shown[-1] == 6 and min(shown) >= 3, shown       # the map took the resumed epochs
    assert len(open_run(run_dir).history) == 6
    assert win.following.watching                                  # and waits for the next resume


def test_the_engine_says_a_writer_holds_a_folder_with_no_epoch_and_sees_its_lock_taken_again(tmp_path):
    import os

    from latentlab.runs import folder as runs
    from latentlab.runs.follow import FollowState, LockWatch, being_written

    run = tmp_path / "run"
    lock = runs.RunLock(run, create=True).acquire()     # a writer that has written no epoch yet
    update = being_written(run)
    assert update is not None and update.describe().endswith("waiting for the first epoch")
    from latentlab.config import TrainConfig

    runs.write_config(run, TrainConfig(epochs=3))
    update = being_written(run)
    assert update is not None and update.state is FollowState.WRITING and update.epochs_done == 0
    assert update.describe() == f"following: written by {os.getpid()} on {socket.gethostname()}, " \
                                "waiting for the first epoch"
    lock.release()
    assert being_written(run) is None and being_written(tmp_path / "nowhere") is None
    watch = LockWatch(run)
    assert not watch.poll() and not watch.poll()        # no writer: a stat each, nothing else
    lock = runs.RunLock(run).acquire()                  # train --resume takes it again
    try:
        assert watch.poll() and being_written(run) is not None
        assert not watch.poll()                         # said once per taking
    finally:
        lock.release()
    assert not watch.poll()

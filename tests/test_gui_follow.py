"""The window follows a run that `latentlab train` writes in another process: opened while it trains, its
curves and its map advance epoch by epoch and the status bar says who writes it, then "finished" when the
child ends; a child killed with SIGKILL is said to have died, at its last committed epoch."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager

import numpy as np
import pytest
from _reliability import TrainProcess, child_env, cli_argv, committed_epochs
from _wait import WAIT_MS, wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def _start_child(gui_digits, run_dir, cache, epochs: int, batch_size: int = 8) -> TrainProcess:
    return TrainProcess(cli_argv("train", gui_digits, "--latent-dim", 2, "--epochs", epochs, "--batch-size", batch_size,
                                 "--out", run_dir, "--quiet"),
                        env=child_env(LATENTLAB_CACHE_DIR=cache))


@contextmanager
def _writing(child: TrainProcess):
    """The child writing the run, killed if the test stops before the child has ended."""
    try:
        yield child
    finally:
        if child.proc.poll() is None:
            child.kill()


def _until_ended(qtbot, ended, child: TrainProcess) -> list:
    """Wait for following to end (``ended``, a signal) and the child to exit cleanly: the signal's arguments."""
    with qtbot.waitSignal(ended, timeout=WAIT_MS) as blocker:
        pass
    assert child.wait(60) == 0, "\n".join(child.lines)
    return blocker.args


def _open_while_training(qtbot, win, child, run_dir):
    wait_for(lambda: committed_epochs(run_dir) >= 1 or child.proc.poll() is not None, "the child's first epoch")
    assert child.proc.poll() is None, "\n".join(child.lines)
    win.following.timer.setInterval(100)
    with qtbot.waitSignal(win.runOpened, timeout=WAIT_MS):
        assert win.open_run_path(run_dir)
    assert win.following.following, (win.following.text, child.lines[-3:])   # it began as the window showed the run


def test_a_run_trained_by_another_process_is_followed_until_it_finishes(window, qtbot, gui_digits, tmp_path):
    win, run_dir, epochs = window, tmp_path / "run", 12
    # batch size 2: epochs of a second or more, so that on a loaded machine the child cannot write them all
    # before the window has shown three (at batch size 8 it sometimes did)
    with _writing(_start_child(gui_digits, run_dir, tmp_path / "cache", epochs, batch_size=2)) as child:
        _open_while_training(qtbot, win, child, run_dir)
        assert f"following: written by {child.proc.pid} on {socket.gethostname()}, epoch " in win.following.text
        assert f" of {epochs}, last update " in win.following.text
        curve_lengths, shown, maps, weights = [], [], [], []

        def record(epoch):
            shown.append(epoch)
            maps.append(win.latent_map.z.copy())
            weights.append([w.copy() for w in win.map_view.latest_weights])

        win.following.epochShown.connect(record)
        win.following.updated.connect(lambda u: curve_lengths.append(len(win.loss_plot.epoch_x)))
        assert _until_ended(qtbot, win.following.ended, child) == ["finished"]
    assert win.following.text == f"finished: {epochs} epochs"
    # the curves grew with the commits, to every epoch of the run
    assert curve_lengths == sorted(curve_lengths) and len(set(curve_lengths)) >= 3, curve_lengths
    assert len(win.loss_plot.epoch_x) == epochs and list(win.loss_plot.epoch_x) == list(range(1, epochs + 1))
    # the map moved with them: several epochs' decoders and points, each new one different
    assert shown == sorted(shown) and len(shown) >= 3 and shown[-1] == epochs, shown
    assert not np.allclose(maps[0], maps[-1]) and maps[-1].shape[1] == 2
    assert any(not np.allclose(a, b) for a, b in zip(weights[0], weights[-1]))
    # what the map shows is the run's last epoch, its codes of the validation images
    from latentlab.runs.folder import open_run

    run = open_run(run_dir)
    assert np.allclose(win.latent_map.z, run.epoch_latents["z_mean"][-1])
    rd = win.tradeoff.rd_plot
    assert rd.markers(str(run_dir)) >= 1                          # on the rate–distortion plane as it moved
    assert not win.following.following


def test_a_killed_writer_is_said_to_have_died(window, qtbot, gui_digits, tmp_path):
    win, run_dir = window, tmp_path / "run"
    with _writing(_start_child(gui_digits, run_dir, tmp_path / "cache", 200)) as child:
        _open_while_training(qtbot, win, child, run_dir)
        qtbot.waitUntil(lambda: win.following.shown_epoch >= 2, timeout=WAIT_MS)
        files = sorted(os.listdir(run_dir))
        with qtbot.waitSignal(win.following.ended, timeout=WAIT_MS) as ended:
            child.kill()
    n = committed_epochs(run_dir)
    assert ended.args == ["died"] and n >= 2
    assert win.following.text == f"the writer died at epoch {n}; the run resumes with train --resume"
    assert len(win.loss_plot.epoch_x) == n
    assert sorted(f for f in os.listdir(run_dir) if not f.startswith(".")) == \
        sorted(f for f in files if not f.startswith("."))


def test_a_sweep_folder_is_followed_run_by_run(window, qtbot, gui_digits, tmp_path):
    """`latentlab sweep` in a child; its folder opened in the window (as a drop does) while the first run
    trains: every run moves on the rate–distortion plane and in the comparison, the second run joins when it
    starts, and following ends when both have finished."""
    from latentlab.runs.folder import open_run

    win, sweep, epochs = window, tmp_path / "sweep", 3
    child = TrainProcess(cli_argv("sweep", gui_digits, "--betas", "0.5,2", "--latent-dim", 2, "--epochs", epochs,
                                  "--batch-size", 8, "--out", sweep, "--quiet"),
                         env=child_env(LATENTLAB_CACHE_DIR=tmp_path / "cache"))
    first = sweep / "beta-0.5"
    with _writing(child):
        wait_for(lambda: committed_epochs(first) >= 1 or child.proc.poll() is not None, "the sweep's first epoch")
        assert child.proc.poll() is None, "\n".join(child.lines)
        ff = win.folder_following
        ff.timer.setInterval(100)
        plane = []
        ff.updated.connect(lambda u: plane.append({k: len(e["history"]) for k, e in win.tradeoff.rd_plot.runs.items()}))
        win.open_path(sweep)                                    # a folder of runs: compared, and followed
        assert ff.following and ff.text.startswith("following 1 run: 1 being written (beta-0.5: epoch ")
        _until_ended(qtbot, ff.ended, child)
    qtbot.waitUntil(lambda: not win.tradeoff.comparison.is_loading, timeout=WAIT_MS)
    assert ff.text == "following 2 runs: 2 finished"
    paths = sorted(str(p) for p in sweep.iterdir() if p.is_dir())
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["beta-0.5", "beta-2"]
    # on the plane: both runs, each epoch by epoch (the first run's curve grew while the window looked)
    rd = win.tradeoff.rd_plot
    assert sorted(len(e["history"]) for e in rd.runs.values()) == [epochs, epochs]
    firsts = [p.get(next(k for k in p if k.endswith("beta-0.5")), 0) for p in plane if p]
    assert len(set(firsts)) >= 2 and firsts == sorted(firsts), plane
    # in the comparison: both runs, their entries as they ended
    entries = {e["path"]: e for e in win.tradeoff.comparison.entries}
    assert sorted(entries) == paths
    for p in paths:
        assert len(entries[p]["history"]) == epochs
        assert np.allclose(entries[p]["z"], open_run(p).latents["z_mean"])


def test_a_keras_script_with_run_callback_is_followed(window, qtbot, gui_digits, tmp_path):
    """examples/keras_vae_runcallback.py (the keras.io recipe, not latentlab's model) trains in a child; the
    window opens its folder while it trains and follows it to the end, decoding with the script's decoder."""
    import sys

    from _reliability import REPO

    from latentlab.model.foreign import ForeignDecoder

    win, run_dir, epochs = window, tmp_path / "kvae", 6
    child = TrainProcess([sys.executable, str(REPO / "examples" / "keras_vae_runcallback.py"), "--dataset", gui_digits,
                          "--out", run_dir, "--epochs", str(epochs), "--batch-size", "2"],
                         env=child_env(LATENTLAB_CACHE_DIR=tmp_path / "cache"))
    with _writing(child):
        _open_while_training(qtbot, win, child, run_dir)
        assert f"following: written by {child.proc.pid} on " in win.following.text
        shown = []
        win.following.epochShown.connect(lambda n: shown.append((n, win.latent_map.z.copy())))
        assert _until_ended(qtbot, win.following.ended, child) == ["finished"]
    assert win.following.text == f"finished: {epochs} epochs"
    qtbot.waitUntil(lambda: win.map_view.point_decoder is not None, timeout=WAIT_MS)
    assert isinstance(win.map_view.point_decoder, ForeignDecoder)
    assert len(win.loss_plot.epoch_x) == epochs
    assert shown and shown[-1][0] == epochs and len(shown[-1][1]) == 300
    from latentlab.runs.folder import open_run

    assert np.allclose(win.latent_map.z, open_run(run_dir).epoch_latents["z_mean"][-1])
    z = np.zeros((1, 2), np.float32)
    expected = ForeignDecoder(run_dir / "decoder.keras").decode(z)
    np.testing.assert_allclose(win.map_view.point_decoder.decode(z), expected, atol=1e-5)   # the last epoch's

"""Following a run folder that another writer fills (latentlab.runs.follow): new epochs as each commits,
who writes it (from the lock), the end (finished, or the writer died), β changes, and never a write into
the followed folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from _reliability import child_env, default_sigint
from _runs import followed_again_from_weights
from _wait import wait_for

from latentlab.runs import folder as runs
from latentlab.runs.follow import FollowState, RunFollower, load_followed_epoch


def _tree(folder):
    """Every entry of the folder with its inode, size and mtime: what a write would change."""
    out = {}
    for e in os.scandir(folder):
        st = e.stat(follow_symlinks=False)
        out[e.name] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def test_a_training_is_followed_epoch_by_epoch_then_finished(tmp_path, digits_dataset):
    from latentlab.config import TrainConfig
    from latentlab.events import EpochEnd, Finished
    from latentlab.training.trainer import Trainer

    run_dir = tmp_path / "run"
    follower = RunFollower(run_dir)
    first = follower.poll()
    assert first.state is FollowState.WAITING and first.epochs_done == 0 and not first.changed
    seen = []

    def on_event(ev):   # on the training thread, right after each epoch's commit
        if isinstance(ev, EpochEnd):
            seen.append(follower.poll())

    cfg = TrainConfig(dataset="", latent_dim=2, epochs=3, batch_size=64, seed=0)
    result = Trainer(cfg, digits_dataset, run_dir, on_event).run()
    assert isinstance(result, Finished)
    assert [u.epochs_done for u in seen] == [1, 2, 3]
    assert [len(u.new_rows) for u in seen] == [1, 1, 1]                  # one new epoch per commit
    assert [u.new_rows[0]["epoch"] for u in seen] == [1, 2, 3]
    for u in seen:
        assert u.state is FollowState.WRITING and u.epochs_planned == 3
        assert u.writer.pid == os.getpid() and u.writer.host == socket.gethostname()
        assert time.time() - u.last_update < 60
    line = seen[1].describe(now=seen[1].last_update + 3)
    assert line == f"following: written by {os.getpid()} on {socket.gethostname()}, epoch 2 of 3, last update 3 s ago"
    end = follower.poll()
    assert end.state is FollowState.FINISHED and end.epochs_done == 3 and not end.changed
    assert end.describe() == "finished: 3 epochs"
    assert follower.history == runs.open_run(run_dir).history
    # what a window needs of the newest epoch: the decoder's weights and that epoch's codes
    before = _tree(run_dir)
    epoch = load_followed_epoch(run_dir)
    assert epoch.epochs_done == 3 and epoch.view.latent_dim == 2 and len(epoch.view.decoder_weights)
    z, labels, names, idx = epoch.points
    assert z.shape == (len(idx), 2) and len(labels) == len(idx) and len(names) == 10
    assert _tree(run_dir) == before
    # a window that shows the run already reads the decoder's weights file, without Keras
    assert followed_again_from_weights(run_dir, epoch).epochs_done == 3


WRITER = r"""
import json, sys, time
from latentlab.runs import folder as runs
from latentlab.runs.lock import RunLock
run = sys.argv[1]
lock = RunLock(run, create=True).acquire()
runs.write_config(run, __import__("latentlab.config", fromlist=["TrainConfig"]).TrainConfig(epochs=40))
rows = [{"epoch": e, "loss": 10.0 - e, "beta": 1.0 if e < 3 else 4.0} for e in (1, 2, 3)]
runs.atomic_write_text(runs.Path(run) / runs.HISTORY_FILE, runs.history_to_csv(rows))
runs.write_state(run, status="running", message="", epochs_done=3, model_epoch=3, device="CPU", updated=time.time())
print("committed", flush=True)
time.sleep(600)
"""


def test_a_killed_writer_is_said_to_have_died_and_nothing_is_written(tmp_path):
    run_dir = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir)], stdout=subprocess.PIPE, text=True,
                             env=child_env(), preexec_fn=default_sigint)
    try:
        assert child.stdout.readline().strip() == "committed"
        follower = RunFollower(run_dir)
        u = follower.poll()
        assert u.state is FollowState.WRITING and u.writer.pid == child.pid and u.epochs_done == 3
        assert [(c.epoch, c.old, c.new) for c in u.beta_changes] == [(3, 1.0, 4.0)]   # β changed at epoch 3
        assert f"written by {child.pid} on {socket.gethostname()}, epoch 3 of 40" in u.describe()
        before = _tree(run_dir)
        child.send_signal(signal.SIGKILL)
        child.wait()
        u = wait_for(lambda: (lambda v: v if v.state is FollowState.DIED else None)(follower.poll()),
                     "the follower to see the writer gone")
        assert u.describe() == "the writer died at epoch 3; the run resumes with train --resume"
        assert u.writer.pid == child.pid and u.epochs_done == 3
        assert _tree(run_dir) == before                         # polling never wrote, not even the lock
        assert json.loads((run_dir / ".lock").read_text())["pid"] == child.pid   # the dead writer's note stays
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_replaced_history_is_a_reset_and_unread_rows_wait_for_their_commit(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rows = [{"epoch": e, "loss": 5.0, "beta": 1.0} for e in (1, 2, 3)]
    runs.atomic_write_text(run_dir / runs.HISTORY_FILE, runs.history_to_csv(rows))
    runs.write_state(run_dir, status="stopped", epochs_done=2, model_epoch=2, updated=1.0)
    follower = RunFollower(run_dir)
    u = follower.poll()
    assert u.state is FollowState.STOPPED and u.epochs_done == 2            # the third row is not committed
    assert u.describe() == "stopped after 2 epochs"
    runs.atomic_write_text(run_dir / runs.HISTORY_FILE, runs.history_to_csv(rows[:1]))
    runs.write_state(run_dir, status="failed", message="the loss became nan", epochs_done=1, model_epoch=1)
    u = follower.poll()
    assert u.reset and len(u.new_rows) == 1 and u.state is FollowState.FAILED
    assert u.describe() == "failed at epoch 1: the loss became nan"


@pytest.mark.parametrize("seconds,text", [(3.2, "3 s"), (300, "5 min"), (10800, "3 h")])
def test_ages_read_as_a_person_says_them(seconds, text):
    from latentlab.runs.follow import _age

    assert _age(seconds) == text

"""Reliability of the engine: crashes, read-only and full disks, divergence, untrusted run folders.

These are the small (CI) versions; ``scripts/reliability.py`` runs the full ones and prints figures.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import time
from pathlib import Path

import _engine
import _reliability as R
import numpy as np
import pytest

from latentlab.runs import folder as runs
from latentlab.cli import main
from latentlab.config import ConfigError, TrainConfig
from latentlab.events import EpochEnd, Failed, Finished
from latentlab.training.trainer import Trainer

BATCH = 16


pytestmark = pytest.mark.usefixtures("dataset_cache")


@pytest.fixture(scope="module")
def trained_run(dataset, tmp_path_factory):
    """A finished 2-epoch run folder to copy from."""
    return _engine.train_run(dataset, tmp_path_factory.mktemp("trained") / "run", epochs=2, batch_size=BATCH)


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def in_process(argv, capsys):
    """``latentlab.cli.main`` in this process (fast): (code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- crash during training ------------------------------------------------------------------------
def test_training_killed_at_random_moments_keeps_an_openable_run_and_resumes(gui_digits, tmp_path, capsys):
    """SIGKILL `latentlab train` three times at random moments: each time the folder opens, loads,
    decodes and exports, holds all but at most the epoch in flight, and the final --resume reaches
    the asked total with the kept history rows unchanged."""
    run_dir = tmp_path / "run"

    def export(run, i):
        grid, samples = tmp_path / "grid.png", tmp_path / "samples.png"
        code, _, err = in_process(["export", run, "--grid", grid, "--grid-size", 4, "--samples", 4, samples,
                                   "--latents", tmp_path / "z.csv"], capsys)
        assert code == 0, err
        return code

    def resume(run, total):
        code, _, err = in_process(["train", "--resume", run, "--epochs", total, "--quiet"], capsys)
        assert code == 0, err
        return code

    figures = R.crash_campaign(gui_digits, run_dir, kills=3, seed=int.from_bytes(os.urandom(2), "little"),
                               batch_size=BATCH, span=4.0, startup_share=0.0, export=export, resume=resume)
    assert figures["kills"] == 3 and figures["epochs_lost_max"] <= 1
    assert figures["exports_ok"] == 3


def test_no_temporary_file_is_ever_read_as_a_real_one(trained_run, tmp_path):
    """Leftovers of a killed atomic write (.NAME.XXXX.tmp*) are garbage and must be ignored."""
    run_dir = copy_run(trained_run, tmp_path / "run")
    before = runs.open_run(run_dir)
    for name in R.RUN_FILES:
        (run_dir / f".{name}.k1ll3d.tmp").write_bytes(b"\x00half a file")
    (run_dir / ".model.keras.k1ll3d.tmp.keras").write_bytes(b"PK\x03\x04 truncated")
    check = R.check_run_folder(run_dir)
    assert check.epochs_done == before.epochs_done == 2 and len(check.stray_temp_files) == len(R.RUN_FILES) + 1


def test_resuming_removes_temporary_files_left_by_a_crash_but_never_a_live_one(trained_run, dataset, tmp_path):
    run_dir = copy_run(trained_run, tmp_path / "run")
    stale = [run_dir / ".model.keras.k1ll3d.tmp.keras", run_dir / ".state.json.k1ll3d.tmp"]
    for f in stale:
        f.write_bytes(b"half a file")
        old = time.time() - runs.STALE_TEMP_SECONDS - 60
        os.utime(f, (old, old))
    live = run_dir / ".history.csv.wr1t1ng.tmp"          # another writer's, seconds old
    live.write_bytes(b"being written")
    result = Trainer(runs.open_run(run_dir).config.replace(epochs=3), dataset, run_dir, resume=True).run()
    assert isinstance(result, Finished) and len(result.history) == 3
    assert not any(f.exists() for f in stale) and live.exists()
    assert R.check_run_folder(run_dir).stray_temp_files == [live.name]


class _PowerCut(BaseException):
    """Not an Exception: nothing in the trainer catches it, as nothing survives a SIGKILL."""


def test_kill_between_model_save_and_commit_does_not_leave_a_newer_model(dataset, tmp_path, monkeypatch):
    """The power goes out after epoch 2's model.keras (and history.csv) were written but before
    state.json committed epoch 2. The run then says it has 1 epoch: its model must be epoch 1's,
    or --resume trains epoch 2 twice and the run no longer matches its history.

    KNOWN BUG (latentlab/training/trainer.py `Trainer._end_epoch` overwrites model.keras before the commit):
    see docs/reliability.md, "Bugs found"."""
    real = runs.write_state

    def write_state(run_dir, **state):
        if state.get("status") == "running" and state.get("epochs_done") == 2:
            raise _PowerCut()
        real(run_dir, **state)

    monkeypatch.setattr(runs, "write_state", write_state)
    with pytest.raises(_PowerCut):
        Trainer(TrainConfig(dataset=str(dataset.root), batch_size=BATCH, epochs=4), dataset, tmp_path / "run").run()
    monkeypatch.undo()
    check = R.check_run_folder(tmp_path / "run")
    assert check.epochs_done == 1
    steps = R.steps_per_epoch(tmp_path / "run", BATCH)
    assert check.model_iterations == 1 * steps, (
        f"the run commits 1 epoch but its model.keras has trained {check.model_iterations / steps:g} epochs")


# -- read-only and full output folders ------------------------------------------------------------
def _train_then(dataset, run_dir, when_epoch, action, epochs=3):
    """Train in this process; after epoch ``when_epoch`` is committed, call ``action()``."""
    def on_event(e):
        if isinstance(e, EpochEnd) and e.epoch == when_epoch:
            action()
    return Trainer(TrainConfig(dataset=str(dataset.root), batch_size=BATCH, epochs=epochs), dataset, run_dir,
                   on_event).run()


def test_output_folder_turning_read_only_mid_training_stops_cleanly(dataset, tmp_path):
    run_dir = tmp_path / "run"
    kept = {}
    stack = []

    def make_read_only():
        kept.update(R.snapshot(run_dir))
        cm = R.read_only_bind(run_dir)
        stack.append(cm)
        if not cm.__enter__():
            pytest.skip("cannot mount here (read-only bind mount needs root and mount permission)")

    try:
        result = _train_then(dataset, run_dir, 1, make_read_only, epochs=2)
    finally:
        for cm in stack:
            cm.__exit__(None, None, None)
    assert isinstance(result, Failed), result
    msg = result.message
    assert "\n" not in msg and "cannot write the run folder" in msg and "read-only" in msg.lower()
    assert "epoch 1 is intact" in msg, msg
    assert R.snapshot(run_dir) == kept, "a file of the last checkpoint changed"
    check = R.check_run_folder(run_dir)
    assert check.epochs_done == 1 and not check.stray_temp_files


def test_resume_into_a_read_only_folder_gives_one_clear_line(trained_run, tmp_path, capsys):
    """`latentlab train --resume` on a run folder it cannot write: one clear line, nothing changed.
    Root ignores permissions, so the child drops to `nobody` (or the folder is bind-mounted read-only)."""
    base = Path(os.environ.get("TMPDIR", "/tmp")) / f"latentlab-ro-{os.getpid()}-{random.randrange(10**6)}"
    run_dir = copy_run(trained_run, base / "run")
    try:
        kept = R.snapshot(run_dir)
        if R.can_drop_privileges():
            data = shutil.copytree(runs.open_run(run_dir).config.dataset, base / "data")
            R.world_readable_tree(base)
            (base / "home").mkdir()
            os.chown(base / "home", R.NOBODY, R.NOBODY)
            env = R.child_env(HOME=base / "home", LATENTLAB_CACHE_DIR=base / "home" / "cache")
            code, _, err = R.run_cli("train", data, "--resume", run_dir, "--epochs", 4, "--quiet", env=env,
                                     preexec_fn=R.drop_privileges(), cwd=base)
        else:
            with R.read_only_bind(run_dir) as ok:
                if not ok:
                    pytest.skip("running as root without mount permission: cannot make a folder read-only")
                code, _, err = in_process(["train", "--resume", run_dir, "--epochs", 4, "--quiet"], capsys)
        line = R.one_line_error(code, err, "cannot write")
        assert ".tmp" not in line, f"the message names a temporary file: {line}"
        assert R.snapshot(run_dir) == kept
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_disk_filling_up_mid_training_stops_cleanly(dataset, tmp_path):
    """The disk fills up after epoch 1: training stops with a clear line, epoch 1 stays intact."""
    with R.small_tmpfs(8192) as mnt:
        if mnt is None:
            pytest.skip("cannot mount a small tmpfs here (needs root and mount permission); "
                        "the RLIMIT_FSIZE variant below still runs")
        run_dir = mnt / "run"
        kept = {}

        def fill():
            kept.update(R.snapshot(run_dir))
            R.fill_disk(mnt, 16 * 1024)

        result = _train_then(dataset, run_dir, 1, fill, epochs=2)
        assert isinstance(result, Failed), result
        assert "\n" not in result.message
        assert "no space left" in result.message.lower() and "epoch 1 is intact" in result.message, result.message
        assert "free some space" in result.message
        (mnt / "filler.bin").unlink()
        now = R.snapshot(run_dir)
        for name in ("model.keras", "history.csv", "latents.npz", "epochs.npz", "config.json"):
            assert now[name] == kept[name], f"{name} changed"
        check = R.check_run_folder(run_dir)
        assert check.epochs_done == 1 and not check.stray_temp_files


def test_file_size_limit_while_resuming_stops_cleanly(trained_run, tmp_path, capsys):
    """Writes that fail with EFBIG (RLIMIT_FSIZE: works without mount permission): one clear line,
    the previous checkpoint intact, and the run still opens and resumes afterwards."""
    import resource
    import signal

    run_dir = copy_run(trained_run, tmp_path / "run")
    kept = R.snapshot(run_dir)
    limit = (run_dir / "model.keras").stat().st_size // 2  # config/state/history fit, the model does not
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))  # soft limit only: restored below
    try:
        code, _, err = in_process(["train", "--resume", run_dir, "--epochs", 4, "--quiet"], capsys)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    R.one_line_error(code, err, "cannot write the run folder", "epoch 2 is intact")
    now = R.snapshot(run_dir)
    assert now["model.keras"] == kept["model.keras"] and now["history.csv"] == kept["history.csv"]
    check = R.check_run_folder(run_dir)
    assert check.epochs_done == 2 and not check.stray_temp_files
    code, _, err = in_process(["train", "--resume", run_dir, "--epochs", 3, "--quiet"], capsys)
    assert code == 0, err
    assert runs.open_run(run_dir).history[:2] == runs.open_run(trained_run).history


def test_resume_onto_a_full_disk_gives_one_clear_line(trained_run, capsys):
    """The disk is already full when --resume starts: the first write (config.json) fails."""
    with R.small_tmpfs(4096) as mnt:
        if mnt is None:
            pytest.skip("cannot mount a small tmpfs here (needs root and mount permission)")
        run_dir = copy_run(trained_run, mnt / "run")
        kept = R.snapshot(run_dir)
        R.fill_disk(mnt, 0)
        code, _, err = in_process(["train", "--resume", run_dir, "--epochs", 4, "--quiet"], capsys)
        line = R.one_line_error(code, err, "cannot write the run folder", "space")
        assert ".tmp" not in line, f"the message names a temporary file: {line}"
        assert R.snapshot(run_dir) == kept


def test_run_files_are_readable_by_others_as_the_umask_says(trained_run):
    """Run folders are shared (trained on a server, opened elsewhere): files follow the umask
    (0644 under umask 022), not mkstemp's private 0600."""
    old = os.umask(0o022)
    os.umask(old)
    expected = 0o666 & ~old
    for p in (p for p in trained_run.rglob("*") if p.is_file()):    # TensorBoard's event files too
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == expected, f"{p.name} has mode {mode:o}, expected {expected:o} (umask {old:03o})"


# -- NaN and divergence ---------------------------------------------------------------------------------
def test_divergence_stops_at_the_first_non_finite_loss_and_keeps_good_weights(trained_run, tmp_path, capsys):
    """Resume a good 2-epoch run with --lr 10: it diverges; the message says what to change, and the
    run folder still holds epoch 2, byte for byte, which loads and decodes."""
    run_dir = copy_run(trained_run, tmp_path / "run")
    kept = R.snapshot(run_dir)
    code, _, err = in_process(["train", "--resume", run_dir, "--epochs", 6, "--lr", 10, "--quiet"], capsys)
    line = R.one_line_error(code, err, "learning rate", "try 1", "epoch 2 are kept")
    assert "nan" in line or "inf" in line
    assert "epoch 3, batch" in line, f"not stopped at the first non-finite batch: {line}"
    now = R.snapshot(run_dir)
    for name in ("model.keras", "history.csv", "latents.npz", "epochs.npz"):
        assert now[name] == kept[name], f"{name} changed"
    run = runs.open_run(run_dir)
    assert run.epochs_done == 2 and run.status == "failed" and run.state["message"] in line
    check = R.check_run_folder(run_dir)
    assert check.epochs_done == 2


def test_divergence_in_process_rolls_the_model_back(trained_run, dataset, tmp_path):
    """The trainer's own model (the one the app keeps exploring) is rolled back to the last good weights."""
    from latentlab.model.latent import Decoder

    run_dir = copy_run(trained_run, tmp_path / "run")
    run = runs.open_run(run_dir)
    good = run.load_model().get_weights()
    trainer = Trainer(run.config.replace(epochs=6, learning_rate=10.0), dataset, run_dir, resume=True)
    result = trainer.run()
    assert isinstance(result, Failed) and "Lower the learning rate" in result.message
    for a, b in zip(trainer.model.get_weights(), good):
        np.testing.assert_array_equal(a, b)
    img = Decoder.from_model(trainer.model).decode(np.zeros((2, 2), np.float32))
    assert np.isfinite(img).all()


# -- untrusted run folders ---------------------------------------------------------------------------
def _plant_model(trained_run, tmp_path, model_or_writer) -> Path:
    """A copy of a good run whose model file(s) are replaced (every .keras file: a run folder may
    name an epoch's model file in state.json)."""
    run_dir = copy_run(trained_run, tmp_path / "untrusted")
    for target in run_dir.glob("*.keras"):
        target.unlink()
        if hasattr(model_or_writer, "save"):
            model_or_writer.save(target)
        else:
            model_or_writer(target)
    return run_dir


def _assert_refused(run_dir, tmp_path, capsys, *needles):
    with pytest.raises(runs.RunError) as e:
        runs.open_run(run_dir).load_model()
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400, msg
    for n in needles:
        assert n in msg, msg
    code, _, err = in_process(["export", run_dir, "--grid", tmp_path / "g.png", "--grid-size", 3], capsys)
    assert code == 2
    R.one_line_error(code, err, *needles)
    assert not (tmp_path / "g.png").exists()
    return msg


def test_a_model_with_a_lambda_layer_is_refused(trained_run, tmp_path, capsys):
    run_dir = _plant_model(trained_run, tmp_path, R.lambda_vae((16, 16, 1), 2))
    _assert_refused(run_dir, tmp_path, capsys, "refused", "trust")


def test_a_plain_model_with_a_lambda_layer_is_refused(trained_run, tmp_path, capsys):
    run_dir = _plant_model(trained_run, tmp_path, R.lambda_functional((16, 16, 1), 2))
    _assert_refused(run_dir, tmp_path, capsys, "refused")


@pytest.fixture(scope="module")
def lambda_run_export(trained_run, tmp_path_factory):
    """`latentlab export` of a run whose model has a Lambda layer, run as a user runs it."""
    tmp = tmp_path_factory.mktemp("lambda")
    run_dir = _plant_model(trained_run, tmp, R.lambda_vae((16, 16, 1), 2))
    code, _, err = R.run_cli("export", run_dir, "--grid", tmp / "g.png")
    return run_dir, code, err


def test_refusal_as_the_user_sees_it(lambda_run_export, capsys):
    run_dir, code, err = lambda_run_export
    assert code == 2
    R.one_line_error(code, err, "refused")
    code, _, err = in_process(["train", "--resume", run_dir, "--epochs", 4, "--quiet"], capsys)
    R.one_line_error(code, err, "refused")


def test_errors_after_tensorflow_loads_are_exactly_one_line_on_stderr(lambda_run_export):
    """The CLI contract is ONE line on stderr. Importing TensorFlow prints its own C++ start-up
    lines (even with TF_CPP_MIN_LOG_LEVEL=3), so every error after the import has five lines.
    KNOWN BUG: see docs/reliability.md, "Bugs found" (latentlab/cli.py `_quiet_tensorflow`)."""
    _, code, err = lambda_run_export
    R.one_line_error(code, err, "refused", strict=True)


@pytest.mark.parametrize("where", ["activation", "layer class"])
def test_a_model_naming_code_outside_keras_is_refused_and_never_runs_it(trained_run, tmp_path, capsys,
                                                                       monkeypatch, where):
    """A model.keras whose config points at a Python function or class outside Keras (here: a canary
    in the test helpers, importable from this process) must be refused without calling it, with a
    message that says the run was refused, not Keras' internals cut off mid-word."""
    marker = tmp_path / "canary-was-called"
    monkeypatch.setenv(R.CANARY_ENV, str(marker))

    def edit(cfg):
        dense = cfg["config"]["decoder"]["config"]["layers"][1]
        assert dense["class_name"] == "Dense"
        if where == "activation":
            dense["config"]["activation"] = {"module": "_reliability", "class_name": "function",
                                             "config": "canary", "registered_name": "function"}
        else:
            dense["module"], dense["class_name"] = "_reliability", "canary"
        return cfg

    run_dir = _plant_model(trained_run, tmp_path,
                           lambda dst: R.rewrite_keras_config(trained_run / "model.keras", dst, edit))
    with pytest.raises(runs.RunError) as e:
        runs.open_run(run_dir).load_model()
    assert not marker.exists(), "a function named in a model file was called"
    msg = str(e.value)
    assert "\n" not in msg
    assert "refused" in msg and "canary" in msg, (
        f"unclear refusal (should say it was refused and name 'canary'): {msg}")


def test_a_damaged_model_file_is_one_clear_line(trained_run, tmp_path, capsys):
    data = (trained_run / "model.keras").read_bytes()
    for i, bad in enumerate([b"", data[: len(data) // 2], b"PK\x03\x04" + os.urandom(500), os.urandom(5000)]):
        run_dir = _plant_model(trained_run, tmp_path / str(i), lambda dst, bad=bad: dst.write_bytes(bad))
        with pytest.raises(runs.RunError) as e:
            runs.open_run(run_dir).load_model()
        assert "\n" not in str(e.value) and ".keras" in str(e.value)


@pytest.mark.parametrize("change,needle", [
    ({"latent_dim": "2"}, "'latent_dim' must be a whole number"),
    ({"beta": "1; rm -rf /"}, "'beta' must be a number"),
    ({"epochs": 3.5}, "'epochs' must be a whole number"),
    ({"mixed_precision": 1}, "'mixed_precision' must be true or false"),
    ({"image_size": "16"}, "'image_size' must be null or [height, width]"),
    ({"__class__": "os.system"}, "unknown config key(s): __class__"),
    ({"learning_rate": 0.5, "optimizer": "sgd"}, "unknown config key(s): optimizer"),
    ({"beta": -1.0}, "beta must be a number between 0 and 1000"),
])
def test_a_bad_config_json_is_refused_not_half_applied(trained_run, tmp_path, capsys, change, needle):
    run_dir = copy_run(trained_run, tmp_path / "run")
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg.update(change)
    (run_dir / "config.json").write_text(json.dumps(cfg))
    kept = R.snapshot(run_dir)
    with pytest.raises(runs.RunError) as e:
        runs.open_run(run_dir)
    assert "\n" not in str(e.value) and needle in str(e.value)
    with pytest.raises(ConfigError):
        TrainConfig.from_dict(cfg)
    for argv in (["export", run_dir, "--grid", tmp_path / "g.png"],
                 ["train", "--resume", run_dir, "--epochs", 5, "--quiet"]):
        code, out, err = in_process(argv, capsys)
        R.one_line_error(code, err, needle)
    assert R.snapshot(run_dir) == kept, "a refused config changed the run folder"

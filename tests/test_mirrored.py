"""MirroredStrategy on a machine without GPUs: the CPU split into two logical devices (in a subprocess,
before TensorFlow starts). Two replicas train what one device trains — the same seed and global batch
give epoch losses within 1e-3 relative (each image's noise is keyed by its index, so it does not depend
on how a batch is split) — loss = reconstruction + β·KL holds, a resumed mirrored run goes on to the
same epoch an uninterrupted one-device run reaches, and the NaN guard keeps the last good epoch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import _engine
import pytest
from _wait import WAIT_S

KEYS = ("loss", "reconstruction_loss", "kl_loss", "neg_elbo", "val_loss", "val_reconstruction_loss", "val_kl_loss")


def test_two_cpu_replicas_train_what_one_device_trains(tmp_path):
    folder = _engine.write_digits_folder(tmp_path / "digits", per_class=25, size=16)   # 225 train: an uneven last batch
    child = Path(__file__).with_name("_mirrored_child.py")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "LATENTLAB_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(child.parent), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, str(child), str(folder), str(tmp_path / "runs")], capture_output=True,
                       text=True, timeout=2 * WAIT_S, env=env)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert p.returncode == 0 and line, p.stdout[-2000:] + p.stderr[-4000:]
    r = json.loads(line[0][len("RESULT "):])
    one, two = r["one"], r["two"]
    assert [row["epoch"] for row in two] == [1, 2, 3] and r["two_state"]["status"] == "finished"
    for a, b in zip(one, two, strict=True):      # epochs 1-2 mirrored, epoch 3 mirrored after a resume
        for key in KEYS:
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-4), (a["epoch"], key)
        assert b["loss"] == pytest.approx(b["reconstruction_loss"] + b["beta"] * b["kl_loss"], rel=1e-5)
        assert b["beta"] == 2.0
    assert r["replicas"] == 2 and "mirrored over 2 CPU replicas" in r["device"]
    assert r["nan_type"] == "Failed" and "nan" in r["nan_message"].lower() and "epoch 1" in r["nan_message"]
    assert r["nan_epochs"] == 1 and r["nan_status"] == "failed" and r["nan_model_finite"]


def test_mirrored_without_gpus_or_replicas_is_one_line(tmp_path):
    folder = _engine.write_digits_folder(tmp_path / "digits", per_class=2, size=8)
    p = subprocess.run([sys.executable, "-m", "latentlab", "train", str(folder), "--out", str(tmp_path / "r"),
                        "--strategy", "mirrored", "--epochs", "1"], capture_output=True, text=True, timeout=WAIT_S,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "LATENTLAB_CACHE_DIR": str(tmp_path / "c")})
    err = [ln for ln in p.stderr.splitlines() if ln.strip() and "images of" not in ln]
    assert p.returncode == 2 and len(err) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "--cpu-replicas" in err[0] and "GPU" in err[0]

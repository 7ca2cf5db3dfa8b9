"""TensorBoard: every run writes event files (read back with TensorBoard's own reader), a resumed run
continues them at the right epochs, an older run gets them from its history, the projector export, and
`latentlab tensorboard` serving on 127.0.0.1 and stopping on Ctrl+C."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import _reliability as R
from _cli import _cache, folder, in_process  # noqa: F401  (fixtures)
import numpy as np
import pytest
from PIL import Image

from latentlab.runs import folder as runs
from _wait import WAIT_S

SCALARS = ("epoch_loss", "epoch_reconstruction_loss", "epoch_kl_loss", "epoch_neg_elbo")




@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    """A 2-epoch run of `latentlab train`, as a user runs it."""
    out = tmp_path_factory.mktemp("tb") / "run"
    code, _, err = R.run_cli("train", folder, "--epochs", 2, "--batch-size", 32, "--hidden-units", 16, "--out", out)
    assert code == 0, err
    return out



def read_events(log_dir: Path) -> dict:
    """{tag: [(step, value as numpy)]} of every event file in ``log_dir``, with TensorBoard's reader."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(str(log_dir), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    return {tag: [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]
            for tag in acc.Tags()["tensors"]}


def steps(events: dict, tag: str) -> list[int]:
    return sorted(step for step, _ in events[tag])


def test_a_run_writes_each_tag_once_per_epoch_with_keras_names(trained):
    history = runs.open_run(trained).history
    train, val = read_events(trained / "tensorboard" / "train"), read_events(trained / "tensorboard" / "validation")
    for tag in (*SCALARS, "epoch_beta", "epoch_kl_per_dim", "epoch_latent_grid"):
        assert steps(train, tag) == [0, 1], tag
    for tag in (*SCALARS, "epoch_neg_log_likelihood", "epoch_neg_elbo_subset", "epoch_mutual_info",
                "epoch_marginal_kl", "epoch_hole_fraction"):
        assert steps(val, tag) == [0, 1], tag
    for (_step, value), row in zip(sorted(val["epoch_marginal_kl"], key=lambda e: e[0]), history):
        assert float(value) == pytest.approx(row["val_marginal_kl"], rel=1e-5)      # ELBO surgery per epoch
    assert not any(t.startswith("evaluation_") or t.startswith("batch_") for t in (*train, *val))
    for (_step, value), row in zip(sorted(train["epoch_loss"], key=lambda e: e[0]), history):
        assert float(value) == pytest.approx(row["loss"], rel=1e-6)
    for (_step, value), row in zip(sorted(val["epoch_neg_elbo"], key=lambda e: e[0]), history):
        assert float(value) == pytest.approx(row["val_neg_elbo"], rel=1e-6)
    assert [float(v) for _, v in sorted(train["epoch_beta"], key=lambda e: e[0])] == [1.0, 1.0]
    # the histogram summarises the 2 latent dimensions' KL (buckets: left edge, right edge, count)
    hist = dict(train["epoch_kl_per_dim"])[1]
    assert hist.shape[1] == 3 and hist[:, 2].sum() == pytest.approx(2)
    # the image: width, height, then the PNG: 20×20 tiles of 12×12 pixels, not blank
    width, height, png = dict(train["epoch_latent_grid"])[1]
    assert (int(width), int(height)) == (240, 240)
    import io

    grid = np.asarray(Image.open(io.BytesIO(png)))
    assert grid.shape[:2] == (240, 240) and grid.std() > 1


def test_resume_continues_the_event_files_at_the_right_epochs(trained, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    code, _, err = in_process(["train", "--resume", run_dir, "--epochs", 3, "--quiet"], capsys)
    assert code == 0, err
    train, val = read_events(run_dir / "tensorboard" / "train"), read_events(run_dir / "tensorboard" / "validation")
    for tag in (*SCALARS, "epoch_beta", "epoch_latent_grid"):
        assert steps(train, tag) == [0, 1, 2], tag
    assert steps(val, "epoch_loss") == [0, 1, 2]
    assert dict(train["epoch_loss"])[2] == pytest.approx(runs.open_run(run_dir).history[2]["loss"], rel=1e-6)


def test_a_run_from_before_event_files_opens_and_gets_them_from_its_history(trained, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(trained, old)
    shutil.rmtree(old / "tensorboard")
    run = runs.open_run(old)                                  # it opens as before
    assert run.epochs_done == 2 and run.load_model() is not None
    code, _, err = in_process(["train", "--resume", old, "--epochs", 3, "--quiet"], capsys)
    assert code == 0, err
    train, val = read_events(old / "tensorboard" / "train"), read_events(old / "tensorboard" / "validation")
    assert steps(train, "epoch_loss") == steps(train, "epoch_beta") == [0, 1, 2]   # 0, 1 from history.csv
    assert steps(val, "epoch_neg_elbo") == [0, 1, 2]
    assert steps(train, "epoch_latent_grid") == [2]          # pictures only for epochs trained since


def test_projector_folder_has_a_row_per_point_and_a_sprite_that_fits(trained, tmp_path, capsys):
    from google.protobuf import text_format
    from tensorboard.plugins.projector import ProjectorConfig

    out = tmp_path / "proj"
    code, stdout, err = in_process(["export", trained, "--projector", out], capsys)
    assert code == 0, err
    lat = runs.open_run(trained).latents
    n, d = lat["z_mean"].shape
    assert f"{n:,} points" in stdout and "12x12 thumbnails" in stdout
    tensors = np.loadtxt(out / "tensors.tsv", delimiter="\t")
    np.testing.assert_allclose(tensors, lat["z_mean"], rtol=1e-6)
    rows = (out / "metadata.tsv").read_text().splitlines()
    assert rows[0] == "label\tfile\tsplit" and len(rows) == n + 1
    first = rows[1].split("\t")
    assert first[0] == str(lat["class_names"][lat["labels"][0]]) and first[1] == str(lat["paths"][0])
    config = text_format.Parse((out / "projector_config.pbtxt").read_text(), ProjectorConfig())
    emb = config.embeddings[0]
    assert (emb.tensor_path, emb.metadata_path, emb.sprite.image_path) == ("tensors.tsv", "metadata.tsv", "sprite.png")
    w, h = emb.sprite.single_image_dim
    sprite = Image.open(out / "sprite.png")
    cols = sprite.size[0] // w
    assert (w, h) == (12, 12) and cols * cols >= n and sprite.size[1] // h == -(-n // cols)
    assert max(sprite.size) <= 8192
    # the thumbnail of point 0 is image 0 of the dataset
    from latentlab.data import load_folder

    ds = load_folder(runs.open_run(trained).config.dataset)
    thumb = np.asarray(sprite, np.float32)[:h, :w] / 255.0
    np.testing.assert_allclose(thumb, ds.images[list(map(str, ds.paths)).index(str(lat["paths"][0]))][..., 0],
                               atol=1 / 255 + 1e-6)


def test_projector_without_the_dataset_folder_says_so_in_one_line(trained, folder, tmp_path, capsys):
    from latentlab.config import TrainConfig

    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    cfg = runs.open_run(run_dir).config.replace(dataset=str(tmp_path / "gone"))
    runs.write_config(run_dir, TrainConfig.from_dict(cfg.to_dict()))
    code, _, err = in_process(["export", run_dir, "--projector", tmp_path / "proj"], capsys)
    assert code == 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "is gone" in lines[0] and str(tmp_path / "gone") in lines[0]
    assert (tmp_path / "proj" / "metadata.tsv").is_file() and not (tmp_path / "proj" / "sprite.png").exists()


def _listening_on_loopback_only(port: int) -> bool:
    """Whether every socket listening on ``port`` is bound to 127.0.0.1 (read from /proc, no traffic)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.rsplit(":", 1)
            if int(p, 16) == port and state == "0A":       # LISTEN
                found.append(addr)
    return bool(found) and all(a == "0100007F" for a in found)


def serve_and_stop(folder, *paths: str) -> tuple[str, list[bytes], str]:
    """Start `latentlab tensorboard FOLDER --port 0`, read ``paths`` from the address it prints, Ctrl+C it;
    (stdout, pages, stderr)."""
    p = subprocess.Popen(R.cli_argv("tensorboard", folder, "--port", 0), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=R.child_env(), preexec_fn=R.default_sigint)
    try:
        line = p.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, (line, p.stderr.read() if p.poll() is not None else "")
        assert _listening_on_loopback_only(int(m.group(1))) or not Path("/proc/net/tcp").exists()
        pages = [urllib.request.urlopen(m.group(0) + path, timeout=WAIT_S).read() for path in paths]
        p.send_signal(signal.SIGINT)                       # what Ctrl+C sends
        try:
            out, err = p.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:                  # say where it hangs: its threads' stacks
            p.send_signal(signal.SIGABRT)
            out, err = p.communicate(timeout=60)
            raise AssertionError(f"TensorBoard did not stop on Ctrl+C within {WAIT_S:.0f} s:\n{err[-6000:]}") from None
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0 and "Traceback" not in err, err
    return line + out, pages, err


def test_tensorboard_serves_a_sweep_on_loopback_and_stops_on_ctrl_c(trained, tmp_path):
    import json

    sweep = tmp_path / "sweep"
    shutil.copytree(trained, sweep / "b1")
    shutil.copytree(trained, sweep / "b2-old")
    shutil.rmtree(sweep / "b2-old" / "tensorboard")           # trained before event files
    out, (index, runs_json), err = serve_and_stop(sweep, "", "data/runs")
    assert b"<html" in index.lower() or b"<!doctype html" in index.lower()
    names = json.loads(runs_json)
    assert {"b1/tensorboard/train", "b1/tensorboard/validation", "b2-old/tensorboard/train"} <= set(names), names
    assert "TensorBoard stopped" in out
    notes = [line for line in err.splitlines() if line.startswith("latentlab: note:")]
    assert len(notes) == 1 and "b2-old" in notes[0] and "2 epochs" in notes[0]


def test_tensorboard_shows_a_projector_folder(trained, tmp_path, capsys):
    import json

    code, _, err = in_process(["export", trained, "--projector", tmp_path / "proj"], capsys)
    assert code == 0, err
    _, (runs_json, info, sprite), _ = serve_and_stop(tmp_path / "proj", "data/plugin/projector/runs",
                                                     "data/plugin/projector/info?run=.",
                                                     "data/plugin/projector/sprite_image?run=.&name=z_mean")
    assert json.loads(runs_json) == ["."]
    emb = json.loads(info)["embeddings"][0]
    n = len(runs.open_run(trained).latents["z_mean"])
    assert emb["tensorShape"] == [n, 2] and emb["sprite"]["singleImageDim"] == [12, 12]
    assert sprite[:8] == b"\x89PNG\r\n\x1a\n"


def test_tensorboard_refuses_what_it_cannot_show_in_one_line(tmp_path, capsys):
    code, _, err = in_process(["tensorboard", tmp_path / "nothing-here"], capsys)
    R.one_line_error(code, err, "does not exist")
    (tmp_path / "empty").mkdir()
    code, _, err = in_process(["tensorboard", tmp_path / "empty"], capsys)
    R.one_line_error(code, err, "holds no run")

"""`latentlab info|train` on real-folder shapes: transparency and fit flags, arrays as datasets, the
settings kept in config.json, the model for 128-pixel and alpha images."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from _cli import _cache, in_process  # noqa: F401  (fixtures)
from PIL import Image, ImageDraw

from latentlab.config import ConfigError, TrainConfig


class _Terminal(io.StringIO):
    """A stream that says it is a terminal: the progress printers draw a bar there."""

    def isatty(self):
        return True


def _printed(make, feed) -> tuple[str, str]:
    """What the progress printer ``make(stream)`` writes to a log file and to a terminal when ``feed``
    drives it."""
    log, tty = io.StringIO(), _Terminal()
    for stream in (log, tty):
        feed(make(stream))
    return log.getvalue(), tty.getvalue()


def _line_art_folder(root, n=10):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = Image.new("RGBA", (24, 12), (0, 0, 0, 0))
        ImageDraw.Draw(im).line((1, i % 10, 22, 11 - i % 10), fill=(0, 0, 0, 255), width=2)
        im.save(root / f"a{i}.png")
    (root / "logo.svg").write_text("<svg/>")
    return root


def test_info_says_what_was_done_to_transparency_and_shapes(tmp_path, capsys):
    folder = _line_art_folder(tmp_path / "art")
    code, out, err = in_process(["info", folder], capsys)
    assert code == 0, err
    assert "Images used: 10" in out and "10 images had some: 10 filled with white" in out
    assert "Size chosen: 12×24 (height×width): the most common size, 12×24 (100% of the images); aspect kept" in out
    assert "1 .svg: vector images are not read" in out
    code, out, err = in_process(["info", folder, "--background", "black", "--no-cache"], capsys)
    assert code == 2 and "nearly blank" in err and "\n" not in err.strip()
    code, out, err = in_process(["info", folder, "--background", "alpha", "--fit", "crop", "--image-size", "16"],
                                capsys)
    assert code == 0 and "Channels: 2 (grayscale + alpha)" in out and "cropped" in out


def test_info_and_train_on_arrays(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = (rng.random((60, 12, 12)) * 255).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=rng.integers(0, 3, 60))
    code, out, err = in_process(["info", tmp_path / "d.npz"], capsys)
    assert code == 0 and "Images used: 60" in out and "Arrays: x and y of d.npz" in out
    run = tmp_path / "run"
    code, out, err = in_process(["train", tmp_path / "d.npz", "--epochs", "1", "--batch-size", "32", "--out", run,
                                 "--background", "white", "--fit", "stretch", "--quiet"], capsys)
    assert code == 0, err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["dataset"].endswith("d.npz") and cfg["background"] == "white" and cfg["fit"] == "stretch"
    code, out, err = in_process(["info", tmp_path / "nothing.npz"], capsys)
    assert code == 2 and "does not exist" in err


def test_old_configs_keep_how_they_were_loaded():
    old = {k: v for k, v in TrainConfig(dataset="/x").to_dict().items() if k not in ("background", "fit")}
    cfg = TrainConfig.from_dict(old)
    assert (cfg.background, cfg.fit) == ("black", "stretch")
    new = TrainConfig.from_dict(TrainConfig(dataset="/x").to_dict())
    assert (new.background, new.fit) == ("auto", "pad")
    with pytest.raises(ConfigError, match="background"):
        TrainConfig(background="pink").validate()
    TrainConfig(image_size=[128, 128]).validate()
    with pytest.raises(ConfigError, match="image size"):
        TrainConfig(image_size=[129, 128]).validate()


@pytest.mark.parametrize("shape", [(128, 128, 3), (32, 48, 4), (20, 20, 2)])
def test_the_model_builds_and_trains_for_big_and_alpha_images(shape):
    from latentlab.model.vae import architecture, build_vae

    arch = architecture(shape, 2)
    if shape[0] == 128:
        assert arch["filters"] == [32, 64, 128, 256] and arch["grid"] == (8, 8)
    vae = build_vae(shape, latent_dim=2, seed=0)
    vae.compile(optimizer="adam")
    x = np.random.default_rng(0).random((8, *shape)).astype(np.float32)
    hist = vae.fit(x, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(hist.history["loss"][-1])
    assert vae.decoder.output_shape[1:] == shape


def test_loading_shows_progress_as_a_bar_on_a_terminal_and_lines_in_a_log(tmp_path):
    from latentlab.cli.common import load_progress
    from latentlab.data import load_folder

    def feed(p):
        p.stage("scanning x")
        for done in range(0, 2001, 100):
            p(done, 2000)

    log, tty = _printed(load_progress, feed)
    lines = log.splitlines()
    assert lines[0].startswith("decoding images: 0/2,000") and lines[-1].startswith("decoding images: 2,000/2,000")
    assert 5 <= len(lines) <= 12 and "\r" not in log
    assert "scanning x …" in tty and "\rdecoding images:" in tty and "/2000 [" in tty
    folder = _line_art_folder(tmp_path / "art")
    stages = []
    load_folder(folder, on_stage=stages.append)
    assert stages[0].startswith("scanning") and stages[-1].startswith("writing the cache")


def test_encoding_after_training_shows_progress_on_the_terminal(tmp_path, monkeypatch):
    """The trainer reports encoding every image into latents.npz; the CLI shows it as loading is shown."""
    from latentlab.cli.common import encode_progress
    from latentlab.config import TrainConfig
    from latentlab.data import load_folder
    from latentlab.events import Finished
    from latentlab.training.trainer import Trainer

    monkeypatch.setenv("LATENTLAB_CACHE_DIR", str(tmp_path / "cache"))
    folder = _line_art_folder(tmp_path / "art")
    ds = load_folder(folder)
    calls = []
    result = Trainer(TrainConfig(dataset=str(folder), epochs=1, batch_size=16, latent_dim=2), ds, tmp_path / "run",
                     encode_progress=lambda done, total: calls.append((done, total))).run()
    assert isinstance(result, Finished)
    n = ds.num_images
    assert calls[0] == (0, n) and calls[-1] == (n, n) and all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))

    def feed(p):
        for done in range(0, 5001, 1024):
            p(done, 5000)
        p(5000, 5000)

    log, tty = _printed(encode_progress, feed)
    assert log.splitlines()[-1].startswith("encoding images: 5,000/5,000")
    assert "\rencoding images:" in tty and "/5000 [" in tty

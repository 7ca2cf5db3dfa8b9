"""The headless command line: train, info, export, sweep, and every error path."""

import csv

import numpy as np
import pytest
from _cli import _cache, folder  # noqa: F401  (fixtures)
from _reliability import one_line_error, run_cli
from PIL import Image

from latentlab.runs import folder as runs
from latentlab.cli import main


def test_train_then_export_end_to_end(folder, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run_cli("train", folder, "--beta", "0.5", "--latent-dim", "2", "--epochs", "2",
                                "--batch-size", "32", "--hidden-units", "24", "--out", out)
    assert code == 0, err
    assert "neg ELBO" in stdout and "run saved in" in stdout
    assert "epoch 2/2" in err and "training on CPU" in err
    run = runs.open_run(out)
    assert run.epochs_done == 2 and run.config.beta == 0.5 and run.status == "finished"
    assert run.config.hidden_units == 24 and run.load_model().encoder.get_layer(index=-3).units == 24

    code, stdout, err = run_cli("export", out, "--grid", tmp_path / "g.png", "--grid-size", "5",
                                "--latents", tmp_path / "z.csv", "--samples", "6", tmp_path / "s.png")
    assert code == 0, err
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid.shape == (360, 360) and grid.std() > 1  # 5×5 tiles of 12×12, enlarged 6× to 72 px (≥ 64), not blank
    assert Image.open(tmp_path / "s.png").size == (216, 144)  # 6 samples: 3 columns × 2 rows
    code, stdout, err = run_cli("export", out, "--grid", tmp_path / "g1.png", "--grid-size", "5", "--scale", "1",
                                "--samples", "6", tmp_path / "s1.png")
    assert code == 0, err
    assert np.asarray(Image.open(tmp_path / "g1.png")).shape == (60, 60)   # native size when asked
    assert Image.open(tmp_path / "s1.png").size == (36, 24)
    rows = list(csv.DictReader(open(tmp_path / "z.csv")))
    assert len(rows) == 200 and {"path", "label", "class", "split", "z_mean_0", "z_log_var_1"} <= set(rows[0])
    assert rows[0]["class"].startswith("digit_")

    # resume to 3 epochs in all
    code, stdout, err = run_cli("train", "--resume", out, "--epochs", "3")
    assert code == 0, err
    assert runs.open_run(out).epochs_done == 3


def test_info_reports_skipped_files(folder, tmp_path):
    import shutil

    d = tmp_path / "f"
    shutil.copytree(folder, d)
    (d / "digit_0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (d / "digit_1" / "empty.jpg").write_bytes(b"")
    code, stdout, err = run_cli("info", d)
    assert code == 0, err
    assert "200" in stdout and "broken.png" in stdout and "empty.jpg" in stdout and "digit_3" in stdout


def test_train_skips_corrupt_files_and_goes_on(folder, tmp_path):
    import shutil

    d = tmp_path / "f"
    shutil.copytree(folder, d)
    (d / "digit_0" / "broken.png").write_bytes(b"not a png at all")
    assert main(["train", str(d), "--epochs", "1", "--batch-size", "64", "--out", str(tmp_path / "r"),
                 "--quiet"]) == 0
    assert len(runs.open_run(tmp_path / "r").latents["paths"]) == 200


@pytest.mark.parametrize("args,needles", [
    (["train", "{missing}", "--out", "{tmp}/r"], ["does not exist"]),
    (["train", "{file}", "--out", "{tmp}/r"], ["is a file"]),
    (["train", "{empty}", "--out", "{tmp}/r"], ["no images"]),
    (["train", "{folder}"], ["--out"]),
    (["train", "{folder}", "--out", "{tmp}/r", "--beta", "-1"], ["--beta", "between"]),
    (["train", "{folder}", "--out", "{tmp}/r", "--beta", "nan"], ["--beta"]),
    (["train", "{folder}", "--out", "{tmp}/r", "--latent-dim", "0"], ["--latent-dim"]),
    (["train", "{folder}", "--out", "{tmp}/r", "--hidden-units", "-1"], ["--hidden-units"]),
    (["train", "{folder}", "--out", "{tmp}/r", "--epochs", "0"], ["--epochs"]),
    (["train", "{folder}", "--out", "{tmp}/r", "--epochs", "ten"], ["--epochs", "whole number"]),
    (["train", "{folder}", "--out", "{tmp}/r", "--image-size", "1000"], ["image size"]),
    (["train", "{folder}", "--out", "{tmp}/r", "--image-size", "big"], ["image size"]),
    (["train", "{folder}", "--out", "{tmp}/r", "--kl-schedule", "sometimes"], ["invalid choice"]),
    (["train", "{folder}", "--out", "{tmp}/r", "--lr", "0"], ["--lr"]),
    (["train", "{folder}", "--out", "{file}"], ["already exists"]),
    (["train", "--resume", "{missing}"], ["does not exist"]),
    (["info", "{missing}"], ["does not exist"]),
    (["info", "{file}"], ["is a file"]),
    (["export", "{missing}", "--grid", "{tmp}/g.png"], ["does not exist"]),
    (["export", "{empty}", "--grid", "{tmp}/g.png"], ["not a run folder"]),
    (["sweep", "{folder}", "--betas", "1,x", "--out", "{tmp}/s"], ["--betas"]),
    (["frobnicate"], []),
])
def test_cli_errors_are_one_clear_line(args, needles, folder, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    (tmp_path / "file.png").write_bytes(b"x")
    subst = {"missing": tmp_path / "nope", "file": tmp_path / "file.png", "empty": tmp_path / "empty",
             "folder": folder, "tmp": tmp_path}
    argv = [a.format(**subst) for a in args]
    if argv[0] == "frobnicate":  # an unknown word is taken as app options: the app refuses it in one line
        code, _, err = run_cli("--frobnicate")
        assert code != 0 and "Traceback" not in err
        return
    code, _, err = run_cli(*argv)
    one_line_error(code, err, *needles, strict=True)   # not even a TensorFlow log line


def test_sweep_makes_one_run_per_beta(folder, tmp_path):
    code, stdout, err = run_cli("sweep", folder, "--betas", "0.1,4", "--epochs", "1", "--batch-size", "64",
                                "--out", tmp_path / "s", "--quiet")
    assert code == 0, err
    for beta in (0.1, 4.0):
        run = runs.open_run(tmp_path / "s" / f"beta-{beta:g}")
        assert run.config.beta == beta and run.epochs_done == 1 and run.config.seed == 0
    assert "val negELBO" in stdout and stdout.count("beta-") == 2

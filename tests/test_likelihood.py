"""The log-likelihood, not only the bound: `latentlab eval` (importance sampling, the IWAE bound) on a trained
run, the per-epoch estimate in the history, and the loss-terms view showing −ELBO and −log p(x) side by side."""

from __future__ import annotations

import json
import math
import shutil

import _reliability as R
from _cli import _cache, folder, in_process  # noqa: F401  (fixtures)
import numpy as np
import pytest

from latentlab.runs import folder as runs





@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("lik") / "run"
    code, _, err = R.run_cli("train", folder, "--epochs", 4, "--batch-size", 32, "--hidden-units", 16,
                             "--val-fraction", 0.2, "--out", out)
    assert code == 0, err
    return out


def evaluate(run_dir, tmp_path, capsys, *extra) -> dict:
    out = tmp_path / f"eval{len(list(tmp_path.glob('eval*.json')))}.json"
    code, stdout, err = in_process(["eval", run_dir, "--json", out, *extra], capsys)
    assert code == 0, err
    assert "-ELBO" in stdout and "-log p(x)" in stdout and "±" in stdout
    return json.loads(out.read_text())


def test_eval_bounds_the_elbo_and_k1_is_the_elbo(trained, tmp_path, capsys):
    res = evaluate(trained, tmp_path, capsys)
    assert set(res) >= {"neg_elbo", "neg_log_likelihood", "samples", "images", "standard_error"}
    assert res["samples"] == 100 and res["images"] == 40                   # 20 % of 200 images
    se = res["standard_error"]
    assert 0 < se["neg_elbo"] < 50 and 0 < se["neg_log_likelihood"] < 50 and 0 < se["gap"] < se["neg_elbo"]
    assert res["neg_log_likelihood"] <= res["neg_elbo"]
    assert res["neg_elbo"] - res["neg_log_likelihood"] > 3 * se["gap"]     # the bound is visibly loose
    # the ELBO it reports is the one training reports (the same images, fresh samples)
    hist = runs.open_run(trained).history[-1]
    assert res["neg_elbo"] == pytest.approx(hist["val_neg_elbo"], abs=3 * se["neg_elbo"])
    one = evaluate(trained, tmp_path, capsys, "--samples", 1)
    # K = 1: importance sampling with one draw is the ELBO itself
    assert one["samples"] == 1
    assert abs(one["neg_log_likelihood"] - one["neg_elbo"]) <= one["standard_error"]["neg_log_likelihood"]
    assert abs(one["neg_log_likelihood"] - one["neg_elbo"]) <= 4 * one["standard_error"]["gap"]   # paired
    assert one["neg_log_likelihood"] >= res["neg_log_likelihood"]          # more draws, tighter bound


def test_the_estimate_is_bounded_in_memory_and_tightens_with_k(trained):
    from latentlab.model import likelihood as L
    from latentlab.data import load_folder

    run = runs.open_run(trained)
    model = run.load_model()
    images = load_folder(run.config.dataset).images[:16]
    small = L.estimate(model, images, samples=300, max_decodes=64)          # 64 decodes at a time
    assert small.images == 16 and small.samples == 300
    assert np.all(small.per_image_neg_log_likelihood <= small.per_image_neg_elbo + 0.5)
    k10 = L.estimate(model, images, samples=10)
    assert small.neg_log_likelihood <= k10.neg_log_likelihood + 3 * k10.gap_se
    again = L.estimate(model, images, samples=10)
    assert again.neg_log_likelihood == k10.neg_log_likelihood             # seeded: the same figures


def test_each_epoch_estimates_the_likelihood_on_fixed_validation_images(trained):
    history = runs.open_run(trained).history
    for row in history:
        assert row["likelihood_samples"] == 10 and row["likelihood_images"] == 32
        assert row["val_neg_log_likelihood"] <= row["val_neg_elbo_subset"]
        assert math.isfinite(row["val_neg_log_likelihood"])
    assert history[-1]["val_neg_log_likelihood"] < history[0]["val_neg_log_likelihood"]   # it learns


def test_eval_with_a_gaussian_likelihood_and_on_another_folder(folder, tmp_path, capsys):
    run_dir = tmp_path / "gauss"
    code, _, err = in_process(["train", folder, "--epochs", 2, "--batch-size", 32, "--hidden-units", 16,
                               "--likelihood", "gaussian", "--out", run_dir, "--quiet"], capsys)
    assert code == 0, err
    res = evaluate(run_dir, tmp_path, capsys, "--samples", 20, "--dataset", folder, "--max-images", 50)
    assert res["images"] == 50 and res["neg_log_likelihood"] <= res["neg_elbo"]


def test_eval_says_in_one_line_when_it_has_no_images(trained, tmp_path, capsys):
    from latentlab.config import TrainConfig

    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    cfg = runs.open_run(run_dir).config
    runs.write_config(run_dir, TrainConfig.from_dict({**cfg.to_dict(), "dataset": str(tmp_path / "gone")}))
    code, _, err = in_process(["eval", run_dir], capsys)
    R.one_line_error(code, err, "is gone", "--dataset")
    code, _, err = in_process(["eval", run_dir, "--samples", 0], capsys)
    R.one_line_error(code, err, "--samples")


def test_loss_terms_view_shows_the_bound_beside_the_likelihood(qtbot, trained, tmp_path):
    from gui.tradeoff.loss_terms import LossTermsPanel

    history = runs.open_run(trained).history
    w = LossTermsPanel()
    qtbot.addWidget(w)
    w.resize(560, 360)
    w.show()
    assert "appear side by side" in w.bound.text()
    w.set_history(history)
    last = history[-1]
    text = w.bound.text()
    assert f"{last['val_neg_elbo_subset']:,.2f}" in text and f"{last['val_neg_log_likelihood']:,.2f}" in text
    assert "K = 10" in text and "32 of the validation images" in text
    gap = last["val_neg_elbo_subset"] - last["val_neg_log_likelihood"]
    assert f"gap <b>{gap:,.2f}</b>" in text and len(w.bound.toolTip()) > 100
    assert w.export_csv(tmp_path / "terms.csv")
    assert "val_neg_log_likelihood" in (tmp_path / "terms.csv").read_text().splitlines()[0]
    # the rate split (ELBO surgery) and the holes, from the run's own history
    split = w.split.text()
    assert f"<b>{last['val_mutual_info']:,.2f}</b> say which image it is" in split
    assert f"<b>{last['val_marginal_kl']:,.2f}</b> are codes the prior never draws" in split
    assert f"<b>{last['val_hole_fraction']:.0%}</b> of the prior's mass lies in holes" in split
    assert last["val_mutual_info"] + last["val_marginal_kl"] == pytest.approx(last["val_kl_loss"], rel=0.02)
    assert "val_marginal_kl" in (tmp_path / "terms.csv").read_text().splitlines()[0]
    w.grab().save(str(tmp_path / "loss-terms.png"))

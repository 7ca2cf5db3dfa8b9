"""Training on small real data: β behaviour, live β changes, pause/stop, NaN, checkpoints, resume."""

import json
import math
import os
import threading

import _engine
import numpy as np
import pytest

from latentlab.runs import folder as runs
from latentlab.config import ConfigError, TrainConfig
from latentlab.data import load_folder
from latentlab.model.latent import Decoder, encode
from latentlab.config import kl_factor
from latentlab.events import BatchEnd, EpochEnd, Failed, Finished, Started
from latentlab.training.trainer import Trainer


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = _engine.write_digits_folder(tmp_path_factory.mktemp("digits"), per_class=40, size=16)
    os.environ.setdefault("LATENTLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return load_folder(root, cache=False)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = _engine.sample_subset(tmp_path_factory.mktemp("sample"), per_class=60)
    return load_folder(root, cache=False)


def _train(dataset, run_dir=None, **cfg):
    events = []
    config = TrainConfig(dataset=dataset.root, **{"batch_size": 32, "epochs": 2, **cfg})
    trainer = Trainer(config, dataset, run_dir, events.append)
    result = trainer.run()
    return trainer, result, events


def test_events_and_epoch_logs(digits, tmp_path):
    trainer, result, events = _train(digits, tmp_path / "run", beta=2.0, epochs=2)
    assert isinstance(result, Finished) and not result.stopped and result.epochs_done == 2
    assert isinstance(events[0], Started) and events[0].device in ("CPU",) or events[0].device.startswith("GPU")
    batches = [e for e in events if isinstance(e, BatchEnd)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert len(batches) == 2 * events[0].steps_per_epoch and len(epochs) == 2
    for e in epochs:
        lg = e.logs
        assert lg["loss"] == pytest.approx(lg["reconstruction_loss"] + 2.0 * lg["kl_loss"], rel=1e-5)
        assert lg["val_loss"] == pytest.approx(lg["val_reconstruction_loss"] + 2.0 * lg["val_kl_loss"], rel=1e-5)
        assert e.kl_per_dim.shape == (2,) and e.val_z_mean.shape == (len(e.val_indices), 2)
        assert sum(e.kl_per_dim) == pytest.approx(lg["kl_loss"], rel=1e-3)
    rows = runs.open_run(tmp_path / "run").history
    assert [r["epoch"] for r in rows] == [1, 2]
    header = (tmp_path / "run" / "history.csv").read_text().splitlines()[0].split(",")
    for col in ("epoch", "loss", "reconstruction_loss", "kl_loss", "val_loss", "val_reconstruction_loss",
                "val_kl_loss", "beta"):
        assert col in header


def test_beta_zero_lets_kl_grow_and_beta_fifty_crushes_it(sample):
    _, r0, _ = _train(sample, beta=0.0, epochs=3, batch_size=16, learning_rate=3e-3)
    _, r50, _ = _train(sample, beta=50.0, epochs=3, batch_size=16, learning_rate=3e-3)
    kl0 = [h["val_kl_loss"] for h in r0.history]
    kl50 = r50.history[-1]["val_kl_loss"]
    assert kl0[-1] > kl0[0] and kl0[-1] > 5.0
    assert kl50 < 0.5 and kl50 < kl0[-1] / 20


def test_changing_beta_mid_training_takes_effect_at_the_next_batch(digits):
    seen = []
    trainer = None

    def on_event(e):
        if isinstance(e, BatchEnd):
            seen.append((e.epoch, e.step, e.beta))
            if e.epoch == 0 and e.step == 3:
                trainer.set_beta(7.0)
                assert float(trainer.model.beta.numpy()) == 1.0  # not before the next batch
            if e.epoch == 0 and e.step == 4:
                assert float(trainer.model.beta.numpy()) == 7.0

    trainer = Trainer(TrainConfig(dataset=digits.root, batch_size=32, epochs=1), digits, None, on_event)
    result = trainer.run()
    assert isinstance(result, Finished)
    assert [b for (_, s, b) in seen if s <= 3] == [1.0] * 3
    assert all(b == 7.0 for (_, s, b) in seen if s >= 4)
    assert result.history[-1]["beta"] == 7.0
    assert trainer.config.beta == 7.0  # the change travels with the config into config.json


def test_kl_schedules():
    assert kl_factor("constant", 0.0, 5) == 1.0
    assert kl_factor("linear", 0.0, 4) == 0.0 and kl_factor("linear", 2.0, 4) == 0.5 and kl_factor("linear", 9, 4) == 1
    assert kl_factor("cyclical", 0.5, 4) == 0.25 and kl_factor("cyclical", 3.0, 4) == 1.0
    assert kl_factor("cyclical", 4.0, 4) == 0.0


def test_linear_warmup_drives_beta_per_batch(digits):
    _, result, events = _train(digits, beta=2.0, epochs=2, kl_schedule="linear", warmup_epochs=2)
    betas = [e.beta for e in events if isinstance(e, BatchEnd)]
    assert betas[0] == 0.0 and betas == sorted(betas) and betas[-1] < 2.0 and betas[-1] > 1.5


def test_pause_resume_and_stop_between_batches(digits, tmp_path):
    trainer = None
    log = []
    paused_at = {}

    def on_event(e):
        log.append(e)
        if isinstance(e, BatchEnd) and e.epoch == 1 and e.step == 2 and not paused_at:
            trainer.pause()
            paused_at["n"] = len(log)
            threading.Timer(0.3, resume_then_stop).start()

    def resume_then_stop():
        assert trainer.paused
        paused_at["count_during_pause"] = len(log)
        trainer.resume()
        trainer.stop()

    trainer = Trainer(TrainConfig(dataset=digits.root, batch_size=16, epochs=5), digits, tmp_path / "r", on_event)
    result = trainer.run()
    assert isinstance(result, Finished) and result.stopped and result.epochs_done == 1
    assert paused_at["count_during_pause"] == paused_at["n"]  # nothing ran while paused
    # stop took effect within one batch: no batch after the resume
    assert not any(isinstance(e, BatchEnd) for e in log[paused_at["n"]:])
    run = runs.open_run(tmp_path / "r")
    assert run.epochs_done == 1 and run.status == "stopped"
    # the in-memory model is the saved one (last finished epoch)
    z = np.array([[0.3, -0.4]], np.float32)
    np.testing.assert_array_equal(Decoder.from_model(trainer.model).decode(z),
                                  Decoder.from_model(run.load_model()).decode(z))


def test_nan_stops_cleanly_and_keeps_the_last_good_checkpoint(digits, tmp_path):
    trainer = None

    def on_event(e):
        if isinstance(e, EpochEnd) and e.epoch == 1:
            for v in trainer.model.decoder.trainable_weights[:1]:
                v.assign(v * np.nan)

    trainer = Trainer(TrainConfig(dataset=digits.root, batch_size=32, epochs=3), digits, tmp_path / "r", on_event)
    result = trainer.run()
    assert isinstance(result, Failed)
    assert "nan" in result.message.lower() and "learning rate" in result.message and "epoch 1" in result.message
    assert "\n" not in result.message
    run = runs.open_run(tmp_path / "r")
    assert run.epochs_done == 1 and run.status == "failed"
    img = Decoder.from_model(run.load_model()).decode(np.zeros((1, 2)))
    assert np.isfinite(img).all()
    # and the trainer's own model was rolled back to those good weights
    assert np.isfinite(Decoder.from_model(trainer.model).decode(np.zeros((1, 2)))).all()


def test_divergent_learning_rate_is_stopped_with_advice(digits):
    _, result, _ = _train(digits, learning_rate=10.0, epochs=3, likelihood="gaussian", gaussian_sigma=0.001)
    if isinstance(result, Failed):  # on some machines Adam survives lr=10 on this tiny set; both are fine
        assert "learning rate" in result.message and "10" in result.message
    else:
        assert all(math.isfinite(r["loss"]) for r in result.history)


def test_resume_continues_to_the_total_epochs(digits, tmp_path):
    run_dir = tmp_path / "r"
    _train(digits, run_dir, epochs=2)
    first = runs.open_run(run_dir).history
    cfg = runs.open_run(run_dir).config.replace(epochs=4)
    result = Trainer(cfg, digits, run_dir, resume=True).run()
    assert isinstance(result, Finished) and result.epochs_done == 4
    run = runs.open_run(run_dir)
    assert [r["epoch"] for r in run.history] == [1, 2, 3, 4]
    assert run.history[:2] == first
    assert run.epoch_latents["z_mean"].shape[0] == 4
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 4


def test_run_folder_has_latents_of_every_image(digits, tmp_path):
    trainer, result, _ = _train(digits, tmp_path / "r", epochs=1)
    run = runs.open_run(tmp_path / "r")
    lat = run.latents
    assert lat["z_mean"].shape == (len(digits.images), 2) and lat["z_log_var"].shape == lat["z_mean"].shape
    assert list(lat["paths"]) == digits.paths and list(lat["class_names"]) == digits.class_names
    np.testing.assert_allclose(lat["z_mean"], encode(trainer.model, digits.images)[0], rtol=1e-5, atol=1e-5)
    assert int(lat["split"].sum()) == len(trainer.val_idx)
    assert not list((tmp_path / "r").glob(".*tmp*"))  # no temporary files left behind


def test_read_only_run_folder_fails_cleanly(digits, tmp_path):
    run_dir = tmp_path / "r"
    _train(digits, run_dir, epochs=1)
    before = (run_dir / "model.keras").read_bytes()
    os.chmod(run_dir, 0o555)
    try:
        if os.access(run_dir, os.W_OK):
            pytest.skip("running as a user who can write to read-only folders")
        cfg = runs.open_run(run_dir).config.replace(epochs=2)
        result = Trainer(cfg, digits, run_dir, resume=True).run()
    finally:
        os.chmod(run_dir, 0o755)
    assert isinstance(result, Failed) and "cannot write" in result.message
    assert (run_dir / "model.keras").read_bytes() == before


def test_trained_model_reconstructs_better_than_the_mean_image():
    from latentlab.data import sample_dataset_path

    sample = load_folder(sample_dataset_path(), cache=False)
    assert sample.num_images == 3000
    trainer, result, _ = _train(sample, epochs=2, batch_size=32, learning_rate=3e-3)
    val = sample.images[trainer.val_idx]
    recon = trainer.model(val).numpy()
    mean_img = sample.images[trainer.train_idx].mean(axis=0, keepdims=True)
    err_model = np.mean((recon - val) ** 2)
    err_mean = np.mean((mean_img - val) ** 2)
    assert err_model < 0.75 * err_mean


def test_config_is_strict():
    good = TrainConfig(dataset="x").to_dict()
    assert TrainConfig.from_dict(good) == TrainConfig(dataset="x")
    with pytest.raises(ConfigError, match="unknown config key"):
        TrainConfig.from_dict({**good, "evil": 1})
    with pytest.raises(ConfigError, match="'latent_dim' must be a whole number"):
        TrainConfig.from_dict({**good, "latent_dim": "2"})
    with pytest.raises(ConfigError, match="beta must be"):
        TrainConfig.from_dict({**good, "beta": -1})
    for bad in ({"epochs": 0}, {"latent_dim": 0}, {"image_size": [1000, 1000]}, {"kl_schedule": "sometimes"}):
        with pytest.raises(ConfigError):
            TrainConfig(**{**good, **bad}).validate()

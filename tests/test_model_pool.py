"""`ModelPool`: runs of the same shape reuse one built model, re-initialised exactly like a new one."""

import os

import _engine
import numpy as np
import pytest

from latentlab.config import TrainConfig
from latentlab.data import load_folder
from latentlab.events import EpochEnd, Finished, Started
from latentlab.model.pool import ModelPool
from latentlab.training.trainer import Trainer


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = _engine.write_digits_folder(tmp_path_factory.mktemp("digits"), per_class=20, size=16)
    os.environ.setdefault("LATENTLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return load_folder(root, cache=False)


def _run(dataset, pool=None, **cfg):
    seen = {}

    def on_event(ev):
        if isinstance(ev, Started):
            m = trainer.model
            seen["model"] = m
            seen["weights"] = [w.copy() for w in m.get_weights()]
            seen["opt"] = [np.array(v.numpy()) for v in m.optimizer.variables]
            seen["seed_state"] = np.array(m.seed_generator.state.numpy())
        elif isinstance(ev, EpochEnd):
            seen.setdefault("epochs", []).append(ev.logs)

    config = TrainConfig(dataset=dataset.root, **{"batch_size": 32, "epochs": 1, "val_fraction": 0.0, **cfg})
    trainer = Trainer(config, dataset, None, on_event, model_pool=pool)
    result = trainer.run()
    assert isinstance(result, Finished), result
    return trainer, seen


def test_same_shape_reuses_the_model_and_trains_like_a_new_one(digits):
    from latentlab.model.vae import build_vae

    pool = ModelPool()
    first, a = _run(digits, pool, seed=1, learning_rate=3e-3, beta=4.0)
    assert first.model is None and pool.idle() == 1 and (pool.built, pool.reused) == (1, 0)
    second, b = _run(digits, pool, seed=2, learning_rate=1e-3, beta=0.5)
    assert b["model"] is a["model"] and (pool.built, pool.reused) == (1, 1)
    # re-initialised exactly as a model built new with seed 2 (β and all), optimizer state zero
    import keras

    keras.utils.set_random_seed(2)
    new = build_vae(digits.images.shape[1:], 2, beta=0.5, seed=2)
    for got, want in zip(b["weights"], new.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(b["seed_state"], np.asarray(new.seed_generator.state.numpy()))
    opt = b["model"].optimizer
    assert int(opt.iterations.numpy()) >= 1  # it trained after the check; the start was 0:
    assert all(not np.any(v) for v in b["opt"] if v.ndim) and float(b["opt"][0]) == 0.0
    assert float(opt.learning_rate.numpy()) == pytest.approx(1e-3)
    # and it learns the same as a run without the pool (TensorFlow on the CPU is not bit-exact from one
    # run to the next even without a pool: the first run of a seed in a process differs by ~1e-4)
    _, c = _run(digits, None, seed=2, learning_rate=1e-3, beta=0.5)
    for key in ("loss", "reconstruction_loss"):
        assert b["epochs"][0][key] == pytest.approx(c["epochs"][0][key], rel=1e-3), key
    assert b["epochs"][0]["kl_loss"] == pytest.approx(c["epochs"][0]["kl_loss"], abs=5e-3)


def test_another_shape_gets_its_own_model(digits):
    pool = ModelPool(max_idle=1)
    _, a = _run(digits, pool, latent_dim=2)
    _, b = _run(digits, pool, latent_dim=3)
    assert b["model"] is not a["model"] and (pool.built, pool.reused) == (2, 0)
    assert pool.idle() == 1  # the oldest idle model was dropped
    _, c = _run(digits, pool, latent_dim=3)
    assert c["model"] is b["model"] and pool.reused == 1

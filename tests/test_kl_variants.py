"""The KL term's variants: free bits (a per-dimension floor λ, Kingma et al. 2016) and controlled capacity
(β·|KL − C|, C annealed, Burgess et al. 2018), as KL schedules of TrainConfig, `latentlab train` and the form."""

import math

import numpy as np
import pytest
from _cli import _cache, folder, in_process  # noqa: F401  (fixtures)

from latentlab.runs import folder as runs
from latentlab.config import ConfigError, TrainConfig, kl_objective


def test_the_kl_term_of_each_variant():
    from latentlab.model.vae import build_vae
    import tensorflow as tf

    vae = build_vae((8, 8, 1), latent_dim=3, beta=1.0)
    kl_dims = tf.constant([[0.1, 2.0, 0.0], [0.3, 1.0, 0.0]])          # batch means: 0.2, 1.5, 0
    kl = tf.reduce_mean(tf.reduce_sum(kl_dims, axis=1))
    assert float(vae.kl_term(kl, kl_dims)) == pytest.approx(1.7)        # plain: the KL
    vae.kl_free_bits.assign(0.5)
    assert float(vae.kl_term(kl, kl_dims)) == pytest.approx(0.5 + 1.5 + 0.5)   # each dimension at least λ
    vae.kl_free_bits.assign(0.0)
    vae.kl_capacity.assign(3.0)
    assert float(vae.kl_term(kl, kl_dims)) == pytest.approx(abs(1.7 - 3.0))
    vae.kl_capacity.assign(0.0)
    assert float(vae.kl_term(kl, kl_dims)) == pytest.approx(1.7)        # C = 0: |KL|, the KL again


def test_the_schedules_say_lambda_and_c():
    assert kl_objective("free-bits", 3.0, 5, 0.25, 9.0) == (0.25, -1.0)
    assert kl_objective("capacity", 2.5, 5, 0.25, 20.0) == (0.0, 10.0)
    assert kl_objective("capacity", 9.0, 5, 0.25, 20.0) == (0.0, 20.0)
    assert kl_objective("linear", 1.0, 5, 0.25, 20.0) == (0.0, -1.0)
    with pytest.raises(ConfigError, match="free bits"):
        TrainConfig(kl_schedule="free-bits", free_bits=-1).validate()
    with pytest.raises(ConfigError, match="kl schedule must be one of"):
        TrainConfig(kl_schedule="capacitance").validate()
    cfg = TrainConfig(kl_schedule="capacity", capacity=12.0)
    assert TrainConfig.from_json(cfg.to_json()) == cfg


def test_train_with_capacity_and_free_bits_from_the_command_line(folder, tmp_path, capsys):
    """Capacity: C rises over the ramp, in history.csv; free bits at a large β keep every dimension's KL up
    where the plain KL lets them fall."""
    common = ["--epochs", 3, "--batch-size", 32, "--hidden-units", 16, "--latent-dim", 3, "--quiet"]
    out = tmp_path / "cap"
    code, _, err = in_process(["train", folder, "--beta", 1, "--kl-schedule", "capacity", "--capacity", 6,
                               "--warmup-epochs", 2, "--out", out, *common], capsys)
    assert code == 0, err
    run = runs.open_run(out)
    assert run.config.kl_schedule == "capacity" and run.config.capacity == 6.0
    caps = [row["capacity"] for row in run.history]
    steps = math.ceil(len(run.latents["split"][run.latents["split"] == 0]) / 32)
    assert caps == pytest.approx([6.0 * min(1.0, (e + (steps - 1) / steps) / 2) for e in range(3)])
    kls = {}
    for kind in ("constant", "free-bits"):
        out = tmp_path / kind
        code, _, err = in_process(["train", folder, "--beta", 8, "--kl-schedule", kind, "--free-bits", 1.0,
                                   "--out", out, *common], capsys)
        assert code == 0, err
        lat = runs.open_run(out).latents
        kl = 0.5 * (lat["z_mean"] ** 2 + np.exp(lat["z_log_var"]) - 1 - lat["z_log_var"])
        kls[kind] = kl.mean(axis=0)
    assert kls["free-bits"].sum() > kls["constant"].sum() + 0.5, kls
    code, _, err = in_process(["train", folder, "--kl-schedule", "free-bits", "--free-bits", -2,
                               "--out", tmp_path / "bad", *common], capsys)
    assert code == 2 and "--free-bits" in err and err.count("\n") == 1


def test_the_form_offers_the_variants(qtbot):
    from gui.training_panel import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.apply_settings(kl_schedule="free-bits", free_bits=0.75)
    assert panel.free_bits_spin.isEnabled() and not panel.capacity_spin.isEnabled()
    assert panel.settings()["kl_schedule"] == "free-bits" and panel.settings()["free_bits"] == 0.75
    panel.apply_settings(kl_schedule="capacity", capacity=30.0, warmup_epochs=7)
    assert panel.capacity_spin.isEnabled() and panel.warmup_spin.isEnabled() and not panel.free_bits_spin.isEnabled()
    cfg = TrainConfig(dataset="x", **panel.settings()).validate()
    assert (cfg.kl_schedule, cfg.capacity, cfg.warmup_epochs) == ("capacity", 30.0, 7)

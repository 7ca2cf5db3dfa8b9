"""`latentlab.tradeoff`: the numbers behind the trade-off views (no Qt, no TensorFlow)."""

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from latentlab import tradeoff as T

HISTORY = [
    {"epoch": 1, "loss": 300.0, "reconstruction_loss": 290.0, "kl_loss": 5.0, "val_loss": 280.0,
     "val_reconstruction_loss": 270.0, "val_kl_loss": 5.0, "beta": 2.0, "active_units": 2},
    {"epoch": 2, "loss": 260.0, "reconstruction_loss": 250.0, "kl_loss": 5.0, "val_loss": 250.0,
     "val_reconstruction_loss": 242.0, "val_kl_loss": 4.0, "beta": 2.0, "active_units": 1},
]


def test_loss_terms_follow_the_formula():
    t = T.loss_terms({"reconstruction_loss": 100.0, "kl_loss": 4.0}, beta=2.5)
    assert t.log_likelihood == -100.0
    assert t.weighted_kl == 10.0
    assert t.objective == -110.0 and t.loss == 110.0     # L = E[log p] − β·KL; the loss is −L
    assert t.neg_elbo == 104.0                           # β = 1 bound, comparable across β
    v = T.loss_terms(HISTORY[0], 2.0, prefix="val_")
    assert (v.reconstruction, v.kl) == (270.0, 5.0)
    assert T.loss_terms({"loss": 1.0}, 1.0) is None


def test_rate_distortion_uses_validation_values_and_falls_back_to_training():
    r, d = T.rate_distortion(HISTORY)
    assert r.tolist() == [5.0, 4.0] and d.tolist() == [270.0, 242.0]
    r, d = T.rate_distortion(HISTORY, split="train")
    assert d.tolist() == [290.0, 250.0]
    no_val = [{"reconstruction_loss": 10.0, "kl_loss": 1.0}, {"reconstruction_loss": float("nan"), "kl_loss": 1.0}]
    r, d = T.rate_distortion(no_val)
    assert r.tolist() == [1.0] and d.tolist() == [10.0]


def test_equal_elbo_levels_span_the_points_on_round_values():
    levels = T.equal_elbo_levels([5.0, 14.0, 1.0], [270.0, 345.0, 380.0])
    sums = [275.0, 359.0, 381.0]
    assert levels.min() < min(sums) and levels.max() > max(sums)
    steps = np.diff(levels)
    assert np.allclose(steps, steps[0]) and steps[0] in (10, 20, 25, 50)
    xs, ys = T.equal_elbo_line(100.0, rate_max=30.0)
    assert xs.tolist() == [0.0, 30.0] and np.allclose(xs + ys, 100.0)
    assert T.equal_elbo_levels([], []).size == 0
    one = T.equal_elbo_levels([2.0], [50.0])
    assert one.size >= 2 and one.min() <= 52.0 <= one.max()


def test_collapse_status():
    ok = T.collapse_status([2.0, 1.5, 0.9], active_units=3)
    assert not ok.collapsed and ok.inactive_dims == [] and "All 3" in ok.message
    part = T.collapse_status([2.0, 0.001, 0.0], active_units=1)
    assert not part.collapsed and part.inactive_dims == [1, 2] and "z1, z2" in part.message
    dead = T.collapse_status([0.001, 0.0, 0.004], active_units=0)
    assert dead.collapsed and "collapse" in dead.message.lower() and "lower β" in dead.message
    no_units = T.collapse_status([0.5, 0.6], active_units=0)     # KL but no unit varies across data
    assert no_units.collapsed and "no latent unit" in no_units.message
    nan = T.collapse_status([float("nan"), 0.0])
    assert nan.collapsed


def test_sweep_summary_csv_and_markdown():
    runs = [SimpleNamespace(config=SimpleNamespace(beta=b), history=h, path=Path(f"/r/beta-{b:g}"))
            for b, h in ((4.0, HISTORY[:1]), (0.5, HISTORY), (1.0, []))]
    rows = T.sweep_summary(runs)
    assert [r.beta for r in rows] == [0.5, 4.0]                       # sorted, empty run skipped
    assert (rows[0].val_reconstruction, rows[0].val_kl, rows[0].neg_elbo) == (242.0, 4.0, 246.0)
    assert rows[0].active_units == 1 and rows[0].epochs == 2
    csv = T.summary_csv(rows).splitlines()
    assert csv[0] == "beta,val_reconstruction,val_kl,val_neg_elbo,active_units,epochs,path"
    assert csv[1].startswith("0.5,242.0,4.0,246.0,1,2,")
    md = T.summary_markdown(rows)
    assert "| 0.5 | 242.00 | 4.00 | 246.00 | 1 |" in md


def test_nearest_images_and_traversal_values():
    z = np.array([[0, 0], [1, 0], [5, 5], [0.2, 0.1]], np.float32)
    idx, dist = T.nearest_images(z, [0.1, 0.0], k=2)
    assert idx.tolist() == [0, 3] and dist[0] <= dist[1] and math.isclose(dist[0], 0.1, rel_tol=1e-5)
    idx, dist = T.nearest_images(np.zeros((0, 2)), [0, 0])
    assert idx.size == 0
    vals = T.traversal_values(np.random.default_rng(0).normal(0, 2, (500, 3)), dim=1, steps=7)
    assert len(vals) == 7 and vals[0] < -3 and vals[-1] > 3 and np.all(np.diff(vals) > 0)
    assert T.traversal_values(None, 0, 5).tolist() == [-3.0, -1.5, 0.0, 1.5, 3.0]


def test_replay_frames_take_labels_through_the_indices():
    run = SimpleNamespace(epoch_latents={"z_mean": np.zeros((3, 2, 2)), "indices": np.array([4, 1])},
                          latents={"labels": np.array([0, 1, 2, 3, 4]), "class_names": np.array(["a", "b", "c", "d", "e"])})
    f = T.replay_frames(run)
    assert f["z_mean"].shape == (3, 2, 2) and f["labels"].tolist() == [4, 1] and f["class_names"][4] == "e"
    assert T.replay_frames(SimpleNamespace(epoch_latents=None, latents=None)) is None


def test_rows_to_csv_unions_columns():
    text = T.rows_to_csv([{"a": 1, "b": 0.5}, {"a": 2, "c": "x"}])
    assert text.splitlines() == ["a,b,c", "1,0.5,", "2,,x"]

"""`latentlab.keras.RunCallback`: a plain Keras VAE (examples/keras_vae_runcallback.py, the keras.io shape, not
latentlab's model) trained for 2 epochs writes a run folder that the window opens, and a click on the map
decodes with the script's own decoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _wait import WAIT_MS

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


@pytest.fixture
def keras_run(tmp_path, digits_dataset):
    import keras

    from examples.keras_vae_runcallback import VAE, build_decoder, build_encoder
    from latentlab.keras import RunCallback

    keras.utils.set_random_seed(0)
    ds = digits_dataset
    shape = ds.images.shape[1:]   # 16x16 gray: small filters keep it quick
    encoder, decoder = build_encoder(2, shape, filters=(8, 16)), build_decoder(2, shape, filters=(8, 16))
    vae = VAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    out = tmp_path / "my-vae"
    cb = RunCallback(out, encoder=encoder, decoder=decoder, images=ds.images, labels=ds.labels,
                     class_names=ds.class_names, beta=lambda: vae.beta)
    vae.fit(ds.images, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    return out, decoder


def test_a_keras_vae_of_ones_own_writes_a_run_folder(keras_run, digits_dataset):
    from latentlab.runs import folder as runs
    from latentlab.runs.follow import FollowState, RunFollower
    from latentlab.runs.lock import is_locked

    out, decoder = keras_run
    assert {"config.json", "decoder.keras", "encoder.keras", "history.csv", "latents.npz", "epochs.npz",
            "state.json", "tensorboard"} <= {p.name for p in out.iterdir()}
    run = runs.open_run(out)
    assert run.status == "finished" and [r["epoch"] for r in run.history] == [1, 2]
    row = run.history[-1]
    assert row["neg_elbo"] == pytest.approx(row["reconstruction_loss"] + row["kl_loss"])
    assert row["beta"] == 1.0 and row["loss"] > 0
    assert run.config.latent_dim == 2 and run.config.image_size == [16, 16] and run.config.epochs == 2
    assert run.latents["z_mean"].shape == (300, 2) and run.epoch_latents["z_mean"].shape == (2, 300, 2)
    assert list(run.latents["labels"]) == list(digits_dataset.labels)
    assert not is_locked(out) and (out / ".lock").read_text() == ""              # let go, cleanly
    assert RunFollower(out).poll().state is FollowState.FINISHED
    with pytest.raises(runs.RunError, match="train it further in the script that made it"):
        run.load_model()
    # the scalars are TensorBoard event files, as latentlab's own runs have them
    assert list((out / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert json.loads((out / "config.json").read_text())["extra"]["written_by"] == "latentlab.keras.RunCallback"
    # the comparison view takes it like latentlab's own runs
    from latentlab.runs.view import comparison_entry

    entry = comparison_entry(out)
    assert entry["mosaic"] is not None and entry["z"].shape == (300, 2) and entry["replay"] is not None
    z = np.zeros((1, 2), np.float32)
    np.testing.assert_allclose(entry["decoder"].decode(z), np.asarray(decoder(z)), atol=1e-5)


def test_the_window_opens_it_and_a_click_decodes_with_its_decoder(keras_run, window, qtbot):
    from _runs import open_run

    from latentlab.model.foreign import ForeignDecoder

    out, decoder = keras_run
    win = window
    open_run(qtbot, win, out)
    assert isinstance(win.map_view.point_decoder, ForeignDecoder)
    assert len(win.latent_map.z) == 300 and win.loss_plot.epoch_x == [1.0, 2.0]
    (x0, x1), (y0, y1) = win.latent_map.vb.viewRange()
    x, y = x0 + 0.4 * (x1 - x0), y0 + 0.6 * (y1 - y0)
    win.latent_map.show_points.setChecked(False)
    win.latent_map.click_at(x, y)
    z = win.latent_map.z_at(x, y)
    expected = np.asarray(decoder(np.asarray(z, np.float32)[None]))[0]
    np.testing.assert_allclose(win.image_panel.image, expected, atol=1e-5)   # the script's decoder, in the app
    qtbot.waitUntil(lambda: win.is_idle(), timeout=WAIT_MS)
    assert win.tradeoff.rd_plot.markers(str(out)) == 1                        # and on the R–D plane

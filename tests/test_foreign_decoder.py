"""A decoder trained elsewhere: a small VAE trained with plain Keras and TensorFlow (none of latentlab's
classes), saved, then opened both ways — headless (`latentlab export --decoder`) and in the app
(`latentlab --decoder --encoder --dataset`) — and every model that does not fit refused in one line."""

from __future__ import annotations

import subprocess
import sys

import _engine
import _reliability as R
from _cli import _cache, folder, in_process  # noqa: F401  (fixtures)
from _wait import WAIT_MS, WAIT_S
import numpy as np
import pytest
from PIL import Image


SIDE = 16

# Models that must be refused, made in a process of their own: a class registered there is unknown here.
BAD_MODELS = r'''
import sys, keras
from keras import layers
out = sys.argv[1]

def dec(*mid, units=SIDE * SIDE, shape=(SIDE, SIDE, 1)):
    z = keras.Input((2,))
    x = layers.Dense(units)(z)
    for layer in mid:
        x = layer(x)
    return keras.Model(z, layers.Reshape(shape)(x) if shape else x)

@keras.saving.register_keras_serializable(package="mylab")
class Brighten(layers.Layer):
    def call(self, x):
        return x + 0.1

class Unregistered(layers.Layer):
    def call(self, x):
        return x * 2.0

dec(layers.Lambda(lambda t: t * 2.0, name="times_two")).save(f"{out}/lambda.keras")
dec(Brighten(name="brighten")).save(f"{out}/registered.keras")
dec(Unregistered(name="unregistered")).save(f"{out}/unregistered.keras")
dec(shape=None).save(f"{out}/flat.keras")
dec(units=SIDE * SIDE * 2, shape=(SIDE, SIDE, 2)).save(f"{out}/two_channels.keras")
m = keras.Input((4, 4)); keras.Model(m, layers.Reshape((SIDE, SIDE, 1))(layers.Dense(SIDE * SIDE)(layers.Flatten()(m)))).save(f"{out}/matrix_input.keras")
a, b = keras.Input((2,)), keras.Input((2,))
keras.Model([a, b], layers.Reshape((SIDE, SIDE, 1))(layers.Dense(SIDE * SIDE)(layers.Concatenate()([a, b])))).save(f"{out}/two_inputs.keras")
open(f"{out}/not_keras.keras", "wb").write(b"this is not a zip file")
'''.replace("SIDE", str(SIDE))


def plain_vae(images: np.ndarray, epochs: int = 40, seed: int = 0):
    """A VAE in plain Keras + TensorFlow: dense encoder → (z_mean, z_log_var), dense decoder → logits."""
    import keras
    import tensorflow as tf
    from keras import layers

    keras.utils.set_random_seed(seed)
    x_in = keras.Input((SIDE, SIDE, 1))
    h = layers.Dense(64, activation="relu")(layers.Flatten()(x_in))
    encoder = keras.Model(x_in, [layers.Dense(2, name="z_mean")(h), layers.Dense(2, name="z_log_var")(h)])
    z_in = keras.Input((2,))
    h = layers.Dense(64, activation="relu")(z_in)
    decoder = keras.Model(z_in, layers.Reshape((SIDE, SIDE, 1))(layers.Dense(SIDE * SIDE)(h)))
    opt = keras.optimizers.Adam(3e-3)
    variables = encoder.trainable_variables + decoder.trainable_variables

    @tf.function          # one traced step (eager steps made this fixture the suite's slowest setup)
    def step(x):
        with tf.GradientTape() as tape:
            m, lv = encoder(x)
            z = m + tf.exp(0.5 * lv) * tf.random.normal(tf.shape(m))
            logits = decoder(z)
            rec = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), [1, 2, 3])
            kl = 0.5 * tf.reduce_sum(tf.square(m) + tf.exp(lv) - 1.0 - lv, 1)
            loss = tf.reduce_mean(rec + kl)
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))

    data = tf.constant(images)
    for _ in range(epochs):
        for s in range(0, len(images) - len(images) % 50, 50):    # whole batches: one shape, one trace
            step(data[s:s + 50])
    return encoder, decoder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The digits folder, a trained plain-Keras decoder (logits) and encoder, and models that must be refused."""
    import keras
    from keras import layers

    from latentlab.data import load_folder

    tmp = tmp_path_factory.mktemp("foreign")
    digits = _engine.write_digits_folder(tmp / "digits", per_class=20, size=SIDE)
    encoder, decoder = plain_vae(load_folder(digits, cache=False).images)
    encoder.save(tmp / "encoder.keras")
    decoder.save(tmp / "decoder.keras")
    z = keras.Input((3,))
    keras.Model(z, layers.Reshape((SIDE, SIDE))(layers.Dense(SIDE * SIDE, activation="sigmoid")(z))).save(
        tmp / "gray_hw.keras")
    keras.Sequential([keras.Input((2,)), layers.Dense(8 * 8 * 3, activation="sigmoid"), layers.Reshape((8, 8, 3))]
                     ).save(tmp / "rgb.keras")
    (tmp / "bad").mkdir()
    p = subprocess.run([sys.executable, "-c", BAD_MODELS, str(tmp / "bad")], capture_output=True, text=True,
                       env=R.child_env(), timeout=WAIT_S)
    assert p.returncode == 0, p.stderr
    return tmp, digits



def test_a_plain_keras_decoder_loads_with_what_it_gives(models):
    from latentlab.model.foreign import ForeignDecoder, ForeignEncoder
    from latentlab.data import load_folder

    tmp, digits = models
    dec = ForeignDecoder(tmp / "decoder.keras")
    assert (dec.latent_dim, dec.image_shape, dec.output) == (2, (SIDE, SIDE, 1), "logits")
    assert "logits" in dec.description and "sigmoid" in dec.description
    images = dec.decode(np.random.default_rng(0).standard_normal((5, 2)))
    assert images.shape == (5, SIDE, SIDE, 1) and images.min() >= 0 and images.max() <= 1
    gray = ForeignDecoder(tmp / "gray_hw.keras")                 # H×W output, values in [0, 1]
    assert (gray.latent_dim, gray.image_shape, gray.output) == (3, (SIDE, SIDE, 1), "pixels")
    assert "values in [0, 1]" in gray.description
    rgb = ForeignDecoder(tmp / "rgb.keras")
    assert rgb.image_shape == (8, 8, 3) and rgb.decode(np.zeros((2, 2))).shape == (2, 8, 8, 3)
    enc = ForeignEncoder(tmp / "encoder.keras", dec.image_shape, dec.latent_dim)
    z_mean, z_log_var = enc.encode(load_folder(digits, cache=False).images)
    assert z_mean.shape == (200, 2) and z_log_var.shape == (200, 2) and np.all(np.isfinite(z_mean))


def test_export_writes_the_grid_of_a_decoder_from_elsewhere_headless(models):
    tmp, digits = models
    code, out, err = R.run_cli("export", "--decoder", tmp / "decoder.keras", "--encoder", tmp / "encoder.keras",
                               "--dataset", digits, "--grid", tmp / "grid.png", "--grid-size", 10,
                               "--samples", 9, tmp / "samples.png")
    assert code == 0, err
    assert "Traceback" not in err and "logits" in err and "wrote" in out
    from latentlab.cli.cmd_export import export_scale

    k = export_scale(SIDE, SIDE)          # tiles enlarged to a readable size by default (issue 24)
    grid = np.asarray(Image.open(tmp / "grid.png"), np.float32)
    assert k > 1 and grid.shape == (10 * SIDE * k, 10 * SIDE * k) and grid.std() > 5
    assert Image.open(tmp / "samples.png").size == (3 * SIDE * k, 3 * SIDE * k)
    # the grid spans the encoded data: another range than the prior's ±3 without them
    code, _, err = R.run_cli("export", "--decoder", tmp / "decoder.keras", "--grid", tmp / "prior.png",
                             "--grid-size", 10)
    assert code == 0, err


@pytest.mark.parametrize("name, needles", [
    ("lambda.keras", ["refused", "Lambda layer 'times_two'"]),
    ("registered.keras", ["refused", "mylab>Brighten"]),
    ("unregistered.keras", ["refused", "Unregistered"]),
    ("flat.keras", ["gives (None, 256)", "(None, H, W, 1)", "Reshape((16, 16))"]),
    ("two_channels.keras", ["gives (None, 16, 16, 2)", "(None, H, W, 3)"]),
    ("matrix_input.keras", ["takes (None, 4, 4)", "(None, d)"]),
    ("two_inputs.keras", ["takes (None, 2), (None, 2)", "one vector per image"]),
    ("not_keras.keras", ["not a Keras model file"]),
    ("missing.keras", ["does not exist"]),
])
def test_every_bad_decoder_gets_one_line(models, capsys, name, needles):
    tmp, _ = models
    code, _, err = in_process(["export", "--decoder", tmp / "bad" / name, "--grid", tmp / "x.png"], capsys)
    R.one_line_error(code, err, *needles)
    assert not (tmp / "x.png").exists()


def test_an_encoder_that_does_not_fit_gets_one_line(models, capsys):
    tmp, digits = models
    args = ["export", "--decoder", tmp / "decoder.keras", "--dataset", digits, "--grid", tmp / "x.png"]
    code, _, err = in_process([*args, "--encoder", tmp / "rgb.keras"], capsys)        # not an encoder at all
    R.one_line_error(code, err, "takes (None, 2)", "(None, 16, 16, 1)")
    code, _, err = in_process([*args, "--encoder", tmp / "bad" / "lambda.keras"], capsys)
    R.one_line_error(code, err, "refused", "Lambda")
    code, _, err = in_process(args, capsys)
    R.one_line_error(code, err, "--encoder and --dataset go together")


def test_the_decoder_opened_and_refused_as_the_user_sees_it(models):
    tmp, digits = models
    code, _, err = R.run_cli("export", "--decoder", tmp / "bad" / "lambda.keras", "--grid", tmp / "x.png")
    R.one_line_error(code, err, "refused", "times_two")
    app = subprocess.run([sys.executable, "-m", "gui.app", "--decoder", tmp / "bad" / "registered.keras",
                          "--quit-when-done"], capture_output=True, text=True, timeout=WAIT_S, cwd=R.REPO,
                         env=R.child_env(QT_QPA_PLATFORM="offscreen"))
    R.one_line_error(app.returncode, app.stderr, "refused", "mylab>Brighten")
    assert app.returncode == 2
    shot = tmp / "app.png"
    app = subprocess.run([sys.executable, "-m", "gui.app", "--decoder", tmp / "decoder.keras", "--encoder",
                          tmp / "encoder.keras", "--dataset", digits, "--quit-when-done", "--screenshot", shot],
                         capture_output=True, text=True, timeout=WAIT_S, cwd=R.REPO,
                         env=R.child_env(QT_QPA_PLATFORM="offscreen", LATENTLAB_RUNS_DIR=tmp / "runs"))
    assert app.returncode == 0 and "Traceback" not in app.stderr, app.stderr
    assert Image.open(shot).size[0] > 600


def test_the_app_opens_a_decoder_from_elsewhere(models, window, qtbot, tmp_path):
    from latentlab.model.foreign import ForeignDecoder

    tmp, digits = models
    win = window
    assert win.foreign.open(tmp / "decoder.keras", tmp / "encoder.keras", digits)
    qtbot.waitUntil(lambda: len(win.latent_map.z) == 200 and win.latent_map.mosaic is not None
                    and win.map_view.point_decoder is not None and not win.dataset_panel.is_loading, timeout=WAIT_MS)
    assert "logits" in win.statusBar().currentMessage() and "200 images" in win.statusBar().currentMessage()
    assert win.windowTitle().endswith("decoder.keras")
    assert isinstance(win.map_view.point_decoder, ForeignDecoder)
    assert win.dataset is not None and win.dataset.image_shape == (SIDE, SIDE, 1)   # Train can use it
    # the grid under the points is the decoder's
    (x0, x1), (y0, y1) = win.latent_map.vb.viewRange()
    assert win.latent_map.mosaic.shape[2] == 1 and win.latent_map.mosaic.std() > 0.01
    # a click decodes that point
    x, y = x0 + 0.37 * (x1 - x0), y0 + 0.61 * (y1 - y0)
    win.latent_map.show_points.setChecked(False)
    win.latent_map.click_at(x, y)
    z = win.latent_map.z_at(x, y)
    reference = ForeignDecoder(tmp / "decoder.keras").decode(z)[0]
    np.testing.assert_allclose(win.image_panel.image, reference, atol=1e-5)
    # a data point shows its original beside the decoder's image of its z_mean
    win.latent_map.show_points.setChecked(True)
    win.map_view.on_point_clicked(7, win.latent_map.z[7])
    assert win.image_panel.original is not None and win.image_panel.original.shape == (SIDE, SIDE, 1)
    # traversals and interpolations take the same decoder
    win.show_tradeoff(win.tradeoff.TAB_EXPLORE)
    tools = win.tradeoff.tools
    tools.set_point(z)
    qtbot.waitUntil(lambda: len(tools.traversal.rows) == 2, timeout=WAIT_MS)
    assert tools.traversal.rows[0].shape[1:] == (SIDE, SIDE, 1)
    tools.interpolation.set_endpoint("a", win.latent_map.z[0])
    tools.interpolation.set_endpoint("b", win.latent_map.z[1])
    assert tools.interpolation.strip is not None and tools.interpolation.strip.shape[1:] == (SIDE, SIDE, 1)
    win.grab().save(str(tmp_path / "foreign-decoder.png"))


def test_the_app_says_in_the_banner_when_a_decoder_does_not_fit(models, window, qtbot):
    tmp, _ = models
    assert window.foreign.open(tmp / "bad" / "flat.keras")
    qtbot.waitUntil(lambda: window.banner.isVisible() and not window.foreign.loading, timeout=WAIT_MS)
    text = window.banner.label.text()
    assert "(None, 256)" in text and "\n" not in text

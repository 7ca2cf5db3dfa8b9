"""The numpy decoder used for single points is the Keras decoder, for every shape the app builds."""

import numpy as np
import pytest

from latentlab.model.latent import Decoder, NumpyDecoder
from latentlab.model.vae import build_decoder


@pytest.mark.parametrize("shape,latent", [((28, 28, 1), 2), ((16, 16, 1), 3), ((8, 8, 1), 1), ((64, 64, 3), 8),
                                          ((12, 20, 3), 2), ((30, 30, 1), 5), ((9, 13, 1), 2), ((33, 47, 3), 4)])
def test_numpy_decoder_matches_keras(shape, latent):
    rng = np.random.default_rng(0)
    model = build_decoder(shape, latent)
    # random weights (biases too), so every term counts
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    z = rng.normal(size=(5, latent)).astype(np.float32)
    raw = model(z, training=False).numpy()
    with np.errstate(over="ignore"):
        sigmoid = 1 / (1 + np.exp(-raw))
    for likelihood, want in (("bernoulli", sigmoid), ("gaussian", np.clip(raw, 0, 1))):
        npd = NumpyDecoder.for_model(model, likelihood)
        assert npd is not None
        got = npd.decode(z)
        assert got.shape == (5, *shape) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-4)  # pixels in [0, 1]


def test_decoder_uses_numpy_for_few_points_and_tensorflow_for_grids():
    rng = np.random.default_rng(1)
    dec = Decoder((16, 16, 1), 2)
    dec.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in dec.model.get_weights()])
    z = rng.normal(size=(Decoder.SMALL_BATCH + 1, 2)).astype(np.float32)
    big = dec.decode(z)                        # TensorFlow
    small = dec.decode(z[:3])                  # numpy
    np.testing.assert_allclose(small, big[:3], rtol=1e-4, atol=2e-5)
    assert dec.small is not None
    # new weights reach both paths
    dec.set_weights([w * 0.5 for w in dec.model.get_weights()])
    np.testing.assert_allclose(dec.decode(z[:1]), dec.decode(z)[:1], rtol=1e-4, atol=2e-5)
    with pytest.raises(ValueError, match="weight arrays"):
        dec.small.set_weights(dec.model.get_weights()[:-1])


def test_unknown_layers_fall_back_to_tensorflow():
    import keras

    inputs = keras.Input((2,))
    x = keras.layers.Dense(16, activation="tanh")(inputs)
    assert NumpyDecoder.for_model(keras.Model(inputs, x), "bernoulli") is None

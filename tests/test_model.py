"""The β-VAE: shapes, loss bookkeeping and saving (real Keras, tiny data)."""

import math

import _engine  # noqa: F401  (quiet TensorFlow)
import keras
import numpy as np
import pytest

from latentlab.model.latent import Decoder, decode_grid, encode, interpolate, traversal, PCA, grid_range, tile, nearest
from latentlab.model.vae import VAE, architecture, build_vae


@pytest.mark.parametrize("shape,latent", [((8, 8, 1), 1), ((28, 28, 1), 2), ((30, 30, 3), 5),
                                          ((17, 40, 1), 3), ((64, 64, 3), 64)])
def test_decoder_output_matches_image_shape(shape, latent):
    vae = build_vae(shape, latent)
    assert vae.decoder.output_shape[1:] == shape
    z_mean, z_log_var = vae.encoder(np.zeros((2, *shape), np.float32))
    assert z_mean.shape == (2, latent) and z_log_var.shape == (2, latent)


def test_28x28_with_16_hidden_units_is_the_classic_keras_recipe_and_128_is_the_default():
    arch = architecture((28, 28, 1), 2, hidden_units=16)      # the classic Keras recipe
    assert arch["filters"] == [32, 64] and arch["dense"] == 16 and arch["grid"] == (7, 7)
    assert architecture((28, 28, 1), 2)["dense"] == 128 and architecture((28, 28, 1), 64)["dense"] == 128
    assert architecture((8, 8, 1), 2, hidden_units=300)["dense"] == 300
    vae = build_vae((28, 28, 1), 2)
    convs = [l for l in vae.encoder.layers if isinstance(l, keras.layers.Conv2D)]
    assert [(c.filters, c.strides) for c in convs] == [(32, (2, 2)), (64, (2, 2))]


@pytest.mark.parametrize("bad", [((4, 4, 1), 2), ((256, 256, 1), 2), ((28, 28, 5), 2), ((28, 28, 1), 0),
                                 ((28, 28, 1), 65)])
def test_bad_shapes_are_refused_with_a_reason(bad):
    with pytest.raises(ValueError, match="must|outside"):
        architecture(*bad)


def test_epoch_loss_is_reconstruction_plus_beta_kl():
    rng = np.random.default_rng(0)
    x = (rng.random((256, 16, 16, 1)) > 0.5).astype("float32")
    vae = build_vae((16, 16, 1), 3, beta=3.5, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    h = vae.fit(x, batch_size=64, epochs=2, validation_data=(x[:64],), verbose=0).history
    for prefix in ("", "val_"):
        for epoch in range(2):
            recon, kl, loss = (h[f"{prefix}{k}"][epoch] for k in ("reconstruction_loss", "kl_loss", "loss"))
            assert loss == pytest.approx(recon + 3.5 * kl, rel=1e-5, abs=1e-4)
            assert h[f"{prefix}neg_elbo"][epoch] == pytest.approx(recon + kl, rel=1e-5, abs=1e-4)
    # nats per image: BCE of 256 fair coins is at least 256·log 2 for a model that cannot know them
    assert h["val_reconstruction_loss"][-1] > 0.9 * 256 * math.log(2)


def test_gaussian_likelihood_is_a_density_in_nats():
    vae = build_vae((8, 8, 1), 2, likelihood="gaussian", gaussian_sigma=0.1)
    x = np.full((1, 8, 8, 1), 0.5, np.float32)
    nll = float(vae.reconstruction_nll(x, x)[0])  # perfect mean: only the normaliser is left
    assert nll == pytest.approx(64 * (math.log(0.1) + 0.5 * math.log(2 * math.pi)), rel=1e-5)


def test_save_load_decode_identical(tmp_path):
    vae = build_vae((16, 16, 1), 2, seed=1)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = np.random.default_rng(1).random((64, 16, 16, 1)).astype("float32")
    vae.fit(x, batch_size=32, epochs=1, verbose=0)
    vae.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded, VAE)
    z = np.random.default_rng(2).standard_normal((5, 2)).astype("float32")
    np.testing.assert_array_equal(Decoder.from_model(vae).decode(z), Decoder.from_model(loaded).decode(z))
    np.testing.assert_array_equal(encode(vae, x)[0], encode(loaded, x)[0])


def test_latent_helpers_shapes_and_orientation():
    vae = build_vae((8, 8, 1), 3, seed=0)
    dec = Decoder.from_model(vae)
    mosaic = decode_grid(dec, (-2, 2), (-1, 1), n=5)
    assert mosaic.shape == (40, 40, 1) and 0 <= mosaic.min() and mosaic.max() <= 1
    # the grid's tile (row r, col c) is the decode of the matching grid point, top row = highest y
    top_left = dec.decode(np.array([[-2.0, 1.0, 0.0]], np.float32))[0]
    np.testing.assert_allclose(mosaic[:8, :8], top_left, atol=1e-6)
    assert traversal(dec, np.zeros(3), 1, np.linspace(-3, 3, 7)).shape == (7, 8, 8, 1)
    strip = interpolate(dec, np.zeros(3), np.ones(3), steps=4)
    np.testing.assert_allclose(strip[-1], dec.decode(np.ones((1, 3)))[0], atol=1e-6)
    z = np.random.default_rng(0).standard_normal((200, 3)) * np.array([3.0, 1.0, 0.01])
    pca = PCA(z)
    assert abs(pca.components[0][0]) > 0.99  # the widest direction first
    np.testing.assert_allclose(pca.transform(pca.inverse(np.array([[0.5, -0.2]]))), [[0.5, -0.2]], atol=1e-5)
    lo, hi = grid_range(z)
    assert lo[0] < -4 and hi[0] > 4
    assert tile(np.zeros((2, 3, 4, 5, 1))).shape == (8, 15, 1)
    assert list(nearest(np.array([[0.0], [5.0], [1.0]]), [0.9], k=2)) == [2, 0]

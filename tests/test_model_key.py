"""`ModelKey`: the frozen key a window names a decoder by (latentlab's own likelihood or a Keras file)."""

import dataclasses

import pytest

from latentlab.model.key import ModelKey


def test_a_key_is_normalised_frozen_and_hashable():
    a = ModelKey([28, 28, 1], "2", "bernoulli")
    b = ModelKey((28, 28, 1), 2, "bernoulli")
    assert a == b and hash(a) == hash(b)
    assert a.image_shape == (28, 28, 1) and a.latent_dim == 2 and a.keras_file is None
    assert a != ModelKey((28, 28, 1), 2, "gaussian")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.latent_dim = 3


def test_a_key_names_a_likelihood_or_a_keras_file_never_both_or_neither(tmp_path):
    foreign = ModelKey((28, 28, 1), 2, keras_file=tmp_path / "decoder.keras")
    assert foreign.keras_file == str(tmp_path / "decoder.keras") and foreign.likelihood is None
    assert foreign != ModelKey((28, 28, 1), 2, "bernoulli")
    with pytest.raises(ValueError, match="one of them"):
        ModelKey((28, 28, 1), 2, "bernoulli", keras_file="d.keras")
    with pytest.raises(ValueError, match="one of them"):
        ModelKey((28, 28, 1), 2)

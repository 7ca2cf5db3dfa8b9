"""Checkpoints do not rebuild Keras' reference objects on every save (a Keras cache miss that
leaked ~40 KB of native memory per save: +300 MB over an hour of one-second epochs)."""

import keras
import numpy as np

from latentlab.runs import folder as runs
from latentlab.model.vae import build_vae


def test_saving_a_model_again_builds_no_reference_layers_or_optimizers(tmp_path, monkeypatch):
    from keras.src.layers import layer as layer_module
    from keras.src.optimizers import optimizer as optimizer_module

    vae = build_vae((12, 12, 1), 2, hidden_units=8)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(np.random.default_rng(0).random((32, 12, 12, 1), dtype=np.float32), epochs=1, batch_size=16, verbose=0)
    runs.atomic_save_model(vae, tmp_path / "a.keras")          # the first save may build them once

    made = {"layers": 0, "optimizers": 0}

    class CountingLayer(layer_module.Layer):
        def __init__(self, *a, **k):
            made["layers"] += 1
            super().__init__(*a, **k)

    class CountingOptimizer(optimizer_module.Optimizer):
        def __init__(self, *a, **k):
            made["optimizers"] += 1
            super().__init__(*a, **k)

    # get_attr_skipset imports these names from their modules at call time
    monkeypatch.setattr(layer_module, "Layer", CountingLayer)
    monkeypatch.setattr(optimizer_module, "Optimizer", CountingOptimizer)
    for i in range(3):
        runs.atomic_save_model(vae, tmp_path / f"b{i}.keras")
    assert made == {"layers": 0, "optimizers": 0}
    monkeypatch.undo()
    # and what was saved still loads, with the same weights
    back = keras.saving.load_model(tmp_path / "b2.keras", safe_mode=True)
    for part in ("encoder", "decoder"):
        for a, b in zip(getattr(back, part).get_weights(), getattr(vae, part).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)

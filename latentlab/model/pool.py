"""`ModelPool`: built, compiled VAEs kept for the next run of the same shape, so that a process that
trains many runs (the app, a β sweep) builds and traces each model shape once."""

from __future__ import annotations

import threading

import numpy as np

from latentlab.config import TrainConfig

__all__ = ["ModelPool"]


class ModelPool:
    """Built, compiled VAEs kept for the next run of the same shape.

    TensorFlow/Keras keep ~20–30 MB for every model built and traced in a process, and neither
    garbage collection nor ``keras.backend.clear_session()`` gives it back (keras-team/keras#17458,
    tensorflow/tensorflow#61791). A process that trains many runs (the app, a β sweep) therefore hands
    its trainers one pool: a run whose image shape, latent size, likelihood and dtype policy match
    a finished run's gets that model back, re-initialised exactly as a new model with the run's seed
    (same weights, fresh optimizer state, the seed generator restarted), and nothing is traced again.

    A model is handed to one trainer at a time (``acquire``) and comes back with ``release``.
    Thread-safe; Keras is imported on first use, not here.
    """

    def __init__(self, max_idle: int = 2):
        self.max_idle = int(max_idle)
        self._idle: dict = {}          # key -> model, oldest first
        self._lock = threading.Lock()
        self.built = 0                 # models built by acquire (the rest were reused)
        self.reused = 0

    @staticmethod
    def key_of(image_shape, latent_dim: int, hidden: int, likelihood: str, gaussian_sigma: float,
               policy: str) -> tuple:
        return (tuple(int(v) for v in image_shape), int(latent_dim), int(hidden), str(likelihood),
                float(gaussian_sigma), str(policy))

    @staticmethod
    def model_key(model) -> tuple:
        import keras

        hidden = [layer.units for layer in model.encoder.layers if isinstance(layer, keras.layers.Dense)
                  and layer.name not in ("z_mean", "z_log_var")][-1]
        return ModelPool.key_of(model.image_shape, model.latent_dim, hidden, model.likelihood,
                                model.gaussian_sigma, model.dtype_policy.name)

    def acquire(self, image_shape, config: TrainConfig):
        """A compiled VAE for ``config`` initialised from ``config.seed``, built or reused.
        Call with the global dtype policy set as the run wants it."""
        import keras

        from latentlab.model.vae import architecture, build_vae

        cfg = config
        hidden = architecture(image_shape, cfg.latent_dim, cfg.hidden_units)["dense"]
        key = self.key_of(image_shape, cfg.latent_dim, hidden, cfg.likelihood, cfg.gaussian_sigma,
                          keras.mixed_precision.global_policy().name)
        with self._lock:
            model = self._idle.pop(key, None)
        keras.utils.set_random_seed(cfg.seed)
        fresh = build_vae(image_shape, cfg.latent_dim, beta=cfg.beta, likelihood=cfg.likelihood, seed=cfg.seed,
                          gaussian_sigma=cfg.gaussian_sigma, hidden_units=cfg.hidden_units)
        if model is None:
            fresh.compile(optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate))
            with self._lock:
                self.built += 1
            return fresh
        # Reuse: the new model only lends its initial values (building variables traces nothing).
        model.set_weights(fresh.get_weights())
        model.seed_generator.state.assign(fresh.seed_generator.state.value)
        model.seed = cfg.seed
        opt = model.optimizer
        for v in opt.variables:
            v.assign(np.zeros(v.shape, dtype=v.dtype))
        opt.learning_rate = cfg.learning_rate
        for m in (*model.metrics, model.kl_per_dim_tracker):
            m.reset_state()
        with self._lock:
            self.reused += 1
        return model

    def acquire_saved(self, image_shape, config: TrainConfig, model_file):
        """A pooled VAE for ``config`` holding the weights *and* optimizer state saved in ``model_file``
        (a run's model.keras, read as weights only: no code in it runs), as ``keras.models.load_model``
        would give them, without building and tracing another model. ValueError (after giving the
        model back) when the file does not fit ``config``'s architecture."""
        model = self.acquire(image_shape, config)
        try:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(str(model_file))
            if int(model.optimizer.iterations.numpy()) == 0:   # Keras only warns when it skips that state
                raise ValueError("no optimizer state")
        except Exception as e:
            self.release(model)
            raise ValueError(f"{model_file} does not fit the run's settings ({e})") from None
        return model

    def release(self, model) -> None:
        """Give a model back once its run is over (any compiled VAE; the newest one per key is kept)."""
        if model is None or getattr(model, "optimizer", None) is None:
            return
        try:
            key = self.model_key(model)
        except Exception:  # not a latentlab VAE
            return
        with self._lock:
            self._idle.pop(key, None)
            self._idle[key] = model
            while len(self._idle) > self.max_idle:
                self._idle.pop(next(iter(self._idle)))

    def idle(self) -> int:
        with self._lock:
            return len(self._idle)

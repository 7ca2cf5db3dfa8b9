"""TensorFlow in a long-lived process (the app): one import at a time, the device that trains, the
process's model pool, and the decoders a window uses. No Qt here: the GUI's workers call these on
their own threads.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # (importing them here would import TensorFlow)
    from latentlab.model.foreign import ForeignDecoder
    from latentlab.model.key import ModelKey
    from latentlab.model.latent import Decoder
    from latentlab.model.pool import ModelPool

__all__ = ["import_tensorflow", "training_device", "model_pool", "build_decoders"]

_POOL_LOCK = threading.Lock()
_MODEL_POOL: ModelPool | None = None


def import_tensorflow() -> None:
    """Import TensorFlow, Keras and the model module once, one thread at a time (quietly): two threads
    importing TensorFlow at the same moment can deadlock on Python's module locks."""
    from latentlab import tfquiet

    with tfquiet.TF_LOCK:
        tfquiet.import_tensorflow()
        import latentlab.model.vae  # noqa: F401


def training_device() -> str:
    """'CPU' or 'GPU: <name>' for the device TensorFlow will train on."""
    from latentlab.tfquiet import import_tensorflow as quiet_import, quiet_stderr

    tf = quiet_import()
    with quiet_stderr():  # the CUDA probe logs an error line on machines without a GPU
        gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    try:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name") or gpus[0].name
    except Exception:
        name = gpus[0].name
    return f"GPU: {name}" + (f" (+{len(gpus) - 1} more)" if len(gpus) > 1 else "")


def model_pool() -> ModelPool:
    """The process's `latentlab.model.pool.ModelPool`: every training run in this process (Train, sweeps)
    reuses a built model of the same shape instead of building another, because TensorFlow keeps
    ~20–30 MB per model built for the life of the process."""
    global _MODEL_POOL
    with _POOL_LOCK:
        if _MODEL_POOL is None:
            from latentlab.model.pool import ModelPool

            _MODEL_POOL = ModelPool()
        return _MODEL_POOL


def build_decoders(key: ModelKey) -> tuple[Decoder | ForeignDecoder, ...]:
    """Two warmed-up `latentlab.model.latent.Decoder`s for a `latentlab.model.key.ModelKey`: one for grids,
    one for single points on the GUI thread.

    Building and tracing Keras/TensorFlow graphs in two threads at once can crash TensorFlow, so a
    caller runs this on the training thread before training starts, or on the grid thread only while
    nothing trains. Afterwards the decoders only execute (eager), from any thread. A key that names a
    Keras file (`latentlab.model.foreign`) gets two `ForeignDecoder`s of that file."""
    from latentlab.model.foreign import ForeignDecoder
    from latentlab.model.latent import Decoder
    from latentlab.tfquiet import GRAPH_LOCK

    import_tensorflow()
    decoders: list[Decoder | ForeignDecoder] = []
    for _ in range(2):
        with GRAPH_LOCK:   # one thread builds and traces at a time (latentlab.tfquiet.GRAPH_LOCK)
            dec = (ForeignDecoder(key.keras_file) if key.keras_file
                   else Decoder(key.image_shape, key.latent_dim, str(key.likelihood)))   # (a key names one)
            dec.warm_up()
        decoders.append(dec)
    return tuple(decoders)

"""Import TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ side prints absl and CUDA-stub lines at import and when it first lists devices
(before TF_CPP_MIN_LOG_LEVEL can apply to them). Users get one clear line per error from
latentlab, so those moments run with file descriptor 2 pointed at a temporary file; if they
fail, what was printed is replayed.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
import threading
from typing import Any, Iterator

TF_LOCK = threading.RLock()  # two threads importing TensorFlow at once can deadlock on module locks
# Building Keras models and tracing tf.functions in two threads at once can crash TensorFlow (a segfault
# in graph code was seen with a decoder traced on one thread while Keras files loaded on another): every
# such build in a long-lived process (loading a Keras file, a Decoder made and warmed up) takes this lock.
# The GUI thread never takes it (it only runs what is built), nor does training after its model is built.
GRAPH_LOCK = threading.RLock()


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence fd 2 (C++ logging included) for the block; replay it if the block raises."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (e.g. some GUI launchers)
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def configure_environment() -> None:
    """TensorFlow settings latentlab chooses, set before TensorFlow is imported; a value the user has
    set already is kept.

    ``TF_ENABLE_ONEDNN_OPTS=1`` on x86-64: TensorFlow's oneDNN kernels are on by default only on CPUs with
    AVX-512 VNNI/BF16 or AMX, not on AVX2 CPUs such as most laptops and the 2-core AMD EPYC machines
    this was measured on, where they train faster: 1.07-1.18x on the 28x28 models and 1.3x on a
    64x64 RGB model (docs/benchmarks.md; ``python -m benchmarks.lockstep onednn`` measures a CPU).
    ``TF_ENABLE_ONEDNN_OPTS=0`` in the environment turns them off. Too late once TensorFlow is imported
    (it reads the variable once): `import latentlab` calls this."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if platform.machine().lower() in ("x86_64", "amd64"):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its oneDNN CPU kernels in this process (None where it cannot tell)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def import_tensorflow() -> Any:
    """Import and return ``tensorflow`` (and Keras) quietly, once, one thread at a time."""
    with TF_LOCK:
        if "tensorflow" in sys.modules and "keras" in sys.modules:
            return sys.modules["tensorflow"]
        # configure_environment() has run already: importing this module ran latentlab/__init__.py
        with quiet_stderr():
            import tensorflow
            import keras  # noqa: F401  (its own first-import messages too)

            tensorflow.config.list_physical_devices()  # the CUDA probe logs on machines without a GPU
        return tensorflow

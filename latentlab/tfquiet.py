"""Import TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ side prints absl and CUDA-stub lines at import (before TF_CPP_MIN_LOG_LEVEL can
apply to them). Users get one clear line per error from latentlab, so the import runs with file
descriptor 2 pointed at a temporary file; if the import fails, what it printed is replayed.
"""

from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow():
    """Import and return ``tensorflow`` quietly (a no-op after the first import)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (e.g. some GUI launchers)
        import tensorflow

        return tensorflow
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow
            import keras  # noqa: F401  (its own first-import messages too)
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tensorflow

"""Keras model files from elsewhere: loaded with Keras' ``safe_mode=True`` (no code from the file runs), and
refused in one line that names what was refused — a Lambda layer (Python code), a class outside Keras
and latentlab — read from the file's config.json as JSON, never run.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

__all__ = ["KerasFileError", "load_keras_file", "refused_names"]

_OWN_MODULES = ("keras", "latentlab", "builtins")


class KerasFileError(ValueError):
    """A Keras file cannot be opened. ``str(e)`` is one line: what, which file, what to do."""


def refused_names(path) -> tuple[list[str], list[str]]:
    """(Lambda layers, classes outside Keras and latentlab) named in a .keras file's config, at most
    three of each; empty lists when the config cannot be read."""
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
    except Exception:
        return [], []
    lambdas, foreign = [], []

    def walk(node):
        if isinstance(node, dict):
            cls, module = node.get("class_name"), node.get("module")
            if isinstance(cls, str) and not (cls.startswith("__") and cls.endswith("__")):
                if cls == "Lambda":
                    name = (node.get("config") or {}).get("name") if isinstance(node.get("config"), dict) else None
                    lambdas.append(f"Lambda layer '{name}'" if name else "a Lambda layer")
                elif cls == "function":
                    fn = node.get("config")
                    if isinstance(fn, str) and (">" in fn or not isinstance(module, str)
                                                or module.split(".")[0] not in _OWN_MODULES):
                        foreign.append(f"function {fn}")
                elif not isinstance(module, str) or module.split(".")[0] not in _OWN_MODULES:
                    registered = node.get("registered_name")
                    if not (isinstance(registered, str) and registered.startswith("latentlab>")):
                        foreign.append(f"{module}.{cls}" if isinstance(module, str) else str(registered or cls))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    return sorted(set(lambdas))[:3], sorted(set(foreign))[:3]


def load_keras_file(path, advice: str, *, missing: str | None = None, damaged: str | None = None,
                    compile: bool = False):
    """``keras.models.load_model(path, safe_mode=True)``, or KerasFileError with one line. ``advice`` ends
    a refusal (what the person can do); ``missing`` / ``damaged`` replace the line for a missing file or
    one that is not a Keras file at all."""
    import keras

    import latentlab.model.vae  # noqa: F401  (registers VAE, VectorMean)

    path = Path(path)
    if not path.is_file():
        if missing:
            raise KerasFileError(missing)
        raise KerasFileError(f"{path} is a folder, not a Keras model file (.keras)" if path.exists()
                             else f"{path} does not exist")
    if not zipfile.is_zipfile(path):
        raise KerasFileError(damaged or f"{path} is damaged or not a Keras model file (.keras, saved with model.save)")
    try:
        from latentlab.tfquiet import GRAPH_LOCK

        with GRAPH_LOCK:   # one model built at a time in the process
            return keras.models.load_model(path, safe_mode=True, compile=compile)
    except Exception as e:  # Keras raises ValueError/TypeError for unsafe or damaged files
        text = " ".join(str(e).split()) or type(e).__name__
        lambdas, foreign = refused_names(path)
        if lambdas or "safe_mode" in text or "lambda" in text.lower():
            what = ", ".join(lambdas) or "a Lambda layer"
            raise KerasFileError(f"{path} was refused: it contains code ({what}), which safe mode does not run; "
                                 f"{advice}") from None
        if foreign or "could not be deserialized" in text or "Could not locate" in text:
            what = f" ({', '.join(foreign)})" if foreign else ""
            raise KerasFileError(f"{path} was refused: it names code outside Keras and latentlab{what}; "
                                 f"{advice}") from None
        raise KerasFileError(f"{path} could not be loaded ({text[:200]})") from None

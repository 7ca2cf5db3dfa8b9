"""The bundled Fashion-MNIST sample as a folder on disk (extracted once when installed as a zip)."""

from __future__ import annotations

import atexit
import contextlib
import pathlib
import tempfile
import threading

from latentlab.messages import printable as _printable
from latentlab.data.dataset import DatasetError

_sample_stack = contextlib.ExitStack()
_sample_lock = threading.Lock()
_sample_path: pathlib.Path | None = None


def sample_dataset_path() -> pathlib.Path:
    """The bundled Fashion-MNIST sample (10 class folders, 3,000 PNGs) as a real folder on disk.
    Installed normally the files are on disk already; from a zip they are extracted once per process."""
    global _sample_path
    from importlib import resources

    with _sample_lock:
        if _sample_path is not None:
            return _sample_path
        ref = resources.files("latentlab.resources") / "sample" / "fashion-mnist"
        if isinstance(ref, pathlib.Path):
            path = ref
        else:
            try:
                path = _sample_stack.enter_context(resources.as_file(ref))   # directories: Python >= 3.12
            except (TypeError, AttributeError, IsADirectoryError, PermissionError):
                path = _extract_tree(ref)
            atexit.register(_sample_stack.close)
        if not pathlib.Path(path).is_dir():
            raise DatasetError(f"the bundled sample dataset is missing ({_printable(str(path))}): "
                               "reinstall latentlab")
        _sample_path = pathlib.Path(path)
        return _sample_path


def _extract_tree(ref) -> pathlib.Path:
    tmp = pathlib.Path(_sample_stack.enter_context(tempfile.TemporaryDirectory(prefix="latentlab-sample-")))

    def copy(src, dst: pathlib.Path) -> None:
        dst.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            if child.is_dir():
                copy(child, dst / child.name)
            else:
                (dst / child.name).write_bytes(child.read_bytes())

    copy(ref, tmp / "fashion-mnist")
    return tmp / "fashion-mnist"

"""Arrays as datasets: a ``.npz`` (arrays ``x`` and optional ``y``, or ``x_train``/``y_train`` as
``keras.datasets`` returns them), a ``.npy`` of images, or IDX files (MNIST's format, gzip or not: one
``*-images-idx3-ubyte[.gz]`` file, or a folder holding them with their ``*-labels-idx1-ubyte[.gz]``,
as Debian's dataset-fashion-mnist installs it). Each is checked with a one-line reason, like folders."""

from __future__ import annotations

import gzip
import os
import re
import time
import zipfile
from typing import Any

import numpy as np

from latentlab.messages import one_line
from latentlab.messages import printable as _printable
from latentlab.data.dataset import Dataset, DatasetError, LoadReport
from latentlab.data.decode import MAX_IMAGE_SIDE, MIN_IMAGE_SIZE, _choose_size, _fit_array

ARRAY_SUFFIXES = (".npz", ".npy")
_IDX_RE = re.compile(r"idx[13]-ubyte(\.gz)?$|\.idx[13]?(\.gz)?$", re.IGNORECASE)
_IDX_TYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _is_idx_name(name: str) -> bool:
    return bool(_IDX_RE.search(name))


def _idx_files(folder: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(folder) if _is_idx_name(n) and not n.startswith("."))
    except OSError:
        return []


def is_array_source(path) -> bool:
    """True for a .npz/.npy file, an IDX file, or a folder that holds IDX files (and is then read as arrays)."""
    try:
        p = os.fspath(path)
    except TypeError:
        return False
    if os.path.isfile(p):
        return p.lower().endswith(ARRAY_SUFFIXES) or _is_idx_name(os.path.basename(p))
    if os.path.isdir(p):
        return any("idx3" in n.lower() or "images" in n.lower() for n in _idx_files(p))
    return False


def read_idx(path: str) -> np.ndarray:
    """One IDX file (gzip or not) as an array; DatasetError with one line when it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot read IDX file {_printable(path)}: {one_line(e, 160)}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES or not 1 <= data[3] <= 4:
        raise DatasetError(f"{_printable(path)} is not an IDX file (its first bytes are not an IDX header)")
    dtype, ndim = np.dtype(_IDX_TYPES[data[2]]), data[3]
    if len(data) < 4 + 4 * ndim:
        raise DatasetError(f"{_printable(path)}: IDX header cut short")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    start, count = 4 + 4 * ndim, int(np.prod(shape))
    if len(data) - start < count * dtype.itemsize:
        raise DatasetError(f"{_printable(path)}: IDX file cut short ({shape} of {dtype} announced, "
                           f"{len(data) - start:,} bytes of data)")
    return np.frombuffer(data, dtype, count, start).reshape(shape)


def _pick_idx(folder: str) -> tuple[str, str | None, str]:
    """(images file, labels file or None, a note on what was used) in an IDX folder."""
    names = _idx_files(folder)
    images = [n for n in names if "idx3" in n.lower() or "images" in n.lower()]
    train = [n for n in images if "train" in n.lower()]
    if not images:
        raise DatasetError(f"no IDX image file in {_printable(folder)} (expected e.g. train-images-idx3-ubyte.gz)")
    if len(images) > 1 and not train:
        raise DatasetError(f"{_printable(folder)} holds several IDX image files ({', '.join(images)}): "
                           "open the one to use")
    img = (train or images)[0]
    stem = img.lower().replace("images-idx3", "labels-idx1").replace("images", "labels")
    labels = next((n for n in names if n.lower() == stem), None)
    unused = [n for n in names if n not in (img, labels)]
    note = f"Arrays: {img}" + (f" with labels {labels}" if labels else " (no labels file)")
    if unused:
        note += f"; not used: {', '.join(unused)} (the test split)" if train else f"; not used: {', '.join(unused)}"
    return os.path.join(folder, img), (os.path.join(folder, labels) if labels else None), note


def _read_source(path: str) -> tuple[np.ndarray, np.ndarray | None, str, str]:
    """(images, labels or None, source kind, note)."""
    base = os.path.basename(path)
    if os.path.isdir(path):
        img, lab, note = _pick_idx(path)
        return read_idx(img), (read_idx(lab) if lab else None), "idx", note
    if _is_idx_name(base):
        stem = base.lower().replace("images-idx3", "labels-idx1").replace("images", "labels")
        lab = next((os.path.join(os.path.dirname(path), n) for n in _idx_files(os.path.dirname(path) or ".")
                    if n.lower() == stem and n != base), None)
        note = f"Arrays: {base}" + (f" with labels {os.path.basename(lab)}" if lab else " (no labels file)")
        return read_idx(path), (read_idx(lab) if lab else None), "idx", note
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise DatasetError(f"cannot read {_printable(path)}: {one_line(e, 160)} (object arrays are not read: "
                           "save plain numeric arrays)") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"cannot read {_printable(path)}: {one_line(e, 160)}") from None
    if isinstance(loaded, np.ndarray):
        return loaded, None, "npy", f"Arrays: {base} ({loaded.shape})"
    with loaded as z:
        keys = list(z.files)
        for x_key, y_key in (("x", "y"), ("x_train", "y_train"), ("images", "labels")):
            if x_key in keys:
                x = z[x_key]
                y = z[y_key] if y_key in keys else None
                used = [x_key] + ([y_key] if y is not None else [])
                break
        else:
            if len(keys) == 1:
                x, y, used = z[keys[0]], None, keys[:1]
            else:
                raise DatasetError(f"{_printable(path)} holds arrays {', '.join(keys) or '(none)'}: expected x "
                                   "(and y), or x_train (and y_train) as keras.datasets returns them")
    unused = [k for k in keys if k not in used]
    note = f"Arrays: {' and '.join(used)} of {base}" + (f"; not used: {', '.join(unused)}" if unused else "")
    return x, y, "npz", note


def _as_images(x: np.ndarray, path: str) -> np.ndarray:
    """(N, H, W, C) float32 in [0, 1]; channel-first (N, C, H, W) is turned round."""
    if x.ndim == 3:
        x = x[..., None]
    elif x.ndim == 4 and x.shape[-1] not in (1, 2, 3, 4) and x.shape[1] in (1, 3, 4):
        x = np.moveaxis(x, 1, -1)
    if x.ndim != 4 or x.shape[-1] not in (1, 2, 3, 4) or x.shape[0] == 0:
        raise DatasetError(f"{_printable(path)}: images must be (N, height, width) or (N, height, width, 1|3), "
                           f"not {x.shape}")
    if x.dtype == np.uint8:
        return np.multiply(x, np.float32(1 / 255), dtype=np.float32)
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    lo: float   # the values' range
    hi: float
    if np.issubdtype(x.dtype, np.integer):
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 65535:
            raise DatasetError(f"{_printable(path)}: integer images must be 0..255 (or 0..65535), not {lo}..{hi}")
        return np.multiply(x, np.float32(1 / (255 if hi <= 255 else 65535)), dtype=np.float32)
    if np.issubdtype(x.dtype, np.floating):
        x = np.asarray(x, np.float32)
        lo, hi = float(np.min(x)), float(np.max(x))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise DatasetError(f"{_printable(path)}: the images hold NaN or infinite values")
        if lo < 0.0 or hi > 1.0:
            if lo >= 0.0 and hi <= 255.0:
                return x * np.float32(1 / 255)
            raise DatasetError(f"{_printable(path)}: float images must be in [0, 1] (or 0..255), not {lo:g}..{hi:g}")
        return x
    raise DatasetError(f"{_printable(path)}: images must be numbers, not {x.dtype}")


def _as_labels(y, n: int, path: str) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.shape[0] == n and y.shape[1] > 1:   # one-hot
        y = y.argmax(axis=1)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{_printable(path)}: labels must be {n:,} whole numbers (one per image), "
                           f"not {y.dtype} {y.shape}")
    if n and int(y.min()) < 0:
        raise DatasetError(f"{_printable(path)}: labels must be 0 or more, not {int(y.min())}")
    return y.astype(np.int32)


def load_arrays(path, size=None, color: str = "auto", *, fit: str = "pad", progress=None) -> Dataset:
    """A :class:`Dataset` from arrays (see the module): images brought to ``size`` (default: their own,
    scaled down to 64 a side at most) and ``color`` like a folder's."""
    t0 = time.perf_counter()
    path = os.path.abspath(os.fspath(path))
    x, y, kind, note = _read_source(path)
    images = _as_images(np.asarray(x), path)
    labels = _as_labels(y, len(images), path)
    if progress is not None:
        progress(0, len(images))
    h, w = images.shape[1:3]
    reason = "the arrays' own size"
    if size is None:
        size, why = _choose_size([(h, w)])
        if tuple(size) != (h, w):
            reason += why.split(" (100% of the images)", 1)[-1]
    if min(h, w) < MIN_IMAGE_SIZE and size == (h, w):
        raise DatasetError(f"{_printable(path)}: images of {h}×{w} are smaller than {MIN_IMAGE_SIZE} pixels a side")
    if tuple(size) != (h, w):
        if max(size) > MAX_IMAGE_SIDE:
            raise DatasetError(f"image size {size} is over {MAX_IMAGE_SIDE} pixels a side")
        images = np.stack([_fit_array(im, tuple(size), fit, (0.0,) * im.shape[-1]) for im in images])
        reason += f"; resized from {h}×{w}"
    c = images.shape[-1]
    if color == "gray" and c in (3, 4):
        lum = images[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        images = np.concatenate([lum[..., None], images[..., 3:]], axis=-1)
    elif color == "rgb" and c in (1, 2):
        images = np.concatenate([np.repeat(images[..., :1], 3, axis=-1), images[..., 1:]], axis=-1)
    ds = Dataset.from_arrays(np.ascontiguousarray(images, dtype=np.float32), labels, root=path)
    ds.report = LoadReport(source=kind, fit=fit, size_reason=reason, note=note,
                           size_spread=f"all {len(images):,} images are {h}×{w} (height×width)")
    ds.paths = [f"{os.path.basename(path)}[{i}]" for i in range(len(images))]
    ds.load_seconds = time.perf_counter() - t0
    if progress is not None:
        progress(len(images), len(images))
    return ds

"""Fashion-MNIST from Debian's dataset-fashion-mnist (IDX gzip files), as float32 arrays in [0, 1]."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
SHARED_PNG = Path("/tmp/fmnist_png/train")
OWN_PNG = Path(tempfile.gettempdir()) / "fmnist_png_bench"


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split: str = "train", root: Path = FMNIST_DIR) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    img = root / f"{prefix}-images-idx3-ubyte.gz"
    if not img.is_file():
        raise SystemExit(f"{img} is missing: install it with 'apt-get install dataset-fashion-mnist'")
    x = read_idx(img).astype(np.float32)[..., None] / 255.0
    y = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int32)
    return x, y


def png_folder(count: int) -> Path:
    """A folder of Fashion-MNIST training PNGs in class folders: the shared 60k copy when it is complete,
    else written here (``count`` images)."""
    if count >= 60_000 and SHARED_PNG.is_dir():
        n = sum(len(files) for _, _, files in os.walk(SHARED_PNG))
        if n >= 60_000:
            return SHARED_PNG
    root = OWN_PNG / f"train{count}"
    marker = root / ".complete"
    if marker.is_file():
        return root
    from PIL import Image

    from benchmarks.common import log

    log(f"writing {count} PNGs to {root}")
    x, y = load("train")
    if root.exists():
        shutil.rmtree(root)
    for c in range(10):
        (root / str(c)).mkdir(parents=True)
    for i in range(count):
        Image.fromarray((x[i, :, :, 0] * 255).round().astype(np.uint8), mode="L").save(root / str(int(y[i])) / f"{i}.png")
    marker.write_text("ok")
    return root

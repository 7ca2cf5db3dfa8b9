"""Fashion-MNIST from Debian's dataset-fashion-mnist (IDX gzip files), as float32 arrays in [0, 1]."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


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

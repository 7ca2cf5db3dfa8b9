#!/usr/bin/env python3
"""Write Fashion-MNIST images as PNG class folders.

Default: the bundled sample, 300 images per class (3,000) from the TRAIN split, chosen with a fixed
seed, into ``latentlab/resources/sample/fashion-mnist/<ClassName>/<index>.png`` (``index`` = position in the
train split), together with LICENSE.txt and README.txt. Running it again gives the same files.

    .venv/bin/python scripts/make_sample_dataset.py
    .venv/bin/python scripts/make_sample_dataset.py --full /tmp/fmnist_png/train --split train

``--full OUT_DIR`` writes the whole split (60,000 train / 10,000 test images) as a class-folder tree,
for benchmarks. The source is Debian's ``dataset-fashion-mnist`` package (IDX gzip files).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import struct
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

SOURCE_DIR = Path("/usr/share/datasets/fashion-mnist")
COPYRIGHT_FILE = Path("/usr/share/doc/dataset-fashion-mnist/copyright")
CLASS_NAMES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]
PER_CLASS = 300
SEED = 20240601
REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "latentlab" / "resources" / "sample" / "fashion-mnist"

SPLIT_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
               "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}

MIT_LICENSE = """\
The MIT License (MIT)

Copyright © 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""

README = f"""\
Fashion-MNIST sample (bundled with latentlab)

{PER_CLASS} images per class, {PER_CLASS * len(CLASS_NAMES)} in all, 28x28 8-bit grayscale PNG, taken
from the TRAIN split of Fashion-MNIST with a fixed seed ({SEED}) by scripts/make_sample_dataset.py.
File names are the images' positions in the train split (train-images-idx3-ubyte).

Source: Fashion-MNIST by Zalando Research, https://github.com/zalandoresearch/fashion-mnist
(via Debian's dataset-fashion-mnist package).
Licence: MIT (see LICENSE.txt). Copyright (c) 2017 Zalando SE.
"""


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzip-compressed) as a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(split: str, source_dir: Path = SOURCE_DIR) -> tuple[np.ndarray, np.ndarray]:
    images_name, labels_name = SPLIT_FILES[split]
    images, labels = read_idx(source_dir / images_name), read_idx(source_dir / labels_name)
    if len(images) != len(labels):
        raise ValueError(f"{source_dir}: {len(images)} images but {len(labels)} labels in the {split} split")
    return images, labels


def write_idx_as_png_folder(images: np.ndarray, labels: np.ndarray, out_dir, indices=None, *,
                            class_names=CLASS_NAMES, prefix: str = "", workers: int = 4) -> int:
    """Write ``images[i]`` (uint8, H×W) as ``out_dir/<class_names[labels[i]]>/<prefix><i>.png`` for
    each ``i`` in ``indices`` (all images when None). Returns the number of files written."""
    from PIL import Image

    out_dir = Path(out_dir)
    indices = np.arange(len(images)) if indices is None else np.asarray(indices)
    for name in class_names:
        (out_dir / name).mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(images) - 1)))

    def write(i: int) -> None:
        path = out_dir / class_names[int(labels[i])] / f"{prefix}{int(i):0{width}d}.png"
        Image.fromarray(np.ascontiguousarray(images[i]), mode=None).save(path, format="PNG")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(write, (int(i) for i in indices), chunksize=256))
    return len(indices)


def sample_indices(labels: np.ndarray, per_class: int = PER_CLASS, seed: int = SEED) -> np.ndarray:
    """``per_class`` indices of each class, chosen with ``seed`` (sorted)."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(len(CLASS_NAMES))]
    return np.sort(np.concatenate(chosen))


def make_sample(out_dir: Path = SAMPLE_DIR) -> int:
    images, labels = load_split("train")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    n = write_idx_as_png_folder(images, labels, out_dir, sample_indices(labels))
    (out_dir / "LICENSE.txt").write_text(MIT_LICENSE)
    (out_dir / "README.txt").write_text(README)
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", metavar="OUT_DIR", help="write the whole split as PNG class folders into OUT_DIR")
    p.add_argument("--split", choices=sorted(SPLIT_FILES), default="train", help="split for --full (default train)")
    p.add_argument("--source", default=str(SOURCE_DIR), help="folder with the IDX .gz files")
    args = p.parse_args(argv)
    if args.full:
        images, labels = load_split(args.split, Path(args.source))
        n = write_idx_as_png_folder(images, labels, args.full)
        print(f"wrote {n} {args.split} images to {os.path.abspath(args.full)}")
    else:
        n = make_sample()
        print(f"wrote {n} sample images to {SAMPLE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared helpers for the engine tests: small real datasets written as PNG folders."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image


def write_digits_folder(root: Path, per_class: int = 30, size: int = 16) -> Path:
    """scikit-learn's 8×8 digits, upscaled to ``size`` and written as PNGs in class folders."""
    from sklearn.datasets import load_digits

    d = load_digits()
    root.mkdir(parents=True, exist_ok=True)
    for label in range(10):
        folder = root / f"digit_{label}"
        folder.mkdir(exist_ok=True)
        idx = np.flatnonzero(d.target == label)[:per_class]
        for i in idx:
            img = Image.fromarray((d.images[i] * (255 / 16)).astype(np.uint8), mode="L")
            img.resize((size, size), Image.BILINEAR).save(folder / f"{i}.png")
    return root


def sample_subset(root: Path, per_class: int) -> Path:
    """The first ``per_class`` images of each class of the bundled sample, copied."""
    import shutil

    from latentlab.data import sample_dataset_path

    src = sample_dataset_path()
    for cls in sorted(p for p in src.iterdir() if p.is_dir()):
        (root / cls.name).mkdir(parents=True, exist_ok=True)
        for f in sorted(cls.glob("*.png"))[:per_class]:
            shutil.copy(f, root / cls.name / f.name)
    return root


def train_run(dataset, run_dir: Path, epochs: int = 1, batch_size: int = 16) -> Path:
    """A finished run folder of ``epochs`` epochs on ``dataset``, for tests to copy, resume or open."""
    from latentlab.config import TrainConfig
    from latentlab.events import Finished
    from latentlab.training.trainer import Trainer

    result = Trainer(TrainConfig(dataset=str(dataset.root), batch_size=batch_size, epochs=epochs), dataset,
                     run_dir).run()
    assert isinstance(result, Finished), result
    return run_dir

"""A rough expected epoch time for a dataset before training starts, so a slow choice (128×128 RGB on a
small CPU) is said up front. Cost grows with pixels × images; the constant was measured on this
project's 2-core CI-like machine (see docs/datasets.md) and is scaled by the cores this process may use."""

from __future__ import annotations

import os
from typing import Sequence

# seconds per (image × pixel × channel) for one training epoch (forward + backward, default model, batch 64),
# measured here on 2 shared cores: Fashion-MNIST (`latentlab train /usr/share/datasets/fashion-mnist
# --epochs 1`), 54,000 train images of 28×28×1, took 52 s an epoch: 1.2e-6 s per image-pixel
SECONDS_PER_PIXEL_2_CORES = 1.2e-6
SLOW_EPOCH_SECONDS = 60.0


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def estimate_epoch_seconds(num_images: int, image_shape: Sequence[int], val_fraction: float = 0.1, cores: int | None = None) -> float:
    """Expected seconds for one epoch on this machine's CPU (a GPU is much faster: this is an upper guess)."""
    h, w, c = (int(v) for v in image_shape)
    scale = 2.0 / max(1, min(cores or _cores(), 16))
    return num_images * (1.0 - val_fraction) * h * w * c * SECONDS_PER_PIXEL_2_CORES * scale


def slow_note(seconds: float, image_shape: Sequence[int]) -> str:
    """One line when an epoch will take a minute or more here, else ""."""
    if seconds < SLOW_EPOCH_SECONDS:
        return ""
    h, w, c = (int(v) for v in image_shape)
    minutes = seconds / 60.0
    when = (f"about {seconds:.0f} s" if seconds < 60 else f"about {minutes:.0f} min" if minutes < 120
            else f"about {minutes / 60:.1f} h")
    return (f"Expected epoch time on this CPU: {when} ({h}×{w}×{c}); a smaller --image-size or gray "
            "images train much faster")

"""What loading gives: :class:`Dataset` (arrays, labels, class names, paths, what was skipped),
:class:`SkippedFile` and :class:`DatasetError`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from latentlab.messages import printable as _printable


class DatasetError(ValueError):
    """A dataset that cannot be used; ``str(e)`` is one line: what, which path, what to do."""


@dataclass(frozen=True)
class SkippedFile:
    path: str      # relative to the dataset root, posix separators (a folder ends with "/")
    reason: str    # one line


@dataclass
class Dataset:
    root: str
    images: np.ndarray          # (N, H, W, C) float32 in [0, 1], C = 1 or 3
    labels: np.ndarray          # (N,) int32; -1 for every image when unlabeled
    class_names: list[str]
    paths: list[str]
    skipped: list[SkippedFile] = field(default_factory=list)
    load_seconds: float = 0.0
    from_cache: bool = False

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    @property
    def labeled(self) -> bool:
        return bool(self.class_names)

    @property
    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels[self.labels >= 0], minlength=len(self.class_names))
        return {name: int(counts[i]) for i, name in enumerate(self.class_names)}

    @property
    def color(self) -> str:
        return "gray" if self.images.shape[-1] == 1 else "rgb"

    def summary(self, max_skipped: int | None = None) -> str:
        """Several lines for people (``latentlab info``): what was used, what was skipped and why."""
        h, w, c = self.image_shape
        lines = [f"Dataset: {_printable(self.root)}",
                 f"Images used: {self.num_images}",
                 f"Skipped: {len(self.skipped)}"]
        shown = self.skipped if max_skipped is None else self.skipped[:max_skipped]
        lines += [f"  {_printable(s.path)}: {s.reason}" for s in shown]
        if len(shown) < len(self.skipped):
            lines.append(f"  ... and {len(self.skipped) - len(shown)} more")
        if self.labeled:
            lines.append(f"Classes: {len(self.class_names)}")
            width = max(len(_printable(n)) for n in self.class_names)
            lines += [f"  {_printable(n):<{width}}  {k}" for n, k in self.class_counts.items()]
        else:
            lines.append("Classes: none (unlabeled: images directly in the folder)")
        lines.append(f"Image size: {h}x{w} (height x width)")
        lines.append(f"Channels: {c} ({'grayscale' if c == 1 else 'RGB'})")
        lines.append(f"Load time: {self.load_seconds:.2f} s" + (" (from cache)" if self.from_cache else ""))
        return "\n".join(lines)

    @classmethod
    def from_arrays(cls, images, labels=None, class_names=None, paths=None, root: str = "(arrays)") -> Dataset:
        """A Dataset of arrays already in memory (no folder, nothing skipped, nothing cached).

        ``images``: (N, H, W, C) with C = 1 or 3, or (N, H, W) (a channel axis is added); float in
        [0, 1] (float32 is used as is, not copied), or uint8 (scaled by 1/255 to float32).
        ``labels``: N ints, -1 for unlabeled; default all -1. ``class_names``: default none when every
        label is -1, else ``"0"``, ``"1"``, ... up to the largest label. ``paths``: default ``"0"``, ``"1"``, ...
        """
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise DatasetError(f"images must be (N, H, W) or (N, H, W, C) with C = 1 or 3, not {images.shape}")
        if images.dtype == np.uint8:
            images = np.multiply(images, np.float32(1.0 / 255.0), dtype=np.float32)
        elif np.issubdtype(images.dtype, np.floating):
            images = np.asarray(images, dtype=np.float32)
            if images.size and not (images.min() >= 0.0 and images.max() <= 1.0):   # NaN fails too
                raise DatasetError("float images must be in [0, 1] (uint8 images are scaled by 1/255)")
        else:
            raise DatasetError(f"images must be float in [0, 1] or uint8, not {images.dtype}")
        n = int(images.shape[0])
        if labels is None:
            labels = np.full(n, -1, dtype=np.int32)
        else:
            labels = np.asarray(labels)
            if labels.shape != (n,) or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
                raise DatasetError(f"labels must be {n} integers (one per image), not {labels.dtype} {labels.shape}")
            if labels.size and labels.min() < -1:
                raise DatasetError(f"labels must be -1 (unlabeled) or a class index >= 0, not {int(labels.min())}")
            labels = labels.astype(np.int32, copy=False)
        top = int(labels.max()) if n else -1
        if class_names is None:
            class_names = [str(i) for i in range(top + 1)]
        else:
            class_names = [str(c) for c in class_names]
            if top >= len(class_names):
                raise DatasetError(f"label {top} has no class name ({len(class_names)} given)")
        if paths is None:
            paths = [str(i) for i in range(n)]
        else:
            paths = [str(p) for p in paths]
            if len(paths) != n:
                raise DatasetError(f"paths must be {n} (one per image), not {len(paths)}")
        return cls(str(root), images, labels, class_names, paths)

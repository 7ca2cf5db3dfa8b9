"""What loading gives: :class:`Dataset` (arrays, labels, class names, paths, what was skipped),
:class:`SkippedFile` and :class:`DatasetError`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from latentlab.messages import printable as _printable


_CHANNEL_NAMES = {1: "grayscale", 2: "grayscale + alpha", 3: "RGB", 4: "RGB + alpha"}


class DatasetError(ValueError):
    """A dataset that cannot be used; ``str(e)`` is one line: what, which path, what to do."""


@dataclass(frozen=True)
class SkippedFile:
    path: str      # relative to the dataset root, posix separators (a folder ends with "/")
    reason: str    # one line


# what a folder's other files are, and what to do about them (files without an image extension)
_OTHER_HINTS = {
    ".svg": "vector images are not read — convert them, e.g. with rsvg-convert -w 64 -h 64 in.svg -o out.png",
    ".svgz": "compressed vector images are not read — convert them, e.g. with rsvg-convert",
    ".xpm": "X pixmaps are not read — convert them, e.g. with ImageMagick: convert in.xpm out.png",
    ".ico": "Windows icons are not read — convert them, e.g. with ImageMagick: convert in.ico out.png",
    ".icon": "icon description files (not images)",
    ".webp": "WebP files are not read — convert them to PNG",
    ".eps": "PostScript is not read — convert it to PNG",
    ".pdf": "PDF is not read — convert its pages to PNG",
}


def other_files_line(ext: str, count: int) -> str:
    hint = _OTHER_HINTS.get(ext, "not image files (not read)")
    return f"{count:,} {ext or '(no extension)'}: {hint}"


@dataclass
class LoadReport:
    """Every decision loading made, for people (``latentlab info``, the dataset panel) and for tests."""
    source: str = "folder"            # folder | npz | npy | idx
    background: str = "auto"
    fit: str = "pad"
    transparent: int = 0              # used images whose source had transparency
    on_white: int = 0                 # ... composited on white
    on_black: int = 0                 # ... composited on black
    kept_alpha: int = 0               # ... kept as an alpha channel
    flat: int = 0                     # used images of one flat colour in the source
    blank_skipped: int = 0            # images skipped as (nearly) blank after compositing
    size_spread: str = ""             # one line: sizes and aspect ratios of the sources
    size_reason: str = ""             # why this size
    others: dict = field(default_factory=dict)     # extension -> count of files that are not read
    hidden: int = 0                   # hidden files (names starting with ".") not read
    duplicates: list = field(default_factory=list)  # [path not used, path used] (same file or same bytes)
    note: str = ""                    # anything else (arrays: which arrays were used)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LoadReport":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def transparency_line(self) -> str:
        if not self.transparent:
            return "Transparency: none of the images used has any"
        done = []
        if self.on_white:
            done.append(f"{self.on_white:,} filled with white")
        if self.on_black:
            done.append(f"{self.on_black:,} filled with black")
        if self.kept_alpha:
            done.append(f"{self.kept_alpha:,} kept as an alpha channel")
        how = " (auto: white behind dark content, black behind light)" if self.background == "auto" else ""
        return f"Transparency: {self.transparent:,} images had some: {', '.join(done)}{how}"

    def lines(self) -> list[str]:
        out = []
        if self.note:
            out.append(self.note)
        if self.size_spread:
            out.append(f"Sizes: {self.size_spread}")
        if self.source == "folder":
            out.append(self.transparency_line())
            if self.blank_skipped:
                out.append(f"Nearly blank: {self.blank_skipped:,} skipped (listed under Skipped)")
            if self.flat:
                out.append(f"Flat: {self.flat:,} images used are a single colour in the source")
        if self.duplicates:
            out.append(f"Duplicates: {len(self.duplicates):,} not used (the same file reached twice, or identical "
                       "bytes), e.g. " + ", ".join(f"{_printable(a)} = {_printable(b)}" for a, b in self.duplicates[:3]))
        for ext, n in sorted(self.others.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"Not read: {other_files_line(ext, n)}")
        if self.hidden:
            out.append(f"Not read: {self.hidden:,} hidden files (names starting with '.')")
        return out


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
    report: LoadReport = field(default_factory=LoadReport)

    @property
    def image_shape(self) -> tuple[int, ...]:
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
        return "gray" if self.images.shape[-1] in (1, 2) else "rgb"

    @property
    def has_alpha(self) -> bool:
        """The last channel is opacity (background "alpha"): 2 = gray + alpha, 4 = RGB + alpha."""
        return self.images.shape[-1] in (2, 4)

    def size_line(self) -> str:
        """One line: the size used and why."""
        h, w, _ = self.image_shape
        why = f": {self.report.size_reason}" if self.report.size_reason else ""
        fit = {"pad": "aspect kept, padded", "crop": "aspect kept, cropped to fill",
               "stretch": "stretched to fill"}.get(self.report.fit, self.report.fit)
        return f"{h}×{w} (height×width){why}; {fit}" if self.report.source == "folder" else f"{h}×{w}{why}"

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
        lines.append(f"Size chosen: {self.size_line()}")
        lines += self.report.lines()
        lines.append(f"Channels: {c} ({_CHANNEL_NAMES.get(c, c)})")
        lines.append(f"Load time: {self.load_seconds:.2f} s" + (" (from cache)" if self.from_cache else ""))
        return "\n".join(lines)

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray | None = None, class_names: list[str] | None = None,
                    paths: list[str] | None = None, root: str = "(arrays)") -> Dataset:
        """A Dataset of arrays already in memory (no folder, nothing skipped, nothing cached).

        ``images``: (N, H, W, C) with C = 1 or 3, or (N, H, W) (a channel axis is added); float in
        [0, 1] (float32 is used as is, not copied), or uint8 (scaled by 1/255 to float32).
        ``labels``: N ints, -1 for unlabeled; default all -1. ``class_names``: default none when every
        label is -1, else ``"0"``, ``"1"``, ... up to the largest label. ``paths``: default ``"0"``, ``"1"``, ...
        """
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 2, 3, 4):
            raise DatasetError(f"images must be (N, H, W) or (N, H, W, C) with C = 1, 3 (or 2, 4 with alpha), "
                               f"not {images.shape}")
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

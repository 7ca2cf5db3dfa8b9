"""Image folders in, arrays out: scan, validate, decode, resize and cache a dataset.

A dataset is a folder of images:

* **Class folders** — when top-level subfolders of the root hold images, each such subfolder is one
  class (its name is the class name; names sorted; images found recursively below it get its label).
  Images lying directly in the root next to class folders are *skipped* with the reason
  "outside any class folder", so a stray file never gets a made-up label.
* **Flat folder** — no subfolder holds images: every image in the root is used, unlabeled
  (label -1, no class names).

Files and folders whose names start with "." and files without an image extension
(:data:`IMAGE_EXTENSIONS`, any letter case) are ignored silently. Symbolic links are followed; a
folder already visited (by device and inode) is not entered again, so link loops end. Only regular
files are opened (a FIFO named ``x.png`` would block forever).

Every candidate is fully decoded with Pillow (``Image.load()``, truncated files are errors); a bad
file becomes a :class:`SkippedFile` with a one-line reason and loading goes on. The content decides
the format, not the extension: a PNG named ``.jpg`` loads. Only PNG, JPEG (and MPO), BMP, GIF,
TIFF and WebP decoders are used (never EPS or other parsers that run external programs).
Images of more than :data:`MAX_PIXELS` pixels are refused before decoding (decompression bombs).
Modes: 1-bit, L, P, LA, I;16/I (scaled by 1/65535), RGB, RGBA, CMYK, YCbCr...; alpha is composited
onto **black** (the background of MNIST-like data, and what a VAE's Bernoulli likelihood favours);
animated images give their first frame; 32-bit float (mode F) images are skipped.

Folders of at least :data:`PROCESS_MIN_FILES` images are decoded in spawned worker processes (one per
CPU; Pillow's per-image Python holds the GIL, so threads do not scale on small images), smaller ones in
this process. Loaded arrays are cached on disk (see :func:`load_folder`); nothing here imports Qt, and
TensorFlow is imported only inside :func:`make_tf_dataset`.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import hashlib
import io
import json
import logging
import marshal
import os
import pathlib
import re
import stat as stat_module
import tempfile
import threading
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"})
_EXTENSION_TUPLE = tuple(sorted(IMAGE_EXTENSIONS))   # for str.endswith
MAX_IMAGE_SIZE = 64          # default cap, pixels per side
MIN_IMAGE_SIZE = 8           # smallest allowed side
MAX_PIXELS = 40_000_000      # per image; larger headers are refused before decoding
MAX_FILE_BYTES = 512 * 2**20  # per file
PROCESS_MIN_FILES = 8_000    # folders this large are decoded in worker processes (starting them costs ~0.4 s)
SMALL_FILE_BYTES = 32 * 1024  # files this small on average are decoded on one thread, not several
INTERMEDIATE_SIZE = 128      # image_size=None: larger images are pre-shrunk to fit this box while scanning
COLORS = ("auto", "gray", "rgb")
CACHE_VERSION = 2
PIL_FORMATS = ("PNG", "JPEG", "BMP", "DIB", "GIF", "TIFF", "WEBP")   # JPEG covers MPO

ProgressFn = Callable[[int, int], None]


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


# -- small helpers ---------------------------------------------------------------------------------
def _printable(text: str) -> str:
    """Text safe to print on one line: undecodable bytes and control characters escaped."""
    text = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _one_line(exc: BaseException, limit: int = 160) -> str:
    msg = (str(exc).strip().splitlines() or [""])[0].strip() or type(exc).__name__
    msg = _printable(msg)
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def _has_image_extension(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _check_color(color: str) -> str:
    c = str(color).lower() if isinstance(color, str) else color
    if c not in COLORS:
        raise DatasetError(f"color must be one of auto, gray, rgb, not {color!r}")
    return c


def _check_image_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif (isinstance(image_size, (tuple, list)) and len(image_size) == 2
          and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in image_size)):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise DatasetError(f"image size must be a number or (height, width), not {image_size!r}")
    if not all(MIN_IMAGE_SIZE <= s <= MAX_IMAGE_SIZE for s in size):
        raise DatasetError(f"image size {size[0]}x{size[1]} is out of range: each side must be "
                           f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels")
    return size


def default_cache_dir() -> str:
    """``$LATENTLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/latentlab/datasets`` (``~/.cache/...``)."""
    env = os.environ.get("LATENTLAB_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "latentlab", "datasets")


# -- scanning --------------------------------------------------------------------------------------
@dataclass
class _Scan:
    root: str
    files: list[tuple[str, int, int, int]]   # (relpath, size, mtime_ns, ctime_ns), sorted by relpath
    class_names: list[str]
    labels: np.ndarray                      # (files,) int32 per file
    skipped: list[SkippedFile]


def _check_root(root) -> str:
    try:
        path = os.path.abspath(os.fspath(root))
    except TypeError:
        raise DatasetError(f"dataset folder must be a path, not {root!r}") from None
    if not os.path.exists(path):
        raise DatasetError(f"dataset folder not found: {_printable(path)} does not exist; check the path")
    if not os.path.isdir(path):
        raise DatasetError(f"{_printable(path)} is a file, not a folder: choose the folder that holds the images")
    return path


# stat() each file by name relative to an open folder (fstatat) instead of by its full path: ~25 %
# less time per file where path lookups are dear; it is most of a warm (cached) load's time
_STAT_BY_DIR_FD = os.scandir in os.supports_fd and os.stat in os.supports_dir_fd


def _list_folder(folder: str, prefix: str, visited: set, skipped: list, found: list) -> list:
    """Append this folder's image files to ``found`` as (relpath, size, mtime_ns, ctime_ns); return its
    subfolders not visited yet as [(path, relpath)] (links followed; each real folder entered once)."""
    subdirs = []
    fd = None
    try:
        if _STAT_BY_DIR_FD:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        with os.scandir(folder if fd is None else fd) as it:
            entries = list(it)
    except OSError as e:
        if fd is not None:
            os.close(fd)
        reason = "permission denied" if isinstance(e, PermissionError) else _one_line(e)
        skipped.append(SkippedFile(prefix or "./", f"folder not readable: {reason}"))
        return subdirs
    try:
        _list_entries(entries, folder, prefix, visited, skipped, found, subdirs)
    finally:
        if fd is not None:
            os.close(fd)
    return subdirs


def _list_entries(entries, folder, prefix, visited, skipped, found, subdirs) -> None:
    append, extensions, is_reg, is_dir_mode = found.append, _EXTENSION_TUPLE, stat_module.S_ISREG, stat_module.S_ISDIR
    for entry in entries:
        name = entry.name
        if name[0] == ".":
            continue
        if name.lower().endswith(extensions):   # the common case: one stat, no is_dir()
            try:
                st = entry.stat()
            except OSError as e:
                skipped.append(SkippedFile(prefix + name, _stat_failure(entry, e)))
                continue
            if is_reg(st.st_mode):
                append((prefix + name, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
                continue
            if not is_dir_mode(st.st_mode):
                skipped.append(SkippedFile(prefix + name, "not a regular file"))
                continue
        else:
            try:
                if not entry.is_dir():
                    continue
                st = entry.stat()
            except OSError:
                continue
        key = (st.st_dev, st.st_ino)
        if key not in visited:
            visited.add(key)
            subdirs.append((os.path.join(folder, name), prefix + name))


def _stat_failure(entry, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    if entry.is_symlink():
        return "broken symbolic link"
    return f"cannot read file information: {_one_line(e)}"


def _walk_images(top: str, rel_top: str, visited: set, skipped: list, should_cancel) -> list:
    """Image files below ``top``, recursively: [(relpath, size, mtime_ns, ctime_ns)]."""
    found: list = []
    stack = [(top, rel_top)]
    while stack:
        if should_cancel is not None and should_cancel():
            raise DatasetError("loading cancelled")
        folder, rel = stack.pop()
        stack += _list_folder(folder, rel + "/", visited, skipped, found)
    return found


def _scan(root: str, should_cancel=None, on_found: Callable[[int], None] | None = None) -> _Scan:
    """Candidate files ordered by class (class names sorted), then by relative path.
    ``on_found(count)`` is told the number of image files found so far after each class folder."""
    try:
        root_st = os.stat(root)
        os.scandir(root).close()
    except PermissionError:
        raise DatasetError(f"cannot read folder {_printable(root)}: permission denied; "
                           "check its permissions") from None
    except OSError as e:
        raise DatasetError(f"cannot read folder {_printable(root)}: {_one_line(e)}") from None
    visited = {(root_st.st_dev, root_st.st_ino)}
    skipped: list[SkippedFile] = []
    root_files: list = []
    per_class: dict[str, list] = {}
    count = 0
    for path, name in _list_folder(root, "", visited, skipped, root_files):
        sub_skipped: list[SkippedFile] = []
        found = _walk_images(path, name, visited, sub_skipped, should_cancel)
        skipped += sub_skipped
        if found or any(_has_image_extension(s.path) for s in sub_skipped):
            found.sort()
            per_class[name] = found
        count += len(found)
        if on_found is not None:
            on_found(count)
    class_names = sorted(per_class)
    if class_names:
        for f in root_files:
            skipped.append(SkippedFile(f[0], "outside any class folder (this folder has class subfolders: "
                                             "move the image into one)"))
        files = [f for name in class_names for f in per_class[name]]
        labels = np.repeat(np.arange(len(class_names), dtype=np.int32),
                           [len(per_class[name]) for name in class_names])
    else:
        files = sorted(root_files)
        labels = np.full(len(files), -1, dtype=np.int32)
    skipped.sort(key=lambda s: s.path)
    return _Scan(root, files, class_names, labels, skipped)


def scan_folder(root) -> tuple[list[str], list[str]]:
    """(relative paths of the candidate images, ordered by class then path; class names) — nothing is
    decoded.
    Images directly in a root that has class folders are not candidates (they are skipped)."""
    scan = _scan(_check_root(root))
    return [f[0] for f in scan.files], scan.class_names


# -- decoding --------------------------------------------------------------------------------------
@dataclass
class _Decoded:
    array: np.ndarray       # (h, w) or (h, w, 3); uint8, or float32 in [0, 1] for 16-bit sources
    gray: bool
    size: tuple[int, int]   # original (height, width)


class _Skip(Exception):
    pass


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)   # a FIFO never blocks


def _read_file(path: str, size: int) -> bytes:
    """The whole file (``size`` from the scan, a hint: a file that grew is read to its end, capped
    just past MAX_FILE_BYTES). os.read on a descriptor: half the time of open().read() per small file."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        chunks, total = [], 0
        while total <= MAX_FILE_BYTES:
            b = os.read(fd, max(size + 1 - total, 1 << 16))
            if not b:
                break
            chunks.append(b)
            total += len(b)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


_BOMB_RE = re.compile(r"\((\d+) pixels\)")


def _resample(src_hw, dst_hw):
    down = dst_hw[0] * dst_hw[1] < src_hw[0] * src_hw[1]
    return Image.Resampling.LANCZOS if down else Image.Resampling.BILINEAR


def _resize_array(arr: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    if arr.shape[:2] == tuple(size_hw):
        return arr
    im = Image.fromarray(arr)
    out = im.resize((size_hw[1], size_hw[0]), _resample(arr.shape[:2], size_hw), reducing_gap=3.0)
    res = np.asarray(out)
    if arr.dtype == np.float32:
        res = np.clip(res, 0.0, 1.0)
    return res


def _composite_on_black(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    out = (color.astype(np.uint16) * alpha.astype(np.uint16)[..., None] + 127) // 255
    return out.astype(np.uint8)


def _decode(path: str, file_size: int, target: tuple[int, int] | None, color: str) -> _Decoded:
    """Decode one file into a (possibly resized) array; raises _Skip(reason) for a bad file."""
    if file_size == 0:
        raise _Skip("empty file (0 bytes)")
    if file_size > MAX_FILE_BYTES:
        raise _Skip(f"file too large ({file_size / 2**20:.0f} MB; limit {MAX_FILE_BYTES // 2**20} MB)")
    try:
        data = _read_file(path, file_size)
    except PermissionError:
        raise _Skip("permission denied (cannot read the file)") from None
    except OSError as e:
        raise _Skip(f"cannot read the file: {_one_line(e)}") from None
    if not data:
        raise _Skip("empty file (0 bytes)")
    if len(data) > MAX_FILE_BYTES:   # grew since the scan
        raise _Skip(f"file too large (over {MAX_FILE_BYTES // 2**20} MB)")
    try:
        im = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
    except UnidentifiedImageError:
        raise _Skip("not an image (unknown format or corrupt header)") from None
    except Image.DecompressionBombError as e:
        m = _BOMB_RE.search(str(e))
        claim = f"claims {int(m.group(1)):,} pixels" if m else "too many pixels"
        raise _Skip(f"too large: {claim} (limit {MAX_PIXELS:,}; possible decompression bomb)") from None
    except Exception as e:  # noqa: BLE001  (plugins raise SyntaxError, struct.error, ...)
        if "truncated" in str(e).lower():
            raise _Skip("truncated file") from None
        raise _Skip(f"not a readable image: {_one_line(e)}") from None
    with im:
        w, h = im.size
        if w < 1 or h < 1:
            raise _Skip(f"invalid image size {w}x{h}")
        if w * h > MAX_PIXELS:
            raise _Skip(f"too large: {w}x{h} pixels (limit {MAX_PIXELS:,}; possible decompression bomb)")
        if im.mode == "F":
            raise _Skip("32-bit floating-point image (mode F) is not supported: save it as 8- or 16-bit")
        want = target or (INTERMEDIATE_SIZE, INTERMEDIATE_SIZE)
        if im.format == "JPEG" and (w > 2 * want[1] or h > 2 * want[0]):
            with contextlib.suppress(Exception):
                im.draft(None, (2 * want[1], 2 * want[0]))   # decode at a reduced scale: much faster
        try:
            im.load()
        except Image.DecompressionBombError:
            raise _Skip(f"too large: {w}x{h} pixels (possible decompression bomb)") from None
        except OSError as e:
            msg = str(e)
            if "truncated" in msg or "broken data stream" in msg or "unexpected end" in msg.lower():
                raise _Skip("truncated file") from None
            raise _Skip(f"corrupt image data: {_one_line(e)}") from None
        except MemoryError:
            raise _Skip("too large to decode (out of memory)") from None
        except Exception as e:  # noqa: BLE001
            raise _Skip(f"corrupt image data: {_one_line(e)}") from None
        try:
            arr, gray = _to_array(im, color)
        except _Skip:
            raise
        except Exception as e:  # noqa: BLE001
            raise _Skip(f"unsupported image mode {im.mode}: {_one_line(e)}") from None
    if target is not None:
        arr = _resize_array(arr, target)
    elif max(arr.shape[:2]) > INTERMEDIATE_SIZE:   # keep memory small until the common size is known
        s = INTERMEDIATE_SIZE / max(arr.shape[:2])
        arr = _resize_array(arr, (max(1, round(arr.shape[0] * s)), max(1, round(arr.shape[1] * s))))
    return _Decoded(np.ascontiguousarray(arr), gray, (h, w))


def _to_array(im, color: str) -> tuple[np.ndarray, bool]:
    """(array, is_gray) from a loaded PIL image: uint8 (h,w) / (h,w,3), or float32 (h,w) for 16-bit."""
    mode = im.mode
    if mode == "1":
        im, mode = im.convert("L"), "L"
    if mode == "L":
        arr, gray = np.asarray(im), True
    elif mode.startswith("I"):  # I;16, I;16B, I;16L, I (32-bit int): 16-bit data scaled by 1/65535
        arr = np.asarray(im).astype(np.float32) / 65535.0
        np.clip(arr, 0.0, 1.0, out=arr)
        arr, gray = arr.astype(np.float32, copy=False), True
    elif mode in ("LA", "La"):
        a = np.asarray(im.convert("LA"))
        arr, gray = _composite_on_black(a[..., :1], a[..., 1])[..., 0], True
    else:
        if mode in ("P", "PA"):
            has_alpha = mode == "PA" or "transparency" in im.info
            im = im.convert("RGBA" if has_alpha else "RGB")
        elif mode not in ("RGB", "RGBA"):
            im = im.convert("RGBA" if "A" in mode else "RGB")   # CMYK, YCbCr, LAB, HSV, RGBX, RGBa...
        a = np.asarray(im)
        arr = _composite_on_black(a[..., :3], a[..., 3]) if a.shape[-1] == 4 else a[..., :3]
        gray = bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all())
        if gray:
            arr = arr[..., 0]
    if color == "gray" and not gray:
        arr, gray = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).convert("L")), True
    return np.ascontiguousarray(arr), gray


def _common_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The most common (h, w) (ties: larger area first, then taller), capped at MAX_IMAGE_SIZE per
    side keeping the aspect ratio, each side at least MIN_IMAGE_SIZE."""
    counts = Counter(sizes)
    h, w = max(counts, key=lambda s: (counts[s], s[0] * s[1], s[0]))
    scale = min(1.0, MAX_IMAGE_SIZE / max(h, w))
    return (min(MAX_IMAGE_SIZE, max(MIN_IMAGE_SIZE, round(h * scale))),
            min(MAX_IMAGE_SIZE, max(MIN_IMAGE_SIZE, round(w * scale))))


def _to_float(images: np.ndarray, workers: int | None = None) -> np.ndarray:
    """uint8 → float32 in [0, 1] (the same float32 arithmetic as x.astype(f32) * (1/255)), in one
    pass; a large array in slices on ``workers`` threads (default a few; numpy releases the GIL:
    writing, and faulting in, the new float32 pages is most of the time)."""
    if images.dtype != np.uint8:
        return np.asarray(images, dtype=np.float32)
    scale = np.float32(1.0 / 255.0)
    workers = min(_workers(), 4) if workers is None else workers
    if images.size < (1 << 22) or workers < 2 or len(images) < 2 * workers:
        return np.multiply(images, scale, dtype=np.float32)
    out = np.empty(images.shape, np.float32)
    step = -(-len(images) // (2 * workers))

    def work(start: int) -> None:
        np.multiply(images[start:start + step], scale, out=out[start:start + step], dtype=np.float32)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="latentlab-float") as pool:
        list(pool.map(work, range(0, len(images), step)))
    return out


# -- cache -----------------------------------------------------------------------------------------
def _cache_prefix(root: str, size, color: str) -> str:
    """The cache file-name prefix for this folder and these settings (known before the scan)."""
    settings = f"v{CACHE_VERSION}\0{root}\0{size}\0{color}\0{MAX_PIXELS}\0{MAX_IMAGE_SIZE}"
    return hashlib.sha256(settings.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _cache_key(scan: _Scan, prefix: str) -> str:
    """The full content key: every candidate's (path, size, mtime, ctime) and every skip reason.
    marshal format 2 (no back-references, so the bytes depend on values only) of plain str/int tuples
    is deterministic and several times faster to build than formatted text; a Python whose format
    differs only gets a new key (one cold load)."""
    h = hashlib.sha256(prefix.encode("ascii"))
    h.update(marshal.dumps((scan.files, [(s.path, s.reason) for s in scan.skipped]), 2))
    return h.hexdigest()


def _read_cache(path: str):
    """(images as float32, labels, meta) of a cache file, or None when it is missing or damaged; the
    caller compares ``meta["key"]`` with the folder's key."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if meta.get("version") != CACHE_VERSION:
                return None
            images, labels = z["images"], z["labels"]
        n = len(meta["paths"])
        if (images.ndim != 4 or images.dtype not in (np.uint8, np.float32) or images.shape[0] != n
                or labels.shape != (n,) or images.shape[-1] not in (1, 3)):
            return None
        # this runs beside the folder scan, which keeps one CPU busy: convert on the others
        return _to_float(images, min(4, _usable_cpus() - 1)), labels.astype(np.int32, copy=False), meta
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001  a damaged cache is rebuilt, never fatal
        log.info("ignoring unreadable dataset cache %s: %s", path, _one_line(e))
        return None


def _start_cache_read(cache_dir: str, prefix: str):
    """Read the newest cache file of this folder and settings on a thread, while the caller scans the
    folder (the scan decides whether it is still valid): a Future, or None when there is none.
    A warm load then costs about the scan alone."""
    try:
        with os.scandir(cache_dir) as it:
            names = [(e.stat().st_mtime_ns, e.path) for e in it
                     if e.name.startswith(prefix + "-") and e.name.endswith(".npz")]
    except OSError:
        return None
    if not names:
        return None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="latentlab-cache")
    try:
        return pool.submit(_read_cache, max(names)[1])
    finally:
        pool.shutdown(wait=False)


def _write_cache(cache_dir: str, prefix: str, key: str, images, labels, meta: dict) -> None:
    tmp = None
    try:
        os.makedirs(cache_dir, exist_ok=True)
        final = os.path.join(cache_dir, f"{prefix}-{key[:32]}.npz")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=cache_dir)
        with os.fdopen(fd, "wb") as f:
            meta_bytes = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
            np.savez(f, images=images, labels=labels, meta=meta_bytes)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        tmp = None
        for name in os.listdir(cache_dir):   # older caches of the same folder and settings
            if name.startswith(prefix + "-") and name.endswith(".npz") and name != os.path.basename(final):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(cache_dir, name))
    except Exception as e:  # noqa: BLE001  caching must never break loading
        log.info("could not write dataset cache in %s: %s", cache_dir, _one_line(e))
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# -- loading ---------------------------------------------------------------------------------------
def _workers() -> int:
    return max(1, min(8, _usable_cpus() * 2))


def load_folder(root, image_size: int | tuple[int, int] | None = None, color: str = "auto", *,
                cache: bool = True, cache_dir: str | None = None, progress: ProgressFn | None = None,
                should_cancel: Callable[[], bool] | None = None, processes: bool | None = None) -> Dataset:
    """Load every usable image below ``root`` as float32 arrays in [0, 1].

    ``image_size``: None = the most common size among the images, capped at MAX_IMAGE_SIZE per side
    keeping the aspect ratio; an int = square; (height, width). Each side 8..64.
    ``color``: "auto" (gray when every image is gray, else RGB), "gray" or "rgb".
    ``progress(done, total)`` is called on the calling thread about 50 times; ``should_cancel()`` is
    polled as files finish, and True raises ``DatasetError("loading cancelled")``.
    ``cache``: arrays are kept in ``cache_dir`` (default :func:`default_cache_dir`) under a key of the
    folder path, each file's (path, size, mtime, ctime), the size and colour settings; a changed file
    gives a new key, a damaged cache file is rebuilt, and failing to cache never fails the load.
    ``processes``: decode in worker processes (spawned, one per CPU): None = for folders of at least
    :data:`PROCESS_MIN_FILES` images on a machine with more than one CPU; False = never (threads).
    As with any library that spawns processes, a script calling this at import time needs the
    ``if __name__ == "__main__":`` guard; if the workers cannot start, loading goes on in this process.
    """
    t0 = time.perf_counter()
    size = _check_image_size(image_size)
    color = _check_color(color)
    root = _check_root(root)
    cache_dir = cache_dir or default_cache_dir()
    prefix = _cache_prefix(root, size, color)
    early = _start_cache_read(cache_dir, prefix) if cache else None
    pool: list = []   # worker processes, started while scanning once a cold load of a large folder is sure
    cpus = _usable_cpus()

    def on_found(count: int) -> None:
        if not pool and count >= PROCESS_MIN_FILES:
            pool.append(_start_process_pool(cpus))

    may_start = processes is not False and cpus > 1 and early is None
    try:
        scan = _scan(root, should_cancel, on_found if may_start else None)
        total = len(scan.files)
        if total == 0:
            detail = ""
            if scan.skipped:
                s = scan.skipped[0]
                detail = f" ({len(scan.skipped)} skipped; first: {_printable(s.path)}: {s.reason})"
            raise DatasetError(f"no images found in {_printable(root)}{detail}: expected PNG/JPEG/BMP/GIF/TIFF "
                               "files, directly in the folder or in one subfolder per class")
        key = _cache_key(scan, prefix)
        hit = early.result() if early is not None else None
        early = None
        if hit is not None and hit[2].get("key") == key:
            images, labels, meta = hit
            if progress is not None:
                progress(total, total)
            return Dataset(root, images, labels, list(meta["class_names"]), list(meta["paths"]),
                           [SkippedFile(p, r) for p, r in meta["skipped"]], time.perf_counter() - t0, True)
        hit = None

        if pool and pool[0] is None:   # could not start while scanning: it will not now either
            processes = False
        results, skipped = _decode_all(scan, size, color, progress, should_cancel, processes,
                                       pool[0] if pool else None)
        ok = [i for i, r in enumerate(results) if isinstance(r, _Decoded)]
        skipped = sorted(scan.skipped + skipped, key=lambda s: s.path)
        if not ok:
            first = next(s for s in skipped if s.path == scan.files[0][0]) if skipped else None
            first_text = f"; first: {_printable(first.path)} ({first.reason})" if first else ""
            raise DatasetError(f"all {total} images in {_printable(root)} were unusable{first_text}: "
                               "check that they are valid image files")
        decoded = [results[i] for i in ok]
        if size is None:
            size = _common_size([d.size for d in decoded])
            _resize_all(decoded, size, should_cancel)
        out_gray = color == "gray" or (color == "auto" and all(d.gray for d in decoded))
        channels = 1 if out_gray else 3
        use_float = any(d.array.dtype != np.uint8 for d in decoded)
        store = np.empty((len(decoded), size[0], size[1], channels), np.float32 if use_float else np.uint8)
        for j, d in enumerate(decoded):
            a = d.array
            if use_float and a.dtype == np.uint8:
                a = a.astype(np.float32) * np.float32(1.0 / 255.0)
            if a.ndim == 2:
                a = a[..., None]
            elif channels == 1:  # can only happen for 3-channel arrays when gray is forced (already done)
                a = a.mean(axis=-1, keepdims=True)
            store[j] = a   # (h, w, 1) broadcasts to 3 channels for RGB
        labels = scan.labels[np.asarray(ok, dtype=np.int64)]
        paths = [scan.files[i][0] for i in ok]
        writer = None
        if cache:   # written on a thread while the arrays are converted (both mostly outside the GIL)
            meta = {"version": CACHE_VERSION, "key": key, "root": root, "class_names": scan.class_names,
                    "paths": paths, "skipped": [[s.path, s.reason] for s in skipped]}
            writer = threading.Thread(target=_write_cache, args=(cache_dir, prefix, key, store, labels, meta),
                                      name="latentlab-cache-write")
            writer.start()
        try:
            images = _to_float(store)
        finally:
            if writer is not None:
                writer.join()
        return Dataset(root, images, labels, list(scan.class_names), paths, skipped, time.perf_counter() - t0, False)
    finally:
        if pool and pool[0] is not None:
            pool[0].shutdown(wait=True, cancel_futures=True)


def _decode_chunk(root: str, items: list[tuple[str, int]], size, color: str) -> list:
    """Decode ``items`` [(relpath, file size)] in order: a :class:`_Decoded` or a skip reason (str)
    for each. Runs in a worker process (module level so it pickles) or on a thread."""
    out: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # MAX_PIXELS refuses them first
        warnings.filterwarnings("ignore", module=r"PIL\.")   # "Corrupt EXIF data" etc.: the skip reason says it
        for rel, fsize in items:
            try:
                out.append(_decode(os.path.join(root, rel), fsize, size, color))
            except _Skip as e:
                out.append(str(e))
    return out


def _decode_chunk_packed(root: str, items: list[tuple[str, int]], size, color: str):
    """:func:`_decode_chunk` for a worker process: same-shape arrays travel stacked as one array
    (pickling thousands of small objects costs as much as a tenth of decoding them)."""
    out = _decode_chunk(root, items, size, color)
    arrays = [r.array for r in out if isinstance(r, _Decoded)]
    if not arrays or len({(a.shape, a.dtype) for a in arrays}) != 1:
        return out
    return np.stack(arrays), [r if isinstance(r, str) else (r.gray, r.size) for r in out]


def _unpack(packed) -> list:
    if isinstance(packed, list):
        return packed
    stack, meta = packed
    rows = iter(stack)
    return [m if isinstance(m, str) else _Decoded(next(rows), m[0], m[1]) for m in meta]


def _chunks(files: list, max_count: int, max_bytes: int = 32 * 2**20) -> list[tuple[int, int]]:
    """[start, end) ranges of ``files`` (relpath, size, ...) of at most ``max_count`` files and, past
    the first file, ``max_bytes`` bytes: a chunk of big photos stays short enough to cancel."""
    ranges, start, nbytes = [], 0, 0
    for i, f in enumerate(files):
        if i > start and (i - start >= max_count or nbytes + f[1] > max_bytes):
            ranges.append((start, i))
            start, nbytes = i, 0
        nbytes += f[1]
    if start < len(files):
        ranges.append((start, len(files)))
    return ranges


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _decode_all(scan: _Scan, size, color, progress, should_cancel, processes: bool | None = None, pool=None):
    """Decode every scanned file. Large folders (``processes`` None: at least
    :data:`PROCESS_MIN_FILES` files, more than one CPU; True: any size) are decoded in worker
    processes, one per CPU: Pillow's Python layer per image holds the GIL, so threads do not scale
    on small images (measured: 60,000 28x28 PNGs on 2 cores took 6.1 s on one thread, 8.0 s on 2
    threads, 4.5 s in 2 processes; starting the processes costs ~0.4 s). Smaller folders, and chunks
    left when worker processes cannot start or die, are decoded in this process: on one thread when
    the files are small, else on a thread pool (Pillow releases the GIL while decoding big images)."""
    total = len(scan.files)
    results: list = [None] * total
    cpus = _usable_cpus()
    if pool is not None:
        processes = True
    elif processes is None:
        processes = total >= PROCESS_MIN_FILES and cpus > 1
    workers = cpus if processes else _workers()
    ranges = _chunks(scan.files, max(1, min(1000 if processes else 256, -(-total // (workers * 8)))))
    step = max(1, -(-total // 50))
    state = {"done": 0, "next": step}

    def finished(start: int, end: int, out: list) -> None:
        for i, r in zip(range(start, end), out):
            results[i] = SkippedFile(scan.files[i][0], r) if isinstance(r, str) else r
        state["done"] += end - start
        if should_cancel is not None and should_cancel():
            raise DatasetError("loading cancelled")
        if progress is not None and (state["done"] >= state["next"] or state["done"] == total):
            progress(state["done"], total)
            state["next"] = (state["done"] // step + 1) * step

    def items(start: int, end: int) -> list:
        return [(f[0], f[1]) for f in scan.files[start:end]]

    if progress is not None:
        progress(0, total)
    todo = ranges
    if processes:
        if pool is None:
            pool = _start_process_pool(min(workers, len(ranges)))
        if pool is not None:
            todo = _run_chunks_in_processes(pool, scan.root, ranges, items, size, color, finished)
    if todo:
        # threads only pay off when decoding (GIL released) outweighs Pillow's Python layer (GIL held):
        # for small files one thread is fastest (60,000 PNGs of 28x28: 1 thread 6.1 s, 2 threads 8.0 s)
        small = sum(f[1] for f in scan.files) < SMALL_FILE_BYTES * total
        pool = ThreadPoolExecutor(max_workers=1 if small else _workers(), thread_name_prefix="latentlab-load")
        try:
            futures = {pool.submit(_decode_chunk, scan.root, items(a, b), size, color): (a, b) for a, b in todo}
            for fut in as_completed(futures):
                finished(*futures[fut], fut.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    skipped = [r for r in results if isinstance(r, SkippedFile)]
    return results, skipped


def _warm_up() -> None:
    """The first task of each worker process: import what decoding needs while the folder is scanned."""
    Image.init()


def _start_process_pool(workers: int):
    """A pool of ``workers`` spawned decoding processes, already starting (they import Pillow in the
    background), or None when processes cannot be started here."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:
        # spawn, never fork: this process runs TensorFlow's and Qt's threads
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    except (OSError, ValueError) as e:
        log.info("cannot start image decoding processes (%s); decoding in this process", _one_line(e))
        return None
    try:
        for _ in range(workers):   # each submit starts one more process (spawn starts them on demand)
            pool.submit(_warm_up)
    except (BrokenProcessPool, OSError) as e:
        # not RuntimeError: multiprocessing raises it in a worker of a script without the __main__ guard,
        # which must then stop (its parent decodes the rest), not go on to run the script itself
        pool.shutdown(wait=False, cancel_futures=True)
        log.info("cannot start image decoding processes (%s); decoding in this process", _one_line(e))
        return None
    return pool


def _run_chunks_in_processes(pool, root, ranges, items, size, color, finished) -> list:
    """Decode ``ranges`` in ``pool``, calling ``finished(start, end, out)`` on this thread as each chunk
    arrives; returns the ranges left undone when the pool broke (a worker died), for the caller to
    decode in this process. Shuts the pool down."""
    from concurrent.futures.process import BrokenProcessPool

    done: set = set()
    try:
        futures = {pool.submit(_decode_chunk_packed, root, items(a, b), size, color): (a, b) for a, b in ranges}
        for fut in as_completed(futures):
            finished(*futures[fut], _unpack(fut.result()))
            done.add(futures[fut])
    except (BrokenProcessPool, OSError) as e:
        log.info("image decoding processes failed (%s); decoding the rest in this process", _one_line(e))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [r for r in ranges if r not in done]


def _resize_all(decoded: list[_Decoded], size: tuple[int, int], should_cancel) -> None:
    todo = [d for d in decoded if d.array.shape[:2] != tuple(size)]
    if not todo:
        return

    def work(d: _Decoded) -> None:
        d.array = _resize_array(d.array, size)

    with ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="latentlab-resize") as pool:
        list(pool.map(work, todo, chunksize=64))
    if should_cancel is not None and should_cancel():
        raise DatasetError("loading cancelled")


# -- splitting and tf.data -------------------------------------------------------------------------
def split_indices(n: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices, disjoint, sorted, the same for the same (n, val_fraction, seed).
    With n >= 2 and val_fraction > 0 validation gets at least one image and training keeps one."""
    n = int(n)
    if n < 0:
        raise DatasetError(f"number of images must be >= 0, not {n}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise DatasetError(f"validation fraction must be at least 0 and below 1, not {val_fraction}")
    n_val = int(round(n * float(val_fraction)))
    if n >= 2 and val_fraction > 0:
        n_val = min(max(1, n_val), n - 1)
    else:
        n_val = 0
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


def make_tf_dataset(images: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0, repeat: bool = False):
    """A ``tf.data.Dataset`` of float32 image batches, reshuffled every pass when ``shuffle``: the
    *indices* are shuffled (a buffer of the whole index range) and batched, and each batch is gathered
    from the array held once in memory; then prefetch. Pure tf.data: no Python in the pipeline.
    ``repeat``: endless, pass after pass (each pass ends with its own partial batch), for ``fit`` with
    ``steps_per_epoch``: Keras then makes one iterator for the whole run instead of one per epoch.

    Both matter on 60,000 images: shuffling the images themselves refilled a 60,000-tensor buffer each
    epoch, and a new iterator per epoch (Keras' default) cost more every epoch (0, 14, 35, 40 s before the
    first batch of epochs 2-5, measured in the Trainer); with both changes, ~0.1 s."""
    import tensorflow as tf

    images = tf.constant(np.asarray(images, dtype=np.float32))
    n = int(images.shape[0])
    ds = tf.data.Dataset.range(n)
    if shuffle and n > 1:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size))
    if repeat:
        ds = ds.repeat()
    ds = ds.map(lambda idx: tf.gather(images, idx), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


# -- the bundled sample ----------------------------------------------------------------------------
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

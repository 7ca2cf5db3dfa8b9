"""``load_folder``: scan, check the cache, decode, bring to one size and colour, cache."""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

# parallel's names are looked up on the module when called, so that setting one there (a test's
# monkeypatch of PROCESS_MIN_FILES or _usable_cpus) reaches this code too
from latentlab.data import parallel
from latentlab.messages import printable as _printable
from latentlab.data.cache import _cache_key, _cache_prefix, _start_cache_read, _write_cache, default_cache_dir
from latentlab.data.dataset import Dataset, DatasetError, SkippedFile
from latentlab.data.decode import _check_color, _check_image_size, _common_size, _Decoded
from latentlab.data.scan import _check_root, _scan

ProgressFn = Callable[[int, int], None]


def load_folder(root, image_size: int | tuple[int, int] | None = None, color: str = "auto", *,  # noqa: C901
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
    cpus = parallel._usable_cpus()

    def on_found(count: int) -> None:
        if not pool and count >= parallel.PROCESS_MIN_FILES:
            pool.append(parallel._start_process_pool(cpus))

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
        results, skipped = parallel._decode_all(scan, size, color, progress, should_cancel, processes,
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
            parallel._resize_all(decoded, size, should_cancel)
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
            meta = {"key": key, "root": root, "class_names": scan.class_names,
                    "paths": paths, "skipped": [[s.path, s.reason] for s in skipped]}
            writer = threading.Thread(target=_write_cache, args=(cache_dir, prefix, key, store, labels, meta),
                                      name="latentlab-cache-write")
            writer.start()
        try:
            images = parallel._to_float(store)
        finally:
            if writer is not None:
                writer.join()
        return Dataset(root, images, labels, list(scan.class_names), paths, skipped, time.perf_counter() - t0, False)
    finally:
        if pool and pool[0] is not None:
            pool[0].shutdown(wait=True, cancel_futures=True)

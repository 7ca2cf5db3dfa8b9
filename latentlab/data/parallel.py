"""Decoding many files at once: in spawned worker processes (large folders) or on threads, in
chunks, with progress and cancelling; and the thread-parallel resize and uint8 → float32 passes."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from latentlab.messages import one_line
from latentlab.data.dataset import DatasetError, SkippedFile
from latentlab.data.decode import _decode_chunk, _Decoded, _fit_array

if TYPE_CHECKING:
    from latentlab.data.scan import _Scan

log = logging.getLogger(__name__)

PROCESS_MIN_FILES = 8_000    # folders this large are decoded in worker processes (starting them costs ~0.4 s)
SMALL_FILE_BYTES = 32 * 1024  # files this small on average are decoded on one thread, not several


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _workers() -> int:
    return max(1, min(8, _usable_cpus() * 2))


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


def _decode_chunk_packed(root: str, items: list[tuple[str, int]], size, color: str, background: str = "auto",
                         fit: str = "pad"):
    """:func:`_decode_chunk` for a worker process: same-shape arrays travel stacked as one array
    (pickling thousands of small objects costs as much as a tenth of decoding them)."""
    out = _decode_chunk(root, items, size, color, background, fit)
    arrays = [r.array for r in out if isinstance(r, _Decoded)]
    if not arrays or len({(a.shape, a.dtype) for a in arrays}) != 1:
        return out
    return np.stack(arrays), [r if isinstance(r, str) else r.meta() for r in out]


def _unpack(packed) -> list:
    if isinstance(packed, list):
        return packed
    stack, meta = packed
    rows = iter(stack)
    return [m if isinstance(m, str) else _Decoded.from_meta(next(rows), m) for m in meta]


def _decode_all(scan: _Scan, size, color, progress, should_cancel, processes: bool | None = None, pool=None,
                background: str = "auto", fit: str = "pad"):
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
            todo = _run_chunks_in_processes(pool, scan.root, ranges, items, size, (color, background, fit), finished)
    if todo:
        # threads only pay off when decoding (GIL released) outweighs Pillow's Python layer (GIL held):
        # for small files one thread is fastest (60,000 PNGs of 28x28: 1 thread 6.1 s, 2 threads 8.0 s)
        small = sum(f[1] for f in scan.files) < SMALL_FILE_BYTES * total
        pool = ThreadPoolExecutor(max_workers=1 if small else _workers(), thread_name_prefix="latentlab-load")
        try:
            futures = {pool.submit(_decode_chunk, scan.root, items(a, b), size, color, background, fit): (a, b)
                       for a, b in todo}
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
        log.info("cannot start image decoding processes (%s); decoding in this process", one_line(e, 160))
        return None
    try:
        for _ in range(workers):   # each submit starts one more process (spawn starts them on demand)
            pool.submit(_warm_up)
    except (BrokenProcessPool, OSError) as e:
        # not RuntimeError: multiprocessing raises it in a worker of a script without the __main__ guard,
        # which must then stop (its parent decodes the rest), not go on to run the script itself
        pool.shutdown(wait=False, cancel_futures=True)
        log.info("cannot start image decoding processes (%s); decoding in this process", one_line(e, 160))
        return None
    return pool


def _run_chunks_in_processes(pool, root, ranges, items, size, settings, finished) -> list:
    """Decode ``ranges`` in ``pool``, calling ``finished(start, end, out)`` on this thread as each chunk
    arrives; returns the ranges left undone when the pool broke (a worker died), for the caller to
    decode in this process. Shuts the pool down."""
    from concurrent.futures.process import BrokenProcessPool

    done: set = set()
    try:
        futures = {pool.submit(_decode_chunk_packed, root, items(a, b), size, *settings): (a, b) for a, b in ranges}
        for fut in as_completed(futures):
            finished(*futures[fut], _unpack(fut.result()))
            done.add(futures[fut])
    except (BrokenProcessPool, OSError) as e:
        log.info("image decoding processes failed (%s); decoding the rest in this process", one_line(e, 160))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [r for r in ranges if r not in done]


def _resize_all(decoded: list[_Decoded], size: tuple[int, int], should_cancel, fit: str = "pad") -> None:
    todo = [d for d in decoded if d.array.shape[:2] != tuple(size)]
    if not todo:
        return

    def work(d: _Decoded) -> None:
        d.array = _fit_array(d.array, size, fit, d.pad)

    with ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="latentlab-resize") as pool:
        list(pool.map(work, todo, chunksize=64))
    if should_cancel is not None and should_cancel():
        raise DatasetError("loading cancelled")

"""The on-disk cache of loaded arrays: one .npz per folder and settings, keyed by every file's
(path, size, mtime, ctime); read on a thread while the folder is scanned, written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import marshal
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from latentlab.data import decode, parallel
from latentlab.messages import one_line

if TYPE_CHECKING:
    from latentlab.data.scan import _Scan

log = logging.getLogger(__name__)

CACHE_VERSION = 4   # 4: background, fit, duplicates and the load report


def default_cache_dir() -> str:
    """``$LATENTLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/latentlab/datasets`` (``~/.cache/...``)."""
    env = os.environ.get("LATENTLAB_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "latentlab", "datasets")


def _cache_prefix(root: str, size, color: str) -> str:
    """The cache file-name prefix for this folder and these settings (known before the scan)."""
    settings = f"v{CACHE_VERSION}\0{root}\0{size}\0{color}\0{decode.MAX_PIXELS}\0{decode.MAX_IMAGE_SIZE}"
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
                or labels.shape != (n,) or images.shape[-1] not in (1, 2, 3, 4)):
            return None
        meta["_raw"] = images   # as stored: an incremental reload copies unchanged rows from it
        # this runs beside the folder scan, which keeps one CPU busy: convert on the others
        images = parallel._to_float(images, min(4, parallel._usable_cpus() - 1))
        meta["_file"] = path   # its per-file table is read only when some files changed
        return images, labels.astype(np.int32, copy=False), meta
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001  a damaged cache is rebuilt, never fatal
        log.info("ignoring unreadable dataset cache %s: %s", path, one_line(e, 160))
        return None


_writes: dict[tuple[str, str], threading.Thread] = {}   # (cache_dir, prefix): its cache file being written
_writes_lock = threading.Lock()


def _start_cache_write(cache_dir: str, prefix: str, key: str, images, labels, meta: dict, entries=None) -> None:
    """:func:`_write_cache` on a thread of its own, so that a load returns as soon as its arrays are
    ready. The thread is not a daemon: the interpreter waits for it at exit. A write of the same
    folder and settings still under way is waited for first (each write deletes the older files)."""
    _wait_for_write(cache_dir, prefix)
    t = threading.Thread(target=_write_cache, args=(cache_dir, prefix, key, images, labels, meta, entries),
                         name="latentlab-cache-write")
    with _writes_lock:
        _writes[(cache_dir, prefix)] = t
    t.start()


def _wait_for_write(cache_dir: str, prefix: str) -> None:
    with _writes_lock:
        t = _writes.get((cache_dir, prefix))
    if t is not None:
        t.join()
        with _writes_lock:
            if _writes.get((cache_dir, prefix)) is t:
                del _writes[(cache_dir, prefix)]


def wait_for_cache_writes() -> None:
    """Return once every dataset cache file this process started writing is written (or given up)."""
    with _writes_lock:
        keys = list(_writes)
    for cache_dir, prefix in keys:
        _wait_for_write(cache_dir, prefix)


def _start_cache_read(cache_dir: str, prefix: str):
    """Read the newest cache file of this folder and settings on a thread, while the caller scans the
    folder (the scan decides whether it is still valid): a Future, or None when there is none.
    A warm load then costs about the scan alone. This process's own write of it is waited for first."""
    _wait_for_write(cache_dir, prefix)
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


def _write_cache(cache_dir: str, prefix: str, key: str, images, labels, meta: dict, entries=None) -> None:
    """Save the arrays and ``meta`` (stamped with :data:`CACHE_VERSION`) as this folder's cache file,
    atomically, and delete its older ones; never raises."""
    meta = {"version": CACHE_VERSION, **meta}
    tmp = None
    try:
        os.makedirs(cache_dir, exist_ok=True)
        final = os.path.join(cache_dir, f"{prefix}-{key[:32]}.npz")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=cache_dir)
        with os.fdopen(fd, "wb") as f:
            meta_bytes = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
            # the per-file table (load._reuse): marshal, a tenth of JSON's time for 40,000 rows; a Python
            # whose format differs cannot read it and decodes everything once
            extra: dict[str, Any] = {} if entries is None else {
                "entries": np.frombuffer(marshal.dumps(entries() if callable(entries) else entries, 2), dtype=np.uint8)}
            np.savez(f, images=images, labels=labels, meta=meta_bytes, **extra)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        tmp = None
        for name in os.listdir(cache_dir):   # older caches of the same folder and settings
            if name.startswith(prefix + "-") and name.endswith(".npz") and name != os.path.basename(final):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(cache_dir, name))
    except Exception as e:  # noqa: BLE001  caching must never break loading
        log.info("could not write dataset cache in %s: %s", cache_dir, one_line(e, 160))
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

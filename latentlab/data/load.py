"""``load_folder``: scan, check the cache, decode, bring to one size and colour, cache."""

from __future__ import annotations

import os
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

# parallel's names are looked up on the module when called, so that setting one there (a test's
# monkeypatch of PROCESS_MIN_FILES or _usable_cpus) reaches this code too
from latentlab.data import parallel
from latentlab.messages import printable as _printable
from latentlab.data.cache import (_cache_key, _cache_prefix, _start_cache_read, _start_cache_write,
                                  default_cache_dir)
from latentlab.data.dataset import Dataset, DatasetError, LoadReport, SkippedFile, other_files_line
from latentlab.data.decode import (_check_background, _check_color, _check_fit, _check_image_size, _choose_size,
                                   _Decoded, _size_spread)
from latentlab.data.scan import _check_root, _scan, _Scan

ProgressFn = Callable[[int, int], None]


def _no_images(scan: _Scan, root: str) -> DatasetError:
    """Why a folder with no usable image file gives nothing: what it holds instead, and what was skipped."""
    detail = ""
    if scan.skipped:
        s = scan.skipped[0]
        detail = f" ({len(scan.skipped)} skipped; first: {_printable(s.path)}: {s.reason})"
    if scan.others:
        ext, n = max(scan.others.items(), key=lambda kv: kv[1])
        more = sum(scan.others.values()) - n
        return DatasetError(f"no images found in {_printable(root)}: it holds {other_files_line(ext, n)}"
                            + (f" (and {more:,} other files)" if more else "") + detail)
    return DatasetError(f"no images found in {_printable(root)}{detail}: expected PNG/JPEG/BMP/GIF/TIFF "
                        "files, directly in the folder or in one subfolder per class")


def _unique(results: list, scan: _Scan) -> tuple[list[int], list[list[str]]]:
    """The indices of the decoded images kept (the first of equal contents), and the [path, path of the one
    kept] pairs of the others, with the scan's own (links) first."""
    duplicates = list(scan.duplicates)
    ok: list[int] = []
    seen: dict[bytes, int] = {}
    for i, r in enumerate(results):
        if isinstance(r, _Decoded):
            if r.digest and r.digest in seen:
                duplicates.append([scan.files[i][0], scan.files[seen[r.digest]][0]])
                continue
            seen[r.digest] = i
            ok.append(i)
    twin = {a: b for a, b in duplicates[len(scan.duplicates):]}
    return ok, [[a, twin.get(b, b)] for a, b in duplicates]   # a link to a copy names the file used


def _put_row(store: np.ndarray, j: int, d: _Decoded, use_float: bool, with_alpha: bool) -> None:
    """One decoded image (``d.array``, at the store's size) into row ``j`` of ``store`` (uint8 or float32,
    1 or 3 colour channels, and an alpha channel last when ``with_alpha``)."""
    a = d.array
    if use_float and a.dtype == np.uint8:
        a = a.astype(np.float32) * np.float32(1.0 / 255.0)
    if a.ndim == 2:
        a = a[..., None]
    if with_alpha:
        if d.transparent:
            store[j, ..., -1] = a[..., -1]
            a = a[..., :-1]
        else:
            store[j, ..., -1] = np.float32(1.0) if use_float else np.uint8(255)
        store[j, ..., :-1] = a   # (h, w, 1) broadcasts to 3 channels for RGB
        return
    if a.shape[-1] > 1 and store.shape[-1] == 1:  # only when gray is forced (already done)
        a = a.mean(axis=-1, keepdims=True)
    store[j] = a   # (h, w, 1) broadcasts to 3 channels for RGB


@dataclass(frozen=True)
class _Options:
    """One `load_folder` call's settings, checked (``size`` None: chosen from the images)."""

    root: str
    size: tuple[int, int] | None
    color: str
    background: str
    fit: str
    cache: bool
    cache_dir: str
    prefix: str   # the cache key's part for the folder and these settings
    progress: ProgressFn | None
    should_cancel: Callable[[], bool] | None
    on_stage: Callable[[str], None] | None

    def stage(self, text: str) -> None:
        if self.on_stage is not None:
            self.on_stage(text)


@dataclass
class _Decoding:
    """What decoding gives: one result per scanned file (a ``_Decoded`` or a `SkippedFile`); when an older cache
    of the same folder and settings is reused, its rows and per-file table too."""

    results: list = field(default_factory=list)
    todo: list[int] = field(default_factory=list)   # with an old cache: the files to decode (changed or new)
    old_size: tuple[int, int] | None = None
    old_store: np.ndarray | None = None          # the old cache's rows as stored (uint8, or float32 for 16-bit)
    old_float: np.ndarray | None = None          # the same rows as float32, updated in place when they keep places
    old_alpha: bool = False
    kept: list | None = None                     # each unchanged file's line of the old table

    @classmethod
    def from_cache(cls, hit: tuple | None, scan: _Scan) -> _Decoding:
        reused = _reuse(hit, scan) if hit is not None else None
        if reused is None:
            return cls()
        results, todo, old_size, old_store, old_alpha, kept = reused
        return cls(results, todo, old_size, old_store, hit[0] if hit is not None else None, old_alpha, kept)

    @property
    def reusing(self) -> bool:
        return self.old_store is not None

    def forget_cache(self) -> None:
        self.results, self.todo, self.old_size, self.old_store, self.old_float = [], [], None, None, None
        self.old_alpha, self.kept = False, None


def load_folder(root: str | os.PathLike, image_size: int | Sequence[int] | None = None, color: str = "auto", *,
                background: str = "auto", fit: str = "pad", cache: bool = True, cache_dir: str | None = None,
                progress: ProgressFn | None = None, should_cancel: Callable[[], bool] | None = None,
                processes: bool | None = None, on_stage: Callable[[str], None] | None = None) -> Dataset:
    """Load every usable image below ``root`` as float32 arrays in [0, 1].

    ``image_size``: None = the most common size among the images, capped at MAX_IMAGE_SIZE per side
    keeping the aspect ratio; an int = square; (height, width). Each side 8..64.
    ``color``: "auto" (gray when every image is gray, else RGB), "gray" or "rgb".
    ``background``: what transparent pixels become: "auto" (per image: white behind dark content, black
    behind light content), "white", "black", or "alpha" (kept as a last channel: 2 or 4 channels).
    An image that comes out nearly blank is skipped with its reason.
    ``fit``: how an image of another shape is brought to the size: "pad" (aspect kept, the rest filled
    with its background: its transparency's, else the colour of its border), "crop" or "stretch".
    ``root`` may also be arrays (a .npz / .npy file, IDX files or a folder of them): see
    :mod:`latentlab.data.arrays`.
    ``on_stage(text)`` is told each long step as it starts ("scanning ...", "writing the cache");
    ``progress(done, total)`` is called on the calling thread about 50 times; ``should_cancel()`` is
    polled as files finish, and True raises ``DatasetError("loading cancelled")``.
    ``cache``: arrays are kept in ``cache_dir`` (default :func:`default_cache_dir`) under a key of the
    folder path, each file's (path, size, mtime, ctime), the size and colour settings; a changed file
    gives a new key, a damaged cache file is rebuilt, and failing to cache never fails the load. The cache
    file is written (atomically) on a thread that may outlive the call: the next load of the same folder
    waits for it, and so does the interpreter at exit (:func:`latentlab.data.cache.wait_for_cache_writes`).
    When files changed, only they are decoded: the others' rows come from the old cache, and when the
    rows keep their places (a file edited in place) the old float32 array is updated in place.
    ``processes``: decode in worker processes (spawned, one per CPU): None = for folders of at least
    :data:`PROCESS_MIN_FILES` images on a machine with more than one CPU; False = never (threads).
    As with any library that spawns processes, a script calling this at import time needs the
    ``if __name__ == "__main__":`` guard; if the workers cannot start, loading goes on in this process.
    """
    t0 = time.perf_counter()
    size = _check_image_size(image_size)
    color = _check_color(color)
    background = _check_background(background)
    fit = _check_fit(fit)
    from latentlab.data import arrays
    if arrays.is_array_source(root):
        return arrays.load_arrays(root, size, color, fit=fit, progress=progress)
    root = _check_root(root)
    opts = _Options(root, size, color, background, fit, cache, cache_dir or default_cache_dir(),
                    _cache_prefix(root, size, f"{color}\0{background}\0{fit}"), progress, should_cancel, on_stage)
    early = _start_cache_read(opts.cache_dir, opts.prefix) if cache else None
    pool: list = []   # worker processes, started while scanning once a cold load of a large folder is sure
    try:
        scan = _scan_folder(opts, pool, may_start=processes is not False and early is None)
        key = _cache_key(scan, opts.prefix)
        hit = early.result() if early is not None else None
        early = None
        if hit is not None and hit[2].get("key") == key:
            return _from_cache(opts, hit, len(scan.files), t0)
        if pool and pool[0] is None:   # could not start while scanning: it will not now either
            processes = False
        dec = _Decoding.from_cache(hit, scan)   # the same folder's cache, some files changed
        hit = None
        _decode(opts, scan, dec, processes, pool[0] if pool else None)
        return _assemble(opts, scan, key, dec, t0)
    finally:
        if pool and pool[0] is not None:
            pool[0].shutdown(wait=True, cancel_futures=True)


def _scan_folder(opts: _Options, pool: list, may_start: bool) -> _Scan:
    """The folder's image files (`DatasetError` when there is none). With ``may_start``, a pool of worker
    processes is put into ``pool`` (None when it cannot start) once the scan has found enough files."""
    cpus = parallel._usable_cpus()

    def on_found(count: int) -> None:
        if not pool and count >= parallel.PROCESS_MIN_FILES:
            pool.append(parallel._start_process_pool(cpus))

    opts.stage(f"scanning {_printable(opts.root)}")
    scan = _scan(opts.root, opts.should_cancel, on_found if may_start and cpus > 1 else None)
    if not scan.files:
        raise _no_images(scan, opts.root)
    return scan


def _from_cache(opts: _Options, hit: tuple, total: int, t0: float) -> Dataset:
    """The dataset as the cache holds it (its key matched)."""
    images, labels, meta = hit
    meta.pop("_raw", None)
    if opts.progress is not None:
        opts.progress(total, total)
    return Dataset(opts.root, images, labels, list(meta["class_names"]), list(meta["paths"]),
                   [SkippedFile(p, r) for p, r in meta["skipped"]], time.perf_counter() - t0, True,
                   LoadReport.from_dict(meta.get("report", {})))


def _decode(opts: _Options, scan: _Scan, dec: _Decoding, processes: bool | None, pool: Executor | None) -> None:
    """Decode the files ``dec`` has no result for (all of them without an old cache, or when the automatic size
    changed) into ``dec.results``."""
    size = opts.size
    if dec.reusing:
        results = dec.results
        sub = _Scan(scan.root, [scan.files[i] for i in dec.todo], [], scan.labels[:0], [])
        fresh, _ = parallel._decode_all(sub, size or dec.old_size, opts.color, opts.progress, opts.should_cancel,
                                        False, None, opts.background, opts.fit)
        for i, r in zip(dec.todo, fresh):
            results[i] = SkippedFile(scan.files[i][0], r.reason) if isinstance(r, SkippedFile) else r
        decoded_sizes = [r.size for r in results if isinstance(r, _Decoded)]
        if not (size is None and decoded_sizes and _choose_size(decoded_sizes)[0] != dec.old_size):
            return
        results = []
        dec.forget_cache()   # the automatic size changed: every image must be decoded again
    dec.results, _ = parallel._decode_all(scan, size, opts.color, opts.progress, opts.should_cancel, processes,
                                          pool, opts.background, opts.fit)


def _kept(results: list, scan: _Scan, root: str) -> tuple[list[int], list[list[str]], list[SkippedFile]]:
    """The indices of the images kept, the duplicates left out and every file skipped (sorted by path);
    `DatasetError` when none is usable."""
    skipped = [r for r in results if isinstance(r, SkippedFile)]
    ok, duplicates = _unique(results, scan)
    skipped = sorted(scan.skipped + skipped, key=lambda s: s.path)
    if not ok:
        first = next(s for s in skipped if s.path == scan.files[0][0]) if skipped else None
        first_text = f"; first: {_printable(first.path)} ({first.reason})" if first else ""
        raise DatasetError(f"all {len(scan.files)} images in {_printable(root)} were unusable{first_text}: "
                           "check that they are valid image files")
    return ok, duplicates, skipped


def _assemble(opts: _Options, scan: _Scan, key: str, dec: _Decoding, t0: float) -> Dataset:
    """The decoded images at one size and colour, with their labels and report; the cache written."""
    ok, duplicates, skipped = _kept(dec.results, scan, opts.root)
    decoded = [dec.results[i] for i in ok]
    report = _report(decoded, skipped, scan, opts.background, opts.fit, duplicates)
    if opts.size is None:
        size, report.size_reason = _choose_size([d.size for d in decoded])
    else:
        size, report.size_reason = opts.size, "as asked (--image-size)"
    store, rest, with_alpha = _store(opts, decoded, dec, size)
    labels = scan.labels[np.asarray(ok, dtype=np.int64)]
    paths = [scan.files[i][0] for i in ok]
    if opts.cache:   # written on a thread of its own, while the arrays are converted and after load_folder returns
        meta = {"key": key, "root": opts.root, "class_names": scan.class_names,
                "paths": paths, "skipped": [[s.path, s.reason] for s in skipped], "report": report.to_dict(),
                "size": list(size), "dtype": store.dtype.str, "alpha": bool(with_alpha)}
        entries = _entries_fn(scan.files, dec.results, dict(zip(ok, range(len(ok)))), dec.kept)
        opts.stage(f"writing the cache ({store.nbytes / 2**20:.0f} MB)")
        _start_cache_write(opts.cache_dir, opts.prefix, key, store, labels, meta, entries)   # ``store`` is its own
    if dec.old_float is not None:   # only the new rows are converted
        new_rows = [j for j, _ in rest]
        dec.old_float[new_rows] = parallel._to_float(store[new_rows])
        images = dec.old_float
    else:
        images = parallel._to_float(store)
    return Dataset(opts.root, images, labels, list(scan.class_names), paths, skipped, time.perf_counter() - t0,
                   False, report)


def _store(opts: _Options, decoded: list, dec: _Decoding, size: tuple[int, int]) -> tuple[np.ndarray, list, bool]:
    """The images' store (uint8, or float32 for 16-bit sources), its rows not taken from the old cache as
    (row, image) pairs, and whether it has an alpha channel. ``dec.old_float`` is kept only when it can be
    updated in place."""
    out_gray = opts.color == "gray" or (opts.color == "auto" and all(d.gray for d in decoded))
    with_alpha = opts.background == "alpha" and any(d.transparent for d in decoded)
    channels = (1 if out_gray else 3) + with_alpha
    old_store = dec.old_store
    # an unchanged file's pixels are still in the old cache (as stored: uint8, or float32 for 16-bit)
    stored = old_store.dtype if old_store is not None else np.dtype(np.uint8)
    use_float = any((stored if d.array is None else d.array.dtype) != np.uint8 for d in decoded)
    store = np.empty((len(decoded), size[0], size[1], channels), np.float32 if use_float else np.uint8)
    rest = list(enumerate(decoded))
    if old_store is not None and old_store.shape[1:] == store.shape[1:] and old_store.dtype == store.dtype:
        # unchanged files' rows, copied from the old cache in one go (the same layout)
        js = [j for j, d in rest if getattr(d, "cached_row", None) is not None]
        rows = [decoded[j].cached_row for j in js]
        store[js] = old_store[rows]
        rest = [(j, d) for j, d in rest if getattr(d, "cached_row", None) is None]
        # the same rows in the same order (a file edited in place): the old float32 images are the
        # answer once the new rows are written into them, with no second uint8 -> float32 pass
        old_float = dec.old_float
        in_place = (old_float is not None and old_float.shape == store.shape and js == rows
                    and old_float.dtype == np.float32 and not np.shares_memory(old_float, old_store))
        if not in_place:
            dec.old_float = None
    else:
        dec.old_float = None
        if old_store is not None:   # another layout: unchanged files' pixels go the long way
            _fill_arrays(decoded, old_store, dec.old_alpha)
    parallel._resize_all([d for _, d in rest], size, opts.should_cancel, opts.fit)
    for j, d in rest:
        _put_row(store, j, d, use_float, with_alpha)
    return store, rest, with_alpha


def _entries_fn(files: list, results: list, rows: dict, kept: list | None) -> Callable[[], list]:
    """The cache's per-file table, built when called (on the cache writer's thread)."""

    def entries() -> list:
        out = []
        for i, f in enumerate(files):
            row = rows.get(i, -1)
            e = kept[i] if kept is not None else None
            if e is not None and (e[6].__class__ is str or e[6][0] == row):
                out.append(e)   # an unchanged file at the same row: its line as it was
            else:
                out.append(list(f) + [_entry(results[i], row)])
        return out

    return entries


def _report(decoded: list[_Decoded], skipped: list[SkippedFile], scan: _Scan, background: str, fit: str,
            duplicates: list) -> LoadReport:
    """What was done to the images used (before the size is chosen)."""
    r = LoadReport(background=background, fit=fit, others=dict(scan.others), hidden=scan.hidden,
                   duplicates=duplicates)
    for d in decoded:
        if d.transparent:
            r.transparent += 1
            if d.background == "white":
                r.on_white += 1
            elif d.background == "black":
                r.on_black += 1
            else:
                r.kept_alpha += 1
        r.flat += d.flat
    r.blank_skipped = sum(1 for s in skipped if s.reason.startswith(("nearly blank", "fully transparent")))
    r.size_spread = _size_spread([d.size for d in decoded])
    return r


def _entry(result: object, row: int) -> str | list | None:
    """One file's line in the cache's per-file table: its skip reason, or its row and decoding facts."""
    if isinstance(result, SkippedFile):
        return result.reason
    if not isinstance(result, _Decoded):
        return None
    m = getattr(result, "cached_meta", None)
    if m is None:
        m = list(result.meta())
        m[-1] = m[-1].hex()
    return [row, m]


def _reuse(hit: tuple, scan: _Scan) -> tuple | None:
    """From a cache of the same folder and settings whose key no longer matches: (results with every
    unchanged file's array or skip reason filled in, indices of the files to decode, the cached size),
    or None when nothing can be reused. A file is unchanged when its path, size, mtime, ctime, device
    and inode are; a used duplicate's twin, or a file without a row, is decoded again."""
    _, _, meta = hit
    entries = _read_entries(meta.get("_file"))
    images = meta.get("_raw")
    if entries is None or images is None or "size" not in meta:
        return None
    # keyed by the whole (path, size, mtime, ctime, device, inode): one dict look-up a file
    old = {tuple(e[:6]): e for e in entries if len(e) == 7}
    results: list = [None] * len(scan.files)
    kept: list = [None] * len(scan.files)   # each unchanged file's line of the old table
    todo: list[int] = []
    alpha = bool(meta.get("alpha"))
    for i, f in enumerate(scan.files):
        e = old.get(f)
        status = e[6] if e is not None else None
        if status.__class__ is str:
            results[i] = SkippedFile(f[0], status)
            kept[i] = e
        elif status.__class__ is list and status[0] >= 0:
            row, m = status
            # the pixels stay in the cache's rows: copied in one go when the layout is the same,
            # else made into this file's array by _fill_arrays
            d = _Decoded(None, m[0],  # type: ignore[arg-type]  # array: None while in the cache's rows
                         tuple(m[1]), m[2], m[3], tuple(m[4]), m[5], bytes.fromhex(m[6]))
            d.cached_meta = m   # written back as it is
            d.cached_row = row
            results[i] = d
            kept[i] = e
        else:
            todo.append(i)
    if len(todo) == len(scan.files):
        return None
    return results, todo, tuple(meta["size"]), images, alpha, kept


def _fill_arrays(decoded: list, images: np.ndarray, alpha: bool) -> None:
    """Give each unchanged file (no array yet) its array back from the old cache's rows, as decoding
    made it: (h, w) gray, (h, w, 3), and its alpha channel when the cache kept one and it had any."""
    for d in decoded:
        if d.array is not None:
            continue
        a = images[d.cached_row]   # as stored: uint8, or float32 for 16-bit sources
        a_alpha = a[..., -1:] if alpha else None
        base = a[..., :-1] if alpha else a
        base = base[..., 0] if d.gray or base.shape[-1] == 1 else base
        if a_alpha is not None and d.transparent:
            base = np.concatenate([base[..., None] if base.ndim == 2 else base, a_alpha], axis=-1)
        d.array = np.ascontiguousarray(base)
        d.cached_row = None   # its array now goes the way of a decoded file


def _read_entries(path: str | None) -> list | None:
    """The per-file table of a cache file (its images were read with it), or None."""
    import marshal

    if not path:
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if "entries" not in z.files:
                return None
            return marshal.loads(z["entries"].tobytes())
    except Exception:  # noqa: BLE001  a damaged cache is rebuilt, never fatal
        return None

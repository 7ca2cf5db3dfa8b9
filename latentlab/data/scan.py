"""Finding a dataset's files: class folders or a flat folder, links followed once, nothing decoded."""

from __future__ import annotations

import errno
import os
import stat as stat_module
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from latentlab.messages import printable as _printable
from latentlab.messages import one_line
from latentlab.data.dataset import DatasetError, SkippedFile

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"})
_EXTENSION_TUPLE = tuple(sorted(IMAGE_EXTENSIONS))   # for str.endswith


def _has_image_extension(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@dataclass
class _Scan:
    root: str
    files: list[tuple[str, int, int, int]]   # (relpath, size, mtime_ns, ctime_ns), sorted by relpath
    class_names: list[str]
    labels: np.ndarray                      # (files,) int32 per file
    skipped: list[SkippedFile]
    others: dict = field(default_factory=dict)       # extension -> count of files that are not images
    hidden: int = 0                                  # hidden files not read
    duplicates: list = field(default_factory=list)   # [path not used, path used]: one file reached twice


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


def _list_folder(folder: str, prefix: str, visited: set, skipped: list, found: list, others: Counter | None = None) -> list:
    """Append this folder's image files to ``found`` as (relpath, size, mtime_ns, ctime_ns); return its
    subfolders not visited yet as [(path, relpath)] (links followed; each real folder entered once)."""
    subdirs: list[tuple[str, str]] = []
    fd = None
    try:
        if _STAT_BY_DIR_FD:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        with os.scandir(folder if fd is None else fd) as it:
            entries = list(it)
    except OSError as e:
        if fd is not None:
            os.close(fd)
        reason = "permission denied" if isinstance(e, PermissionError) else one_line(e, 160)
        skipped.append(SkippedFile(prefix or "./", f"folder not readable: {reason}"))
        return subdirs
    try:
        _list_entries(entries, folder, prefix, visited, skipped, found, subdirs, others)
    finally:
        if fd is not None:
            os.close(fd)
    return subdirs


def _list_entries(entries, folder, prefix, visited, skipped, found, subdirs, others=None) -> None:
    append, extensions, is_reg, is_dir_mode = found.append, _EXTENSION_TUPLE, stat_module.S_ISREG, stat_module.S_ISDIR
    for entry in entries:
        name = entry.name
        if name[0] == ".":
            if others is not None:
                try:
                    if entry.is_file():
                        others["\0hidden"] += 1
                except OSError:
                    pass
            continue
        if name.lower().endswith(extensions):   # the common case: one stat, no is_dir()
            try:
                st = entry.stat()
            except OSError as e:
                skipped.append(SkippedFile(prefix + name, _stat_failure(entry, e)))
                continue
            if is_reg(st.st_mode):
                append((prefix + name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino))
                continue
            if not is_dir_mode(st.st_mode):
                skipped.append(SkippedFile(prefix + name, "not a regular file"))
                continue
        else:
            try:
                if not entry.is_dir():
                    if others is not None and entry.is_file():
                        others[os.path.splitext(name)[1].lower()] += 1
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
    return f"cannot read file information: {one_line(e, 160)}"


def _walk_images(top: str, rel_top: str, visited: set, skipped: list, should_cancel, others=None) -> list:
    """Image files below ``top``, recursively: [(relpath, size, mtime_ns, ctime_ns)]."""
    found: list = []
    stack = [(top, rel_top)]
    while stack:
        if should_cancel is not None and should_cancel():
            raise DatasetError("loading cancelled")
        folder, rel = stack.pop()
        stack += _list_folder(folder, rel + "/", visited, skipped, found, others)
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
        raise DatasetError(f"cannot read folder {_printable(root)}: {one_line(e, 160)}") from None
    visited = {(root_st.st_dev, root_st.st_ino)}
    skipped: list[SkippedFile] = []
    root_files: list = []
    per_class: dict[str, list] = {}
    others: Counter = Counter()
    count = 0
    for path, name in _list_folder(root, "", visited, skipped, root_files, others):
        sub_skipped: list[SkippedFile] = []
        found = _walk_images(path, name, visited, sub_skipped, should_cancel, others)
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
    files, labels, duplicates = _one_each(files, labels)
    hidden = others.pop("\0hidden", 0)
    return _Scan(root, files, class_names, labels, skipped, dict(others), hidden, duplicates)


def _one_each(files: list, labels: np.ndarray):
    """Each real file once (by device and inode: symbolic and hard links to one file), the first in order
    kept; (files, labels, [[path not used, path used]])."""
    first: dict = {}
    keep: list[int] = []
    duplicates: list = []
    for i, f in enumerate(files):
        key = (f[4], f[5])
        if key in first:
            duplicates.append([f[0], files[first[key]][0]])
        else:
            first[key] = i
            keep.append(i)
    if not duplicates:
        return files, labels, duplicates
    return [files[i] for i in keep], labels[np.asarray(keep, dtype=np.int64)], duplicates


def scan_folder(root) -> tuple[list[str], list[str]]:
    """(relative paths of the candidate images, ordered by class then path; class names) — nothing is
    decoded.
    Images directly in a root that has class folders are not candidates (they are skipped)."""
    scan = _scan(_check_root(root))
    return [f[0] for f in scan.files], scan.class_names

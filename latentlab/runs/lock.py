"""One writer per run folder: an exclusive OS file lock on ``RUN/.lock``.

Whatever trains into a run folder (the app, ``latentlab train``, a sweep, a Dask worker: they all go
through `latentlab.training.trainer.Trainer`, which takes the lock) holds it from before its first write until
after its last one::

    with RunLock(run_dir, create=True):      # RunLocked (one line) if another process holds it
        ...                                   # write the run

The lock is ``flock`` (``msvcrt.locking`` on Windows) on an open file, so the operating system lets
go of it when the holder dies, however it dies: a killed run is never left locked, and no stale-lock
guessing is needed. Two locks taken in one process conflict too (each is its own open file). The
holder writes who it is (pid, host, command, start time) into the file, so a second writer's refusal
can say whom to wait for; the file stays in the folder (deleting it would let two processes lock two
different files of one name) and is emptied when the lock is released.

Readers (open, export, eval, the app showing a run) never take it: every reader sees the last epoch
``state.json`` committed. `is_locked` lets a reader leave a live writer's files alone.

Why not the ``filelock`` package: it truncates the lock file on every attempt (so who holds it cannot
be kept in it), and its locks are re-entrant within a process, where a second trainer must be refused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import socket
import sys
import time
from pathlib import Path

__all__ = ["LOCK_FILE", "RunLock", "RunLocked", "is_locked", "check_unlocked"]

LOCK_FILE = ".lock"
RETRY_SECONDS = 1.0   # a reader's brief look (is_locked) may hold the file for a moment: try again for this long

log = logging.getLogger(__name__)

if os.name == "nt":  # pragma: no cover  (not run here: Linux CI)
    import msvcrt

    _BYTE = 0x7FFFFFFF   # lock one byte far past the holder's note, so that others can still read the note

    def _try_lock(fd: int, shared: bool = False) -> bool:   # Windows has no shared lock here: exclusive
        os.lseek(fd, _BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)   # type: ignore[attr-defined]  # Windows only
        except OSError:
            return False
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)   # type: ignore[attr-defined]  # Windows only
        os.lseek(fd, 0, os.SEEK_SET)
else:
    import errno
    import fcntl

    def _try_lock(fd: int, shared: bool = False) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class RunLocked(RuntimeError):
    """Another writer holds the run folder. ``str(e)`` is one line: which run, who holds it, what to do."""

    def __init__(self, run_dir: str | Path, holder: dict | None):
        self.run_dir, self.holder = Path(run_dir), holder or {}
        super().__init__(f"{self.run_dir} is being trained by {_describe(self.holder)}; open it read-only "
                         "(Open run in the app, latentlab --run, latentlab export) or wait until that training "
                         "ends and try again")


def _describe(holder: dict) -> str:
    pid, host = holder.get("pid"), holder.get("host")
    if not isinstance(pid, int):
        return "another process"
    if pid == os.getpid() and host == socket.gethostname():
        who = "another training in this process"
    else:
        who = f"process {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")
    extra = [f"'{holder['command']}'"] if holder.get("command") else []
    if isinstance(holder.get("started"), (int, float)):
        extra.append("since " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["started"])))
    return who + (f" ({', '.join(extra)})" if extra else "")


def _command() -> str:
    """This process' command line, short: ``latentlab train …``, ``python -m latentlab train …``."""
    argv = list(sys.argv) or [""]
    first = Path(argv[0]).name if argv[0] not in ("", "-c") else "python"
    if first == "__main__.py":
        first = f"python -m {Path(argv[0]).parent.name}"
    text = " ".join([first, *(shlex.quote(a) for a in argv[1:])])
    return text if len(text) <= 120 else text[:117] + "..."


def _read_holder(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


class RunLock:
    """The exclusive lock on one run folder (a context manager; or `acquire` / `release`).

    ``create``: make the folder (and its parents) when it does not exist; a folder made here that holds
    nothing but the lock file when the lock is released is removed again (a run that failed before its
    first write leaves no empty folder). `acquire` raises `RunLocked` when another writer holds the run
    (after retrying for ``RETRY_SECONDS``), OSError when the folder cannot be written. Where the file
    system has no locks at all, a warning is logged and the run goes on unlocked (as before locks)."""

    def __init__(self, run_dir: str | Path, *, create: bool = False):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.create = create
        self._fd: int | None = None
        self._created: list[Path] = []

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            fd = self._open()
            try:
                got = _try_lock(fd)
            except OSError as e:   # ENOLCK, EOPNOTSUPP...: this file system cannot lock
                log.warning("cannot lock %s (%s); another process could write the run at the same time",
                            self.path, e.strerror or e)
                got = True
            if got and _same_file(fd, self.path):
                break
            os.close(fd)
            if not got and time.monotonic() >= deadline:
                raise RunLocked(self.run_dir, _read_holder(self.path))
            time.sleep(0.05)   # locked, or the file was replaced while we locked it: look again
        self._fd = fd
        with contextlib.suppress(OSError):   # only for messages: a full disk fails at the run's first write
            note = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": _command(),
                               "started": time.time()}).encode()
            os.ftruncate(fd, 0)
            os.write(fd, note + b"\n")
        return self

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(self.path, flags, 0o666)
        except FileNotFoundError:
            if not self.create:
                raise
        missing, folder = [], self.run_dir
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        try:
            self.run_dir.mkdir(parents=True)
            self._created = missing   # deepest first: removed in this order if left empty
        except FileExistsError:
            pass
        return os.open(self.path, flags, 0o666)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            if self._created and _only_the_lock(self.run_dir):
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
                    for folder in self._created:   # stops at the first that is not empty
                        folder.rmdir()
            with contextlib.suppress(OSError):
                _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    """The locked file is still the one at ``path`` (not removed by a releasing creator meanwhile)."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _only_the_lock(folder: Path) -> bool:
    try:
        return [e.name for e in os.scandir(folder)] == [LOCK_FILE]
    except OSError:
        return False


def is_locked(run_dir: str | Path) -> bool:
    """Whether a writer holds the run folder now (a lock taken in this process counts too). A look,
    not a guarantee: a writer may start the moment after. Never creates anything."""
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError:
        return False   # no lock file: nobody ever locked it (or the folder cannot be read)
    try:
        if not _try_lock(fd, shared=True):
            return True
        _unlock(fd)
        return False
    except OSError:
        return False
    finally:
        os.close(fd)


def check_unlocked(run_dir: str | Path) -> None:
    """Raise `RunLocked` (who holds it) when a writer holds the run folder now: for a command that
    would refuse anyway, before it spends time loading a dataset. The writer's own `RunLock` decides."""
    if is_locked(run_dir):
        raise RunLocked(run_dir, _read_holder(Path(run_dir) / LOCK_FILE))

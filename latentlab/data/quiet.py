"""Image libraries' own messages: kept off the user's terminal, and folded into a skipped file's reason.

Pillow decodes TIFF with libtiff, whose C code prints its warnings and errors straight to file
descriptor 2 ("WEBP compression support is not configured", "Read error on strip 3 …"), and Pillow's
plugins log through `logging` ("More samples per pixel than can be decoded: 9", printed by logging's
last-resort handler). Pointing fd 2 elsewhere while a file decodes would also swallow whatever the
process' other threads print meanwhile (the trainer, Qt, a crash report), and decoding runs on threads.
So nothing here touches fd 2:

* libtiff's process-wide warning and error handlers are replaced, once per process (`install`; worker
  processes run it too), by one that formats the message and hands it to the thread that is decoding:
  libtiff calls its handler on the thread that called libtiff, and `capture` gives each decoding thread
  its own list. A message while no thread listens goes to this module's logger at DEBUG level.
* A `logging.Filter` on Pillow's loggers does the same with their records (other threads' records pass).
* Pillow's Python warnings ("Corrupt EXIF data", "Truncated File Read") are ignored: warnings filters are
  process-wide, and a file that fails says why through its exception.

Where libtiff's own C library is not reachable (Windows wheels link it into Pillow without exporting
it), its messages are left as they are.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
import threading
import warnings
from typing import Literal

__all__ = ["install", "capture", "fold"]

log = logging.getLogger(__name__)
MAX_NOTES = 8                 # per file: a damaged TIFF can report every strip
_local = threading.local()
_lock = threading.Lock()
_installed = False
_keep: list = []              # the ctypes callback must outlive every call libtiff makes to it
_PIL_LOGGERS = ("PIL.Image", "PIL.ImageFile", "PIL.TiffImagePlugin", "PIL.PngImagePlugin", "PIL.JpegImagePlugin",
                "PIL.GifImagePlugin", "PIL.BmpImagePlugin", "PIL.WebPImagePlugin", "PIL.TiffTags")


def _note(text: str) -> None:
    notes = getattr(_local, "notes", None)
    if notes is None:
        log.debug("image library: %s", text)
    elif len(notes) < MAX_NOTES and text not in notes:
        notes.append(text)


class _PillowRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_local, "notes", None) is None:
            return True   # not a decoding thread: as before
        if record.levelno >= logging.WARNING:
            with contextlib.suppress(Exception):
                _note(record.getMessage())
        return False


def _hook_libtiff() -> None:
    """Point libtiff's global handlers (the copy Pillow is linked with) at `_note`."""
    try:
        from PIL import _imaging

        lib = ctypes.CDLL(_imaging.__file__)   # dlsym searches the libraries it links (libtiff) too
        set_warning, set_error = lib.TIFFSetWarningHandler, lib.TIFFSetErrorHandler
        vsnprintf = ctypes.CDLL(None).vsnprintf
    except (ImportError, OSError, AttributeError, TypeError):
        log.debug("libtiff's message handlers are not reachable here; its messages are left as they are")
        return
    vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    vsnprintf.restype = ctypes.c_int

    # void handler(const char *module, const char *fmt, va_list ap): on every ABI latentlab runs on, a
    # va_list parameter arrives as (and is passed on as) one pointer
    @ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
    def handler(module, fmt, ap):
        try:
            buf = ctypes.create_string_buffer(512)
            vsnprintf(buf, len(buf), fmt, ap)
            text = buf.value.decode("utf-8", "replace").strip().rstrip(".")
            name = (module or b"").decode("utf-8", "replace")
            if name.endswith(("Decode", "Encode")):   # e.g. "LZMADecode": says which codec failed
                text = f"{name}: {text}"
            _note(text)
        except BaseException:  # noqa: BLE001  (nothing may escape into C)
            pass

    for setter in (set_warning, set_error):
        setter.argtypes, setter.restype = [ctypes.c_void_p], ctypes.c_void_p
        setter(ctypes.cast(handler, ctypes.c_void_p))
    _keep.append(handler)


def _quiet_warnings() -> None:
    from PIL import Image

    wanted: list[tuple[Literal["ignore"], str, type[Warning]]] = [
        ("ignore", r"PIL\.", Warning), ("ignore", "", Image.DecompressionBombWarning)]
    present = {(f[0], getattr(f[3], "pattern", f[3]) or "", f[2]) for f in warnings.filters}
    for action, module, category in wanted:
        if (action, module, category) not in present:   # pytest resets the filters between tests
            warnings.filterwarnings(action, category=category, module=module)


def install() -> None:
    """Take over the image libraries' messages in this process (idempotent, any thread)."""
    global _installed
    _quiet_warnings()
    if _installed:
        return
    with _lock:
        if _installed:
            return
        from PIL import Image

        Image.init()
        records = _PillowRecords()
        names = set(_PIL_LOGGERS) | {n for n in logging.root.manager.loggerDict if n.startswith("PIL.")}
        for name in sorted(names):
            logging.getLogger(name).addFilter(records)
        _hook_libtiff()
        _installed = True


@contextlib.contextmanager
def capture():
    """Collect what the image libraries say on this thread during the block; yields the list."""
    outer = getattr(_local, "notes", None)
    notes: list[str] = []
    _local.notes = notes
    try:
        yield notes
    finally:
        _local.notes = outer


_PILLOW_DETAIL = re.compile(r"(: decoder error -?\d+| \(unknown format or corrupt header\))$")


def fold(reason: str, notes: list[str], limit: int = 240) -> str:
    """A skip reason with what the library said: its words replace Pillow's internal detail
    ("decoder error -2") or follow the reason in brackets; one line, at most ``limit`` characters."""
    said = "; ".join(" ".join(n.split()) for n in notes if n.strip())
    if not said:
        return reason
    m = _PILLOW_DETAIL.search(reason)
    if m:
        head = reason[:m.start()]
        head = {"not an image": "not a readable image", "corrupt image data": "cannot decode the image data"}.get(head, head)
        text = f"{head}: {said}"
    else:
        text = f"{reason} ({said})"
    return text if len(text) <= limit else text[: limit - 3] + "..."

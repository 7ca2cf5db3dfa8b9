"""Messages for people: an exception or a file name as text that fits on one printable line.

Every error latentlab shows (CLI, app banner, a skipped file's reason) goes through these, so that
no traceback, control character or undecodable byte reaches a terminal or a window.
"""

from __future__ import annotations

__all__ = ["printable", "one_line"]


def printable(text: object) -> str:
    """Text safe to print on one line: undecodable bytes and control characters escaped."""
    text = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def one_line(exc: BaseException, limit: int = 300, with_type: bool = False) -> str:
    """The first line of ``str(exc)`` (its type's name when empty), printable, at most ``limit``
    characters; ``with_type`` puts the type's name in front ("ValueError: ...")."""
    msg = (str(exc).strip().splitlines() or [""])[0].strip() or type(exc).__name__
    msg = printable(msg)
    if with_type and msg != type(exc).__name__:
        msg = f"{type(exc).__name__}: {msg}"
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."

"""Waiting in tests on a machine that may be busy: wait on a condition, with one generous ceiling.

Nothing here assumes an idle machine: a condition is polled until it holds, and the ceiling only
decides how long a test that is really stuck takes to fail. ``LATENTLAB_TEST_WAIT`` (seconds, default
300) sets it; ``WAIT_MS`` is the same ceiling for pytest-qt's ``waitUntil`` / ``waitSignal``.
"""

from __future__ import annotations

import os
import time

WAIT_S = float(os.environ.get("LATENTLAB_TEST_WAIT", "300"))
WAIT_MS = int(WAIT_S * 1000)


def wait_for(condition, what: str = "the condition", timeout: float = WAIT_S, poll: float = 0.02):
    """Poll ``condition()`` until it returns something true (returned); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(poll)


def wait_until_settled(qtbot, read, quiet_ms: int = 1500, timeout_ms: int = WAIT_MS):
    """Process Qt events until ``read()`` has not changed for ``quiet_ms``; returns its value. For "the
    work in flight has come in": a paused training's last batch, say."""
    deadline = time.monotonic() + timeout_ms / 1000
    value, since = read(), time.monotonic()
    while time.monotonic() - since < quiet_ms / 1000:
        if time.monotonic() > deadline:
            raise AssertionError(f"still changing after {timeout_ms / 1000:.0f} s")
        qtbot.wait(50)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
    return value

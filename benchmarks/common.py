"""What the benchmarks share: a log line, percentiles, and taking turns fairly — `Baton` across
threads of one process, `Turns` cutting a participant's own time into slices (across threads or
processes), `paired_ratio` comparing two participants slice by slice."""

from __future__ import annotations

import statistics
import sys
import threading
import time

import numpy as np

__all__ = ["log", "pct", "Baton", "Turns", "paired_ratio"]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values, q) -> float | None:
    return float(np.percentile(np.asarray(values, float), q)) if len(values) else None


# -- taking turns ------------------------------------------------------------------------------------
class Baton:
    """Participants (threads) take turns in a fixed rotation; one finished leaves the rotation."""

    def __init__(self, names):
        self.order = list(names)
        self.i = 0
        self.cv = threading.Condition()

    def wait(self, name):
        with self.cv:
            self.cv.wait_for(lambda: not self.order or self.order[self.i] == name)

    def pass_on(self, name, done=False):
        with self.cv:
            idx = self.order.index(name)
            if done:
                self.order.remove(name)
                self.i = idx % len(self.order) if self.order else 0
            else:
                self.i = (idx + 1) % len(self.order)
            self.cv.notify_all()


class Turns:
    """One participant's own time, cut every ``slice_steps`` batches and at each epoch's end:
    ``record(epoch, images, seconds)`` gets each slice; after a cut within an epoch ``hand_over()``
    gives the turn away and returns when it is back. At an epoch's end the caller hands over (it may
    score the model first), then calls :meth:`begin_epoch`. Used here across processes and by the
    bench's one-process section across threads."""

    def __init__(self, batch_size: int, n: int, slice_steps: int, record, hand_over):
        self.bs, self.n, self.slice, self.record, self.hand_over = batch_size, n, slice_steps, record, hand_over
        self.begin_epoch(0)

    def begin_epoch(self, epoch: int) -> None:
        self.epoch, self.done, self.own, self.t0 = epoch, 0, 0.0, time.perf_counter()

    def _cut(self, step: int) -> None:
        seconds = time.perf_counter() - self.t0
        images = min(step * self.bs, self.n) - self.done
        self.done += images
        self.own += seconds
        self.record(self.epoch, images, seconds)

    def batch_end(self, step: int, steps: int) -> None:   # step: 1-based within the epoch
        if step % self.slice == 0 and step < steps:
            self._cut(step)
            self.hand_over()
            self.t0 = time.perf_counter()

    def end_epoch(self, steps: int) -> float:
        """Cut the epoch's last slice; returns the epoch's own seconds."""
        self._cut(steps)
        return self.own


def paired_ratio(a: list, b: list) -> dict:
    """a's k-th slice rate over b's k-th, for lists of (images, seconds): the median (None without
    pairs), the number of pairs and, from 4 pairs on, the interquartile range."""
    pairs = [(ia / ta) / (ib / tb) for (ia, ta), (ib, tb) in zip(a, b) if ta > 0 and tb > 0]
    out = {"ratio": statistics.median(pairs) if pairs else None, "pairs": len(pairs)}
    if len(pairs) >= 4:
        q = statistics.quantiles(pairs, n=4)
        out["iqr"] = [q[0], q[2]]
    return out

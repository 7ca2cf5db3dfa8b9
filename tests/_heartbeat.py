"""A GUI-thread stall meter shared by the GUI and reliability tests."""

import time

from PySide6.QtCore import QTimer


class Heartbeat:
    """A 10 ms timer on the GUI thread; the longest gap between its ticks is the longest stall.
    ``long_gaps`` lists (seconds since start, gap) for every gap over 100 ms."""

    def __init__(self):
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self.tick)
        self.last = None
        self.max_gap = 0.0
        self.long_gaps = []
        self.t0 = time.perf_counter()

    def tick(self):
        now = time.perf_counter()
        if self.last is not None:
            gap = now - self.last
            self.max_gap = max(self.max_gap, gap)
            if gap > 0.1:
                self.long_gaps.append((round(now - self.t0, 2), round(gap, 3)))
        self.last = now

    def start(self):
        self.t0 = time.perf_counter()
        self.last, self.max_gap, self.long_gaps = None, 0.0, []
        self.timer.start()

    def stop(self):
        self.timer.stop()

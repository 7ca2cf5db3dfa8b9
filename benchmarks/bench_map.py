"""The latent map with 100,000 points: frames per second while a person pans, zooms and hovers.

    python -m benchmarks.bench_map [--small] [--json out.json]   # this section alone (bench.py runs it too)

The real window (offscreen, 1280×800, the layout of a first start) shows 100,000 encoded points in ten
classes over the decoded grid of an untrained decoder (the grid is decoded again as the view moves, as in
use). Real input events go to the map's viewport: a left-button drag (pan), wheel steps in and out (zoom),
and mouse moves (hover, whose preview decodes the point under the mouse), at most one per 10.5 ms (pyqtgraph
drops mouse moves closer than 10 ms apart: 100 frames a second is the ceiling). After each event the event
loop runs until the frame it causes is painted (the plot's viewport for pan and zoom, the hover preview for
hover); frames per second = frames ÷ seconds. ``map_fps_100k`` is the slowest of the three. Beside each,
the GUI thread's CPU milliseconds per frame (input handling, paint, the hover's decode; what a frame costs
however loaded the machine is: the frame rate is bounded by 1000 ÷ that on an idle core).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

__all__ = ["bench_map_fps", "bench_map_subprocess", "KEYS"]

EVENT_GAP_S = 0.0105   # between input events (pyqtgraph's mouseRateLimit: 100 moves a second)
KEYS = ("map_fps_100k", "map_fps_100k_pan", "map_fps_100k_zoom", "map_fps_100k_hover", "map_cpu_ms_per_frame_pan",
        "map_cpu_ms_per_frame_zoom", "map_cpu_ms_per_frame_hover", "map_points", "map_points_drawn", "map_load_avg")


def _points(n: int, seed: int = 0):
    """``n`` latent points in ten clusters (a trained 2-D map's look) and their labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    angle = labels * (2 * np.pi / 10)
    centres = np.stack([2.0 * np.cos(angle), 2.0 * np.sin(angle)], axis=1)
    return (centres + rng.standard_normal((n, 2)) * 0.6).astype(np.float32), labels


def bench_map_fps(points: int = 100_000, frames: int = 120) -> dict:  # noqa: C901
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QSettings, Qt
    from PySide6.QtGui import QMouseEvent, QWheelEvent
    from PySide6.QtWidgets import QApplication

    from latentlab.model.key import ModelKey
    from latentlab.runtime import build_decoders

    app = QApplication.instance() or QApplication(["latentlab-bench-map"])
    tmp = tempfile.mkdtemp(prefix="latentlab-bench-map-")
    QSettings.setDefaultFormat(QSettings.IniFormat)      # never the user's layout, never saved into it
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, tmp)
    key = ModelKey((28, 28, 1), 2, "bernoulli")
    weights = build_decoders(key)[0].model.get_weights()  # before the window's grid thread uses TensorFlow

    from gui.main_window import MainWindow

    win = MainWindow(runs_root=os.path.join(tmp, "runs"))
    try:
        win.resize(1280, 800)
        win.show()
        z, labels = _points(points)
        win.map_view.show_model(key, weights)
        win.latent_map.set_points(z, labels, [f"class {i}" for i in range(10)])

        def settle(timeout: float = 60.0) -> None:
            t_end = time.monotonic() + timeout
            while not win.is_idle() and time.monotonic() < t_end:
                app.processEvents()
                time.sleep(0.002)
            for _ in range(5):
                app.processEvents()

        settle()
        vp = win.latent_map.plot.viewport()

        class Frames(QObject):
            n = 0

            def eventFilter(self, obj, event):
                if event.type() == QEvent.Paint:
                    self.n += 1
                return False

        plot_frames, preview_frames = Frames(), Frames()
        vp.installEventFilter(plot_frames)
        win.latent_map.preview.installEventFilter(preview_frames)
        centre = QPointF(vp.width() / 2, vp.height() / 2)

        def mouse(kind, pos, buttons):
            button = Qt.LeftButton if kind != QEvent.MouseMove else Qt.NoButton
            glob = QPointF(vp.mapToGlobal(pos.toPoint()))
            app.sendEvent(vp, QMouseEvent(kind, pos, glob, button, buttons, Qt.NoModifier))

        def pace(last: float) -> float:
            """pyqtgraph drops mouse moves that come within 1/mouseRateLimit s of the last one (10 ms): wait
            that long (a mouse sends 125 a second) so that no event is lost, processing events meanwhile."""
            while time.perf_counter() - last < EVENT_GAP_S:
                app.processEvents()
                time.sleep(0.0002)
            return time.perf_counter()

        def run(step, counter, n: int) -> tuple[float, float]:
            """Frames per second: input events answered by a paint (several paint events of one frame —
            the axes, the view — count once) per second; and the GUI thread's CPU milliseconds per frame
            (what a frame costs whatever else the machine runs)."""
            t0 = last = time.perf_counter()
            cpu0 = time.thread_time()
            frames = 0
            for i in range(n):
                last = pace(last)
                step(i)
                seen, t_end = counter.n, time.perf_counter() + 1.0
                while counter.n == seen and time.perf_counter() < t_end:
                    app.processEvents()
                    if counter.n == seen:
                        time.sleep(0.0002)
                frames += counter.n > seen
            return frames / (time.perf_counter() - t0), (time.thread_time() - cpu0) * 1000 / max(frames, 1)

        # pan: one drag, 4 px per event, back and forth
        state = {"pos": QPointF(centre)}
        mouse(QEvent.MouseButtonPress, state["pos"], Qt.LeftButton)
        last = time.perf_counter()
        for _ in range(3):             # the drag starts (pyqtgraph waits for a few pixels of movement)
            last = pace(last)
            state["pos"] = state["pos"] + QPointF(3.0, 0.0)
            mouse(QEvent.MouseMove, state["pos"], Qt.LeftButton)
        settle(5)

        def drag(i):
            state["pos"] = state["pos"] + QPointF(4.0 if (i // 20) % 2 == 0 else -4.0, 1.5 if (i // 10) % 2 else -1.5)
            mouse(QEvent.MouseMove, state["pos"], Qt.LeftButton)

        pan = run(drag, plot_frames, frames)
        mouse(QEvent.MouseButtonRelease, state["pos"], Qt.NoButton)
        settle()

        def wheel(i):   # a trackpad's or fine wheel's steps (15 of 120), in then out
            delta = 15 if (i // 20) % 2 == 0 else -15
            app.sendEvent(vp, QWheelEvent(centre, QPointF(vp.mapToGlobal(centre.toPoint())), QPoint(0, 0),
                                          QPoint(0, delta), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False))

        zoom = run(wheel, plot_frames, frames)
        settle()

        def hover(i):
            t = i / max(frames - 1, 1)
            pos = QPointF(vp.width() * (0.15 + 0.7 * t), vp.height() * (0.5 + 0.3 * np.sin(6 * t)))
            mouse(QEvent.MouseMove, pos, Qt.NoButton)

        hov = run(hover, preview_frames, frames)
        drawn = win.latent_map.points_item.drawn
    finally:
        win.shutdown()
        win.deleteLater()
        app.processEvents()
        shutil.rmtree(tmp, ignore_errors=True)
    out = {"map_fps_100k": min(pan[0], zoom[0], hov[0]), "map_points": points, "map_points_drawn": drawn,
           "map_load_avg": os.getloadavg()[0]}
    for name, (fps, cpu_ms) in (("pan", pan), ("zoom", zoom), ("hover", hov)):
        out[f"map_fps_100k_{name}"], out[f"map_cpu_ms_per_frame_{name}"] = fps, cpu_ms
    return out


def bench_map_subprocess(small: bool) -> dict:
    """This section in a child process (Qt and a window of its own; a crash costs only these figures)."""
    with tempfile.TemporaryDirectory(prefix="latentlab-bench-map-") as tmp:
        out = os.path.join(tmp, "map.json")
        cmd = [sys.executable, "-m", "benchmarks.bench_map", "--json", out] + (["--small"] if small else [])
        env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0 or not os.path.isfile(out):
            tail = [ln for ln in proc.stderr.splitlines() if "Error" in ln or "Traceback" in ln]
            raise RuntimeError(f"the map benchmark process exited with {proc.returncode}: "
                               + (tail[-1] if tail else proc.stderr.strip()[-300:]))
        with open(out) as f:
            return {k: v for k, v in json.load(f).items() if k in KEYS}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="fewer frames per phase (the same 100,000 points)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    res = bench_map_fps(frames=40 if args.small else 150)
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())

"""Summarise a lesson folder (made by `latentlab lesson` or the app's "Show the trade-off"): a Markdown table
of its figures on stdout and, with --png, a picture of the app's own lesson view showing it.

    python scripts/lesson_report.py LESSON_DIR [--png docs/lesson.png] [--size 1500x1150]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def markdown(summary: dict) -> str:
    multi = len(summary.get("seeds", [])) > 1
    head = "| β | rate (nats) | distortion (nats) | −ELBO (nats) | active units |"
    rule = "|---:|---:|---:|---:|---:|"
    lines = [head, rule]
    for r in summary["runs"]:
        s = r.get("spread") if multi else None
        pm = (lambda k, s=s: f" ± {s[k]:.2f}") if s else (lambda k: "")
        lines.append(f"| {r['beta']:g} | {r['rate']:.2f}{pm('rate')} | {r['distortion']:.2f}{pm('distortion')} "
                     f"| {r['neg_elbo']:.2f} | {r['active_units']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lesson_dir")
    ap.add_argument("--png", help="write a picture of the lesson view here")
    ap.add_argument("--size", default="1500x1150", help="the view's size in pixels, WIDTHxHEIGHT")
    args = ap.parse_args(argv)

    from latentlab.sweeps.lesson import LessonError, read_summary

    try:
        summary = read_summary(args.lesson_dir)
    except LessonError as e:
        print(e, file=sys.stderr)
        return 1
    print(markdown(summary), end="")
    for line in summary["verdict"]:
        print(f"\n{line}", end="")
    print()
    if args.png:
        from PySide6.QtWidgets import QApplication

        from gui.tradeoff.lesson_view import LessonView

        app = QApplication.instance() or QApplication([])
        view = LessonView()
        w, h = (int(v) for v in args.size.lower().split("x"))
        view.resize(w, h)
        view.show()
        done = []
        view.comparisonReady.connect(lambda: done.append(True))
        view.open_folder(args.lesson_dir)
        deadline = time.monotonic() + 120
        while not done and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        for _ in range(20):
            app.processEvents()
        ok = bool(done) and view.grab().save(args.png, "PNG")
        view.shutdown()
        if not ok:
            print(f"could not write {args.png}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

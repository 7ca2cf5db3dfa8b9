"""Summarise a β sweep folder: a Markdown table (val reconstruction, val KL, −ELBO, active units
per β) on stdout, and the rate–distortion plane exported from the app's own widget.

    python scripts/beta_sweep_report.py SWEEP_DIR [--png docs/rate-distortion.png] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir")
    ap.add_argument("--png", help="write the rate–distortion plane here")
    ap.add_argument("--csv", help="write the summary table here")
    ap.add_argument("--width", type=int, default=1200)
    args = ap.parse_args(argv)

    from latentlab import tradeoff
    from latentlab.runs import folder as runs
    from latentlab.runs.folder import find_runs

    opened = [runs.open_run(p) for p in find_runs(args.sweep_dir)]
    if not opened:
        print(f"{args.sweep_dir}: no run folders", file=sys.stderr)
        return 1
    rows = tradeoff.sweep_summary(opened)
    print(tradeoff.summary_markdown(rows), end="")
    if args.csv:
        Path(args.csv).write_text(tradeoff.summary_csv(rows), encoding="utf-8")
    if args.png:
        from PySide6.QtWidgets import QApplication

        from gui.tradeoff.rate_distortion import RateDistortionPlot

        app = QApplication.instance() or QApplication([])
        plot = RateDistortionPlot()
        plot.resize(900, 650)
        for run in opened:
            plot.add_run(str(run.path), float(run.config.beta), run.history)
        plot.show()
        app.processEvents()
        if not plot.export_png(args.png, args.width):
            print(f"could not write {args.png}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Screenshots of the window at 1280×800, 1920×1080 and 2560×1440 (offscreen grabs, docs/screens/).

    python scripts/calm_screens.py [--epochs 6] [--out docs/screens]

One window, in a fresh settings folder, on the bundled sample: ``start`` (the sample opened, nothing
trained), ``training`` (mid-run), ``tradeoff`` (the trade-off views open, Ctrl+B, after the run),
``lesson-running`` (the lesson after its first run, the others training), ``lesson`` (a small "Show the
trade-off" lesson done) and ``run`` (the trained run opened again from its
folder). Each state is grabbed at the three sizes as ``<state>-<W>x<H>.png``, stored as 8-bit palette
PNGs (ImageMagick's convert, when installed) to keep them small. ``--scheme dark`` (or light) shoots in
that colour scheme, as ``<state>-dark-<W>x<H>.png``; ``--sizes 1280x800`` picks sizes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts.offscreen import offscreen_app, settle, wait  # noqa: E402
SIZES = ((1280, 800), (1920, 1080), (2560, 1440))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screens"))
    ap.add_argument("--states", default="start,training,tradeoff,lesson-running,lesson,run")
    ap.add_argument("--scheme", choices=("system", "light", "dark"), default="system")
    ap.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    states = set(args.states.split(","))
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    suffix = "-dark" if args.scheme == "dark" else ""
    with tempfile.TemporaryDirectory(prefix="latentlab-screens-") as tmp:
        tmp = Path(tmp)
        offscreen_app(tmp / "config")
        from gui.main_window import MainWindow
        from latentlab.data.sample import sample_dataset_path
        from latentlab.sweeps.lesson import Design

        win = MainWindow(runs_root=tmp / "runs")
        win.confirm_stop = lambda: True
        win.theme.set_scheme(win.theme.scheme.__class__(args.scheme))

        def shoot(state: str) -> None:
            if state not in states:
                return
            for w, h in sizes:
                win.resize(w, h)
                wait(lambda w=w, h=h: win.width() == w and win.height() == h, 10)
                settle()
                win.latent_map.fit()           # View → Fit: the map's points in view at this size
                settle(5)
                path = out / f"{state}{suffix}-{w}x{h}.png"
                if not win.grab().save(str(path), "PNG"):
                    raise SystemExit(f"cannot write {path}")
                if shutil.which("convert"):   # ImageMagick: an adaptive 256-colour palette, no dithering
                    subprocess.run(["convert", str(path), "+dither", "-colors", "256", "-strip", f"PNG8:{path}"],
                                   check=True)
                print("wrote", path, f"{path.stat().st_size // 1024} KiB", flush=True)

        try:
            win.resize(*sizes[0])
            win.show()
            win.open_dataset(sample_dataset_path())
            wait(lambda: win.dataset is not None and win.is_idle(), 120)
            shoot("start")
            win.training_panel.apply_settings(epochs=args.epochs)
            win.start_training()
            wait(lambda: len(win.loss_plot.epoch_x) >= 2, 600)
            win.training.pause()               # mid-run: the same picture at each size
            settle(30)
            shoot("training")
            win.training.resume()
            wait(win.is_idle, 900)
            run_dir = win.run_dir
            win.show_tradeoff(win.tradeoff.TAB_RD)
            shoot("tradeoff")
            if states & {"lesson", "lesson-running"}:
                view = win.tradeoff.lesson
                view.design = Design(betas=(0.1, 1.0, 10.0), warm_epochs=3, epochs=2, draws=8, seeds=(0,))
                ready = []
                view.comparisonReady.connect(lambda: ready.append(1))
                win.start_lesson()
                rebuilt = []
                view.runReconstructed.connect(rebuilt.append)
                wait(lambda: bool(rebuilt) or bool(ready), 1800)   # the first run on the plane, its row rebuilt
                from PySide6.QtWidgets import QScrollArea
                view.findChild(QScrollArea).ensureWidgetVisible(view.recon_view)   # scrolled down to them
                shoot("lesson-running")
                wait(lambda: bool(ready), 1800)
                wait(win.is_idle, 60)
                shoot("lesson")
            if run_dir is not None:
                win.layout_state.reset()
                win.open_run_path(run_dir)
                wait(win.is_idle, 120)
                settle(50)
                shoot("run")
        finally:
            win.shutdown()
            win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

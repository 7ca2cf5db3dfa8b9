"""Make the README's two screenshots again.

    python scripts/readme_screenshots.py [--epochs 10] [--docs docs]

1. ``docs/screenshot.png``: the README's own app command with its defaults (the bundled sample, β 1,
   latent size 2), ``scripts/run-app --autostart --epochs N --screenshot … --quit-when-done``, in a fresh
   settings folder (the layout of a first start; headless, offscreen, 1280×800).
2. ``docs/screenshot-tradeoff.png``: the trade-off views after a β sweep the app's sweep panel trains on the
   sample (β 0.3, 1 and 4): the whole 1280×800 window with the trade-off views docked below the map (as
   Ctrl+B opens them), the rate–distortion plane with one marker per run and the sweep's table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts.offscreen import offscreen_app, settle, wait  # noqa: E402


def app_screenshot(out: Path, epochs: int, tmp: Path) -> None:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"), LATENTLAB_RUNS_DIR=str(tmp / "runs"))
    env.pop("DISPLAY", None)          # headless: --quit-when-done renders offscreen
    env.pop("WAYLAND_DISPLAY", None)
    cmd = [str(ROOT / "scripts" / "run-app"), "--autostart", "--epochs", str(epochs), "--screenshot", str(out),
           "--quit-when-done"]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, env=env, check=True)


def tradeoff_screenshot(out: Path, epochs: int, tmp: Path) -> None:
    offscreen_app(tmp / "config")
    from gui.main_window import MainWindow
    from latentlab.data.sample import sample_dataset_path

    win = MainWindow(runs_root=tmp / "runs")
    try:
        win.resize(1280, 800)
        win.show()
        win.open_dataset(sample_dataset_path())
        wait(lambda: win.dataset is not None and win.is_idle(), 120)
        win.training_panel.apply_settings(epochs=epochs)
        win.show_tradeoff(win.tradeoff.TAB_RD)
        sweep = win.tradeoff.sweep_panel
        sweep.betas_edit.setText("0.3, 1, 4")
        sweep.out_edit.setText(str(tmp / "sweep"))
        done = []
        sweep.sweepFinished.connect(done.append)
        sweep.start_button.click()
        wait(lambda: bool(done), 3600)
        wait(win.is_idle, 60)
        win.show_tradeoff(win.tradeoff.TAB_RD)       # docked below the map, tabbed with the curves
        settle(20)
        win.tradeoff.rd_plot.redraw()
        if not win.grab().save(str(out), "PNG"):
            raise SystemExit(f"cannot write {out}")
    finally:
        win.shutdown()
        win.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--docs", default=str(ROOT / "docs"))
    args = ap.parse_args(argv)
    docs = Path(args.docs)
    with tempfile.TemporaryDirectory(prefix="latentlab-screenshots-") as tmp:
        app_screenshot(docs / "screenshot.png", args.epochs, Path(tmp) / "app")
        tradeoff_screenshot(docs / "screenshot-tradeoff.png", args.epochs, Path(tmp) / "tradeoff")
    print(f"wrote {docs / 'screenshot.png'} and {docs / 'screenshot-tradeoff.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

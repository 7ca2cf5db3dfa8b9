"""The ``latentlab`` console script, and the desktop app's entry point (``python -m gui.app``).

    latentlab train|info|export|sweep|eval|tensorboard ...   headless: handed to latentlab.cli before any Qt import
    latentlab [app] [--dataset DIR | --run RUNDIR] [--beta B] [--latent-dim D] [--hidden-units H]
              [--epochs N] [--batch-size N] [--lr LR] [--autostart] [--screenshot PNG] [--quit-when-done]
    latentlab [app] --decoder FILE.keras [--encoder FILE.keras --dataset DIR]   a decoder trained elsewhere

With ``--run RUNDIR --autostart --epochs N`` the app trains that run further, up to N epochs in all (as
``latentlab train --resume RUNDIR --epochs N``), its history going on where it stopped.
"""

from __future__ import annotations

import argparse
import ctypes.util
import os
import sys

from latentlab.cli import SUBCOMMANDS
from latentlab.cli.common import add_train_flags

__all__ = ["main", "build_parser", "platform_problem"]

# Qt's xcb platform plugin needs these libraries (Debian/Ubuntu package names).
XCB_LIBRARIES = [
    ("xcb-cursor", "libxcb-cursor0"), ("xkbcommon-x11", "libxkbcommon-x11-0"), ("xcb-icccm", "libxcb-icccm4"),
    ("xcb-image", "libxcb-image0"), ("xcb-keysyms", "libxcb-keysyms1"), ("xcb-render-util", "libxcb-render-util0"),
    ("xcb-shape", "libxcb-shape0"), ("xcb-xkb", "libxcb-xkb1"), ("xcb-randr", "libxcb-randr0"),
]
HINT_PACKAGES = ("libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 "
                 "libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxcb-randr0 libegl1")
HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="latentlab", description="A desktop laboratory for variational autoencoders. "
                                "(Sub-commands for headless use: latentlab train|info|export|sweep|eval|tensorboard --help.)")
    p.add_argument("--dataset", metavar="DIR", help="image folder to open (default: the bundled sample)")
    p.add_argument("--run", metavar="RUNDIR", help="run folder to open (made by the app or `latentlab train`)")
    p.add_argument("--decoder", metavar="FILE.keras", help="explore a Keras decoder trained elsewhere (a vector of "
                   "size d to an H×W, H×W×1 or H×W×3 image; pixels in [0, 1] or logits)")
    p.add_argument("--encoder", metavar="FILE.keras", help="with --decoder: its encoder (returning z_mean, and "
                   "z_log_var), to draw --dataset's images on the map")
    add_train_flags(p, "--beta", "--latent-dim", "--hidden-units", "--epochs", "--batch-size", "--lr")
    p.add_argument("--autostart", action="store_true", help="start training as soon as the dataset is loaded; "
                   "with --run, continue that run up to --epochs in all")
    p.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window when training finishes "
                   "(or at exit)")
    p.add_argument("--quit-when-done", action="store_true",
                   help="quit when training finishes (or, without --autostart, once the data are shown); "
                        "exit code 0 on success. Runs headless (offscreen) when there is no display.")
    return p


def platform_problem() -> str | None:
    """Why Qt's windowing will not start here, in one line; None when it should."""
    if not sys.platform.startswith("linux"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0]
    if platform in HEADLESS_PLATFORMS:
        return None
    wayland, x11 = os.environ.get("WAYLAND_DISPLAY"), os.environ.get("DISPLAY")
    if platform == "wayland":
        return None if wayland else ("QT_QPA_PLATFORM=wayland but WAYLAND_DISPLAY is not set: run inside a "
                                     "Wayland session, or set QT_QPA_PLATFORM=offscreen for headless screenshots")
    if not wayland and not x11:
        return ("no display: DISPLAY and WAYLAND_DISPLAY are not set; run on a desktop, under `xvfb-run -a "
                "latentlab`, or with QT_QPA_PLATFORM=offscreen (headless, for --screenshot)")
    if x11 and (platform == "xcb" or not wayland):
        missing = [pkg for lib, pkg in XCB_LIBRARIES if ctypes.util.find_library(lib) is None]
        if missing:
            return (f"Qt's xcb platform plugin needs libraries that are missing ({' '.join(missing)}): "
                    f"sudo apt-get install {HINT_PACKAGES}  (or set QT_QPA_PLATFORM=offscreen)")
    return None


def _install_message_handler() -> None:
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    def handler(mode, context, message):
        if mode == QtMsgType.QtFatalMsg and "platform plugin" in message:
            print(f"latentlab: error: Qt could not start its window system ({message.splitlines()[0]}); "
                  f"on Debian/Ubuntu: sudo apt-get install {HINT_PACKAGES}; or set QT_QPA_PLATFORM=offscreen",
                  file=sys.stderr, flush=True)
            return
        if mode in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
            if "propagateSizeHints" in message or "This plugin does not support" in message:
                return
            print(f"Qt: {message}", file=sys.stderr)

    qInstallMessageHandler(handler)


def main(argv: list[str] | None = None) -> int:
    """The console script: a sub-command (or -h / --version) goes to latentlab.cli, headless; anything
    else (optionally after the word ``app``) opens the window."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (argv[0] in SUBCOMMANDS or argv[0] in ("-h", "--help", "--version")):
        from latentlab.cli import main as cli_main

        return cli_main(argv)
    if argv and argv[0] == "app":
        argv = argv[1:]
    return run_app(argv)


M_ARENA_MAX = -8      # glibc's mallopt parameter for the number of malloc arenas (malloc.h)


def limit_malloc_arenas(count: int = 2) -> bool:
    """Cap glibc's malloc arenas at ``count`` for this process, before its threads start; a
    ``MALLOC_ARENA_MAX`` the user set wins. glibc's default (8 per core) let a long session's native memory
    grow: the window's soak (scripts/soak-app, trainings and lessons in a cycle) grew ~0.3 MB a training after
    warm-up with it and stayed flat with 2 arenas, ~200 MB lower (docs/reliability.md). True when set."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(M_ARENA_MAX, int(count)))
    except (OSError, AttributeError):    # not glibc (musl has no mallopt)
        return False


def _fail(message: str, code: int = 2) -> int:
    print(f"latentlab: error: {message}", file=sys.stderr, flush=True)
    return code


def _qt_app():
    """The QApplication (made here unless one exists), or the one-line reason Qt could not start."""
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("latentlab")
    QCoreApplication.setApplicationName("latentlab")
    app = QApplication.instance()
    if app is not None:
        return app
    try:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    except Exception:
        pass
    try:
        return QApplication(["latentlab"])
    except Exception as e:  # pragma: no cover - Qt usually aborts instead
        return (f"Qt could not start ({e}); on Debian/Ubuntu: sudo apt-get install {HINT_PACKAGES}; "
                "or set QT_QPA_PLATFORM=offscreen")


def run_app(argv: list[str]) -> int:
    """Open the window with the app's options (see build_parser): the flags checked first (gui.autostart's
    check_flags, no Qt), then the window, which gui.autostart.Autostart drives to its exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    limit_malloc_arenas()      # before TensorFlow and Qt start their threads
    from gui.autostart import Autostart, FlagError, check_flags

    try:
        early_error = check_flags(args)
    except FlagError as e:
        return _fail(str(e))
    problem = platform_problem()
    if problem:
        if not args.quit_when_done:
            return _fail(problem)
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # non-interactive: render headless
    _install_message_handler()
    app = _qt_app()
    if isinstance(app, str):
        return _fail(app)

    from gui.lifecycle import TerminalSignals, Watchdog, close_for_signal, stalled_message
    from gui.main_window import MainWindow

    win = MainWindow()
    win.screenshot_path = args.screenshot
    watchdog = Watchdog(seconds=float(os.environ.get("LATENTLAB_WATCHDOG_S", "10")), parent=win)
    watchdog.stalled.connect(lambda seconds, where: win.show_banner(stalled_message(seconds, where)))
    watchdog.start()

    def quit_on_signal(signum: int) -> None:   # Ctrl+C / SIGTERM: Stop, then Quit (a second one: at once)
        close_for_signal(win)
        app.exit(signals.exit_code)

    signals = TerminalSignals(quit_on_signal, win)
    signals.install()
    auto = Autostart(args, app, win)
    auto.begin(early_error)
    code = app.exec()
    if auto.done:
        code = auto.code
    if signals.exit_code is not None:
        code = signals.exit_code
    if args.screenshot and not win.screenshot_saved:
        win.save_screenshot(args.screenshot)
    win.shutdown()
    win.close()
    watchdog.stop()
    signals.uninstall()
    if signals.exit_code is not None:
        print(f"latentlab: quit on {'Ctrl+C' if signals.signum == 2 else 'SIGTERM'}"
              + (f"; the run folder is {win.run_dir}" if win.run_dir is not None else ""), file=sys.stderr, flush=True)
    win.deleteLater()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())

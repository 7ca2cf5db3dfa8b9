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
from pathlib import Path

from latentlab import config as C
from latentlab.cli import SUBCOMMANDS, number_arg

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
    p.add_argument("--beta", type=number_arg(float, *C.BETA_RANGE, "beta"),
                   help=f"β, the KL weight ({C.BETA_RANGE[0]:g}–{C.BETA_RANGE[1]:g})")
    p.add_argument("--latent-dim", type=number_arg(int, *C.LATENT_RANGE, "latent size"),
                   help=f"latent size ({C.LATENT_RANGE[0]}–{C.LATENT_RANGE[1]})")
    p.add_argument("--hidden-units", type=number_arg(int, *C.HIDDEN_RANGE, "hidden units"),
                   help=f"encoder dense width (0 = automatic, {C.AUTO_HIDDEN_UNITS}; 16 = the classic Keras recipe)")
    p.add_argument("--epochs", type=number_arg(int, *C.EPOCHS_RANGE, "epochs"), help="epochs to train")
    p.add_argument("--batch-size", type=number_arg(int, *C.BATCH_RANGE, "batch size"), help="images per batch")
    p.add_argument("--lr", type=number_arg(float, *C.LR_RANGE, "learning rate"), help="learning rate (Adam)")
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


def run_app(argv: list[str]) -> int:  # noqa: C901
    """Open the window with the app's options (see build_parser)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    def fail(message: str, code: int = 2) -> int:
        print(f"latentlab: error: {message}", file=sys.stderr, flush=True)
        return code

    if args.dataset and args.run:
        return fail("give --dataset or --run, not both")
    if args.decoder and (args.run or args.autostart):
        return fail("--decoder opens a decoder trained elsewhere: give it without --run or --autostart")
    if args.encoder and not args.decoder:
        return fail("--encoder goes with --decoder FILE.keras")
    if args.dataset and not Path(args.dataset).expanduser().is_dir():
        what = "is a file, not a folder" if Path(args.dataset).expanduser().exists() else "does not exist"
        message = f"dataset folder {args.dataset} {what}"
        if args.quit_when_done:
            return fail(message)
        early_error = message
    else:
        early_error = None
    if args.run and args.quit_when_done:
        from latentlab.runs.folder import RunError, open_run

        try:
            open_run(args.run)
        except RunError as e:
            return fail(str(e))
    for flag, path in (("--decoder", args.decoder), ("--encoder", args.encoder)):
        if path and not Path(path).expanduser().is_file():
            return fail(f"{flag} {path} {'is a folder' if Path(path).expanduser().exists() else 'does not exist'}: "
                        "give a Keras model file (.keras)")

    problem = platform_problem()
    if problem:
        if args.quit_when_done:
            os.environ["QT_QPA_PLATFORM"] = "offscreen"  # non-interactive: render headless
        else:
            return fail(problem)

    _install_message_handler()
    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("latentlab")
    QCoreApplication.setApplicationName("latentlab")
    app = QApplication.instance()
    own_app = app is None
    if own_app:
        try:
            QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
                __import__("PySide6.QtCore", fromlist=["Qt"]).Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        except Exception:
            pass
        try:
            app = QApplication(["latentlab"])
        except Exception as e:  # pragma: no cover - Qt usually aborts instead
            return fail(f"Qt could not start ({e}); on Debian/Ubuntu: sudo apt-get install {HINT_PACKAGES}; "
                        "or set QT_QPA_PLATFORM=offscreen")

    from gui.lifecycle import TerminalSignals, Watchdog, close_for_signal, stalled_message
    from gui.main_window import MainWindow
    from gui.threads import wait_until_idle

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
    settings = {k: v for k, v in (("beta", args.beta), ("latent_dim", args.latent_dim),
                                  ("hidden_units", args.hidden_units), ("epochs", args.epochs),
                                  ("batch_size", args.batch_size), ("learning_rate", args.lr)) if v is not None}
    state = {"code": 0, "done": False}

    def finish(code: int) -> None:
        if state["done"]:
            return
        state["done"] = True
        state["code"] = code

        def save_and_quit():
            if args.screenshot:
                if not win.save_screenshot(args.screenshot):
                    print(f"latentlab: error: cannot write the screenshot {args.screenshot}", file=sys.stderr)
                    state["code"] = state["code"] or 1
            if args.quit_when_done:
                app.exit(state["code"])

        wait_until_idle(win.is_idle, 15_000, save_and_quit)

    def on_error(message: str) -> None:
        if args.quit_when_done:
            print(f"latentlab: error: {message}", file=sys.stderr, flush=True)
            finish(2)

    def on_trained(result) -> None:
        from latentlab.events import Failed

        if isinstance(result, Failed) or result is None:
            if args.quit_when_done:
                print(f"latentlab: error: {getattr(result, 'message', 'training did not finish')}",
                      file=sys.stderr, flush=True)
            finish(1)
        else:
            print(f"latentlab: {result.message}; run folder: {result.run_dir}", flush=True)
            finish(0)

    def on_ready(*_):
        if args.autostart and not win.is_training and win.last_result is None:
            def start():
                if not (win.continue_training() if args.run else win.start_training()):
                    on_error("could not start training: " + win.statusBar().currentMessage())
            # an opened run's decoders are being built: TensorFlow builds graphs on one thread at a time
            wait_until_idle(lambda: not win.map_view.renderer.configuring, 120_000, start)
        elif not args.autostart and args.quit_when_done:
            finish(0)

    def on_run_shown(*_):    # --run --autostart: continue once the run's dataset is loaded
        if not win.dataset_panel.is_loading:
            if win.dataset is not None:
                on_ready()
            else:
                from latentlab.runs.folder import open_run

                folder = open_run(args.run).config.dataset
                on_error(f"cannot continue {args.run}: its dataset folder {folder} is not there; continue it on "
                         f"the same images with `latentlab train --resume {args.run} FOLDER --epochs N`")

    win.dataset_panel.loadFailed.connect(on_error)
    win.runOpenFailed.connect(on_error)
    if args.decoder:    # a refused or unfitting file: its one line on the terminal too, not only in the banner
        win.foreign.failed.connect(lambda m: on_error(m) if args.quit_when_done else
                                   print(f"latentlab: error: {m}", file=sys.stderr, flush=True))
        win.foreign.opened.connect(on_ready)
    win.trainingFinished.connect(on_trained)
    win.dataset_panel.datasetLoaded.connect(on_ready)
    if not args.autostart:
        win.runOpened.connect(on_ready)

    win.training_panel.apply_settings(**settings)
    win.show()
    if early_error:
        win.dataset_panel.show_error(early_error)
        win.show_banner(early_error)
    elif args.decoder:
        QTimer.singleShot(0, lambda: win.foreign.open(args.decoder, args.encoder, args.dataset))
    elif args.run:
        def open_then_apply():
            win.open_run_path(args.run)
        win.runOpened.connect(lambda *_: win.training_panel.apply_settings(**settings))
        if args.autostart:
            win.runOpened.connect(on_run_shown)
        QTimer.singleShot(0, open_then_apply)
    else:
        if args.dataset:
            QTimer.singleShot(0, lambda: win.open_dataset(str(Path(args.dataset).expanduser())))
        else:
            QTimer.singleShot(0, win.dataset_panel.open_sample)

    code = app.exec()
    if state["done"]:
        code = state["code"]
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

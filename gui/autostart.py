"""What the app does by itself after it starts, from its flags (``latentlab --run/--dataset/--decoder
--autostart --quit-when-done --screenshot``): open what was named, start or continue training once the data
are shown, and — with --quit-when-done — quit with 0 on success, 1 when training failed, 2 on bad input.

`check_flags` is the plain part (no Qt: flag combinations and paths); `Autostart` is the part that follows
the window's signals."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["FlagError", "check_flags", "form_settings", "Autostart"]


class FlagError(Exception):
    """App flags that cannot work together, or a path that is not there: one line, the app does not start."""


def check_flags(args) -> str | None:
    """Check the app's parsed flags without starting Qt: raise FlagError for what stops the app; return a
    problem to show in the window instead (a --dataset folder that is not there, without --quit-when-done)."""
    if args.dataset and args.run:
        raise FlagError("give --dataset or --run, not both")
    if args.decoder and (args.run or args.autostart):
        raise FlagError("--decoder opens a decoder trained elsewhere: give it without --run or --autostart")
    if args.encoder and not args.decoder:
        raise FlagError("--encoder goes with --decoder FILE.keras")
    early_error = None
    if args.dataset and not Path(args.dataset).expanduser().is_dir():
        what = "is a file, not a folder" if Path(args.dataset).expanduser().exists() else "does not exist"
        early_error = f"dataset folder {args.dataset} {what}"
        if args.quit_when_done:
            raise FlagError(early_error)
    if args.run and args.quit_when_done:
        from latentlab.runs.folder import RunError, open_run

        try:
            open_run(args.run)
        except RunError as e:
            raise FlagError(str(e)) from None
    for flag, path in (("--decoder", args.decoder), ("--encoder", args.encoder)):
        if path and not Path(path).expanduser().is_file():
            raise FlagError(f"{flag} {path} {'is a folder' if Path(path).expanduser().exists() else 'does not exist'}"
                            ": give a Keras model file (.keras)")
    return early_error


def form_settings(args) -> dict:
    """The training form's values the flags give (TrainingPanel.apply_settings keywords)."""
    pairs = (("beta", args.beta), ("latent_dim", args.latent_dim), ("hidden_units", args.hidden_units),
             ("epochs", args.epochs), ("batch_size", args.batch_size), ("learning_rate", args.lr))
    return {k: v for k, v in pairs if v is not None}


def _say_error(message: str) -> None:
    print(f"latentlab: error: {message}", file=sys.stderr, flush=True)


class Autostart:
    """Follows the window from its start to the exit code: ``begin`` opens what the flags name; the window's
    signals then start training (--autostart) and end the app (--quit-when-done). ``code`` is the exit code
    once ``done``."""

    def __init__(self, args, app, win):
        self.args, self.app, self.win = args, app, win
        self.code, self.done = 0, False
        self.settings = form_settings(args)

    def begin(self, early_error: str | None) -> None:
        """Connect to the window's signals, fill the form and open the dataset, run or decoder named."""
        from PySide6.QtCore import QTimer

        args, win = self.args, self.win
        win.dataset_panel.loadFailed.connect(self.on_error)
        win.runOpenFailed.connect(self.on_error)
        if args.decoder:    # a refused or unfitting file: its one line on the terminal too, not only in the banner
            win.foreign.failed.connect(self.on_error if args.quit_when_done else _say_error)
            win.foreign.opened.connect(self.on_ready)
        win.trainingFinished.connect(self.on_trained)
        win.dataset_panel.datasetLoaded.connect(self.on_ready)
        if not args.autostart:
            win.runOpened.connect(self.on_ready)
        win.training_panel.apply_settings(**self.settings)
        win.show()
        if early_error:
            win.dataset_panel.show_error(early_error)
            win.show_banner(early_error)
        elif args.decoder:
            QTimer.singleShot(0, lambda: win.foreign.open(args.decoder, args.encoder, args.dataset))
        elif args.run:
            win.runOpened.connect(lambda *_: win.training_panel.apply_settings(**self.settings))
            if args.autostart:
                win.runOpened.connect(self.on_run_shown)
            QTimer.singleShot(0, lambda: win.open_run_path(args.run))
        elif args.dataset:
            QTimer.singleShot(0, lambda: win.open_dataset(str(Path(args.dataset).expanduser())))
        else:
            QTimer.singleShot(0, win.dataset_panel.open_sample)

    def finish(self, code: int) -> None:
        """The app's work is done with ``code``: the screenshot, then quit (--quit-when-done), once idle."""
        from gui.threads import wait_until_idle

        if self.done:
            return
        self.done, self.code = True, code
        wait_until_idle(self.win.is_idle, 15_000, self._save_and_quit)

    def _save_and_quit(self) -> None:
        shot = self.args.screenshot
        if shot and not self.win.save_screenshot(shot):
            _say_error(f"cannot write the screenshot {shot}")
            self.code = self.code or 1
        if self.args.quit_when_done:
            self.app.exit(self.code)

    def on_error(self, message: str) -> None:
        if self.args.quit_when_done:
            _say_error(message)
            self.finish(2)

    def on_trained(self, result) -> None:
        from latentlab.events import Failed

        if isinstance(result, Failed) or result is None:
            if self.args.quit_when_done:
                _say_error(getattr(result, "message", "training did not finish"))
            self.finish(1)
        else:
            print(f"latentlab: {result.message}; run folder: {result.run_dir}", flush=True)
            self.finish(0)

    def on_ready(self, *_) -> None:
        from gui.threads import wait_until_idle

        args, win = self.args, self.win
        if args.autostart and not win.is_training and win.last_result is None:
            def start():
                if not (win.continue_training() if args.run else win.start_training()):
                    self.on_error("could not start training: " + win.statusBar().currentMessage())
            # an opened run's decoders are being built: TensorFlow builds graphs on one thread at a time
            wait_until_idle(lambda: not win.map_view.renderer.configuring, 120_000, start)
        elif not args.autostart and args.quit_when_done:
            self.finish(0)

    def on_run_shown(self, *_) -> None:
        """--run --autostart: continue once the run's dataset is loaded."""
        if self.win.dataset_panel.is_loading:
            return
        if self.win.dataset is not None:
            self.on_ready()
            return
        from latentlab.runs.folder import open_run

        run = self.args.run
        folder = open_run(run).config.dataset
        self.on_error(f"cannot continue {run}: its dataset folder {folder} is not there; continue it on "
                      f"the same images with `latentlab train --resume {run} FOLDER --epochs N`")

"""`MainWindow`: the panels, the menus, and the wiring between them.

The window lays out, builds menus and connects signals; the work is elsewhere. Widgets do not reach
into each other: each panel emits signals that the window connects. `TrainingController` owns the
training (worker, thread, state machine), `MapController` the model shown on the latent map (its
decoders, weights, clicks and hovers), `RunFiles` the run folder shown (open, save, export),
`TradeoffPanel` the trade-off views, `WindowLayout` where they sit (and keeping that across starts),
gui.theme the colours. Engine work (run folders, latents CSV) is latentlab's.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QMainWindow, QMessageBox

from gui.dataset_panel import DatasetPanel
from gui.foreign_model import ForeignModel
from gui.image_panel import ImagePanel
from gui.map.latent_map import LatentMap
from gui.layout import WindowLayout
from gui.loss_plot import LossPlot
from gui.map.map_controller import GRID_DUTY_TRAINING, MapController
from gui.menus import build_menus
from gui.theme import install as install_theme
from gui.map.prior_samples import PriorSamples
from gui.run_files import RunFiles
from gui.run_follower import FolderFollowing, RunFollowing
from gui.settings import default_runs_root
from gui.tradeoff.tradeoff_panel import TradeoffPanel
from gui.training_controller import TrainingController
from gui.training_panel import TrainingPanel
from gui.wheel import install_wheel_router
from gui.training_state import TrainingState
from gui.widgets import Banner, make_timer
from latentlab.runs import folder as runs
from latentlab.events import EpochEnd, Failed, Finished, Started
from latentlab.model.key import ModelKey

__all__ = ["MainWindow"]


class MainWindow(QMainWindow):
    trainingFinished = Signal(object)    # the engine's Finished or Failed event, once the thread is done
    runOpened = Signal(str)
    runOpenFailed = Signal(str)
    gridShown = Signal()

    def __init__(self, runs_root: str | os.PathLike | None = None, snapshot_seconds: float | None = 2.0):
        super().__init__()
        self.theme = install_theme()      # light or dark (gui.theme): before any plot is made
        self.setWindowTitle("latentlab")
        self.setAcceptDrops(True)
        self.runs_root = Path(runs_root) if runs_root is not None else default_runs_root()
        self.snapshot_seconds = snapshot_seconds
        self.dataset = None               # the loaded dataset (what Train uses)
        self.screenshot_path: str | None = None
        self.screenshot_saved = False

        self.dataset_panel = DatasetPanel()
        self.training_panel = TrainingPanel()
        self.loss_plot = LossPlot()
        self.latent_map = LatentMap()
        self.image_panel = ImagePanel()
        self.map_view = MapController(self.latent_map, self.image_panel, self)
        self.training = TrainingController(self)
        self.files = RunFiles(self, self.runs_root)
        self.following = RunFollowing(self)   # an opened run that another process writes
        self.foreign = ForeignModel(self)    # a decoder trained elsewhere (latentlab --decoder FILE.keras)
        self.tradeoff = TradeoffPanel()
        self.tradeoff.sweep_panel.runs_root = self.tradeoff.lesson.runs_root = self.runs_root
        self.folder_following = FolderFollowing(self)   # a sweep folder compared while its runs are written
        self.prior = PriorSamples()
        self.banner = Banner()
        self.layout_state = WindowLayout(self, [(self.prior, "Prior samples", "Images decoded from z ~ N(0, I)")])
        self.tradeoff_dock = self.layout_state.tradeoff_dock
        self.statusBar().showMessage("Open a folder of images (Ctrl+O) or a run (Ctrl+Shift+O), then press Train.")
        build_menus(self)
        install_wheel_router()          # one rule for the wheel over plots in scrolling pages (gui.wheel)
        self._connect()
        # progress text at 5 Hz: QProgressBar repaints at once on each change
        self.ui_timer = make_timer(self, 200, self._refresh_progress, single_shot=False)
        self.ui_timer.start()
        self.layout_state.restore()      # the size and arrangement of the last close, or the screen's
        self._update_actions()
        # The GUI thread shares the GIL with training: switch threads more often than the 5 ms default
        # so that a busy worker delays repaints and clicks less.
        sys.setswitchinterval(0.001)
        QTimer.singleShot(200, self.map_view.renderer.preload)

    # -- construction -------------------------------------------------------------------------------
    def _connect(self) -> None:
        dp, tp, mv, tr, p, f = (self.dataset_panel, self.training_panel, self.map_view, self.training,
                                self.tradeoff, self.files)
        dp.datasetLoaded.connect(self._on_dataset_loaded)
        dp.loadFailed.connect(self._status)
        dp.loadFailed.connect(self._update_actions)
        dp.loadStarted.connect(lambda folder: self._status(f"Loading {folder}…"))
        dp.loadStarted.connect(self._update_actions)
        tp.trainRequested.connect(self.start_training)
        tp.continueRequested.connect(self.continue_training)
        tp.pauseRequested.connect(tr.pause)
        tp.resumeRequested.connect(tr.resume)
        tp.stopRequested.connect(tr.stop)
        tp.betaChanged.connect(tr.set_beta)
        for view in (p, self.loss_plot, tp, mv):
            tr.event.connect(view.on_train_event)
        tr.event.connect(self._on_train_event)
        tr.decodersBuilt.connect(mv.on_decoders_built)
        tr.stateChanged.connect(self._update_actions)
        tr.status.connect(self._status)
        tr.betaChanged.connect(self.loss_plot.add_beta_marker)
        tr.finished.connect(self._on_training_finished)
        f.opened.connect(self._on_run_opened)
        f.opened.connect(self.following.on_run_opened)   # after the window shows it
        f.openFailed.connect(self.runOpenFailed)
        f.awaiting.connect(self.following.await_writer)   # opened before its writer's first epoch
        f.status.connect(self._status)
        f.problem.connect(self.show_banner)
        f.task.finished.connect(self._update_actions)
        self.foreign.opened.connect(mv.show_foreign)          # the map first, then the window around it
        self.foreign.opened.connect(self._on_foreign_opened)
        self.foreign.failed.connect(self.show_banner)
        mv.gridShown.connect(self.gridShown)
        mv.decoderReady.connect(self._update_actions)
        mv.renderer.failed.connect(self._status)
        mv.renderer.gpusVisible.connect(self.training_panel.set_gpu_count)
        self.image_panel.saved.connect(lambda path: self._status(f"Saved {path}"))
        # the trade-off views follow the window
        tp.betaChanged.connect(p.set_beta)
        self.latent_map.clicked.connect(p.on_map_clicked)
        self.latent_map.pointClicked.connect(p.on_map_point_clicked)
        mv.decoderReady.connect(p.set_decoder)
        mv.decoderReady.connect(self.prior.set_decoder)
        self.prior.codes = lambda: (self.latent_map.z, self.latent_map.z_log_var)   # holes in the prior samples
        self.gridShown.connect(self.prior.on_weights_changed)
        self.gridShown.connect(p.on_weights_changed)
        dp.datasetLoaded.connect(p.set_dataset)
        self.trainingFinished.connect(p.on_training_finished)
        self.runOpened.connect(p.show_run_path)
        p.status.connect(self._status)
        p.sweep_panel.sourceRequested.connect(self._sweep_source)
        p.sweep_panel.runningChanged.connect(self._on_sweep_running)
        p.lesson.runningChanged.connect(self._on_sweep_running)
        p.lesson.startRequested.connect(self.start_lesson)
        p.collapseWarning.connect(lambda message: message and self._status(message))
        p.set_beta(tp.beta())

    # -- messages ---------------------------------------------------------------------------------------
    @Slot(str)
    def _status(self, text: str) -> None:
        self.statusBar().showMessage(text)

    @Slot(str)
    def show_banner(self, text: str) -> None:
        self.banner.show_message(text)
        self._status(text)

    @property
    def run_dir(self) -> Path | None:
        """The run shown (trained here or opened)."""
        return self.files.run_dir

    @Slot()
    def _update_actions(self, *args) -> None:
        state = self.training.state
        training = state != TrainingState.IDLE
        busy_run = self.files.loading
        can_train = (self.dataset is not None and not self.dataset_panel.is_loading and not busy_run
                     and not self.tradeoff.training_busy
                     and (training or not self.map_view.renderer.configuring))
        self.training_panel.set_state(state, can_train=can_train, can_continue=can_train and self.files.continuable)
        self.continue_action.setEnabled(not training and can_train and self.files.continuable)
        self.train_action.setEnabled(not training and can_train)
        self.lesson_action.setEnabled(not training and can_train)
        self.pause_action.setEnabled(state in (TrainingState.TRAINING, TrainingState.PAUSED))
        self.stop_action.setEnabled(state in (TrainingState.STARTING, TrainingState.TRAINING, TrainingState.PAUSED))
        for a in (self.open_action, self.sample_action, self.open_decoder_action):
            a.setEnabled(not training)
        self.open_run_action.setEnabled(not training and not busy_run)
        self.save_run_action.setEnabled(not training and self.run_dir is not None)
        self.export_csv_action.setEnabled(len(self.latent_map.z) > 0)
        self.export_grid_action.setEnabled(self.map_view.point_decoder is not None)   # a grid needs a decoder
        self.dataset_panel.set_enabled_for_training(training)

    # -- the trade-off views ---------------------------------------------------------------------------------
    def show_tradeoff(self, tab: int | None = None) -> None:
        self.layout_state.show_dock(self.tradeoff_dock)
        if tab is not None:
            self.tradeoff.setCurrentIndex(tab)

    def compare_current_run(self) -> None:
        if self.run_dir is None or not (self.run_dir / runs.MODEL_FILE).is_file():
            self._status("There is no finished run to compare yet: train or open one.")
            return
        self.show_tradeoff(self.tradeoff.TAB_COMPARE)
        self.tradeoff.comparison.open_runs([str(self.run_dir)])

    def form_config(self, banner: bool = True):
        """The TrainConfig the form describes for the loaded dataset (None without one, or when a
        setting is invalid: its reason goes to the banner)."""
        from latentlab.config import ConfigError

        try:
            return self.training_panel.config_for(self.dataset) if self.dataset is not None else None
        except ConfigError as e:
            if banner:
                self.show_banner(str(e))
            return None

    @Slot()
    def start_lesson(self) -> bool:
        """"Show the trade-off": the lesson (gui.tradeoff.lesson_view) on the loaded folder, with the form's settings."""
        if self.training.state != TrainingState.IDLE or self.dataset is None:
            self._status("Open a dataset and let training end first: the lesson trains models of its own.")
            return False
        self.show_tradeoff(self.tradeoff.TAB_LESSON)   # docked, as tall as the map allows
        return self.tradeoff.lesson.start(self.form_config(), self.dataset)

    @Slot()
    def _sweep_source(self) -> None:
        idle = self.training.state == TrainingState.IDLE
        self.tradeoff.sweep_panel.set_source(self.form_config() if idle else None, self.dataset)
        if not idle:
            self._status("Stop training before starting a sweep: one training at a time.")

    @Slot(bool)
    def _on_sweep_running(self, running: bool) -> None:
        # "ended", not "finished": a stopped sweep ends too (its own view says which)
        self._status("β sweep running: training is disabled until it ends." if running else "β sweep ended.")
        self._update_actions()

    # -- dataset ---------------------------------------------------------------------------------------------
    def open_dataset(self, folder) -> bool:
        """Load a dataset folder (as the File menu does, without the dialog)."""
        if self.training.state != TrainingState.IDLE:
            self._status("Stop training before opening another dataset.")
            return False
        return self.dataset_panel.open_folder(folder)

    @Slot(object)
    def _on_dataset_loaded(self, ds) -> None:
        self.dataset = ds
        self.banner.hide()
        h, w, c = ds.image_shape
        skipped = f", {len(ds.skipped)} skipped" if ds.skipped else ""
        self._status(f"Loaded {ds.num_images:,} images of {h}×{w}×{c} from {ds.root}{skipped}.")
        self.map_view.dataset_loaded(ds, self.files.latents)
        self.latent_map.show_classes([str(n) for n in ds.class_names])   # the legend, before the first points
        self.tradeoff.set_sweep_source(self.form_config(), ds)
        self._update_actions()

    def dragEnterEvent(self, event) -> None:   # a folder of images, or a run folder
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if urls and urls[0].isLocalFile() and Path(urls[0].toLocalFile()).is_dir():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls:
            event.acceptProposedAction()
            self.open_path(Path(urls[0].toLocalFile()))

    def open_path(self, path) -> None:
        """A run folder (with config.json) is opened as a run, a folder of runs (a sweep, a lesson) in the
        comparison, any other folder as a dataset."""
        path = Path(path)
        if (path / runs.CONFIG_FILE).is_file():
            self.open_run_path(path)
        elif runs.find_runs(path):          # a sweep or lesson folder: its runs compared (and followed)
            self.show_tradeoff(self.tradeoff.TAB_COMPARE)
            self.tradeoff.comparison.open_folder(path)
        else:
            self.open_dataset(path)

    # -- training ------------------------------------------------------------------------------------------
    @property
    def is_training(self) -> bool:
        return self.training.running

    @property
    def last_result(self):
        return self.training.result

    @Slot()
    def continue_training(self) -> bool:
        """Train the run shown further, up to the form's epochs in all (as `latentlab train --resume`)."""
        return self.start_training(resume=True)

    @Slot()
    def start_training(self, resume: bool = False) -> bool:
        if self.training.state != TrainingState.IDLE or self.training.running:
            return False
        ds = self.dataset
        if ds is None or self.dataset_panel.is_loading:
            self._status("Open a dataset folder first (Ctrl+O).")
            return False
        if resume:
            try:
                config, history = self.files.continue_config(self.training_panel.settings(), ds)
            except ValueError as e:    # ConfigError, RunError: one line
                self.show_banner(str(e))
                return False
            run_dir = self.run_dir
        else:
            config, history = self.form_config(), []
            if config is None:
                return False
            try:
                run_dir = runs.new_run_dir(self.runs_root)
            except (OSError, runs.RunError) as e:
                self.show_banner(f"cannot create a run folder in {self.runs_root} ({getattr(e, 'strerror', None) or e})")
                return False
        self.banner.hide()
        self.files.set_training_run(run_dir)
        self.loss_plot.set_history(history)     # a continued run's curves go on where they stopped
        if resume and history:
            from latentlab.runs.continuing import last_beta

            was = last_beta(config, history)
            if not math.isclose(was, config.beta, rel_tol=1e-6):     # continued at another β: marked where
                self.loss_plot.add_beta_marker(len(history), config.beta)
        self.image_panel.clear("Training… the decoder appears after the first snapshot.")
        decoder_key = self.map_view.prepare_training(ModelKey(ds.image_shape, config.latent_dim, config.likelihood), ds)
        self.training.start(config, ds, run_dir, snapshot_seconds=self.snapshot_seconds, decoder_key=decoder_key,
                            resume=resume, strategy=self.training_panel.strategy())
        self.map_view.renderer.set_duty(GRID_DUTY_TRAINING)
        self.setWindowTitle(f"latentlab — training {run_dir.name}")
        self._status(f"Continuing {run_dir} from epoch {len(history)} to {config.epochs}…" if resume
                     else f"Starting training into {run_dir}…")
        self._update_actions()
        return True

    @Slot(object)
    def _on_train_event(self, ev) -> None:
        """What a training's events say in the status bar and the banner (the views take them directly)."""
        if isinstance(ev, EpochEnd):
            units = f"{ev.active_units} active latent unit{'s' if ev.active_units != 1 else ''}"
            self._status(f"Epoch {ev.epoch}/{self.training.epochs}: loss {ev.logs.get('loss', float('nan')):.2f}, "
                         f"val loss {ev.logs.get('val_loss', float('nan')):.2f} nats; {units}; {ev.seconds:.1f} s")
            self._update_actions()
        elif isinstance(ev, Started):
            self._status(f"Training on {ev.device}: {ev.num_train:,} training and {ev.num_val:,} validation "
                         f"images, {ev.steps_per_epoch} batches per epoch.")
        elif isinstance(ev, Finished):
            self._status(f"Training {ev.message}. Run folder: {ev.run_dir}")
        elif isinstance(ev, Failed):
            self.show_banner(ev.message)

    @Slot(object)
    def _on_training_finished(self, result) -> None:
        self.map_view.training_ended()
        self.setWindowTitle(f"latentlab — {self.run_dir.name}" if self.run_dir else "latentlab")
        self._update_actions()
        self.trainingFinished.emit(result)

    def _refresh_progress(self) -> None:
        b, tr = self.training.last_batch, self.training
        if b is not None and tr.state != TrainingState.IDLE:
            self.training_panel.show_progress(b.epoch, tr.epochs, b.step, b.steps, b.eta_seconds, b.images_per_second)

    # -- runs -----------------------------------------------------------------------------------------------
    def open_run_path(self, path) -> bool:
        """Open a run folder (its model loads on a worker thread)."""
        if self.training.state != TrainingState.IDLE:
            self._status("Stop training before opening a run.")
            return False
        opened = self.files.open(path)
        self._update_actions()
        return opened

    @Slot(object)
    def _on_run_opened(self, view) -> None:
        from latentlab.runs.continuing import beta_label, last_beta

        run, cfg = view.run, view.run.config
        self.banner.hide()
        self.training.result = None
        # the form: the run's settings at the β it last trained at (what Continue training goes on with)
        self.training_panel.apply_settings(**dict(cfg.to_dict(), beta=last_beta(cfg, run.history)))
        self.loss_plot.set_history(run.history, cfg)
        self.image_panel.clear()
        self.latent_map.clear_preview()
        done = len(run.history)
        self.training_panel.show_opened(f"opened: {done} of {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}, "
                                        f"{run.status}")
        if self.map_view.show_run(view, self.dataset):
            if cfg.dataset and Path(cfg.dataset).exists() and not self.dataset_panel.is_loading:
                self.dataset_panel.open_folder(cfg.dataset, cfg.image_size, cfg.color,   # the points' originals
                                               cfg.background, cfg.fit)
        elif run.latents is None:
            self._status("This run has no latents.npz: the map shows the decoder only.")
        self.setWindowTitle(f"latentlab — {self.run_dir.name}")
        self._status(f"Opened run {run.path}: {done} epoch{'s' if done != 1 else ''}, status {run.status}, "
                     f"latent size {cfg.latent_dim}, {beta_label(cfg, run.history)}.")
        self.runOpened.emit(str(run.path))

    @Slot(object)
    def _on_foreign_opened(self, view) -> None:
        """A decoder trained elsewhere is loaded (ForeignModel.opened; the map controller shows it already)."""
        self.banner.hide()
        self.files.run_dir = self.files.latents = None     # no run folder is shown now
        self.loss_plot.clear()
        self.image_panel.clear("Click the map: the decoder's image for that point appears here.")
        ds, say = view.dataset, lambda *_: self.map_view.model_info == view.model_key and self._status(
            self.foreign.message)
        if view.z_mean is not None and ds is not None:
            self.tradeoff.set_training_data(view.z_mean, ds.images, ds.labels if ds.labeled else None,
                                            list(ds.class_names), list(ds.paths))
        if ds is not None and not self.dataset_panel.is_loading:   # the panel shows it too, and Train can use it
            h, wd, c = view.model_key.image_shape     # its load says its own line: then say the decoder's again
            if self.dataset_panel.open_folder(ds.root, [h, wd], "gray" if c == 1 else "rgb"):
                self.dataset_panel.task.finished.connect(say, Qt.ConnectionType.SingleShotConnection)
        self.setWindowTitle(f"latentlab — {Path(view.model_key.keras_file).name}")
        self._status(self.foreign.message)
        self._update_actions()

    @Slot()
    def ask_save_run(self) -> None:
        if self.training.state != TrainingState.IDLE:
            self._status("Stop training before saving the run.")
        else:
            self.files.ask_save()

    def save_run_to(self, dest) -> bool:
        """Copy the run folder to ``dest`` (a new or empty folder), once training has stopped."""
        if self.training.state != TrainingState.IDLE:
            self._status("Stop training before saving the run.")
            return False
        return self.files.save_to(dest)

    def export_grid(self, path) -> bool:
        return self.files.export_grid(self.latent_map.mosaic, path, self.latent_map.tile_shape())

    def export_latents(self, path) -> bool:
        """Every image's z_mean and z_log_var from the run's latents.npz (else the map's points)."""
        return self.files.export_latents(path, self.map_view.points_as_latents)

    # -- screenshots, idling, closing -----------------------------------------------------------------------
    def is_idle(self) -> bool:
        return (not self.training.running and not self.files.loading and not self.dataset_panel.is_loading
                and not self.map_view.busy and not self.foreign.loading)

    def save_screenshot(self, path: str | None = None) -> bool:
        path = path or self.screenshot_path
        if not path:
            return False
        self.loss_plot.redraw()
        ok = self.grab().save(str(path), "PNG")
        self.screenshot_saved = self.screenshot_saved or ok
        return ok

    def confirm_stop(self) -> bool:
        """Asked when the window closes during training; tests replace it."""
        answer = QMessageBox.question(self, "Stop training?",
                                      "Training is running. Stop it and close? The last finished epoch is kept "
                                      "in the run folder.", QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        return answer == QMessageBox.Yes

    def close_without_asking(self) -> bool:
        """Ctrl+C or SIGTERM: close without `confirm_stop` (what trains stops after its batch, keeping its epoch)."""
        self._quitting = True
        return self.close()

    def closeEvent(self, event) -> None:
        busy = self.training.running or self.tradeoff.training_busy
        if busy and not getattr(self, "_quitting", False) and not self.confirm_stop():
            event.ignore()
            return
        if self.training.running:
            self._status("Stopping training…")
            self.training.shutdown()
        if self.screenshot_path and not self.screenshot_saved:
            self.save_screenshot()
        self.layout_state.save()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop and wait for every worker thread (idempotent)."""
        self.tradeoff.shutdown()
        self.training.shutdown()
        self.files.task.stop_and_wait(None)
        self.following.shutdown()
        self.folder_following.stop()
        self.foreign.shutdown()
        self.dataset_panel.shutdown()
        self.map_view.shutdown()
        self.ui_timer.stop()
        self.loss_plot.timer.stop()


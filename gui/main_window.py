"""`MainWindow`: the panels, the menus, and the wiring between them.

Widgets do not reach into each other: each panel emits signals, this window connects them,
owns the workers (training, run loading, grid decoding) and the GUI thread's single-point
`Decoder`, and routes results back to the panels.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
                               QPushButton, QScrollArea, QSplitter, QStyle, QToolBar, QVBoxLayout, QWidget)

from gui.dataset_panel import DatasetPanel
from gui.image_panel import ImagePanel, save_png
from gui.latent_map import LatentMap
from gui.loss_plot import LossPlot
from gui.tradeoff_panel import TradeoffPanel
from gui.training_panel import TrainingPanel
from gui.worker import GridRenderer, RunLoadWorker, TrainingWorker, start_thread

__all__ = ["MainWindow", "settings"]

MAX_RECENT = 8
# While training, grids for new weights take at most this share of the time (the rest is
# training's): on two CPU cores a 20×20 grid refreshes every ~4 s instead of every snapshot (2 s).
GRID_DUTY_TRAINING = 0.03


def settings() -> QSettings:
    """The app's settings (recent folders). Tests redirect them with ``QSettings.setPath``."""
    return QSettings(QSettings.defaultFormat(), QSettings.UserScope, "latentlab", "latentlab")


def default_runs_root() -> Path:
    env = os.environ.get("LATENTLAB_RUNS_DIR")
    if env:
        return Path(env)
    base = QStandardPaths.writableLocation(QStandardPaths.AppLocalDataLocation)
    return Path(base) / "runs" if base else Path(tempfile.gettempdir()) / "latentlab-runs"


class MainWindow(QMainWindow):
    trainingFinished = Signal(object)    # the engine's Finished or Failed event, once the thread is done
    runOpened = Signal(str)
    runOpenFailed = Signal(str)
    gridShown = Signal()

    def __init__(self, runs_root: str | os.PathLike | None = None, snapshot_seconds: float | None = 2.0):
        super().__init__()
        self.setWindowTitle("latentlab")
        self.setAcceptDrops(True)
        self.runs_root = Path(runs_root) if runs_root is not None else default_runs_root()
        self.snapshot_seconds = snapshot_seconds
        self.dataset = None              # the loaded dataset (what Train uses)
        self.points_dataset = None       # the dataset the map's indices refer to (None: originals unknown)
        self.run_dir: Path | None = None  # the run shown (trained here or opened)
        self.model_info = None           # (image_shape, latent_dim, likelihood) of the decoder shown
        self.point_decoder = None
        self.latest_weights = None
        self.last_result = None
        self.last_grid_timing = None
        self.last_click = None
        self.screenshot_path: str | None = None
        self.screenshot_saved = False
        self._train_thread = None
        self._train_worker = None
        self._run_thread = None
        self._run_worker = None
        self._started = None
        self._last_batch = None
        self._train_epochs = 0
        self._train_state = "idle"
        self._latents_paths = None       # paths of an opened run's latents.npz (to match a dataset)

        # -- panels
        self.dataset_panel = DatasetPanel()
        self.training_panel = TrainingPanel()
        self.loss_plot = LossPlot()
        self.latent_map = LatentMap()
        self.image_panel = ImagePanel()
        self.renderer = GridRenderer(self)
        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #fde7e9; color: #8a0010; padding: 4px 8px; border-radius: 3px;")
        self.banner.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.banner_close = QPushButton("✕")
        self.banner_close.setFlat(True)
        self.banner_close.setFixedWidth(28)
        self.banner_close.setToolTip("Dismiss this message.")
        self.banner_close.clicked.connect(self.hide_banner)
        self.banner_box = QWidget()
        banner_row = QHBoxLayout(self.banner_box)
        banner_row.setContentsMargins(0, 0, 0, 0)
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.banner_close)
        self.banner_box.hide()

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(4, 4, 4, 4)
        left_layout.addWidget(self.dataset_panel)
        left_layout.addWidget(self.training_panel)
        left_layout.addStretch(1)
        left_scroll = QScrollArea()
        left_scroll.setWidgetResizable(True)
        left_scroll.setWidget(left)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        left_scroll.setMinimumWidth(330)
        left_scroll.setMaximumWidth(420)

        self.top_split = QSplitter(Qt.Horizontal)
        self.top_split.addWidget(self.latent_map)
        self.top_split.addWidget(self.image_panel)
        self.top_split.setStretchFactor(0, 3)
        self.top_split.setStretchFactor(1, 1)
        self.top_split.setSizes([600, 300])
        self.right_split = QSplitter(Qt.Vertical)
        self.right_split.addWidget(self.top_split)
        self.right_split.addWidget(self.loss_plot)
        self.right_split.setStretchFactor(0, 3)
        self.right_split.setStretchFactor(1, 2)
        self.right_split.setSizes([470, 260])
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(4, 4, 4, 4)
        right_layout.addWidget(self.banner_box)
        right_layout.addWidget(self.right_split, 1)
        central = QSplitter(Qt.Horizontal)
        central.addWidget(left_scroll)
        central.addWidget(right)
        central.setStretchFactor(1, 1)
        central.setSizes([340, 940])
        self.setCentralWidget(central)
        self.statusBar().showMessage("Open a folder of images (Ctrl+O) or a run (Ctrl+Shift+O), then press Train.")

        self._make_tradeoff_dock()
        self._make_actions()
        self._connect()
        self.ui_timer = QTimer(self)
        self.ui_timer.setInterval(200)   # progress text at 5 Hz: QProgressBar repaints at once on each change
        self.ui_timer.timeout.connect(self._refresh_progress)
        self.ui_timer.start()
        self.resize(1280, 800)
        self._update_actions()
        # The GUI thread shares the GIL with training: switch threads more often than the 5 ms default
        # so that a busy worker delays repaints and clicks less.
        sys.setswitchinterval(0.001)
        QTimer.singleShot(200, self.renderer.preload)

    # -- construction -------------------------------------------------------------------------------
    def _action(self, text, slot, shortcut=None, tip="", menu=None, icon=None):
        a = QAction(text, self)
        if icon is not None:
            a.setIcon(self.style().standardIcon(icon))
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip + (f" ({QKeySequence(shortcut).toString()})" if shortcut else ""))
        a.triggered.connect(slot)
        if menu is not None:
            menu.addAction(a)
        self.addAction(a)
        return a

    def _make_actions(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self.open_action = self._action("&Open dataset folder…", self.dataset_panel.ask_folder, "Ctrl+O",
                                        "Open a folder of images to train on", file_menu, icon=QStyle.SP_DirOpenIcon)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.sample_action = self._action("Open the &sample dataset", self.dataset_panel.open_sample, None,
                                          "Load the bundled Fashion-MNIST sample", file_menu)
        file_menu.addSeparator()
        self.open_run_action = self._action("Open &run…", self.ask_open_run, "Ctrl+Shift+O",
                                            "Open a run folder made by the app or by `latentlab train`", file_menu, icon=QStyle.SP_DialogOpenButton)
        self.save_run_action = self._action("&Save run…", self.ask_save_run, "Ctrl+S",
                                            "Copy the current run folder to a folder you choose", file_menu, icon=QStyle.SP_DialogSaveButton)
        file_menu.addSeparator()
        self.export_grid_action = self._action("Export &grid PNG…", self.ask_export_grid, "Ctrl+E",
                                               "Save the decoded grid of the latent map as a PNG", file_menu)
        self.export_csv_action = self._action("Export &latents CSV…", self.ask_export_latents, "Ctrl+Shift+E",
                                              "Save every image's z_mean and z_log_var as CSV", file_menu)
        self.save_image_action = self._action("Save &decoded image…", self.image_panel._ask_save, None,
                                              "Save the image shown in the image panel", file_menu)
        file_menu.addSeparator()
        self._action("&Quit", self.close, "Ctrl+Q", "Close the window", file_menu)

        train_menu = mb.addMenu("&Train")
        self.train_action = self._action("&Train", self.start_training, "Ctrl+T",
                                         "Train a new model on the dataset", train_menu, icon=QStyle.SP_MediaPlay)
        self.pause_action = self._action("&Pause / resume", self.toggle_pause, "Space",
                                         "Pause or resume training", train_menu, icon=QStyle.SP_MediaPause)
        self.stop_action = self._action("&Stop", self.stop_training, "Esc",
                                        "Stop training, keeping the last finished epoch", train_menu, icon=QStyle.SP_MediaStop)

        view_menu = mb.addMenu("&View")
        self.log_action = self._action("&Logarithmic loss axis", self.loss_plot.log_y.toggle, "Ctrl+L",
                                       "Toggle the log scale of the loss plot", view_menu)
        self._action("&Fit the latent map", self.latent_map.fit, "F", "Zoom the map to the data", view_menu)

        self._make_tradeoff_menu(mb)

        help_menu = mb.addMenu("&Help")
        self._action("&Keyboard shortcuts", self.show_shortcuts, "F1", "List the keyboard shortcuts", help_menu)

        tb = QToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.addToolBar(tb)
        for a in (self.open_action, self.open_run_action, self.save_run_action):
            tb.addAction(a)
        tb.addSeparator()
        for a in (self.train_action, self.pause_action, self.stop_action):
            tb.addAction(a)
        tb.addSeparator()
        tb.addAction(self.export_grid_action)
        tb.addAction(self.export_csv_action)

    def _connect(self) -> None:
        dp, tp = self.dataset_panel, self.training_panel
        dp.datasetLoaded.connect(self._on_dataset_loaded)
        dp.loadFailed.connect(self._on_dataset_failed)
        dp.loadStarted.connect(lambda folder: self._status(f"Loading {folder}…"))
        dp.loadStarted.connect(self._update_actions)
        tp.trainRequested.connect(self.start_training)
        tp.pauseRequested.connect(self.pause_training)
        tp.resumeRequested.connect(self.resume_training)
        tp.stopRequested.connect(self.stop_training)
        tp.betaChanged.connect(self._on_beta_changed)
        self.renderer.pointDecoderReady.connect(self._on_point_decoder)
        self.renderer.rendered.connect(self._on_grid_rendered)
        self.renderer.failed.connect(lambda m: self._status(m))
        self.latent_map.gridRequested.connect(self._request_grid)
        self.latent_map.clicked.connect(self._on_map_clicked)
        self.latent_map.hovered.connect(self._on_map_hovered)
        self.latent_map.pointClicked.connect(self._on_point_clicked)
        self.image_panel.saved.connect(lambda p: self._status(f"Saved {p}"))
        self._connect_tradeoff()

    # -- messages ---------------------------------------------------------------------------------------
    def _status(self, text: str, ms: int = 0) -> None:
        self.statusBar().showMessage(text, ms)

    def show_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner_box.show()
        self._status(text)

    @Slot()
    def hide_banner(self) -> None:
        self.banner_box.hide()

    def show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", "\n".join([
            "Ctrl+O  open a dataset folder", "Ctrl+Shift+O  open a run", "Ctrl+S  save the run",
            "Ctrl+E  export the grid PNG", "Ctrl+Shift+E  export latents CSV", "Ctrl+T  train",
            "Space  pause / resume", "Esc  stop", "Ctrl+L  log loss axis", "F  fit the latent map",
            "Ctrl+Q  quit"]))

    def _update_actions(self, *args) -> None:
        training = self._train_state != "idle"
        busy_run = self._run_thread is not None
        can_train = (self.dataset is not None and not self.dataset_panel.is_loading and not busy_run
                     and not self.tradeoff.sweep_panel.is_running
                     and (training or not self.renderer.configuring))
        self.training_panel.set_state(self._train_state, can_train=can_train)
        self.train_action.setEnabled(not training and can_train)
        self.pause_action.setEnabled(self._train_state in ("training", "paused"))
        self.stop_action.setEnabled(self._train_state in ("starting", "training", "paused"))
        self.open_action.setEnabled(not training)
        self.sample_action.setEnabled(not training)
        self.open_run_action.setEnabled(not training and not busy_run)
        self.save_run_action.setEnabled(not training and self.run_dir is not None)
        self.export_csv_action.setEnabled(len(self.latent_map.z) > 0)
        self.dataset_panel.set_enabled_for_training(training)

    # -- the trade-off views (gui.tradeoff_panel) ----------------------------------------------------------
    def _make_tradeoff_dock(self) -> None:
        self.tradeoff = TradeoffPanel()
        self.tradeoff.sweep_panel.runs_root = self.runs_root
        self.tradeoff_dock = QDockWidget("Trade-off: rate, distortion and β", self)
        self.tradeoff_dock.setObjectName("tradeoff-dock")
        self.tradeoff_dock.setWidget(self.tradeoff)
        self.tradeoff_dock.setAllowedAreas(Qt.BottomDockWidgetArea | Qt.RightDockWidgetArea)
        self.addDockWidget(Qt.BottomDockWidgetArea, self.tradeoff_dock)
        self.tradeoff_dock.hide()

    def _make_tradeoff_menu(self, mb) -> None:
        menu = self.tradeoff_menu = mb.addMenu("Trade-o&ff")
        self.tradeoff_toggle_action = self.tradeoff_dock.toggleViewAction()
        self.tradeoff_toggle_action.setText("&Show trade-off views")
        self.tradeoff_toggle_action.setShortcut(QKeySequence("Ctrl+B"))
        self.tradeoff_toggle_action.setStatusTip("Show or hide the dock of views on how β trades reconstruction "
                                                 "for a regular latent space")
        menu.addAction(self.tradeoff_toggle_action)
        menu.addSeparator()
        p = self.tradeoff
        for text, tab, tip in (
                ("&Loss and KL per dimension", p.TAB_LOSS,
                 "The loss written out with the current β, each term's value, and the KL of each latent dimension"),
                ("&Rate–distortion plane and β sweep", p.TAB_RD,
                 "Every run as a point of rate (KL) against distortion (reconstruction); train several β values"),
                ("&Compare runs", p.TAB_COMPARE,
                 "Several runs side by side: loss curves, latent maps, and one z decoded by each"),
                ("Re&play epochs", p.TAB_REPLAY, "The latent map as it was after each finished epoch"),
                ("&Traverse, interpolate, nearest images", p.TAB_EXPLORE,
                 "Dimension traversals, interpolations and the nearest training images at the clicked point")):
            self._action(text, lambda checked=False, t=tab: self.show_tradeoff(t), None, tip, menu)
        menu.addSeparator()
        self._action("Compare a sweep &folder…", self.tradeoff.comparison._ask_open, None,
                     "Open a run folder, or a sweep folder to compare all its runs", menu)
        self._action("Compare with the &current run", self.compare_current_run, None,
                     "Add the run shown in the window to the comparison", menu)

    def _connect_tradeoff(self) -> None:
        p = self.tradeoff
        self.training_panel.betaChanged.connect(p.set_beta)
        self.latent_map.clicked.connect(self._tradeoff_point)
        self.latent_map.pointClicked.connect(self._tradeoff_data_point)
        self.gridShown.connect(self._tradeoff_weights_changed)
        self.dataset_panel.datasetLoaded.connect(self._tradeoff_dataset)
        self.trainingFinished.connect(self._tradeoff_training_finished)
        self.runOpened.connect(self._tradeoff_show_run)
        p.sweep_panel.sourceRequested.connect(self._tradeoff_sweep_source)
        p.sweep_panel.runningChanged.connect(self._tradeoff_sweep_running)
        p.collapseWarning.connect(self._tradeoff_collapse)
        p.set_beta(self.training_panel.beta())

    def show_tradeoff(self, tab: int | None = None) -> None:
        if not self.tradeoff_dock.isVisible():
            self.tradeoff_dock.show()
            if not self.tradeoff_dock.isFloating():
                self.resizeDocks([self.tradeoff_dock], [max(300, self.height() * 2 // 5)], Qt.Vertical)
        self.tradeoff_dock.raise_()
        if tab is not None:
            self.tradeoff.setCurrentIndex(tab)

    def compare_current_run(self) -> None:
        if self.run_dir is None or not (self.run_dir / "model.keras").is_file():
            self._status("There is no finished run to compare yet: train or open one.")
            return
        self.show_tradeoff(self.tradeoff.TAB_COMPARE)
        self.tradeoff.comparison.open_runs([str(self.run_dir)])

    def _form_config(self):
        from latentlab.config import ConfigError, TrainConfig

        ds = self.dataset
        if ds is None:
            return None
        h, w, _ = ds.image_shape
        try:
            return TrainConfig(dataset=str(ds.root), image_size=[h, w], color=ds.color,
                               **self.training_panel.settings()).validate()
        except ConfigError as e:
            self.show_banner(str(e))
            return None

    def _tradeoff_sync_decoder(self) -> bool:
        """Give the tools the window's GUI-thread point decoder (the one the image panel uses)."""
        if self.tradeoff.tools.traversal.decoder is not self.point_decoder:
            self.tradeoff.set_decoder(self.point_decoder)
            return True
        return False

    @Slot(object, object)
    def _tradeoff_point(self, z, xy=None) -> None:
        self._tradeoff_sync_decoder()
        self.tradeoff.set_point(z)

    @Slot(int, object)
    def _tradeoff_data_point(self, index: int, z) -> None:
        self._tradeoff_sync_decoder()
        self.tradeoff.tools.set_point(z, f"image #{index}")

    @Slot()
    def _tradeoff_weights_changed(self) -> None:
        explore_shown = self.tradeoff_dock.isVisible() and self.tradeoff.currentIndex() == self.tradeoff.TAB_EXPLORE
        if not self._tradeoff_sync_decoder() and explore_shown:
            self.tradeoff.refresh_tools()

    @Slot(object)
    def _tradeoff_dataset(self, ds) -> None:
        self.tradeoff.set_dataset(ds)
        self.tradeoff.set_sweep_source(self._form_config(), ds)
        if getattr(self, "_tradeoff_run", None) is not None:
            self.tradeoff.show_run(self._tradeoff_run)     # its images are here now: nearest can show them

    @Slot(object)
    def _tradeoff_training_finished(self, result) -> None:
        if result is not None and getattr(result, "run_dir", None) and getattr(result, "epochs_done", 0):
            self._tradeoff_show_run(result.run_dir)

    @Slot(str)
    def _tradeoff_show_run(self, path: str) -> None:
        from latentlab import runs

        try:
            self._tradeoff_run = runs.open_run(path)     # config, history and latents; no model
        except runs.RunError as e:
            self._status(str(e))
            return
        self.tradeoff.show_run(self._tradeoff_run)

    @Slot()
    def _tradeoff_sweep_source(self) -> None:
        sp = self.tradeoff.sweep_panel
        if self._train_state != "idle":
            sp.set_source(None, self.dataset)
            self._status("Stop training before starting a sweep: one training at a time.")
            return
        sp.set_source(self._form_config(), self.dataset)

    @Slot(bool)
    def _tradeoff_sweep_running(self, running: bool) -> None:
        self._status("β sweep running: training is disabled until it ends." if running else "β sweep finished.")
        self._update_actions()

    @Slot(str)
    def _tradeoff_collapse(self, message: str) -> None:
        if message:
            self._status(message)

    # -- dataset ---------------------------------------------------------------------------------------------
    def open_dataset(self, folder) -> bool:
        """Load a dataset folder (as the File menu does, without the dialog)."""
        if self._train_state != "idle":
            self._status("Stop training before opening another dataset.")
            return False
        return self.dataset_panel.open_folder(folder)

    @Slot(object)
    def _on_dataset_loaded(self, ds) -> None:
        self.dataset = ds
        self.hide_banner()
        h, w, c = ds.image_shape
        skipped = f", {len(ds.skipped)} skipped" if ds.skipped else ""
        self._status(f"Loaded {ds.num_images:,} images of {h}×{w}×{c} from {ds.root}{skipped}.")
        self._add_recent(str(ds.root))
        if self.run_dir is not None and self.points_dataset is None and self._latents_paths is not None:
            if list(ds.paths) == list(self._latents_paths):
                self.points_dataset = ds
        self._update_actions()

    @Slot(str)
    def _on_dataset_failed(self, message: str) -> None:
        self._status(message)
        self._update_actions()

    def _add_recent(self, folder: str) -> None:
        s = settings()
        recent = [f for f in (s.value("recent/datasets", [], type=list) or []) if f != folder]
        recent.insert(0, folder)
        s.setValue("recent/datasets", recent[:MAX_RECENT])
        s.sync()

    def recent_folders(self) -> list[str]:
        return list(settings().value("recent/datasets", [], type=list) or [])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        folders = self.recent_folders()
        if not folders:
            a = self.recent_menu.addAction("(none yet)")
            a.setEnabled(False)
        for f in folders:
            a = self.recent_menu.addAction(f)
            a.triggered.connect(lambda checked=False, f=f: self.open_dataset(f))

    # drag and drop: a folder of images, or a run folder
    def dragEnterEvent(self, event) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if urls and urls[0].isLocalFile() and Path(urls[0].toLocalFile()).is_dir():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if not urls:
            return
        path = Path(urls[0].toLocalFile())
        event.acceptProposedAction()
        self.open_path(path)

    def open_path(self, path) -> None:
        """A run folder (with config.json) is opened as a run, any other folder as a dataset."""
        path = Path(path)
        if (path / "config.json").is_file():
            self.open_run_path(path)
        else:
            self.open_dataset(path)

    # -- training ------------------------------------------------------------------------------------------
    @property
    def is_training(self) -> bool:
        return self._train_thread is not None

    @Slot()
    def start_training(self) -> bool:
        from latentlab.config import ConfigError, TrainConfig

        if self._train_state != "idle" or self._train_thread is not None:
            return False
        ds = self.dataset
        if ds is None or self.dataset_panel.is_loading:
            self._status("Open a dataset folder first (Ctrl+O).")
            return False
        h, w, c = ds.image_shape
        try:
            config = TrainConfig(dataset=str(ds.root), image_size=[h, w], color=ds.color,
                                 **self.training_panel.settings()).validate()
        except ConfigError as e:
            self.show_banner(str(e))
            return False
        run_dir = self.runs_root / time.strftime("run-%Y%m%d-%H%M%S")
        k = 1
        while run_dir.exists():
            k += 1
            run_dir = self.runs_root / (time.strftime("run-%Y%m%d-%H%M%S") + f"-{k}")
        self.hide_banner()
        self.run_dir = run_dir
        self.points_dataset = ds
        self._latents_paths = None
        self.latest_weights = None
        self.last_click = None
        self.last_result = None
        self._started = None
        self._last_batch = None
        self._train_epochs = config.epochs
        self.loss_plot.clear()
        self.latent_map.set_latent_dim(config.latent_dim)
        self.latent_map.show_preview(None)
        self.image_panel.clear("Training… the decoder appears after the first snapshot.")
        self.model_info = ((h, w, c), config.latent_dim, config.likelihood)
        # The decoders of the same model are reused; new ones are built on the training thread
        # before it trains (TensorFlow must not build graphs in two threads at once).
        key = self.renderer.make_key(*self.model_info)
        if self.renderer.ready_key == key:
            self.renderer.weights = None
            self.point_decoder = self.renderer.point_decoder
            decoder_key = None
        else:
            self.renderer.expect(key)
            self.point_decoder = None
            decoder_key = key
        self._train_worker = TrainingWorker(config, ds, run_dir, snapshot_seconds=self.snapshot_seconds,
                                            decoder_key=decoder_key)
        self._train_worker.event.connect(self._on_train_event)
        self._train_worker.decodersBuilt.connect(self._on_decoders_built)
        self._train_state = "starting"
        self._train_thread = start_thread(self._train_worker, "latentlab-train", self._train_worker.run)
        self._train_thread.finished.connect(self._on_train_thread_finished)
        self.renderer.set_duty(GRID_DUTY_TRAINING)
        self.setWindowTitle(f"latentlab — training {run_dir.name}")
        self._status(f"Starting training into {run_dir}…")
        self._update_actions()
        return True

    @Slot()
    def pause_training(self) -> None:
        if self._train_worker is not None and self._train_state == "training":
            self._train_worker.pause()
            self._train_state = "paused"
            self._status("Paused (after this batch). Press Space or Resume to go on.")
            self._update_actions()

    @Slot()
    def resume_training(self) -> None:
        if self._train_worker is not None and self._train_state == "paused":
            self._train_worker.resume()
            self._train_state = "training"
            self._status("Resumed.")
            self._update_actions()

    @Slot()
    def toggle_pause(self) -> None:
        if self._train_state == "paused":
            self.resume_training()
        else:
            self.pause_training()

    @Slot()
    def stop_training(self) -> None:
        if self._train_worker is not None and self._train_state in ("starting", "training", "paused"):
            self._train_worker.stop()
            self._train_state = "stopping"
            self._status("Stopping after the current batch…")
            self._update_actions()

    @Slot(float)
    def _on_beta_changed(self, beta: float) -> None:
        if self._train_worker is None or self._train_state not in ("training", "paused", "starting"):
            return
        if math.isclose(beta, self._train_worker.trainer.beta, rel_tol=1e-9):
            return   # e.g. the form's own value settling as training starts
        self._train_worker.set_beta(beta)
        x = 0.0
        if self._last_batch is not None:
            b = self._last_batch
            x = b.epoch + b.step / max(b.steps, 1)
        self.loss_plot.add_beta_marker(x, beta)
        self._status(f"β set to {beta:g} from the next batch.")

    @Slot(object)
    def _on_train_event(self, ev) -> None:
        from latentlab.train import BatchEnd, EpochEnd, Failed, Finished, Started, WeightsSnapshot

        self.tradeoff.on_train_event(ev)
        if isinstance(ev, BatchEnd):
            self._last_batch = ev
            self.loss_plot.add_batch(ev.epoch, ev.step, ev.steps, ev.logs)
        elif isinstance(ev, WeightsSnapshot):
            self._set_weights(ev.decoder_weights)
        elif isinstance(ev, EpochEnd):
            self._on_epoch_end(ev)
        elif isinstance(ev, Started):
            self._started = ev
            self._train_epochs = ev.epochs
            self.loss_plot.planned_epochs = ev.epochs
            if self._train_state == "starting":
                self._train_state = "training"
            self.training_panel.set_device(ev.device)
            self.training_panel.progress.setRange(0, max(ev.epochs * ev.steps_per_epoch, 1))
            self._status(f"Training on {ev.device}: {ev.num_train:,} training and {ev.num_val:,} validation "
                         f"images, {ev.steps_per_epoch} batches per epoch.")
            self._update_actions()
        elif isinstance(ev, Finished):
            self.last_result = ev
            self._last_batch = None
            self.training_panel.show_finished(ev.message, full=not ev.stopped)
            self._status(f"Training {ev.message}. Run folder: {ev.run_dir}")
        elif isinstance(ev, Failed):
            self.last_result = ev
            self._last_batch = None
            self.training_panel.show_finished("failed", full=False)
            self.show_banner(ev.message)

    def _on_epoch_end(self, ev) -> None:
        row = ev.history[-1] if ev.history else {"epoch": ev.epoch, **ev.logs}
        self.loss_plot.add_epoch(row)
        ds = self.points_dataset
        labels = ds.labels[ev.val_indices] if ds is not None and len(ev.val_indices) else None
        names = list(ds.class_names) if ds is not None else []
        self.latent_map.set_points(ev.val_z_mean, labels, names, ev.val_indices)
        self._set_weights(ev.decoder_weights)
        self._status(f"Epoch {ev.epoch}/{self._train_epochs}: loss {ev.logs.get('loss', float('nan')):.2f}, "
                     f"val loss {ev.logs.get('val_loss', float('nan')):.2f} nats; "
                     f"{ev.active_units} active latent unit{'s' if ev.active_units != 1 else ''}; "
                     f"{ev.seconds:.1f} s")
        self._update_actions()

    @Slot()
    def _on_train_thread_finished(self) -> None:
        if self._train_thread is not None:
            self._train_thread.wait()
        self._train_thread = None
        self._train_worker = None
        self._train_state = "idle"
        if self.renderer.configuring:   # stopped before its decoders were built: forget them
            self.renderer.expect(None)
        self.renderer.set_duty(None)    # a grid of the last weights waiting for its turn goes now
        self.setWindowTitle(f"latentlab — {self.run_dir.name}" if self.run_dir else "latentlab")
        self._update_actions()
        self.trainingFinished.emit(self.last_result)

    def _refresh_progress(self) -> None:
        b = self._last_batch
        if b is None or self._train_state == "idle":
            return
        self.training_panel.show_progress(b.epoch, self._train_epochs, b.step, b.steps, b.eta_seconds,
                                          b.images_per_second)

    # -- decoding ----------------------------------------------------------------------------------------
    def _set_weights(self, weights) -> None:
        self.latest_weights = weights
        self.renderer.set_weights(weights)
        if self.point_decoder is not None:
            self.point_decoder.set_weights(weights)
        self.latent_map.request_grid(urgent=False)
        self._redo_last_click()

    @Slot(object, object, object)
    def _on_decoders_built(self, key, grid_decoder, point_decoder) -> None:
        self.renderer.adopt(key, grid_decoder, point_decoder)
        if self.renderer.ready_key == key:
            self._on_point_decoder(point_decoder)

    @Slot(object)
    def _on_point_decoder(self, decoder) -> None:
        self.point_decoder = decoder
        if self.latest_weights is not None:
            decoder.set_weights(self.latest_weights)
            self._redo_last_click()
        self.latent_map.request_grid()
        self._update_actions()

    def decode(self, z) -> np.ndarray | None:
        """The image for one latent vector, decoded on the GUI thread by its own Decoder (~1 ms)."""
        if self.point_decoder is None or self.latest_weights is None:
            return None
        return self.point_decoder.decode(np.asarray(z, np.float32)[None])[0]

    @Slot()
    def _request_grid(self) -> None:
        if self.model_info is None or self.latest_weights is None:
            return
        p = self.latent_map.grid_params()
        self.renderer.request(p["x_range"], p["y_range"], self.latent_map.grid_size(self.model_info[0]),
                              p["dims"], p["base_z"], p["projection"], urgent=self.latent_map.take_grid_urgency())

    @Slot(object)
    def _on_grid_rendered(self, out: dict) -> None:
        self.latent_map.set_grid(out["mosaic"], out["x_range"], out["y_range"], out["n"])
        self.last_grid_timing = {"decode_s": out.get("seconds"), "latency_s": out.get("latency")}
        self.gridShown.emit()

    @Slot(object, object)
    def _on_map_clicked(self, z, xy) -> None:
        self.last_click = ("z", np.asarray(z), xy)
        image = self.decode(z)
        if image is None:
            self.image_panel.clear("The decoder is not ready yet: it appears after the first weights snapshot.")
            return
        self.image_panel.show_decoded(image, z, xy)

    @Slot(object, object)
    def _on_map_hovered(self, z, xy) -> None:
        image = self.decode(z)
        self.latent_map.show_preview(image, xy)

    @Slot(int, object)
    def _on_point_clicked(self, index: int, z) -> None:
        self.last_click = ("point", int(index), np.asarray(z))
        recon = self.decode(z)
        if recon is None:
            return
        ds = self.points_dataset
        original, title = None, f"image #{index}"
        if ds is not None and 0 <= index < ds.num_images:
            original = ds.images[index]
            title = ds.paths[index]
            if ds.labeled and ds.labels[index] >= 0:
                title += f" ({ds.class_names[ds.labels[index]]})"
        self.image_panel.show_pair(original, recon, z, title)

    def _redo_last_click(self) -> None:
        if self.last_click is None:
            if self.point_decoder is not None and self.latest_weights is not None:
                (x0, x1), (y0, y1) = self.latent_map.vb.viewRange()
                x, y = (x0 + x1) / 2, (y0 + y1) / 2   # show something at once: the map's centre
                self._on_map_clicked(self.latent_map.z_at(x, y), (x, y))
            return
        if self.last_click[0] == "z":
            self._on_map_clicked(self.last_click[1], self.last_click[2])
        else:
            self._on_point_clicked(self.last_click[1], self.last_click[2])

    # -- runs -----------------------------------------------------------------------------------------------
    @Slot()
    def ask_open_run(self) -> None:
        start = str(self.runs_root if self.runs_root.is_dir() else Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", start)
        if folder:
            self.open_run_path(folder)

    def open_run_path(self, path) -> bool:
        """Open a run folder (its model loads on a worker thread)."""
        if self._train_state != "idle":
            self._status("Stop training before opening a run.")
            return False
        if self._run_thread is not None:
            return False
        self._status(f"Opening run {path}…")
        self._run_worker = RunLoadWorker(str(path))
        self._run_worker.loaded.connect(self._on_run_loaded)
        self._run_worker.failed.connect(self._on_run_failed)
        self._run_thread = start_thread(self._run_worker, "latentlab-open-run", self._run_worker.run)
        self._run_thread.finished.connect(self._on_run_thread_finished)
        self._update_actions()
        return True

    @Slot(object)
    def _on_run_loaded(self, result: dict) -> None:
        run = result["run"]
        self.hide_banner()
        self.run_dir = Path(run.path)
        self.last_result = None
        self.last_click = None
        cfg = run.config
        self.training_panel.apply_settings(**cfg.to_dict())
        self.loss_plot.set_history(run.history)
        self.model_info = (result["image_shape"], result["latent_dim"], result["likelihood"])
        self.point_decoder = self.renderer.set_model(*self.model_info)
        self.latest_weights = result["decoder_weights"]
        self.renderer.set_weights(self.latest_weights)
        if self.point_decoder is not None:
            self.point_decoder.set_weights(self.latest_weights)
        self.latent_map.set_latent_dim(result["latent_dim"])
        self.latent_map.show_preview(None)
        self.image_panel.clear()
        lat = run.latents
        self.points_dataset = None
        self._latents_paths = None
        if lat is not None and "z_mean" in lat:
            z = np.asarray(lat["z_mean"], np.float32)
            idx = np.arange(len(z))
            split = lat.get("split")
            if split is not None and len(split) == len(z) and np.any(split == 1):
                idx = np.flatnonzero(split == 1)
            labels = lat.get("labels")
            names = [str(n) for n in lat.get("class_names", [])]
            self._latents_paths = [str(p) for p in lat.get("paths", [])]
            ds = self.dataset
            if ds is not None and list(ds.paths) == self._latents_paths:
                self.points_dataset = ds
            self.latent_map.set_points(z[idx], None if labels is None else np.asarray(labels)[idx], names, idx)
            if self.points_dataset is None and cfg.dataset and Path(cfg.dataset).is_dir() \
                    and not self.dataset_panel.is_loading:
                self.dataset_panel.open_folder(cfg.dataset, cfg.image_size, cfg.color)
        else:
            self._status("This run has no latents.npz: the map shows the decoder only.")
            self.latent_map.fit()
        done = len(run.history)
        self.setWindowTitle(f"latentlab — {self.run_dir.name}")
        self._status(f"Opened run {run.path}: {done} epoch{'s' if done != 1 else ''}, status {run.status}, "
                     f"latent size {cfg.latent_dim}, β {cfg.beta:g}.")
        self.runOpened.emit(str(run.path))

    @Slot(str)
    def _on_run_failed(self, message: str) -> None:
        self.show_banner(message)
        self.runOpenFailed.emit(message)

    @Slot()
    def _on_run_thread_finished(self) -> None:
        if self._run_thread is not None:
            self._run_thread.wait()
        self._run_thread = None
        self._run_worker = None
        self._update_actions()

    @Slot()
    def ask_save_run(self) -> None:
        if self.run_dir is None:
            self._status("There is no run to save yet: train first.")
            return
        dest, _ = QFileDialog.getSaveFileName(self, "Save the run as a new folder", str(Path.home() / self.run_dir.name),
                                              "Run folder (*)")
        if dest:
            self.save_run_to(dest)

    def save_run_to(self, dest) -> bool:
        """Copy the run folder to ``dest`` (a new or empty folder)."""
        if self.run_dir is None or not Path(self.run_dir).is_dir():
            self.show_banner("There is no run folder to save yet: train for at least one epoch.")
            return False
        if self._train_state != "idle":
            self._status("Stop training before saving the run.")
            return False
        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            self.show_banner(f"{dest} already exists and is not empty: choose a new folder name.")
            return False
        try:
            if dest.exists():
                dest.rmdir()
            shutil.copytree(self.run_dir, dest, ignore=shutil.ignore_patterns(".*.tmp*"))
        except OSError as e:
            self.show_banner(f"cannot save the run to {dest} ({e.strerror or e}); choose a folder you can write to.")
            return False
        self._status(f"Saved the run to {dest}.")
        return True

    # -- exports ------------------------------------------------------------------------------------------------
    @Slot()
    def ask_export_grid(self) -> None:
        if self.latent_map.mosaic is None:
            self._status("No decoded grid yet.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the decoded grid", "latent-grid.png", "PNG images (*.png)")
        if path:
            self.export_grid(path if path.lower().endswith(".png") else path + ".png")

    def export_grid(self, path) -> bool:
        if self.latent_map.mosaic is None:
            return False
        ok = save_png(self.latent_map.mosaic, str(path))
        self._status(f"Saved the grid to {path}." if ok else f"Could not write {path}.")
        return ok

    @Slot()
    def ask_export_latents(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export latents", "latents.csv", "CSV files (*.csv)")
        if path:
            self.export_latents(path if path.lower().endswith(".csv") else path + ".csv")

    def export_latents(self, path) -> bool:
        """Every image's z_mean and z_log_var from the run's latents.npz (else the map's points)."""
        lat = None
        if self.run_dir is not None and (Path(self.run_dir) / "latents.npz").is_file():
            try:
                with np.load(Path(self.run_dir) / "latents.npz", allow_pickle=False) as f:
                    lat = {k: f[k] for k in f.files}
            except Exception:
                lat = None
        if lat is None:
            m = self.latent_map
            if not len(m.z):
                self._status("No latents to export yet.")
                return False
            ds = self.points_dataset
            lat = {"z_mean": m.z, "labels": m.labels, "class_names": np.array(m.class_names),
                   "paths": np.array([ds.paths[i] if ds is not None else str(i) for i in m.indices]),
                   "split": np.ones(len(m.z), np.int8)}
        z = np.asarray(lat["z_mean"])
        zlv = lat.get("z_log_var")
        d = z.shape[1]
        names = [str(n) for n in lat.get("class_names", [])]
        labels = lat.get("labels", np.full(len(z), -1))
        paths = lat.get("paths", np.arange(len(z)))
        split = lat.get("split")
        header = ["path", "label", "class", "split"] + [f"z_mean_{i}" for i in range(d)]
        if zlv is not None:
            header += [f"z_log_var_{i}" for i in range(d)]
        try:
            with open(path, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(header)
                for i in range(len(z)):
                    lab = int(labels[i]) if i < len(labels) else -1
                    row = [str(paths[i]), lab, names[lab] if 0 <= lab < len(names) else "",
                           "" if split is None else ("val" if split[i] == 1 else "train")]
                    row += [f"{v:.6g}" for v in z[i]]
                    if zlv is not None:
                        row += [f"{v:.6g}" for v in zlv[i]]
                    w.writerow(row)
        except OSError as e:
            self.show_banner(f"cannot write {path} ({e.strerror or e})")
            return False
        self._status(f"Saved {len(z):,} latents to {path}.")
        return True

    # -- screenshots, idling, closing -----------------------------------------------------------------------
    def is_idle(self) -> bool:
        return (self._train_thread is None and self._run_thread is None and not self.dataset_panel.is_loading
                and not self.renderer.busy and not self.latent_map._grid_timer.isActive())

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

    def closeEvent(self, event) -> None:
        if self._train_thread is None and self.tradeoff.busy and self.tradeoff.sweep_panel.is_running:
            if not self.confirm_stop():
                event.ignore()
                return
        if self._train_thread is not None:
            if not self.confirm_stop():
                event.ignore()
                return
            self._train_worker.stop()
            self._status("Stopping training…")
            self._train_thread.wait()
        if self.screenshot_path and not self.screenshot_saved:
            self.save_screenshot()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop and wait for every worker thread (idempotent)."""
        self.tradeoff.shutdown()
        if self._train_thread is not None:
            self._train_worker.stop()
            self._train_thread.wait()
            self._train_thread = None
        if self._run_thread is not None:
            self._run_thread.wait()
            self._run_thread = None
        self.dataset_panel.shutdown()
        self.renderer.shutdown()
        self.ui_timer.stop()
        self.loss_plot.timer.stop()

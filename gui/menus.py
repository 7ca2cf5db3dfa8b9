"""The window's menus, toolbar and shortcuts: `build_menus(window)` makes every QAction of a
`gui.main_window.MainWindow`, connected to the window's slots and controllers, and keeps each as an
attribute of the window (the tests and the wiring use ``window.train_action`` etc.)."""

from __future__ import annotations

import functools

from PySide6.QtCore import Qt
from PySide6.QtGui import QActionGroup, QKeySequence
from PySide6.QtWidgets import QMessageBox, QStyle, QToolBar

from gui.theme import Scheme
from gui.widgets import make_action

__all__ = ["build_menus"]


def build_menus(self) -> None:
    """The menu bar, the toolbar and the window-wide shortcuts of ``self`` (a MainWindow): each action
    becomes an attribute of the window (``open_action``, ``train_action``, ...)."""
    A = functools.partial(make_action, self)
    mb = self.menuBar()
    file_menu = mb.addMenu("&File")
    self.open_action = A("&Open dataset folder…", self.dataset_panel.ask_folder, "Ctrl+O",
                         "Open a folder of images to train on", file_menu, QStyle.SP_DirOpenIcon)
    self.recent_menu = file_menu.addMenu("Open &recent")
    self.recent_menu.aboutToShow.connect(lambda: self.dataset_panel.fill_recent_menu(self.recent_menu,
                                                                                     self.open_dataset))
    self.sample_action = A("Open the &sample dataset", self.dataset_panel.open_sample, None,
                           "Load the bundled Fashion-MNIST sample", file_menu)
    file_menu.addSeparator()
    self.open_run_action = A("Open &run…", self.files.ask_open, "Ctrl+Shift+O", "Open a run folder made by the "
                             "app or by `latentlab train`", file_menu, QStyle.SP_DialogOpenButton)
    self.open_decoder_action = A("Open a Keras &decoder…", self.foreign.ask_open, None, "Explore a decoder "
                                 "trained elsewhere: a .keras file that maps a vector to an image", file_menu)
    self.save_run_action = A("&Save run…", self.ask_save_run, "Ctrl+S", "Copy the current run folder to a "
                             "folder you choose", file_menu, QStyle.SP_DialogSaveButton)
    file_menu.addSeparator()
    self.export_grid_action = A("Export &grid PNG…", lambda: self.files.ask_export_grid(self.latent_map.mosaic,
                                                                                 self.latent_map.tile_shape()),
                                "Ctrl+E", "Save the decoded grid of the latent map as a PNG", file_menu)
    self.export_csv_action = A("Export &latents CSV…",
                               lambda: self.files.ask_export_latents(self.map_view.points_as_latents), "Ctrl+Shift+E",
                               "Save every image's z_mean and z_log_var as CSV", file_menu)
    self.save_image_action = A("Save &decoded image…", self.image_panel._ask_save, None,
                               "Save the image shown in the image panel", file_menu)
    file_menu.addSeparator()
    A("&Quit", self.close, "Ctrl+Q", "Close the window", file_menu)

    train_menu = mb.addMenu("&Train")
    self.train_action = A("&Train", self.start_training, "Ctrl+T", "Train a new model on the dataset",
                          train_menu, QStyle.SP_MediaPlay)
    self.continue_action = A("&Continue training", self.continue_training, "Ctrl+Shift+T",
                             "Train the run shown further, up to the form's epochs in all", train_menu)
    self.pause_action = A("&Pause / resume", self.training.toggle_pause, "Space", "Pause or resume training",
                          train_menu, QStyle.SP_MediaPause)
    self.stop_action = A("&Stop", self.training.stop, "Esc", "Stop training, keeping the last finished epoch",
                         train_menu, QStyle.SP_MediaStop)

    view_menu = mb.addMenu("&View")
    self.log_action = A("&Logarithmic loss axis", self.loss_plot.log_y.toggle, "Ctrl+L",
                        "Toggle the log scale of the loss plot", view_menu)
    A("&Fit the latent map", self.latent_map.fit, "F", "Zoom the map to the data", view_menu)
    self.layout_state.add_to_menu(view_menu)
    _make_scheme_menu(self, view_menu.addMenu("Colour &scheme"))
    _make_tradeoff_menu(self, mb.addMenu("Trade-o&ff"))
    A("&Keyboard shortcuts", functools.partial(show_shortcuts, self), "F1", "List the keyboard shortcuts", mb.addMenu("&Help"))

    tb = QToolBar("Main")
    tb.setObjectName("main-toolbar")
    tb.setMovable(False)
    tb.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
    self.addToolBar(tb)
    for group in ((self.open_action, self.open_run_action, self.save_run_action),
                  (self.train_action, self.pause_action, self.stop_action), (self.lesson_action,),
                  (self.export_grid_action, self.export_csv_action)):
        for a in group:
            tb.addAction(a)
        tb.addSeparator()


def _make_scheme_menu(self, menu) -> None:
    """System / Light / Dark (gui.theme): one checked, the choice kept for the next start."""
    group = QActionGroup(menu)
    self.scheme_actions = {}
    for scheme, text, tip in ((Scheme.SYSTEM, "&System", "Follow the desktop's light or dark setting"),
                              (Scheme.LIGHT, "&Light", "Dark text on light backgrounds"),
                              (Scheme.DARK, "&Dark", "Light text on dark backgrounds, plots included")):
        a = make_action(self, text, functools.partial(self.theme.set_scheme, scheme), None, tip, menu)
        a.setCheckable(True)
        a.setChecked(self.theme.scheme is scheme)
        group.addAction(a)
        self.scheme_actions[scheme] = a


def _make_tradeoff_menu(self, menu) -> None:
    self.tradeoff_menu = menu
    self.tradeoff_toggle_action = self.tradeoff_dock.toggleViewAction()
    self.tradeoff_toggle_action.setText("&Show trade-off views")
    self.tradeoff_toggle_action.setShortcut(QKeySequence("Ctrl+B"))
    self.tradeoff_toggle_action.setStatusTip("Show or hide the dock of views on how β trades reconstruction "
                                             "for a regular latent space")
    menu.addAction(self.tradeoff_toggle_action)
    menu.addSeparator()
    self.lesson_action = make_action(self, "Show the &trade-off (train and compare β)…", self.start_lesson,
                                     "Ctrl+Shift+L", "Train one model per β on the loaded images, designed so that "
                                     "the trade-off shows beyond noise (2–3 minutes on two CPU cores), then "
                                     "compare them",
                                     menu, QStyle.SP_FileDialogContentsView)
    self.lesson_action.setIconText("Show the trade-off")   # the toolbar's shorter text
    menu.addSeparator()
    p = self.tradeoff
    for tab, (text, tip) in enumerate(p.MENU):
        make_action(self, text, lambda checked=False, t=tab: self.show_tradeoff(t), None, tip, menu)
    menu.addSeparator()
    make_action(self, "Compare a sweep &folder…", p.comparison._ask_open, None,
                "Open a run folder, or a sweep folder to compare all its runs", menu)
    make_action(self, "Compare with the &current run", self.compare_current_run, None,
                "Add the run shown in the window to the comparison", menu)


def show_shortcuts(window) -> None:
    """Help ▸ Keyboard shortcuts: every action's shortcut, and the mouse wheel's rule."""
    from gui.wheel import RULE

    keys = [f"{a.shortcut().toString()}  {a.text().replace('&', '')}" for a in window.actions() if a.shortcut()]
    QMessageBox.information(window, "Keyboard shortcuts", "\n".join(keys + ["", RULE]))

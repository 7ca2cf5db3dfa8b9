"""`TradeoffPanel`: everything about how β trades reconstruction for a regular latent space, in
tabs — the loss term by term and the KL per dimension; the rate–distortion plane with the β
sweep; several runs compared; the latent map replayed epoch by epoch; traversal, interpolation
and nearest images for the model shown.

It takes plain data and engine events through its slots (the main window connects them):
``on_train_event(ev)`` for the training's events, ``set_beta``, ``set_dataset``, ``show_run_path`` /
``on_training_finished`` for the run shown, ``set_decoder`` / ``on_map_clicked`` /
``on_map_point_clicked`` / ``on_weights_changed`` for the model on the main latent map. It reports
one-line messages for the status bar through ``status``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QFrame, QScrollArea, QSizePolicy, QTabWidget

from gui.tradeoff.epoch_replay import EpochReplay
from gui.tradeoff.kl_per_dim import KLPerDimPlot
from gui.tradeoff.latent_tools import LatentTools
from gui.tradeoff.lesson_view import LessonView
from gui.tradeoff.loss_terms import LossTermsPanel
from gui.tradeoff.rate_distortion import RateDistortionPlot
from gui.tradeoff.run_comparison import RunComparison
from gui.tradeoff.sweep_panel import SweepPanel
from gui.widgets import splitter

__all__ = ["TradeoffPanel"]


class TradeoffPanel(QTabWidget):
    TAB_LOSS, TAB_RD, TAB_COMPARE, TAB_REPLAY, TAB_EXPLORE, TAB_LESSON = range(6)
    MENU = [   # per tab: the window's menu entry that shows it, and what it shows
        ("&Loss and KL per dimension",
         "The loss written out with the current β, each term's value, and the KL of each latent dimension"),
        ("&Rate–distortion plane and β sweep",
         "Every run as a point of rate (KL) against distortion (reconstruction); train several β values"),
        ("&Compare runs", "Several runs side by side: loss curves, latent maps, and one z decoded by each"),
        ("Re&play epochs", "The latent map as it was after each finished epoch"),
        ("&Traverse, interpolate, nearest images",
         "Dimension traversals, interpolations and the nearest training images at the clicked point")]
    collapseWarning = Signal(str)      # a one-line warning when the posterior collapses ('' when it recovers)
    status = Signal(str)               # a one-line message for the window's status bar

    def __init__(self, parent=None):
        super().__init__(parent)
        self.dataset = None
        self.run = None                # the run shown (latentlab.runs.folder.Run), if any
        self.beta = 1.0
        self._live_beta = None
        self._sweep_live = False
        self._shared_start = None      # the run folder of a designed sweep's shared start, while it trains
        self._run_opened = True

        self.loss_terms = LossTermsPanel()
        self.kl_plot = KLPerDimPlot()
        loss_tab = splitter(Qt.Vertical, [(self.loss_terms, 0, 250), (self.kl_plot, 0, 350)])

        self.rd_plot = RateDistortionPlot()
        self.sweep_panel = SweepPanel()
        rd_tab = splitter(Qt.Horizontal, [(self.rd_plot, 0, 600), (_side_scroll(self.sweep_panel), 0, 380)])

        self.comparison = RunComparison()
        self.replay = EpochReplay()
        self.tools = LatentTools()
        self.lesson = LessonView()

        self.addTab(loss_tab, "Loss && KL")
        self.addTab(rd_tab, "Rate–distortion && sweep")
        self.addTab(self.comparison, "Compare runs")
        self.addTab(self.replay, "Replay")
        self.addTab(self.tools, "Traverse && interpolate")
        self.addTab(self.lesson, "What β does")
        self.setTabToolTip(0, "The loss written out with the current β, each term's value, and the KL of each "
                              "latent dimension.")
        self.setTabToolTip(1, "Runs as points of rate (KL) against distortion (reconstruction); train a β sweep.")
        self.setTabToolTip(2, "Several runs side by side: curves, latent maps and the same z decoded by each.")
        self.setTabToolTip(3, "The latent map as it was at each finished epoch.")
        self.setTabToolTip(4, "Traversals, interpolations and nearest training images for the model shown.")
        self.setTabToolTip(5, "The lesson: one model per β, trained so that the trade-off shows beyond noise, "
                              "compared side by side.")

        self.kl_plot.collapseChanged.connect(self._on_collapse)
        self.sweep_panel.sweepEvent.connect(self._on_sweep_event)
        self.comparison.runLoaded.connect(self._on_compared_run)
        self.rd_plot.runClicked.connect(self._on_rd_run_clicked)
        self.lesson.status.connect(self.status)
        self.currentChanged.connect(self._size_to_current)
        self._size_to_current()

    def _size_to_current(self, *_) -> None:
        """The panel asks for the shown tab's room only (a QTabWidget asks for its largest tab's): in a short dock
        the tab shown fits, e.g. the rate–distortion plane frames its runs in view instead of below the fold."""
        for i in range(self.count()):
            page = self.widget(i)
            policy = QSizePolicy.Preferred if i == self.currentIndex() else QSizePolicy.Ignored
            page.setSizePolicy(policy, policy)
        self.updateGeometry()

    # -- inputs from the main window -----------------------------------------------------------------------
    @Slot(float)
    def set_beta(self, beta: float) -> None:
        self.beta = float(beta)
        self.loss_terms.set_beta(beta)
        if not self._sweep_live:
            self.rd_plot.set_live_beta(beta)

    @Slot(object)
    def set_dataset(self, dataset) -> None:
        """The loaded Dataset (labels colour the replay; its images feed nearest-image look-ups)."""
        self.dataset = dataset
        if self.run is not None:
            self.show_run(self.run, self._run_opened)     # its images are here now: nearest can show them

    def set_sweep_source(self, config, dataset) -> None:
        self.sweep_panel.set_source(config, dataset)

    @Slot(object)
    def on_train_event(self, ev, sweep: bool = False) -> None:
        """An engine event of the training shown in the main window (or of a sweep run)."""
        from latentlab.events import BatchEnd, EpochEnd, Finished, Started

        if isinstance(ev, Started):
            self.kl_plot.clear()
            self.loss_terms.clear()
            self.replay.clear()
            if self._live_beta is None:
                self._live_beta = self.beta
            self.loss_terms.set_beta(self._live_beta)      # the formula shows the β of the values below
            self.rd_plot.start_live(self._live_beta, f"{'sweep' if sweep else 'training'} (β = {self._live_beta:g})")
        elif isinstance(ev, BatchEnd):
            self.loss_terms.show_batch(ev.logs, ev.beta)
        elif isinstance(ev, EpochEnd):
            row = ev.history[-1] if ev.history else {"epoch": ev.epoch, **ev.logs, "beta": ev.beta}
            self.loss_terms.show_epoch(row, ev.beta, ev.epoch)
            self.kl_plot.set_kl(ev.kl_per_dim, ev.active_units, ev.epoch)
            self.kl_plot.set_history(ev.history or [row])
            self.rd_plot.add_live_epoch(row)
            labels, names = self._labels_for(ev.val_indices)
            self.replay.add_frame(ev.val_z_mean, labels, names)
        elif isinstance(ev, Finished):
            if ev.run_dir and ev.history:
                beta = float(ev.history[-1].get("beta", self._live_beta or self.beta))
                if self._live_beta is not None:
                    beta = self._live_beta
                self.rd_plot.add_run(ev.run_dir, beta, ev.history)
            self.rd_plot.stop_live()
            self._live_beta = None

    def _labels_for(self, indices):
        ds = self.dataset
        if ds is None or indices is None or not len(indices) or max(indices) >= len(ds.labels):
            return None, None
        return np.asarray(ds.labels)[indices], list(ds.class_names)

    @Slot(object)
    def _on_sweep_event(self, ev) -> None:
        from latentlab.events import EpochEnd, Failed, Finished, RunEvent, SweepStep

        if isinstance(ev, RunEvent):   # runs training at once (a cluster): each moves its own point
            if isinstance(ev.event, (EpochEnd, Finished)) and ev.event.history:
                self.rd_plot.add_run(ev.run_dir, ev.beta, ev.event.history)
            return
        if isinstance(ev, SweepStep):
            from latentlab.sweeps.lesson import is_shared_start

            self._sweep_live = True
            self._live_beta = ev.beta
            self._shared_start = ev.run_dir if is_shared_start(ev.run_dir) else None
            self.loss_terms.set_beta(ev.beta)
            return
        if isinstance(ev, Finished) and ev.run_dir and ev.run_dir == self._shared_start:
            self.rd_plot.stop_live()        # a designed sweep's shared start: every β continues it, it is none of them
            self._live_beta, self._shared_start, self._sweep_live = None, None, False
            return
        self.on_train_event(ev, sweep=True)
        if isinstance(ev, (Finished, Failed)):
            self._sweep_live = False

    @Slot(str, float, object)
    def _on_compared_run(self, path: str, beta: float, history) -> None:
        self.rd_plot.add_run(path, beta, history)

    @Slot(str)
    def _on_rd_run_clicked(self, key: str) -> None:
        for i, e in enumerate(self.comparison.entries):
            if e["path"] == key:
                self.comparison.select_run(i)
                return

    @Slot(bool)
    def _on_collapse(self, collapsed: bool) -> None:
        self.collapseWarning.emit(self.kl_plot.warning.text().lstrip("⚠ ") if collapsed else "")

    @Slot(str)
    def show_run_path(self, path: str, opened: bool = True) -> None:
        """Show the run folder at ``path`` (its config, history and latents; no model); ``opened``: not
        the one just trained here (whose epochs these views saw)."""
        from latentlab.runs import folder as runs

        try:
            run = runs.open_run(path)
        except runs.RunError as e:
            self.status.emit(str(e))
            return
        self.show_run(run, opened)

    @Slot(object)
    def on_training_finished(self, result) -> None:
        """The window's training ended (Finished / Failed / None): show its run if an epoch finished."""
        if result is not None and getattr(result, "run_dir", None) and getattr(result, "epochs_done", 0):
            self.show_run_path(result.run_dir, opened=False)

    def show_run(self, run, opened: bool = True) -> None:
        """A run folder (latentlab.runs.folder.Run): its terms, its point on the plane, its replay; an ``opened``
        one's KL per dimension and active units too (the engine's, from its latents.npz)."""
        from latentlab.runs.folder import latents_match
        from latentlab.tradeoff import latents_kl, replay_frames

        self.run, self._run_opened = run, opened
        kl = latents_kl(run.latents) if opened else None
        if kl is not None:
            self.kl_plot.clear()
            self.kl_plot.set_kl(kl.kl_per_dim, kl.active_units, len(run.history),
                                source=f"latents.npz, {kl.images:,} {kl.split} images")
        if run.history:
            self.kl_plot.set_history(run.history)
            self.loss_terms.set_history(run.history)
            from latentlab.runs.continuing import beta_label, last_beta

            self.rd_plot.add_run(str(run.path), last_beta(run.config, run.history), run.history,
                                 label=beta_label(run.config, run.history).replace("β ", "β = ", 1))
        frames = replay_frames(run)
        if frames is not None:
            self.replay.set_frames(frames["z_mean"], frames["labels"], frames["class_names"])
        else:
            self.replay.clear()
        lat = run.latents
        if lat is not None and "z_mean" in lat:
            z = np.asarray(lat["z_mean"])
            split = np.asarray(lat.get("split", np.zeros(len(z))))
            idx = np.flatnonzero(split == 0) if len(split) == len(z) else np.arange(len(z))
            images = None
            ds = self.dataset
            if ds is not None and latents_match(ds.paths, lat):
                images = ds.images[idx]
            labels = np.asarray(lat["labels"])[idx] if "labels" in lat else None
            self.tools.set_data(z, None, None)
            self.tools.nearest.set_data(z[idx], images, labels, [str(s) for s in lat.get("class_names", [])],
                                        [str(p) for p in np.asarray(lat["paths"])[idx]] if "paths" in lat else None)

    @Slot(object)
    def set_decoder(self, decoder) -> None:
        """The main map's point decoder (GUI thread), kept up to date with the weights shown."""
        if self.tools.traversal.decoder is not decoder:
            self.tools.set_decoder(decoder)

    @Slot(object, object)
    def on_map_clicked(self, z, xy=None) -> None:
        self.set_point(z)

    @Slot(int, object)
    def on_map_point_clicked(self, index: int, z) -> None:
        self.tools.set_point(z, f"image #{index}")

    @Slot()
    def on_weights_changed(self) -> None:
        """The main map's decoder has new weights: redraw the exploring views if they are shown."""
        if self.isVisible() and self.currentIndex() == self.TAB_EXPLORE:
            self.refresh_tools()

    def set_training_data(self, z_mean, images=None, labels=None, class_names=None, paths=None) -> None:
        self.tools.set_data(z_mean, images, labels, class_names, paths)

    @Slot(object)
    def set_point(self, z) -> None:
        self.tools.set_point(z)

    def refresh_tools(self) -> None:
        """Redraw traversal/interpolation after the decoder's weights changed."""
        self.tools.traversal.refresh()
        self.tools.interpolation.refresh()

    # -- lifetime ------------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.sweep_panel.is_running or self.comparison.is_loading or self.lesson.busy

    @property
    def training_busy(self) -> bool:
        """A sweep or the lesson is training (the window's own training must wait)."""
        return self.sweep_panel.is_running or self.lesson.is_running

    def shutdown(self) -> None:
        self.sweep_panel.shutdown()
        self.lesson.shutdown()
        self.comparison.shutdown()


def _side_scroll(form) -> QScrollArea:
    """``form`` beside a plot, scrolling up and down by itself when the dock is shorter than the form."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    area.setWidget(form)
    area.setMinimumWidth(form.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width())
    return area

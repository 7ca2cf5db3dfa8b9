"""`LessonView`: "Show the trade-off". It runs `latentlab.sweeps.lesson.Lesson` (a β sweep designed so that
rate falls and distortion rises with β beyond training noise) on the loaded folder in the background,
then shows what β did, for someone who has never heard of β: the verdict in words, the rate–distortion
plane (dots: the mean over seeds; thin grey lines: each seed's own runs), the same validation images reconstructed by every β, and the runs
compared (`gui.tradeoff.run_comparison.RunComparison`: latent maps side by side, one z decoded by every β).

The window calls ``start(config, dataset)`` (its menu, toolbar and this view's button, through
``startRequested``); ``open_folder(path)`` shows a lesson made earlier (``latentlab lesson``).
"""

from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QProgressBar, QScrollArea, QWidget

from gui.image_panel import ShrinkingImage
from gui.tradeoff.latent_tools import MosaicView, labeled_mosaic
from gui.tradeoff.lesson_runs import RECON_IMAGES, RunReconstruction, pick_images
from gui.theme import colors
from gui.tradeoff.rate_distortion import RateDistortionPlot
from gui.tradeoff.run_comparison import RunComparison
from gui.threads import Task
from gui.widgets import NOTE_STYLE, STRETCH, WrappedLabel, as_widget, button, column, note_label, row, splitter
from gui.workers import SweepWorker

__all__ = ["INTRO", "LessonView"]


INTRO = ("A variational autoencoder squeezes each image into a short code z and rebuilds the image from it. "
         "Training balances two costs: the <b>distortion</b>, how badly an image is rebuilt, and the <b>rate</b>, "
         "how much the code has to say about that image compared with a plain, shared code (the prior). "
         "<b>β</b> is the price of one nat of rate. The lesson trains one model per β on your images, the same in "
         "every other way (same start, same order of images, same random draws), and measures both costs on "
         "images the models never trained on.")
PLANE_TITLE = "<b>The trade-off</b>: each dot is one β (validation, nats per image)"
PLANE_NOTE = ("Further <b>left</b>: a simpler code, closer to the prior (a smoother map). Further <b>down</b>: sharper "
              "reconstructions. No model reaches the bottom-left corner: a larger β buys a simpler code with worse "
              "reconstructions. Dots: the mean over seeds; thin grey lines: each seed's own runs (the seeds' spread).")
RATE_AXIS = "rate: what the code says about each image (KL)  [nats]"
DISTORTION_AXIS = "distortion: how badly images are rebuilt  [nats]"
PRIOR_NOTE = ("A code drawn from the prior N(0, I) is what the model makes from nothing. With a small β the codes of "
              "the images sit apart from the prior, so many prior codes land where no image's code lies (a "
              "<b>hole</b>: a red frame) and decode to nothing like the data; a larger β pulls the codes onto the "
              "prior. Below each β: its rate split into <b>I(x; z)</b>, what a code says about its image, and "
              "<b>KL(q(z) ‖ p(z))</b>, codes the prior never draws (nats per image).")
CONTENT_HEIGHT = 1650       # the view scrolls in a smaller dock


class _Page(QWidget):
    """The lesson's page: at least CONTENT_HEIGHT tall (it scrolls in a smaller dock), taller when its parts
    need more (a narrow window wraps the verdict into more lines)."""

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return QSize(hint.width(), max(hint.height(), CONTENT_HEIGHT))


class LessonView(QWidget):
    startRequested = Signal()          # the button: the window answers with start(config, dataset)
    runningChanged = Signal(bool)
    lessonFinished = Signal(object)    # the summary (dict), or None when no β finished
    comparisonReady = Signal()         # the runs are open in the comparison, reconstructions drawn
    runReconstructed = Signal(float)   # a running lesson's run (its β) has its row of reconstructions shown
    status = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        from latentlab.sweeps.lesson import Design

        self.design = Design()
        self.runs_root = None          # the window sets its runs folder
        self.dataset = None
        self.summary: dict | None = None
        self.out_dir: Path | None = None
        self.task = Task("latentlab-lesson", self)
        self.task.finished.connect(self._on_finished)
        self._runs = 0
        self._index = 0
        self._span = (0, 1)
        self._t0 = 0.0
        self._what = ""
        self._partial: list[dict] = []     # the runs a running lesson has finished so far
        self.recon_task = Task("latentlab-lesson-recon", self)   # a finished run's reconstructions, while the next trains
        self.recon_task.finished.connect(self._next_reconstruction)
        self._recon_queue: list[dict] = []
        self._recon_rows: dict[float, np.ndarray] = {}        # β → its decoded row (the first seed's runs)
        self._recon_originals: np.ndarray | None = None

        self.start_button = button("Show the trade-off", "Train one model per β on the loaded images (a design "
                                   "that shows the effect beyond training noise, 2–3 minutes on two CPU cores), "
                                   "then compare them here.", self.startRequested.emit)
        self.stop_button = button("Stop", "Stop after the current batch: finished β values are still compared.",
                                  self.stop, enabled=False)
        self.open_button = button("Open a lesson…", "Show a lesson folder made earlier (by this button or by "
                                  "`latentlab lesson`).", self._ask_open)
        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.progress.setTextVisible(True)       # its own row, the full width: the stage and ETA never clipped
        # wrapped labels that keep the height their text needs: a narrow page grows, never overlaps them
        self.intro = WrappedLabel(INTRO)
        self.verdict = WrappedLabel("Press <b>Show the trade-off</b> to train and compare.", "verdict")
        self.verdict.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self._build_plane()
        self.recon_view = MosaicView("The same validation images, rebuilt by every β, appear here.")
        self.recon_note = note_label("Top row: validation images the models never trained on; below: each β's "
                                     "reconstruction (the decoder's image for the code's mean).", wrap=True)
        self.comparison = RunComparison()
        self.comparison.loadingFinished.connect(self._on_compared)
        self.plane.runClicked.connect(self._on_plane_clicked)

        self.prior_row = QWidget()
        self.prior_layout = QHBoxLayout(self.prior_row)
        self.prior_layout.setContentsMargins(0, 0, 0, 0)
        self.prior_labels: list[QLabel] = []   # one per β: its prior samples and its split
        self.prior_note = WrappedLabel(PRIOR_NOTE, NOTE_STYLE)
        self.recon_view.setMinimumHeight(4 * 56 + 16)
        recon_box = as_widget(column("<b>What each β rebuilds</b>", self.recon_note, (self.recon_view, 1)))
        plane_box = as_widget(column((self.plane, 1), WrappedLabel(PLANE_NOTE, NOTE_STYLE)))
        upper = as_widget(column(row("<b>What β does</b>", STRETCH, self.stop_button, self.open_button,
                                     self.start_button),
                                 self.progress, self.intro, self.verdict,
                                 (splitter(Qt.Horizontal, [(plane_box, 3, 640), (recon_box, 2, 600)]), 1),
                                 margins=4))
        prior_box = as_widget(column("<b>What β buys</b>: the same 64 codes drawn from the prior, decoded by every β",
                                     self.prior_note, self.prior_row, margins=4))
        content = _Page()
        content.setLayout(column((splitter(Qt.Vertical, [(upper, 1, 720), (prior_box, 0, 330),
                                                         (self.comparison, 1, 580)]), 1)))
        self.comparison.drop_scrolling()   # one level of scrolling: the page's own
        self.recon_view.set_scrolling(False)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        column((scroll, 1), parent=self)

    def _build_plane(self) -> None:
        """The lesson's rate–distortion plane: one dot per β, the mean curve dashed, a curve per seed."""
        self.plane = RateDistortionPlot()
        self.plane.title.setText(PLANE_TITLE)
        self.plane.show_paths.setChecked(False)
        self.plane.show_iso.setChecked(False)
        self.plane.plot.setLabel("bottom", RATE_AXIS)
        self.plane.plot.setLabel("left", DISTORTION_AXIS)
        self.plane.setMinimumHeight(320)
        self.curve = self.plane.plot.plot([], [], pen=pg.mkPen((120, 120, 120), width=1.5, style=Qt.DashLine))
        self.curve.setZValue(-5)
        self.seed_curves: list[pg.PlotDataItem] = []

    # -- running ------------------------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self.task.running

    @property
    def busy(self) -> bool:
        return self.is_running or self.comparison.is_loading

    def start(self, config, dataset) -> bool:
        """Run the lesson for ``config`` (the form's settings; β, epochs and seed are the design's) on
        ``dataset`` into a new ``lesson-*`` folder of the runs folder."""
        from latentlab.runs import folder as runs
        from latentlab.sweeps.lesson import Lesson

        if self.is_running or self.comparison.is_loading:
            return False
        if config is None or dataset is None:
            self.status.emit("Open a dataset folder first (Ctrl+O): the lesson trains on its images.")
            return False
        root = self.runs_root if self.runs_root is not None else Path.cwd() / "runs"
        try:
            out = runs.new_run_dir(root, prefix="lesson")
        except (OSError, runs.RunError) as e:
            self.status.emit(f"cannot create a lesson folder in {root} ({getattr(e, 'strerror', None) or e})")
            return False
        self.dataset = dataset
        self.out_dir = out
        self._clear()
        worker = SweepWorker(config, self.design.betas, out, dataset, design=self.design)
        worker.event.connect(self._on_event)
        worker.summary.connect(self._on_summary)
        self._runs = len(Lesson(config, out, dataset, design=self.design).plans())
        self._t0 = time.monotonic()
        self.progress.setRange(0, self._runs * 100)
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.verdict.setText(f"Training {len(self.design.betas)} models on {len(dataset.images):,} images "
                             f"(β {', '.join(f'{b:g}' for b in self.design.sorted_betas)}); the comparison opens "
                             f"when they are done. Runs go to {html.escape(str(out))}.")
        self.task.start(worker)
        self._running_changed()
        return True

    @Slot()
    def stop(self) -> None:
        """Stop after the current batch; the β values that finished are still compared."""
        if not self.task.running:
            return
        self.task.request("stop")
        self.progress.setFormat("stopping after this batch…")

    def shutdown(self) -> None:
        self._recon_queue.clear()
        self.task.stop_and_wait("stop")
        self.recon_task.stop_and_wait(None)
        self.comparison.shutdown()

    def _running_changed(self) -> None:
        running = self.is_running
        for b in (self.start_button, self.open_button):
            b.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.runningChanged.emit(running)

    @Slot(object)
    def _on_event(self, ev) -> None:
        from latentlab.events import BatchEnd, Failed, LessonRunDone, Started, SweepStep

        if isinstance(ev, SweepStep):
            self._index = ev.index
            warm = Path(ev.run_dir).parent.name == "warm-start"
            what = f"shared start at β {ev.beta:g}" if warm else f"β {ev.beta:g}"
            self._what = f"{what}: run {ev.index + 1} of {ev.total}"
            self.progress.setValue(ev.index * 100)
            self.progress.setFormat(self._what)
        elif isinstance(ev, Started):
            self._span = (ev.initial_epoch, max(ev.epochs - ev.initial_epoch, 1))
        elif isinstance(ev, BatchEnd):
            first, n = self._span
            frac = min(max((ev.epoch - first + ev.step / max(ev.steps, 1)) / n, 0.0), 1.0)
            value = int(self._index * 100 + 100 * frac)
            self.progress.setValue(value)
            done = value / max(self.progress.maximum(), 1)
            if done > 0.05:
                left = (time.monotonic() - self._t0) * (1 - done) / done
                self.progress.setFormat(f"{self._what} · about {_minutes(left)} left")
        elif isinstance(ev, LessonRunDone):
            self._show_run(ev.result)
            done = sum(1 for r in self._partial if r["seed"] == ev.result["seed"])
            self.verdict.setText(f"β {ev.result['beta']:g} (seed {ev.result['seed']}) is on the plane: rate "
                                 f"{ev.result['rate']:.3g} nats, distortion {ev.result['distortion']:.3g} nats "
                                 f"({done} of {len(self.design.betas)} β values of this seed; the comparison "
                                 f"opens when all are done).")
        elif isinstance(ev, Failed):
            self.verdict.setText(f"<span style='color:{colors().error}'>{html.escape(ev.message)}</span>")

    @Slot(object)
    def _on_summary(self, summary: dict) -> None:
        self.summary = summary

    @Slot(object)
    def _on_finished(self, worker) -> None:
        self._running_changed()
        summary = self.summary
        if summary is None or not summary.get("runs"):
            self.progress.setFormat("stopped" if summary and summary.get("stopped") else "no β finished")
            if summary and summary.get("failed"):
                self.verdict.setText(f"<span style='color:{colors().error}'>{html.escape(summary['failed'])}</span>")
            self.lessonFinished.emit(None)
            return
        if summary.get("stopped"):     # stopped: the β values that finished, said as such
            self.progress.setFormat(f"stopped after {_minutes(summary['seconds'])}: "
                                    f"{len(summary['runs'])} run{'s' if len(summary['runs']) != 1 else ''} compared")
        else:
            self.progress.setValue(self.progress.maximum())
            self.progress.setFormat(f"done in {_minutes(summary['seconds'])}")
        self.plane.clear_runs()         # the runs shown as they finished give way to the summary's (seed means)
        self.show_summary(summary)
        self.lessonFinished.emit(summary)

    # -- showing a lesson ---------------------------------------------------------------------------------
    def open_folder(self, folder) -> bool:
        """Show the lesson saved in ``folder`` (its lesson.json and run folders)."""
        from latentlab.sweeps.lesson import LessonError, read_summary

        if self.busy:
            return False
        try:
            summary = read_summary(folder)
        except LessonError as e:
            self.status.emit(str(e))
            return False
        self.out_dir = Path(folder)
        self._clear()
        self.progress.setFormat("opened")
        self.show_summary(summary)
        return True

    def _ask_open(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a lesson folder (it holds lesson.json)")
        if folder:
            self.open_folder(folder)

    def _clear(self) -> None:
        self.summary = None
        self.plane.clear_runs()
        self.curve.setData([], [])
        for item in self.seed_curves:
            self.plane.plot.removeItem(item)
        self.seed_curves = []
        self.comparison.clear()
        self._clear_priors()
        self._partial = []
        self._recon_queue.clear()
        self._recon_rows, self._recon_originals = {}, None
        self.recon_view.set_image(None, "The same validation images, rebuilt by every β, appear here.")

    def show_summary(self, summary: dict) -> None:
        """The verdict, the plane and (loaded in the background) the comparison of ``summary``'s runs."""
        from latentlab.runs import folder as runs

        self.summary = summary
        self.verdict.setText(verdict_html(summary))
        for r in summary["runs"]:
            path = r["run_dirs"][0]
            try:
                history = runs.read_history(Path(path) / runs.HISTORY_FILE)
            except (OSError, runs.RunError):
                history = []
            # the plane labels each run's marker itself ("β = 10" beside its point)
            self.plane.add_run(path, r["beta"], history, f"β = {r['beta']:g}", final=(r["rate"], r["distortion"]))
        # the curve the β values trace, from the simplest code (top left) to the richest; with seeds, each one's
        self.curve.setData([r["rate"] for r in summary["runs"]], [r["distortion"] for r in summary["runs"]])
        seeds = summary.get("seeds", [])
        for seed in seeds if len(seeds) > 1 else []:
            pts = [p for r in summary["runs"] for p in r["per_seed"] if p["seed"] == seed]
            item = self.plane.plot.plot([p["rate"] for p in pts], [p["distortion"] for p in pts],
                                        pen=pg.mkPen((160, 160, 160), width=1), symbol="o", symbolSize=5,
                                        symbolPen=pg.mkPen((120, 120, 120)), symbolBrush=(255, 255, 255))
            item.setZValue(-6)
            self.seed_curves.append(item)
        every = [p for r in summary["runs"] for p in r["per_seed"]]
        self.plane.include_points([p["rate"] for p in every], [p["distortion"] for p in every])
        self.plane.redraw()
        self._show_prior_samples(summary)
        self.comparison.open_runs([r["run_dirs"][0] for r in summary["runs"]])

    def _show_run(self, result: dict) -> None:
        """One run of a running lesson, as it finishes: its point on the plane (the curve through the first
        seed's points so far) and, for the first seed, its prior samples."""
        from latentlab.runs import folder as runs

        self._partial.append(result)
        try:
            history = runs.read_history(Path(result["run_dir"]) / runs.HISTORY_FILE)
        except (OSError, runs.RunError):
            history = []
        self.plane.add_run(result["run_dir"], result["beta"], history, f"β = {result['beta']:g}",
                           final=(result["rate"], result["distortion"]))
        first = sorted((r for r in self._partial if r["seed"] == self._partial[0]["seed"]), key=lambda r: r["beta"])
        self.curve.setData([r["rate"] for r in first], [r["distortion"] for r in first])
        self.plane.include_points([r["rate"] for r in self._partial], [r["distortion"] for r in self._partial])
        self.plane.redraw()
        if result["seed"] == self._partial[0]["seed"]:
            self._add_prior_column(result)
            self.prior_note.setVisible(True)
            self._recon_queue.append(result)
            self._next_reconstruction()

    def _next_reconstruction(self, *_) -> None:
        """Load the next finished run's decoder on a thread of its own and decode the validation images."""
        if self.recon_task.running or not self._recon_queue:
            return
        worker = RunReconstruction(self._recon_queue.pop(0))
        worker.done.connect(self._on_run_reconstructed)
        self.recon_task.start(worker)

    @Slot(object)
    def _on_run_reconstructed(self, rec: dict) -> None:
        """One more row of "What each β rebuilds", the validation images on top (until the comparison's)."""
        if self.comparison.entries or not self.is_running or not rec["run_dir"].startswith(str(self.out_dir)):
            return   # the comparison's own rows are shown by now, or the run is an earlier lesson's
        if self._recon_originals is None and self.dataset is not None:
            where = {p: i for i, p in enumerate(self.dataset.paths)}
            found = [where.get(p) for p in rec["paths"]]
            if found and None not in found:
                self._recon_originals = self.dataset.images[found]
        self._recon_rows[rec["beta"]] = rec["decoded"]
        betas = sorted(self._recon_rows)
        rows = ([self._recon_originals] if self._recon_originals is not None else []) + [self._recon_rows[b] for b in betas]
        labels = (["images"] if self._recon_originals is not None else []) + [f"β {b:g}" for b in betas]
        self.recon_view.set_image(labeled_mosaic(rows, labels, cell=52, label_width=60))
        self.runReconstructed.emit(rec["beta"])

    def _clear_priors(self) -> None:
        for label in self.prior_labels:
            self.prior_layout.removeWidget(label)
            label.deleteLater()
        self.prior_labels = []

    def _show_prior_samples(self, summary: dict) -> None:
        """One column per β: its prior samples (the PNG the lesson wrote) and its rate split beneath."""
        self._clear_priors()
        for r in summary["runs"]:
            self._add_prior_column(r)
        self.prior_note.setVisible(bool(self.prior_labels))

    def _add_prior_column(self, r: dict) -> None:
        label = ShrinkingImage()          # scaled down, not cut, when five columns do not fit the page
        label.setAlignment(Qt.AlignHCenter | Qt.AlignTop)
        pixmap = QPixmap(str(r.get("prior_samples", "")))
        if not pixmap.isNull():
            label.setPixmap(pixmap.scaledToWidth(max(pixmap.width(), 200), Qt.FastTransformation))
        label.setToolTip(prior_caption(r))
        caption = WrappedLabel(prior_caption(r))
        caption.setAlignment(Qt.AlignHCenter)
        box = as_widget(column(label, caption))
        box.setObjectName(f"prior-beta-{r['beta']:g}")
        self.prior_layout.addWidget(box)
        self.prior_labels.append(box)

    @Slot()
    def _on_compared(self) -> None:
        entries = self.comparison.entries
        if not entries:
            return
        self.recon_view.set_image(self.reconstructions())
        if entries[0]["decoder"].latent_dim >= 1:
            self.comparison.click(0.0, 0.0)   # the centre of the prior, decoded by every β
        self.comparisonReady.emit()

    def reconstructions(self):
        """A picture: validation images (top row) and each β's reconstruction of them (one row per β)."""
        entries = self.comparison.entries
        first = entries[0]
        idx = pick_images(first["split"], first["labels"], RECON_IMAGES)
        rows, labels = [], []
        originals = self._originals(first, idx)
        if originals is not None:
            rows.append(originals)
            labels.append("images")
        for e in entries:
            if len(e["z"]) == len(first["z"]):
                rows.append(e["decoder"].decode(e["z"][idx]))
                labels.append(f"β {e['beta']:g}")
        return labeled_mosaic(rows, labels, cell=52, label_width=60)

    def _originals(self, entry, idx):
        if entry["images"] is not None:
            return entry["images"][idx]
        ds = self.dataset
        if ds is None or not entry["paths"]:
            return None
        where = {p: i for i, p in enumerate(ds.paths)}
        found = [where.get(entry["paths"][i]) for i in idx]
        return None if None in found else ds.images[found]

    @Slot(str)
    def _on_plane_clicked(self, key: str) -> None:
        for i, e in enumerate(self.comparison.entries):
            if e["path"] == key:
                self.comparison.select_run(i)


def prior_caption(run: dict) -> str:
    """A β's prior samples in words: its split of the rate and how many samples fell in holes."""
    text = f"β {run['beta']:g}"
    if "marginal_kl" in run:
        text += (f": rate {run['rate']:.2f} = I(x; z) {run['mutual_info']:.2f} + KL(q(z) ‖ p(z)) "
                 f"{run['marginal_kl']:.2f}")
    holes = run.get("prior_in_hole")
    if holes:
        text += f"; {sum(holes)} of {len(holes)} samples in holes"
    quality = run.get("sample_quality")
    if quality:
        text += f"; coverage {quality['coverage']:.2f}"
    return text


def verdict_html(summary: dict) -> str:
    """The summary's verdict as rich text: the headline in bold, one line per β, collapse in red."""
    lines = summary.get("verdict") or []
    if not lines:
        return ""
    head, rest = lines[0], lines[1:]
    items = []
    for line in rest:
        text = html.escape(line)
        if "posterior collapse" in line:
            text = f"<span style='color:{colors().error}'>{text}</span>"
        elif line.startswith("Below the seed spread"):
            text = f"<i>{text}</i>"
        items.append(text)
    note = ""
    if summary.get("stopped"):
        note = "<br><i>Stopped early: only the β values that finished are compared.</i>"
    return f"<b>{html.escape(head)}</b><br>" + "<br>".join(items) + note


def _minutes(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"

"""`SweepPanel`: enter several β values and train them (same data, seed and settings), one after another
here (`latentlab.sweeps.sweep.Sweep`) or all at once on a Dask cluster (`latentlab.sweeps.cluster.ClusterSweep`: the
"cluster" field), in a worker QThread; each becomes a normal run folder."""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QProgressBar, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from gui.exporting import ask_path, save_csv
from gui.theme import set_role
from gui.widgets import button, check
from gui.threads import Task
from gui.workers import SweepWorker
from latentlab.config import ConfigError
from latentlab.tradeoff import rows_to_csv

__all__ = ["SweepPanel"]

COLUMNS = ["β", "val recon", "val KL", "−ELBO", "active", "status"]


class SweepPanel(QWidget):
    """Give it the settings and data with `set_source(config, dataset)`; press Start."""

    sweepEvent = Signal(object)                 # every engine event of the sweep, in order
    runDone = Signal(str, float, object)        # run folder, β, history (list of dicts)
    sweepFinished = Signal(object)              # list of (β, run folder, Finished/Failed)
    runningChanged = Signal(bool)
    sourceRequested = Signal()                  # just before a start: the owner may refresh set_source()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.config = None
        self.dataset = None
        self.runs_root = None             # the main window sets its runs folder here
        self.task = Task("latentlab-sweep", self)
        self.task.finished.connect(self._on_sweep_finished)
        self.results: list[tuple] = []
        self.rows: dict[float, dict] = {}
        self.current_beta = None
        self.total = 0
        self.epochs = 0
        self._build_fields()
        self._build_buttons()
        self._build_results()
        self._build_layout()
        self._update_buttons()

    def _build_fields(self) -> None:
        """What to sweep: the β values, where the runs train (a cluster), the sweep folder, the design."""
        self.betas_edit = QLineEdit("0.1, 0.5, 1, 2, 4, 10")
        self.betas_edit.setToolTip("β values to train, separated by commas: each is a full run with the same data, "
                                   "seed and settings, so only the KL weight — the rate–distortion trade-off — "
                                   "differs.")
        self.cluster_edit = QLineEdit("")
        self.cluster_edit.setPlaceholderText("this machine (or tcp://HOST:PORT, or a number of local workers)")
        self.cluster_edit.setToolTip("Where the runs train. Empty: here, one after another. tcp://HOST:PORT: one task "
                                     "per run on the Dask cluster whose scheduler is there (workers need latentlab, "
                                     "not this dataset's files). A number N: N local worker processes. The runs' "
                                     "folders are written here either way.")
        self.out_edit = QLineEdit("")
        self.out_edit.setPlaceholderText("folder that will hold one run folder per β")
        self.out_edit.setToolTip("Where the runs go: one normal run folder per β (beta-0.1, beta-1, …) that you "
                                 "can reopen and compare.")
        self.browse_button = button("…", "Choose the sweep folder.", self._browse)
        self.design_check = check("shared start, same random numbers", "Designed to show the trade-off beyond "
                                  "training noise: the smallest β trains about two thirds of the epochs, then each β "
                                  "continues a copy of it with the same data order and random draws, so that β is "
                                  "the only difference between the runs (see docs/lesson.md). Off: every β trains "
                                  "from scratch.", checked=True)
        self._design_tip, self._design_text = self.design_check.toolTip(), self.design_check.text()
        self.cluster_edit.textChanged.connect(self._update_buttons)   # a cluster sweep trains every β from scratch

    def _build_buttons(self) -> None:
        """Start, Stop and the table's CSV export."""
        self.start_button = button("Start sweep", "Train one model per β, one after another, in the background; "
                                   "each finished run appears on the rate–distortion plane.", self.start)
        self.stop_button = button("Stop", "Stop after the current batch: the current run keeps its last finished "
                                  "epoch and the remaining β values are skipped.", self.stop)
        self.stop_button.setEnabled(False)
        self.export_button = button("CSV…", "Save the table (β, validation reconstruction and KL, −ELBO, active "
                                    "units) as CSV.", self._ask_csv)

    def _build_results(self) -> None:
        """The source line, the progress bar, the message line and the table of runs (one row per β)."""
        self.source_label = QLabel("Open a dataset to sweep β over it.")
        self.source_label.setWordWrap(True)
        set_role(self.source_label, "note")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setToolTip("One row per β: validation reconstruction (distortion) and KL (rate) of the last "
                              "finished epoch, their sum (−ELBO) and the active latent units.")

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("β values", self.betas_edit)
        form.addRow("cluster", self.cluster_edit)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(self.browse_button)
        form.addRow("sweep folder", out_row)
        form.addRow("design", self.design_check)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        box = QGroupBox("β sweep")
        box_layout = QVBoxLayout(box)
        box_layout.addWidget(self.source_label)
        box_layout.addLayout(form)
        box_layout.addLayout(buttons)
        box_layout.addWidget(self.progress)
        box_layout.addWidget(self.message)
        box_layout.addWidget(self.table, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(box)

    # -- inputs --------------------------------------------------------------------------------------
    def set_source(self, config, dataset) -> None:
        """The settings (a TrainConfig; its β is replaced per run) and the loaded Dataset."""
        self.config = config
        self.dataset = dataset
        if dataset is not None and config is not None:
            self.source_label.setText(
                f"{len(dataset.images):,} images from {Path(str(config.dataset)).name or 'the dataset'}; "
                f"latent {config.latent_dim}, {config.epochs} epochs, batch {config.batch_size}, "
                f"lr {config.learning_rate:g}, seed {config.seed}.")
        if not self.out_edit.text() and config is not None:
            self.out_edit.setText(str(self.default_out_dir()))
        self._update_buttons()

    def default_out_dir(self) -> Path:
        root = self.runs_root
        if root is None:
            env = os.environ.get("LATENTLAB_RUNS_DIR")
            root = Path(env) if env else Path(tempfile.gettempdir()) / "latentlab-runs"
        return Path(root) / time.strftime("sweep-%Y%m%d-%H%M%S")

    @property
    def is_running(self) -> bool:
        return self.task.running

    def _update_buttons(self) -> None:
        running = self.is_running
        self.start_button.setEnabled(not running and self.config is not None and self.dataset is not None)
        self.stop_button.setEnabled(running)
        for w in (self.betas_edit, self.cluster_edit, self.out_edit, self.browse_button):
            w.setEnabled(not running)
        on_cluster = bool(self.cluster_edit.text().strip())
        self.design_check.setEnabled(not running and not on_cluster)
        self.design_check.setToolTip("The shared start trains on this machine: a sweep on a cluster trains every β "
                                     "from scratch, one task each." if on_cluster else self._design_tip)
        self.design_check.setText("not on a cluster: each β from scratch" if on_cluster else self._design_text)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Sweep folder", self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    # -- running ----------------------------------------------------------------------------------------
    def start(self) -> bool:
        from latentlab.sweeps.lesson import design_for_sweep
        from latentlab.sweeps.sweep import DONE, Sweep, parse_betas

        if self.is_running:
            return False
        self.sourceRequested.emit()      # direct connection: the settings as the form shows them now
        if self.config is None or self.dataset is None:
            return False
        try:
            betas = parse_betas(self.betas_edit.text())
            out = self.out_edit.text().strip()
            if not out:
                raise ConfigError("choose a sweep folder")
            cluster = parse_cluster(self.cluster_edit.text())
            design = None
            if self.design_check.isChecked() and not cluster:   # on a cluster, each β from scratch (one task each)
                design = design_for_sweep(betas, self.config.epochs, self.config.seed)
            else:
                todo = Sweep(self.config, betas, out).check_out_dir()
                if todo and all(action == DONE for _, action in todo):
                    raise ConfigError(f"every run in {out} has all its {self.config.epochs} epochs already: choose "
                                      "a new sweep folder, or more epochs to continue them")
            if cluster:
                from latentlab.sweeps.cluster import require_distributed

                require_distributed("the cluster field")
            worker = SweepWorker(self.config, betas, out, self.dataset, cluster=cluster, design=design)
            if design is not None:
                worker.sweep.check_out_dir()
        except (ConfigError, RuntimeError) as e:
            self.message.setText(str(e))
            set_role(self.message, "error")
            return False
        self.message.setText("")
        set_role(self.message, None)
        self.results = []
        self.rows = {}
        self.table.setRowCount(0)
        for beta in betas:
            self._set_row(beta, status="waiting")
        self.total = len(betas)
        self.epochs = design.warm_epochs + design.epochs if design else self.config.epochs
        self.progress.setRange(0, self.total * self.epochs)
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        worker.event.connect(self._on_event)
        worker.summary.connect(self._on_summary)
        self.task.start(worker)
        self._update_buttons()
        self.runningChanged.emit(True)
        return True

    @Slot()
    def stop(self) -> None:
        if self.task.running:
            self.task.request("stop")
            self.progress.setFormat("stopping after this batch…")

    @Slot(object)
    def _on_event(self, ev) -> None:
        from latentlab.events import EpochEnd, Failed, Finished, RunEvent, SweepStep
        from latentlab.sweeps.lesson import is_shared_start

        if isinstance(ev, RunEvent):
            self._on_run_event(ev)
        elif isinstance(ev, SweepStep) and is_shared_start(ev.run_dir):   # a designed sweep's start
            self.current_beta = None
            for beta in self.rows:
                self._set_row(beta, status="shared start")
            self.progress.setFormat(f"shared start at β = {ev.beta:g}")
        elif isinstance(ev, SweepStep):
            index = ev.index - (ev.total - self.total)      # a designed sweep's shared start comes first
            self.current_beta = ev.beta
            self._set_row(ev.beta, status="training", run_dir=ev.run_dir)
            self.progress.setValue(index * self.epochs)
            self.progress.setFormat(f"β = {ev.beta:g}: run {index + 1} of {self.total}")
        elif isinstance(ev, EpochEnd) and self.current_beta is not None:
            row = ev.history[-1] if ev.history else ev.logs
            self._set_row(self.current_beta, history_row=row, status=f"epoch {ev.epoch}/{self.epochs}")
            done = sum(1 for r in self.rows.values() if r.get("status") in ("finished", "stopped"))
            self.progress.setValue(min(done * self.epochs + ev.epoch, self.progress.maximum()))
        elif isinstance(ev, Finished) and self.current_beta is not None:
            beta = self.current_beta
            self._set_row(beta, status="stopped" if ev.stopped else "finished")
            self.results.append((beta, ev.run_dir, ev))
            if ev.run_dir and ev.history:
                self.runDone.emit(ev.run_dir, float(beta), list(ev.history))
        elif isinstance(ev, Failed):
            if self.current_beta is not None:
                self._set_row(self.current_beta, status="failed")
            self.results.append((self.current_beta, ev.run_dir, ev))
            self.message.setText(ev.message)
            set_role(self.message, "error")
        self.sweepEvent.emit(ev)

    def _on_run_event(self, rev) -> None:
        """An event of one of several runs training at once (on a cluster)."""
        from latentlab.events import BatchEnd, EpochEnd, Failed, Finished, Started

        ev, beta = rev.event, rev.beta
        where = f" on {rev.worker.split('://')[-1]}" if rev.worker else ""
        if isinstance(ev, Started):
            self._set_row(beta, status=f"training{where}", run_dir=rev.run_dir)
        elif isinstance(ev, BatchEnd):
            self._set_row(beta, status=f"epoch {ev.epoch + 1}/{self.epochs}, batch {ev.step}/{ev.steps}{where}")
        elif isinstance(ev, EpochEnd):
            row = ev.history[-1] if ev.history else {"epoch": ev.epoch, **ev.logs}
            self._set_row(beta, history_row=row, status=f"epoch {ev.epoch}/{self.epochs}{where}", run_dir=rev.run_dir)
        elif isinstance(ev, Finished):
            if ev.history:
                self._set_row(beta, history_row=ev.history[-1])
            self._set_row(beta, status="stopped" if ev.stopped else "finished")
            self.results.append((beta, ev.run_dir, ev))
            if ev.run_dir and ev.history:
                self.runDone.emit(ev.run_dir, float(beta), list(ev.history))
        elif isinstance(ev, Failed):
            self._set_row(beta, status="failed")
            self.results.append((beta, ev.run_dir, ev))
            self.message.setText(ev.message)
            set_role(self.message, "error")
        training = sum(1 for r in self.rows.values() if str(r.get("status", "")).startswith(("training", "epoch")))
        self.progress.setValue(min(sum(int(r.get("epochs", 0)) for r in self.rows.values()), self.progress.maximum()))
        self.progress.setFormat(f"{training} of {self.total} runs training on the cluster")

    @Slot(object)
    def _on_summary(self, summary: dict) -> None:
        """A designed sweep's summary (latentlab.sweeps.lesson): its verdict under the progress bar."""
        if summary.get("verdict") and summary.get("runs"):
            self.message.setText(summary["verdict"][0])
            set_role(self.message, None)

    @Slot(object)
    def _on_sweep_finished(self, worker) -> None:
        self.current_beta = None
        done = [r for r in self.rows.values() if r.get("status") == "finished"]
        self.progress.setFormat(f"{len(done)} of {self.total} runs finished")
        if len(done) == self.total:
            self.progress.setValue(self.progress.maximum())
        for beta, row in self.rows.items():
            if row.get("status") in ("waiting", "shared start"):
                self._set_row(beta, status="skipped")
        self._update_buttons()
        self.runningChanged.emit(False)
        self.sweepFinished.emit(list(self.results))

    def shutdown(self) -> None:
        """Stop the sweep and wait for its thread (the window's closeEvent calls this)."""
        self.task.stop_and_wait("stop")

    # -- the table ---------------------------------------------------------------------------------------
    def _set_row(self, beta: float, status: str | None = None, run_dir: str | None = None,
                 history_row: dict | None = None) -> None:
        row = self.rows.setdefault(beta, {"beta": beta})
        if status is not None:
            row["status"] = status
        if run_dir is not None:
            row["path"] = run_dir
        if history_row is not None:
            pre = "val_" if "val_kl_loss" in history_row else ""
            recon = float(history_row.get(f"{pre}reconstruction_loss", math.nan))
            kl = float(history_row.get(f"{pre}kl_loss", math.nan))
            row.update(val_reconstruction=recon, val_kl=kl, val_neg_elbo=recon + kl,
                       active_units=int(history_row.get("active_units", -1)), epochs=int(history_row.get("epoch", 0)))
        order = list(self.rows)
        r = order.index(beta)
        if self.table.rowCount() < len(order):
            self.table.setRowCount(len(order))
        cells = [f"{beta:g}", _num(row.get("val_reconstruction")), _num(row.get("val_kl")),
                 _num(row.get("val_neg_elbo")), str(row.get("active_units", "")), row.get("status", "")]
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter if c < 5 else Qt.AlignLeft | Qt.AlignVCenter)
            self.table.setItem(r, c, item)

    def table_rows(self) -> list[dict]:
        return [dict(r) for r in self.rows.values()]

    def csv_text(self) -> str:
        return rows_to_csv(self.table_rows(), ["beta", "val_reconstruction", "val_kl", "val_neg_elbo",
                                               "active_units", "epochs", "status", "path"])

    def export_csv(self, path) -> bool:
        return save_csv(self.csv_text(), path)

    def _ask_csv(self) -> None:
        path = ask_path(self, "Save the sweep table", "beta-sweep.csv", "csv")
        if path:
            self.export_csv(path)


def parse_cluster(text: str):
    """The cluster field: '' → None (this machine); a whole number N → N local workers; else an address."""
    text = str(text or "").strip()
    if not text:
        return None
    if text.isdigit():
        n = int(text)
        if not 1 <= n <= 1024:
            raise ConfigError(f"a number of local workers must be 1..1024, not {n}")
        return {"workers": n}
    if " " in text:
        raise ConfigError(f"the cluster must be an address like tcp://HOST:PORT or a number of workers, not {text!r}")
    return {"address": text}


def _num(v) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}"

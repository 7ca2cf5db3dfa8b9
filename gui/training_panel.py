"""`TrainingPanel`: the settings of a run (β on a log slider kept in sync with a spin box,
latent size, epochs, batch size, learning rate, KL schedule), Train / Pause / Resume / Stop,
progress with epoch, batch and ETA, and the device that trains."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from latentlab.config import AUTO_HIDDEN_UNITS, HIDDEN_RANGE, TrainConfig

__all__ = ["TrainingPanel", "BETA_MIN", "BETA_MAX"]

BETA_MIN, BETA_MAX = 0.01, 100.0
_SLIDER_STEPS = 400  # 100 steps per decade


def beta_to_slider(beta: float) -> int:
    b = min(max(beta, BETA_MIN), BETA_MAX)
    return int(round((math.log10(b) - math.log10(BETA_MIN)) / 4.0 * _SLIDER_STEPS))


def slider_to_beta(pos: int) -> float:
    value = 10 ** (math.log10(BETA_MIN) + pos / _SLIDER_STEPS * 4.0)
    return float(f"{value:.3g}")


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrainingPanel(QGroupBox):
    trainRequested = Signal()
    pauseRequested = Signal()
    resumeRequested = Signal()
    stopRequested = Signal()
    betaChanged = Signal(float)      # settled value (after 250 ms without change)

    def __init__(self, parent=None):
        super().__init__("Training", parent)
        self.state = "idle"

        self.beta_slider = QSlider(Qt.Horizontal)
        self.beta_slider.setRange(0, _SLIDER_STEPS)
        self.beta_spin = QDoubleSpinBox()
        self.beta_spin.setRange(BETA_MIN, BETA_MAX)
        self.beta_spin.setDecimals(3)
        self.beta_spin.setSingleStep(0.1)
        self.beta_spin.setValue(1.0)
        self.beta_slider.setValue(beta_to_slider(1.0))
        tip = ("β, the weight of the KL term (log scale): higher β pulls the latent codes toward the prior, "
               "a smoother map and blurrier reconstructions; lower β sharper reconstructions and a less "
               "regular map. Can be changed while training.")
        self.beta_slider.setToolTip(tip)
        self.beta_spin.setToolTip(tip)
        self.beta_slider.valueChanged.connect(self._on_beta_slider)
        self.beta_spin.valueChanged.connect(self._on_beta_spin)
        self._beta_timer = QTimer(self)
        self._beta_timer.setSingleShot(True)
        self._beta_timer.setInterval(250)
        self._beta_timer.timeout.connect(lambda: self.betaChanged.emit(self.beta_spin.value()))

        self.latent_spin = QSpinBox()
        self.latent_spin.setRange(1, 64)
        self.latent_spin.setValue(2)
        self.latent_spin.setToolTip("Latent size: more dimensions let reconstructions get sharper at the cost "
                                    "of more KL; 2 maps the latent space directly.")
        self.hidden_spin = QSpinBox()
        self.hidden_spin.setRange(*HIDDEN_RANGE)
        self.hidden_spin.setValue(TrainConfig.hidden_units)
        self.hidden_spin.setSpecialValueText(f"auto ({AUTO_HIDDEN_UNITS})")
        self.hidden_spin.setToolTip(f"Width of the encoder's dense layer. auto = {AUTO_HIDDEN_UNITS} (at least twice "
                                    "the latent size); 16 is the classic Keras recipe, which learns several times "
                                    "slower.")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 10_000)
        self.epochs_spin.setValue(10)
        self.epochs_spin.setToolTip("Epochs: passes over the training images; more lets both reconstruction "
                                    "and KL settle.")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 4096)
        self.batch_spin.setValue(TrainConfig.batch_size)
        self.batch_spin.setToolTip("Batch size: images per gradient step; smaller batches give noisier, more "
                                   "frequent updates of the reconstruction–KL balance.")
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(0.00001, 0.1)
        self.lr_spin.setSingleStep(0.0001)
        self.lr_spin.setValue(0.001)
        self.lr_spin.setToolTip("Learning rate of Adam: higher moves reconstruction and KL faster but can "
                                "make training unstable.")
        self.schedule_combo = QComboBox()
        self.schedule_combo.addItem("constant", "constant")
        self.schedule_combo.addItem("linear warm-up", "linear")
        self.schedule_combo.addItem("cyclical", "cyclical")
        self.schedule_combo.setToolTip("KL schedule: constant applies β from the start; linear warm-up ramps "
                                       "β up so reconstructions form first; cyclical repeats the ramp to "
                                       "avoid posterior collapse.")
        self.warmup_spin = QSpinBox()
        self.warmup_spin.setRange(1, 1000)
        self.warmup_spin.setValue(5)
        self.warmup_spin.setToolTip("Epochs the warm-up ramp (or one cycle) lasts before the full β weighs "
                                    "the KL term.")
        self.schedule_combo.currentIndexChanged.connect(self._update_warmup)

        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train a new model on the dataset with these settings (Ctrl+T).")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause training after the current batch (Space); press again to resume.")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current batch, keeping the last finished epoch (Esc).")
        self.train_button.clicked.connect(self.trainRequested)
        self.pause_button.clicked.connect(self._on_pause_clicked)
        self.stop_button.clicked.connect(self.stopRequested)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("not training")
        self.progress.setTextVisible(True)
        self.detail = QLabel("")
        self.detail.setStyleSheet("color: #555;")
        self.device_label = QLabel("Device: –")
        self.device_label.setToolTip("Where TensorFlow trains: the CPU or a GPU.")

        beta_row = QHBoxLayout()
        beta_row.addWidget(self.beta_slider, 1)
        beta_row.addWidget(self.beta_spin)
        beta_widget = QWidget()
        beta_widget.setLayout(beta_row)
        beta_row.setContentsMargins(0, 0, 0, 0)
        schedule_row = QHBoxLayout()
        schedule_row.setContentsMargins(0, 0, 0, 0)
        schedule_row.addWidget(self.schedule_combo, 1)
        schedule_row.addWidget(QLabel("over"))
        schedule_row.addWidget(self.warmup_spin)
        schedule_widget = QWidget()
        schedule_widget.setLayout(schedule_row)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setVerticalSpacing(3)
        form.addRow("β (KL weight):", beta_widget)
        form.addRow("Latent size:", self.latent_spin)
        form.addRow("Hidden units:", self.hidden_spin)
        form.addRow("Epochs:", self.epochs_spin)
        form.addRow("Batch size:", self.batch_spin)
        form.addRow("Learning rate:", self.lr_spin)
        form.addRow("KL schedule:", schedule_widget)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.setSpacing(4)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.detail)
        layout.addWidget(self.device_label)
        self._update_warmup()
        self.set_state("idle", can_train=False)

    # -- β ---------------------------------------------------------------------------------------
    @Slot(int)
    def _on_beta_slider(self, pos: int) -> None:
        beta = slider_to_beta(pos)
        if beta_to_slider(self.beta_spin.value()) != pos:
            self.beta_spin.blockSignals(True)
            self.beta_spin.setValue(beta)
            self.beta_spin.blockSignals(False)
            self._beta_timer.start()

    @Slot(float)
    def _on_beta_spin(self, beta: float) -> None:
        self.beta_slider.blockSignals(True)
        self.beta_slider.setValue(beta_to_slider(beta))
        self.beta_slider.blockSignals(False)
        self._beta_timer.start()

    def beta(self) -> float:
        return float(self.beta_spin.value())

    def set_beta(self, beta: float) -> None:
        self.beta_spin.setValue(beta)

    @Slot()
    def _update_warmup(self) -> None:
        self.warmup_spin.setEnabled(self.schedule_combo.currentData() != "constant"
                                    and self.state == "idle")

    # -- settings in and out ------------------------------------------------------------------------
    def settings(self) -> dict:
        """The form as TrainConfig fields."""
        return {"beta": self.beta(), "latent_dim": self.latent_spin.value(),
                "hidden_units": self.hidden_spin.value(), "epochs": self.epochs_spin.value(),
                "batch_size": self.batch_spin.value(), "learning_rate": float(self.lr_spin.value()),
                "kl_schedule": self.schedule_combo.currentData(), "warmup_epochs": self.warmup_spin.value()}

    def apply_settings(self, **kw) -> None:
        """Fill the form from TrainConfig fields (unknown keys are ignored; values are clamped)."""
        if "beta" in kw:
            self.beta_spin.setValue(float(kw["beta"]))
        if "latent_dim" in kw:
            self.latent_spin.setValue(int(kw["latent_dim"]))
        if "hidden_units" in kw:
            self.hidden_spin.setValue(int(kw["hidden_units"]))
        if "epochs" in kw:
            self.epochs_spin.setValue(int(kw["epochs"]))
        if "batch_size" in kw:
            self.batch_spin.setValue(int(kw["batch_size"]))
        if "learning_rate" in kw:
            self.lr_spin.setValue(float(kw["learning_rate"]))
        if "kl_schedule" in kw:
            i = self.schedule_combo.findData(kw["kl_schedule"])
            if i >= 0:
                self.schedule_combo.setCurrentIndex(i)
        if "warmup_epochs" in kw:
            self.warmup_spin.setValue(int(kw["warmup_epochs"]))

    # -- state ---------------------------------------------------------------------------------------
    def set_state(self, state: str, can_train: bool = True) -> None:
        """idle | starting | training | paused | stopping."""
        self.state = state
        idle = state == "idle"
        for w in (self.latent_spin, self.hidden_spin, self.epochs_spin, self.batch_spin, self.lr_spin,
                  self.schedule_combo):
            w.setEnabled(idle)
        self._update_warmup()
        self.train_button.setEnabled(idle and can_train)
        self.pause_button.setEnabled(state in ("training", "paused"))
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.stop_button.setEnabled(state in ("starting", "training", "paused"))
        if state == "starting":
            self.progress.setRange(0, 0)
            self.progress.setFormat("preparing…")
        elif state == "stopping":
            self.progress.setFormat("stopping after this batch…")
        elif state == "paused":
            self.progress.setFormat(self.progress.format().split(" (paused)")[0] + " (paused)")

    @Slot()
    def _on_pause_clicked(self) -> None:
        if self.state == "paused":
            self.resumeRequested.emit()
        elif self.state == "training":
            self.pauseRequested.emit()

    def set_device(self, device: str) -> None:
        self.device_label.setText(f"Device: {device}")

    def show_progress(self, epoch: int, epochs: int, step: int, steps: int, eta: float,
                      images_per_second: float) -> None:
        """``epoch`` 0-based running epoch, ``step`` 1-based."""
        total = max(epochs * steps, 1)
        self.progress.setRange(0, total)
        self.progress.setValue(min(epoch * steps + step, total))
        text = f"epoch {epoch + 1}/{epochs} · batch {step}/{steps} · ETA {format_eta(eta)}"
        if self.state == "paused":
            text += " (paused)"
        self.progress.setFormat(text)
        self.detail.setText(f"{images_per_second:,.0f} images/s")

    def show_finished(self, text: str, full: bool) -> None:
        if full:
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
        self.progress.setFormat(text)

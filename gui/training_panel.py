"""`TrainingPanel`: the settings of a run (β on a log slider kept in sync with a spin box,
latent size, epochs, batch size, learning rate, KL schedule), Train / Pause / Resume / Stop,
progress with epoch, batch and ETA, and the device that trains."""

from __future__ import annotations

import math

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QAbstractSpinBox, QFormLayout, QGroupBox, QLabel, QProgressBar

from gui.beta_slider import BetaSlider, beta_to_slider, slider_to_beta

from gui.training_state import TrainingState
from gui.widgets import SciSpinBox, as_widget, button, column, combo, double_spin, make_timer, note_label, row, spin
from latentlab.config import (AUTO_HIDDEN_UNITS, BATCH_RANGE, BETA_RANGE, BETA_SLIDER_RANGE, EPOCHS_RANGE,
                              CAPACITY_RANGE, FREE_BITS_RANGE, HIDDEN_RANGE, LATENT_RANGE, LR_RANGE, WARMUP_RANGE,
                              TrainConfig)

__all__ = ["TrainingPanel", "BETA_MIN", "BETA_MAX"]

# The ends of the β slider (log scale, finest around β = 1: gui/beta_slider.py). The spin box beside it takes
# all of BETA_RANGE and steps by about a tenth of its value (1 → 1.1 → 1.2 …, 10 → 11); a β beyond the
# slider's ends puts the slider at that end while the spin box shows the true value.
BETA_MIN, BETA_MAX = BETA_SLIDER_RANGE


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrainingPanel(QGroupBox):
    trainRequested = Signal()
    continueRequested = Signal()     # train the run shown further (up to Epochs in all)
    pauseRequested = Signal()
    resumeRequested = Signal()
    stopRequested = Signal()
    betaChanged = Signal(float)      # settled value (after 250 ms without change)

    def __init__(self, parent=None):
        super().__init__("Training", parent)
        self.state = TrainingState.IDLE
        self._build_beta()
        self._build_model_fields()
        self._build_schedule()
        self._build_strategy()
        self._build_buttons()
        form = self._build_form()
        layout = column(form, row((self.train_button, 1), (self.continue_button, 2)),
                        row(self.pause_button, self.stop_button), self.progress,
                        self.detail, self.device_label, parent=self, margins=None)
        layout.setSpacing(4)
        self._update_warmup()
        self.set_state(TrainingState.IDLE, can_train=False)

    def _build_beta(self) -> None:
        """β's spin box and its log-scale slider, kept in step; ``betaChanged`` once the value settles."""
        tip = ("β, the weight of the KL term (log scale): higher β pulls the latent codes toward the prior, "
               "a smoother map and blurrier reconstructions; lower β sharper reconstructions and a less "
               "regular map. Can be changed while training.")
        self.beta_slider = BetaSlider()
        self.beta_slider.setToolTip(tip + " Keys: ← → by 5 %, PageUp/PageDown by 50 %, Home/End to the ends.")
        self.beta_spin = double_spin(BETA_RANGE, 1.0, tip, decimals=3, step=0.1)
        self.beta_spin.setStepType(QAbstractSpinBox.AdaptiveDecimalStepType)   # 1 → 1.1 → 1.2 …, 10 → 11
        self.beta_slider.stepRequested.connect(lambda f: self.beta_spin.setValue(self._stepped_beta(f)))
        self.beta_slider.endRequested.connect(self.beta_spin.setValue)
        self.beta_slider.valueChanged.connect(self._on_beta_slider)
        self.beta_spin.valueChanged.connect(self._on_beta_spin)
        self._beta_timer = make_timer(self, 250, lambda: self.betaChanged.emit(self.beta_spin.value()))

    def _build_model_fields(self) -> None:
        """The model's and the fit's settings: latent size, hidden units, epochs, batch size, learning rate."""
        self.latent_spin = spin(LATENT_RANGE, 2, "Latent size: more dimensions let reconstructions get sharper at "
                                "the cost of more KL; 2 maps the latent space directly.")
        self.hidden_spin = spin(HIDDEN_RANGE, TrainConfig.hidden_units,
                                f"Width of the encoder's dense layer. auto = {AUTO_HIDDEN_UNITS} (at least twice "
                                "the latent size); 16 is the classic Keras recipe, which learns several times "
                                "slower.")
        self.hidden_spin.setSpecialValueText(f"auto ({AUTO_HIDDEN_UNITS})")
        self.epochs_spin = spin(EPOCHS_RANGE, 10, "Epochs: passes over the training images; more lets both "
                                "reconstruction and KL settle.")
        self.batch_spin = spin(BATCH_RANGE, TrainConfig.batch_size, "Batch size: images per gradient step; smaller "
                               "batches give noisier, more frequent updates of the reconstruction–KL balance.")
        self.lr_spin = SciSpinBox()      # shows 1e-06 as it is: a run's rate is never rounded away
        self.lr_spin.setRange(*LR_RANGE)
        self.lr_spin.setValue(0.001)
        self.lr_spin.setToolTip("Learning rate of Adam: higher moves reconstruction and KL faster but can "
                                "make training unstable.")

    def _build_schedule(self) -> None:
        """The KL schedule and its parameters (warm-up epochs, free bits λ, capacity C)."""
        self.schedule_combo = combo([("constant", "constant"), ("linear warm-up", "linear"), ("cyclical", "cyclical"),
                                     ("free bits (KL floor per dimension)", "free-bits"),
                                     ("capacity β·|KL − C|", "capacity")],
                                    "KL schedule: constant applies β from the start; linear warm-up ramps "
                                    "β up so reconstructions form first; cyclical repeats the ramp to "
                                    "avoid posterior collapse. Free bits: a dimension's KL below λ nats costs "
                                    "nothing (Kingma et al. 2016), so dimensions stay in use; capacity: the KL "
                                    "is steered to C, which rises from 0 over the epochs given (Burgess et al. "
                                    "2018).")
        self.free_bits_spin = double_spin(FREE_BITS_RANGE, TrainConfig.free_bits, "Free bits: the KL floor λ of "
                                          "each latent dimension (nats); below it a dimension's KL costs nothing.",
                                          decimals=2, step=0.1)
        self.capacity_spin = double_spin(CAPACITY_RANGE, TrainConfig.capacity, "Capacity: the KL C (nats per "
                                         "image) the objective steers towards, reached after the epochs given.",
                                         decimals=1, step=1.0)
        self.warmup_spin = spin(WARMUP_RANGE, 5, "Epochs the warm-up ramp (or one cycle) lasts before the full β "
                                "weighs the KL term.")
        self.schedule_combo.currentIndexChanged.connect(self._update_warmup)

    def _build_strategy(self) -> None:
        """One GPU or all of them (shown when TensorFlow sees more than one)."""
        self.gpu_count = None            # as TensorFlow reports it (set_gpu_count), once it is imported
        self.strategy_combo = combo([("one GPU", "default"), ("all GPUs (mirrored)", "mirrored")],
                                    "Train on one GPU, or on every visible GPU at once (TensorFlow's "
                                    "MirroredStrategy: each GPU takes a slice of the batch, which stays the "
                                    "batch size above). Shown when more than one GPU is visible.")

    def _build_buttons(self) -> None:
        """Train, Continue training, Pause, Stop; the progress bar, its detail line and the device."""
        self.train_button = button("Train", "Train a new model on the dataset with these settings (Ctrl+T).",
                                   self.trainRequested)
        self.continue_button = button("Continue training", "Train the run shown further, from its last epoch up "
                                      "to Epochs in all (with this β, batch size and learning rate), as "
                                      "`latentlab train --resume` does.", self.continueRequested)
        self.continue_button.hide()
        self.pause_button = button("Pause", "Pause training after the current batch (Space); press again to "
                                   "resume.", self._on_pause_clicked)
        self.stop_button = button("Stop", "Stop after the current batch, keeping the last finished epoch (Esc).",
                                  self.stopRequested)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("not training")
        self.progress.setTextVisible(True)
        self.detail = note_label()
        self.device_label = QLabel("Device: –")
        self.device_label.setToolTip("Where TensorFlow trains: the CPU or a GPU.")

    def _build_form(self) -> QFormLayout:
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setVerticalSpacing(3)
        form.addRow("β (KL weight):", self.beta_spin)
        form.addRow(self.beta_slider)       # the form's full width: finer drags
        form.addRow("Latent size:", self.latent_spin)
        form.addRow("Hidden units:", self.hidden_spin)
        form.addRow("Epochs:", self.epochs_spin)
        form.addRow("Batch size:", self.batch_spin)
        form.addRow("Learning rate:", self.lr_spin)
        form.addRow("KL schedule:", as_widget(row((self.schedule_combo, 1), "over", self.warmup_spin)))
        form.addRow("KL floor / capacity:",
                    as_widget(row("λ", (self.free_bits_spin, 1), "C", (self.capacity_spin, 1))))
        form.addRow("Devices:", self.strategy_combo)
        self._form = form
        form.setRowVisible(self.strategy_combo, False)
        return form

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

    def _stepped_beta(self, factor: float) -> float:
        """The spin box's β times ``factor``, to three significant digits, at least one step of the
        spin box away (so that a step always moves)."""
        old = self.beta_spin.value()
        new = float(f"{max(old, 0.01) * factor:.3g}")
        unit = 10 ** -self.beta_spin.decimals()
        if abs(new - old) < unit:
            new = old + unit if factor > 1 else old - unit
        return new

    def beta(self) -> float:
        return float(self.beta_spin.value())

    def set_beta(self, beta: float) -> None:
        self.beta_spin.setValue(beta)

    @Slot()
    def _update_warmup(self) -> None:
        kind = self.schedule_combo.currentData()
        idle = self.state == TrainingState.IDLE
        self.warmup_spin.setEnabled(kind not in ("constant", "free-bits") and idle)
        self.free_bits_spin.setEnabled(kind == "free-bits" and idle)
        self.capacity_spin.setEnabled(kind == "capacity" and idle)

    # -- settings in and out ------------------------------------------------------------------------
    def _spins(self) -> dict:
        """The spin boxes by TrainConfig field, with the type of their value."""
        return {"beta": (self.beta_spin, float), "latent_dim": (self.latent_spin, int),
                "hidden_units": (self.hidden_spin, int), "epochs": (self.epochs_spin, int),
                "batch_size": (self.batch_spin, int), "learning_rate": (self.lr_spin, float),
                "warmup_epochs": (self.warmup_spin, int), "free_bits": (self.free_bits_spin, float),
                "capacity": (self.capacity_spin, float)}

    def settings(self) -> dict:
        """The form as TrainConfig fields."""
        fields = {key: kind(box.value()) for key, (box, kind) in self._spins().items()}
        return {**fields, "kl_schedule": self.schedule_combo.currentData()}

    def apply_settings(self, **kw) -> None:
        """Fill the form from TrainConfig fields (unknown keys are ignored). Every spin box takes the
        whole range latentlab.config allows, so a run's settings show as they are (β = 500,
        50,000 epochs, a learning rate of 1e-6); only values no run may have are clamped."""
        for key, (box, kind) in self._spins().items():
            if key in kw:
                box.setValue(kind(kw[key]))
        if "kl_schedule" in kw:
            i = self.schedule_combo.findData(kw["kl_schedule"])
            if i >= 0:
                self.schedule_combo.setCurrentIndex(i)

    # -- state ---------------------------------------------------------------------------------------
    def set_state(self, state: TrainingState, can_train: bool = True, can_continue: bool = False) -> None:
        """idle | starting | training | paused | stopping; ``can_continue``: a run is shown that Continue
        training can train further (then Train reads "New run")."""
        self.state = state
        idle = state == TrainingState.IDLE
        for w in (self.latent_spin, self.hidden_spin, self.epochs_spin, self.batch_spin, self.lr_spin,
                  self.schedule_combo):
            w.setEnabled(idle)
        self._update_warmup()
        self.train_button.setEnabled(idle and can_train)
        self.continue_button.setVisible(can_continue)
        self.continue_button.setEnabled(idle and can_continue)
        self.train_button.setText("New run" if can_continue else "Train")
        self.pause_button.setEnabled(state in (TrainingState.TRAINING, TrainingState.PAUSED))
        self.pause_button.setText("Resume" if state == TrainingState.PAUSED else "Pause")
        self.stop_button.setEnabled(state in (TrainingState.STARTING, TrainingState.TRAINING, TrainingState.PAUSED))
        if state == TrainingState.STARTING:
            self.progress.setRange(0, 0)
            self.progress.setFormat("preparing…")
        elif state == TrainingState.STOPPING:
            self.progress.setFormat("stopping after this batch…")
        elif state == TrainingState.PAUSED:
            self.progress.setFormat(self.progress.format().split(" (paused)")[0] + " (paused)")

    @Slot()
    def _on_pause_clicked(self) -> None:
        if self.state == TrainingState.PAUSED:
            self.resumeRequested.emit()
        elif self.state == TrainingState.TRAINING:
            self.pauseRequested.emit()

    @Slot(int)
    def set_gpu_count(self, n: int) -> None:
        """Offer the mirrored strategy when TensorFlow sees more than one GPU."""
        self.gpu_count = int(n)
        self.strategy_combo.setItemText(1, f"all {n} GPUs (mirrored)")
        if n < 2:
            self.strategy_combo.setCurrentIndex(0)
        self._form.setRowVisible(self.strategy_combo, n > 1)

    def strategy(self) -> str:
        """'default' (one device) or 'mirrored' (every visible GPU), as chosen."""
        return self.strategy_combo.currentData() if self._form.isRowVisible(self.strategy_combo) else "default"

    def set_device(self, device: str) -> None:
        self.device_label.setText(f"Device: {device}")

    @Slot(object)
    def on_train_event(self, ev) -> None:
        """A training's start (device, length) and end (its message) as the form shows them."""
        from latentlab.events import Failed, Finished, Started

        if isinstance(ev, Started):
            self.set_device(ev.device)
            self.progress.setRange(0, max(ev.epochs * ev.steps_per_epoch, 1))
        elif isinstance(ev, Finished):
            self.show_finished(ev.message, full=not ev.stopped)
        elif isinstance(ev, Failed):
            self.show_finished("failed", full=False)

    def config_for(self, dataset):
        """The TrainConfig these settings describe for ``dataset`` (its folder, image size and colour);
        ConfigError (one line) when a setting is invalid."""
        from latentlab.config import TrainConfig

        h, w, _ = dataset.image_shape
        report = getattr(dataset, "report", None)
        loaded = {"background": report.background, "fit": report.fit} if report is not None else {}
        return TrainConfig(dataset=str(dataset.root), image_size=[h, w], color=dataset.color, **loaded,
                           **self.settings()).validate()

    def show_progress(self, epoch: int, epochs: int, step: int, steps: int, eta: float,
                      images_per_second: float) -> None:
        """``epoch`` 0-based running epoch, ``step`` 1-based."""
        total = max(epochs * steps, 1)
        self.progress.setRange(0, total)
        self.progress.setValue(min(epoch * steps + step, total))
        text = f"epoch {epoch + 1}/{epochs} · batch {step}/{steps} · ETA {format_eta(eta)}"
        if self.state == TrainingState.PAUSED:
            text += " (paused)"
        self.progress.setFormat(text)
        self.detail.setText(f"{images_per_second:,.0f} images/s")

    def show_opened(self, text: str) -> None:
        """A run opened from disk: the progress bar and the speed describe it, not the last training here."""
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat(text)
        self.detail.setText("")

    def show_finished(self, text: str, full: bool) -> None:
        if full or self.progress.maximum() == 0:   # 0: still the busy bar of "preparing…" (failed at start)
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if full else 0)
        self.progress.setFormat(text)

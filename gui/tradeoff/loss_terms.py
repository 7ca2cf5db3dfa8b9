"""`LossTermsPanel`: the β-VAE objective written out with the current β, the live value of each of its
terms (training running means per batch, validation values per epoch), and, side by side after each
epoch, −ELBO and −log p(x) estimated by importance sampling on the same validation images (the engine's
per-epoch estimate, `latentlab.training.callbacks.LikelihoodEstimate`): how far below log p(x) the ELBO sits."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel

from gui.exporting import export_button, save_csv, save_widget_png
from gui.theme import colors
from gui.widgets import column, note_label, row
from latentlab.tradeoff import LossTerms, loss_terms, rows_to_csv

__all__ = ["LossTermsPanel", "BETA_TIP"]

BETA_TIP = ("β weighs the KL term: raising it pulls every q(z|x) towards the prior — a smoother, more "
            "regular latent space with blurrier reconstructions; lowering it gives sharper images and a "
            "less regular latent space.")

_ROWS = [
    ("log_likelihood", "E<sub>q</sub>[log p(x|z)]",
     "Expected log-likelihood of the image under the decoder (minus the reconstruction loss): closer to 0 "
     "means sharper reconstructions; lowering β lets it rise."),
    ("kl", "KL(q(z|x) ‖ p(z))",
     "The rate: nats the encoder spends describing each image; raising β squeezes it towards 0 and the "
     "latent space towards the prior."),
    ("weighted_kl", "β · KL",
     "The KL as the objective counts it: the price β puts on every nat of information in z."),
    ("objective", "L = E<sub>q</sub>[log p(x|z)] − β·KL",
     "The β-weighted objective training maximises (the loss curve shows −L)."),
    ("neg_elbo", "−ELBO = recon + KL",
     "Negative ELBO (β = 1), an upper bound on −log p(x): the one number comparable across β values."),
]


BOUND_TIP = ("The ELBO is a lower bound on log p(x), the log-likelihood of an image. Importance sampling with K "
             "draws from q(z|x) (the IWAE bound) gives an estimate of −log p(x) that sits at or below −ELBO and "
             "tightens as K grows; the gap is how much the bound gives away. Estimated after each epoch on the "
             "same validation images each time, with a small K while training; `latentlab eval RUN` estimates "
             "with K = 100 on all of them.")


SPLIT_TIP = ("ELBO surgery (Hoffman & Johnson 2016): the rate, the mean KL(q(z|x) ‖ p(z)), is I(x; z) + "
             "KL(q(z) ‖ p(z)). I(x; z) is what a code says about which image it came from (at most log N for N "
             "images); KL(q(z) ‖ p(z)) is how far the codes as a whole, q(z) = the mixture of every q(z|x), sit "
             "from the prior: codes the prior never draws. Holes: the share of the prior's mass where q(z) is "
             "under a tenth of p(z) — prior samples there decode to nothing like the data. Estimated after each "
             "epoch on the validation codes (latentlab.surgery).")


def _fmt(v: float) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:,.2f}"


class LossTermsPanel(QGroupBox):
    """Call `set_beta` when β changes, `show_batch(logs, beta)` per batch and
    `show_epoch(logs, beta)` per epoch (logs as in the engine's events)."""

    def __init__(self, parent=None):
        super().__init__("The loss, term by term", parent)
        self.beta = 1.0
        self.train: LossTerms | None = None
        self.val: LossTerms | None = None
        self.rows: list[dict] = []      # one per epoch, for CSV

        self.formula = QLabel()
        self.formula.setTextFormat(Qt.RichText)
        self.formula.setWordWrap(True)
        self.formula.setToolTip(BETA_TIP)
        grid = QGridLayout()
        grid.addWidget(QLabel("<b>term</b>"), 0, 0)
        head_train = QLabel("<b>train</b>")
        head_train.setToolTip("Running mean over the batches of the current epoch.")
        head_val = QLabel("<b>validation</b>")
        head_val.setToolTip("Mean over the held-out images at the end of the last epoch.")
        grid.addWidget(head_train, 0, 1, Qt.AlignRight)
        grid.addWidget(head_val, 0, 2, Qt.AlignRight)
        self.value_labels: dict[tuple[str, str], QLabel] = {}
        for r, (key, text, tip) in enumerate(_ROWS, start=1):
            name = QLabel(text)
            name.setTextFormat(Qt.RichText)
            name.setToolTip(tip)
            grid.addWidget(name, r, 0)
            for c, split in enumerate(("train", "val"), start=1):
                lab = QLabel("—")
                lab.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
                lab.setToolTip(tip)
                lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
                grid.addWidget(lab, r, c)
                self.value_labels[(key, split)] = lab
        grid.setColumnStretch(0, 1)
        self.bound = QLabel()
        self.bound.setTextFormat(Qt.RichText)
        self.bound.setWordWrap(True)
        self.bound.setToolTip(BOUND_TIP)
        self.bound.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.likelihood: dict | None = None    # the last epoch's estimate: neg_elbo, neg_log_likelihood, K, images
        self.split = QLabel()
        self.split.setTextFormat(Qt.RichText)
        self.split.setWordWrap(True)
        self.split.setToolTip(SPLIT_TIP)
        self.split.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.rate_split: dict | None = None    # the last epoch's: mutual_info, marginal_kl, hole_fraction
        self.note = note_label(wrap=True)
        self.export_csv_button = export_button(
            self, "csv", "Save the loss terms", "loss-terms.csv", self.export_csv,
            "Save each epoch's terms (β, reconstruction, KL, β·KL, L, −ELBO) as CSV.")
        self.export_png_button = export_button(self, "png", "Save the loss panel", "loss-terms.png", self.export_png,
                                               "Save this panel as a PNG picture.")
        column(self.formula, grid, self.bound, self.split,
               row((self.note, 1), self.export_csv_button, self.export_png_button),
               parent=self, margins=None)
        self.set_beta(1.0)

    # -- inputs ---------------------------------------------------------------------------------
    @Slot(float)
    def set_beta(self, beta: float) -> None:
        self.beta = float(beta)
        b = f"{self.beta:g}"
        self.formula.setText(
            f"<p style='font-size:13pt'>L(x) = E<sub>q(z|x)</sub>[log p(x|z)] − <b style='color:{colors().accent}'>{b}</b>"
            f" · KL(q(z|x) ‖ p(z))</p><p style='color:{colors().note}'>β = {b}: "
            + ("above 1, each nat of rate costs more than it buys in reconstruction — a smoother latent space "
               "closer to the prior, blurrier images." if self.beta > 1 else
               "below 1, reconstruction is worth more than rate — sharper images, a less regular latent "
               "space." if self.beta < 1 else "the true ELBO: rate and distortion weigh the same.")
            + "</p>")
        self._refresh()

    def show_batch(self, logs: dict, beta: float) -> None:
        terms = loss_terms(logs, beta)
        if terms is not None:
            self.train = terms
            self._refresh()

    def show_epoch(self, logs: dict, beta: float, epoch: int | None = None) -> None:
        """``logs``: the epoch's history row (or its logs); with ``val_neg_log_likelihood`` and
        ``val_neg_elbo_subset`` (and ``likelihood_samples`` / ``likelihood_images``) the bound is shown too."""
        self.train = loss_terms(logs, beta) or self.train
        self.val = loss_terms(logs, beta, prefix="val_")
        self.likelihood = None
        self.rate_split = None
        if "val_marginal_kl" in logs and "val_mutual_info" in logs:
            self.rate_split = {"mutual_info": float(logs["val_mutual_info"]),
                               "marginal_kl": float(logs["val_marginal_kl"]),
                               "hole_fraction": float(logs.get("val_hole_fraction", math.nan))}
        if "val_neg_log_likelihood" in logs and "val_neg_elbo_subset" in logs:
            self.likelihood = {"neg_elbo": float(logs["val_neg_elbo_subset"]),
                               "neg_log_likelihood": float(logs["val_neg_log_likelihood"]),
                               "samples": logs.get("likelihood_samples"), "images": logs.get("likelihood_images")}
        row = {"epoch": epoch if epoch is not None else len(self.rows) + 1, "beta": float(beta)}
        for split, t in (("train", self.train), ("val", self.val)):
            if t is not None:
                row.update({f"{split}_reconstruction": t.reconstruction, f"{split}_kl": t.kl,
                            f"{split}_beta_kl": t.weighted_kl, f"{split}_objective": t.objective,
                            f"{split}_neg_elbo": t.neg_elbo})
        if self.likelihood is not None:
            lk = self.likelihood
            row.update({"val_subset_neg_elbo": lk["neg_elbo"], "val_neg_log_likelihood": lk["neg_log_likelihood"],
                        "likelihood_samples": lk["samples"], "likelihood_images": lk["images"]})
        if self.rate_split is not None:
            row.update({f"val_{k}": v for k, v in self.rate_split.items()})
        self.rows.append(row)
        self._refresh()

    def set_history(self, history: list[dict]) -> None:
        """Show a finished run: its last epoch, with the CSV rows of all epochs."""
        self.clear()
        for epoch_row in history:
            self.show_epoch(epoch_row, epoch_row.get("beta", self.beta), epoch_row.get("epoch"))
        if history:
            self.set_beta(history[-1].get("beta", self.beta))

    def clear(self) -> None:
        self.train = self.val = self.likelihood = self.rate_split = None
        self.rows = []
        self._refresh()

    # -- outputs --------------------------------------------------------------------------------
    def value(self, key: str, split: str = "train") -> float | None:
        t = self.train if split == "train" else self.val
        return None if t is None else getattr(t, key)

    def _refresh(self) -> None:
        for (key, split), lab in self.value_labels.items():
            lab.setText(_fmt(self.value(key, split)))
        self.bound.setText(self._bound_text())
        self.split.setText(self._split_text())
        t = self.val or self.train
        if t is None:
            self.note.setText("Values appear as training runs (nats per image).")
        else:
            share = t.weighted_kl / t.loss if t.loss > 0 else float("nan")
            self.note.setText(f"nats per image; β·KL is {share:.0%} of the loss." if math.isfinite(share)
                              else "nats per image")

    def _bound_text(self) -> str:
        lk = self.likelihood
        if lk is None:
            return (f"<p style='color:{colors().note}'>−ELBO and −log p(x) appear side by side after each epoch "
                    "(with validation images).</p>")
        gap = lk["neg_elbo"] - lk["neg_log_likelihood"]
        k, n = lk.get("samples"), lk.get("images")
        where = (f"On {int(n):,} of the validation images, K = {int(k)} samples each" if k and n
                 else "On a subset of the validation images")
        return (f"<p style='color:{colors().note}'>{where}, after each epoch:</p>"
                f"<table cellspacing='0' cellpadding='2'><tr><td><b>−ELBO</b></td>"
                f"<td align='right' style='font-size:13pt'>&nbsp;{_fmt(lk['neg_elbo'])}</td>"
                f"<td>&nbsp;&nbsp;≥&nbsp;&nbsp;</td><td><b>−log p(x)</b></td>"
                f"<td align='right' style='font-size:13pt'>&nbsp;{_fmt(lk['neg_log_likelihood'])}</td>"
                f"<td>&nbsp;&nbsp;gap <b>{_fmt(gap)}</b> nats</td></tr></table>"
                f"<p style='color:{colors().note}'>−log p(x) by importance sampling (the IWAE bound): the ELBO sits "
                f"{_fmt(gap)} nats below log p(x). <i>latentlab eval</i> uses K = 100 on all of them.</p>")

    def _split_text(self) -> str:
        sp, val = self.rate_split, self.val
        if sp is None:
            return ""
        rate = sp["mutual_info"] + sp["marginal_kl"] if val is None else val.kl
        holes = sp["hole_fraction"]
        hole_text = (f"; <b>{holes:.0%}</b> of the prior's mass lies in holes" if math.isfinite(holes) else "")
        return (f"<p style='color:{colors().note}'>What the rate buys: of <b>{_fmt(rate)}</b> nats, "
                f"<b>{_fmt(sp['mutual_info'])}</b> say which image it is (I(x; z)) and "
                f"<b>{_fmt(sp['marginal_kl'])}</b> are codes the prior never draws "
                f"(KL(q(z) ‖ p(z))){hole_text}.</p>")

    def csv_text(self) -> str:
        return rows_to_csv(self.rows)

    def export_csv(self, path) -> bool:
        return save_csv(self.csv_text(), path)

    def export_png(self, path) -> bool:
        return save_widget_png(self, path)

"""The rate–distortion trade-off that β controls, as plain numbers (no Qt).

Used by the app's "Trade-off" views, by ``docs/beta-sweep.md`` and by the tests:

- `loss_terms`: the terms of the β-VAE objective from an epoch's logs;
- `rate_distortion`: a run's (rate = KL, distortion = reconstruction) trajectory, in nats;
- `equal_elbo_levels` / `equal_elbo_line`: lines rate + distortion = const (equal negative ELBO);
- `collapse_status`: posterior collapse from the per-dimension KL and the active units;
- `latents_kl`: a run's per-dimension KL and active units from its latents.npz (validation images);
- `sweep_summary` / `summary_csv` / `summary_markdown`: one row per run of a β sweep;
- `nearest_images`: the encoded images closest to a latent point, with distances;
- `traversal_values`: the values a dimension sweeps in a traversal;
- `replay_frames`: the per-epoch validation z_mean of a run folder, with labels, for replay.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "COLLAPSE_KL_NATS", "LossTerms", "loss_terms", "rate_distortion", "equal_elbo_levels",
    "equal_elbo_line", "CollapseStatus", "collapse_status", "LatentsKL", "latents_kl", "SweepRow", "sweep_summary",
    "summary_csv", "summary_markdown", "nearest_images", "traversal_values", "replay_frames",
    "rows_to_csv",
]

#: A latent dimension whose KL is below this (nats per image) carries (almost) no information.
COLLAPSE_KL_NATS = 0.02


# -- the objective ---------------------------------------------------------------------------
@dataclass
class LossTerms:
    beta: float
    reconstruction: float      # −E_q[log p(x|z)], nats (the distortion)
    kl: float                  # KL(q(z|x) ‖ p(z)), nats (the rate)

    @property
    def log_likelihood(self) -> float:
        """E_q[log p(x|z)] (the first term of L, ≤ 0 for Bernoulli images)."""
        return -self.reconstruction

    @property
    def weighted_kl(self) -> float:
        return self.beta * self.kl

    @property
    def objective(self) -> float:
        """L = E_q[log p(x|z)] − β·KL (what training maximises)."""
        return self.log_likelihood - self.weighted_kl

    @property
    def loss(self) -> float:
        """−L = recon + β·KL (what the loss curves show)."""
        return -self.objective

    @property
    def neg_elbo(self) -> float:
        """recon + KL: the β = 1 bound on −log p(x), comparable across β."""
        return self.reconstruction + self.kl


def loss_terms(logs: dict, beta: float, prefix: str = "") -> LossTerms | None:
    """The objective's terms from epoch or batch ``logs`` (``prefix="val_"`` for validation);
    None when the logs lack them."""
    try:
        recon = float(logs[f"{prefix}reconstruction_loss"])
        kl = float(logs[f"{prefix}kl_loss"])
    except (KeyError, TypeError, ValueError):
        return None
    return LossTerms(float(beta), recon, kl)


# -- rate and distortion ----------------------------------------------------------------------------
def rate_distortion(history: list[dict], split: str = "val") -> tuple[np.ndarray, np.ndarray]:
    """(rate, distortion) per epoch, in nats: KL and reconstruction of the validation images
    (``split="val"``, falling back to training values for epochs without validation) or of the
    training images (``split="train"``)."""
    rates, dists = [], []
    for row in history:
        pre = "val_" if split == "val" and "val_kl_loss" in row else ""
        r, d = row.get(f"{pre}kl_loss"), row.get(f"{pre}reconstruction_loss")
        if r is None or d is None or not (math.isfinite(r) and math.isfinite(d)):
            continue
        rates.append(float(r))
        dists.append(float(d))
    return np.asarray(rates, np.float64), np.asarray(dists, np.float64)


def _nice_step(span: float, n: int) -> float:
    raw = max(span, 1e-9) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def equal_elbo_levels(rates, distortions, n: int = 6) -> np.ndarray:
    """Round values of rate + distortion (negative ELBO) spanning the points given, with one
    step of margin either side: the levels of the background lines."""
    s = np.asarray(rates, np.float64) + np.asarray(distortions, np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return np.array([])
    lo, hi = float(s.min()), float(s.max())
    if hi - lo < 1e-9:
        lo, hi = lo * 0.9, hi * 1.1 + 1.0
    step = _nice_step(hi - lo, n)
    first = math.floor(lo / step) * step - step
    last = math.ceil(hi / step) * step + step
    return np.arange(max(first, step), last + step / 2, step)


def equal_elbo_line(level: float, rate_max: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The segment rate + distortion = ``level`` with both non-negative (rate up to ``rate_max``)."""
    x_end = level if rate_max is None else min(level, rate_max)
    xs = np.array([0.0, x_end])
    return xs, level - xs


# -- posterior collapse --------------------------------------------------------------------------------
@dataclass
class CollapseStatus:
    collapsed: bool            # every dimension is (near) the prior, or no unit is active
    active_units: int
    inactive_dims: list        # dimensions whose KL is below the threshold
    message: str               # one line for the user


def collapse_status(kl_per_dim, active_units: int | None = None,
                    kl_threshold: float = COLLAPSE_KL_NATS) -> CollapseStatus:
    """Posterior collapse: KL near zero for every latent dimension, or no active unit."""
    kl = np.asarray(kl_per_dim, np.float64).ravel()
    low = [int(i) for i in np.flatnonzero(~(kl >= kl_threshold))]   # NaN counts as collapsed
    units = int(active_units) if active_units is not None else int(kl.size - len(low))
    all_low = kl.size > 0 and len(low) == kl.size
    collapsed = all_low or (active_units is not None and units == 0)
    if collapsed:
        why = (f"the KL of every dimension is below {kl_threshold:g} nats" if all_low
               else "no latent unit is active (Cov_x E_q[z] ≤ 0.01 for all)")
        message = (f"Posterior collapse: {why}. The decoder ignores z and draws the average image; "
                   f"lower β or use a KL warm-up.")
    elif low:
        names = ", ".join(f"z{i}" for i in low[:8]) + (" …" if len(low) > 8 else "")
        message = (f"{len(low)} of {kl.size} dimensions carry almost no information ({names}); "
                   f"{units} active unit{'s' if units != 1 else ''}.")
    else:
        message = f"All {kl.size} dimensions carry information; {units} active unit{'s' if units != 1 else ''}."
    return CollapseStatus(collapsed, units, low, message)


@dataclass
class LatentsKL:
    kl_per_dim: np.ndarray     # (D,) mean KL of each dimension over the images, nats
    active_units: int
    images: int                # how many images the figures average over
    split: str                 # "validation", or "all" when the run has no split


def latents_kl(latents: dict | None) -> LatentsKL | None:
    """The per-dimension KL and active units of a run from its latents.npz (z_mean and z_log_var of
    every image): over the validation images (split 1), over all when there is no split; None when
    the file lacks z_log_var."""
    from latentlab.model.latent import active_units, kl_per_dim

    if latents is None or "z_mean" not in latents or "z_log_var" not in latents:
        return None
    z_mean, z_log_var = np.asarray(latents["z_mean"]), np.asarray(latents["z_log_var"])
    if z_mean.ndim != 2 or z_mean.shape != z_log_var.shape:
        return None
    split = latents.get("split")
    which = "all"
    if split is not None and len(split) == len(z_mean) and np.any(np.asarray(split) == 1):
        keep = np.asarray(split) == 1
        z_mean, z_log_var, which = z_mean[keep], z_log_var[keep], "validation"
    return LatentsKL(kl_per_dim(z_mean, z_log_var), active_units(z_mean), len(z_mean), which)


# -- sweeps ---------------------------------------------------------------------------------------------
@dataclass
class SweepRow:
    beta: float
    val_reconstruction: float
    val_kl: float
    neg_elbo: float
    active_units: int
    epochs: int
    path: str

    def as_dict(self) -> dict:
        return {"beta": self.beta, "val_reconstruction": self.val_reconstruction, "val_kl": self.val_kl,
                "val_neg_elbo": self.neg_elbo, "active_units": self.active_units, "epochs": self.epochs,
                "path": self.path}


def sweep_summary(runs) -> list[SweepRow]:
    """One row per opened run (``latentlab.runs.folder.Run``), from its last finished epoch, by β."""
    rows = []
    for run in runs:
        if not run.history:
            continue
        last = run.history[-1]
        pre = "val_" if "val_kl_loss" in last else ""
        recon, kl = float(last[f"{pre}reconstruction_loss"]), float(last[f"{pre}kl_loss"])
        rows.append(SweepRow(float(run.config.beta), recon, kl, recon + kl, int(last.get("active_units", -1)),
                             len(run.history), str(run.path)))
    return sorted(rows, key=lambda r: r.beta)


def rows_to_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    """Dicts → CSV text (columns: the given ones, else the union in first-seen order)."""
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()


def summary_csv(rows: list[SweepRow]) -> str:
    return rows_to_csv([r.as_dict() for r in rows],
                       ["beta", "val_reconstruction", "val_kl", "val_neg_elbo", "active_units", "epochs", "path"])


def summary_markdown(rows: list[SweepRow]) -> str:
    lines = ["| β | val reconstruction (nats) | val KL (nats) | val neg. ELBO (nats) | active units |",
             "|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.beta:g} | {r.val_reconstruction:.2f} | {r.val_kl:.2f} | {r.neg_elbo:.2f} "
                     f"| {r.active_units} |")
    return "\n".join(lines) + "\n"


# -- latent-space look-ups ------------------------------------------------------------------------------
def nearest_images(z_points: np.ndarray, z, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances) of the ``k`` rows of ``z_points`` closest to ``z``, nearest first."""
    from latentlab.model.latent import nearest

    z_points = np.asarray(z_points, np.float64)
    if len(z_points) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    idx = nearest(z_points, np.asarray(z, np.float64), k)
    return idx, np.sqrt(np.sum((z_points[idx] - np.asarray(z, np.float64)) ** 2, axis=1))


def traversal_values(z_data: np.ndarray | None, dim: int, steps: int = 9) -> np.ndarray:
    """Values dimension ``dim`` sweeps: the data's 1st–99th percentile range (with margin), or
    the prior's ±3 when there is no data."""
    from latentlab.model.latent import grid_range

    if z_data is None or len(z_data) < 2:
        lo, hi = -3.0, 3.0
    else:
        a, b = grid_range(np.asarray(z_data)[:, dim:dim + 1])
        lo, hi = float(a[0]), float(b[0])
    return np.linspace(lo, hi, steps, dtype=np.float32)


def replay_frames(run) -> dict | None:
    """A run's per-epoch validation latents for replay: z_mean (epochs, n_val, d), indices, labels
    (or None) and class_names; None when the run has no ``epochs.npz``."""
    ep = run.epoch_latents
    if not ep or "z_mean" not in ep:
        return None
    z = np.asarray(ep["z_mean"])
    indices = np.asarray(ep.get("indices", np.arange(z.shape[1])))
    labels, names = None, []
    lat = run.latents
    if lat is not None and "labels" in lat and len(indices) and indices.max() < len(lat["labels"]):
        labels = np.asarray(lat["labels"])[indices]
        names = [str(s) for s in lat.get("class_names", [])]
    return {"z_mean": z, "indices": indices, "labels": labels, "class_names": names}

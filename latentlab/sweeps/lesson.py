"""The lesson: a β sweep designed so that the trade-off β controls shows beyond training noise —
rate (KL) falls and distortion (reconstruction) rises with β — in a few minutes on two CPU cores.

Why a plain sweep cannot show it: at the optimum of ``distortion + β·rate`` the rate–distortion curve
has slope −β, so between β = 0.1 and 0.3 the distortion can differ by only ~β·Δrate ≈ 1 nat, while two
short trainings from different starting points end tens of nats apart (docs/lesson.md measures both).
So the design makes β the *only* difference between the runs:

- **a shared warm start**: one run trains at the smallest β; every β then continues a copy of it (the
  run folder, with its history and optimizer state) for the same number of epochs, so no run gets a
  luckier starting point or basin than another. The start takes large steps (Adam at 3e-3) to get far
  in few epochs; the continuations smaller ones (1e-3): the final iterate of a stochastic optimiser
  wanders around its optimum by an amount that grows with the step size, and here that wander is
  what would blur the small differences between neighbouring β;
- **common random numbers**: the continuations see the same data order and the same ε draws (one
  seed per design), so their differences come from β, not from sampling;
- **a precise final evaluation**: each run's validation rate is its exact KL, its distortion the mean
  over ``draws`` ε samples per image — the same ε for every run (the per-epoch validation uses one);
- **seeds** (optional): the whole design repeated with other seeds gives each figure a spread, and
  each step between neighbouring β is judged against the spread of its paired difference.

Every run is a normal run folder written by `latentlab.training.trainer.Trainer` (``out/beta-<β>`` for the first
seed, ``out/seeds/seed-<s>/beta-<β>`` for the others, the warm starts in ``out/warm-start/``); the
figures are those runs' validation figures. `Lesson.run()` returns the summary and writes it to
``out/lesson.json``.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from latentlab.runs import folder as runs
from latentlab.config import ConfigError, TrainConfig
from latentlab.events import Failed, LessonRunDone, SweepStep
from latentlab.model.pool import ModelPool
from latentlab.sweeps.sweep import run_name
from latentlab.tradeoff import COLLAPSE_KL_NATS
from latentlab.training.trainer import Trainer

__all__ = [
    "DEFAULT_BETAS",
    "SUMMARY_FILE",
    "Design",
    "Lesson",
    "LessonError",
    "design_for_sweep",
    "evaluate",
    "summarise",
    "verdict_lines",
]

SUMMARY_FILE = "lesson.json"
SPLIT_KEYS = ("mutual_info", "marginal_kl", "rate_split_se", "mutual_info_bound", "hole_fraction")
DEFAULT_BETAS = (0.1, 0.3, 1.0, 3.0, 10.0)


class LessonError(RuntimeError):
    """The lesson cannot run or go on; ``str(e)`` is one line."""


@dataclass(frozen=True)
class Design:
    """How the lesson's sweep is made (see the module's docstring for why)."""

    betas: tuple = DEFAULT_BETAS
    seeds: tuple = (0, 1)           # the whole design twice: a spread for every figure
    warm_epochs: int = 10          # the shared start, at the smallest β
    epochs: int = 5                # then each β continues a copy of it for this many epochs
    # ε draws per validation image for the final figures: on the sample, 16 draws move the distortion steps
    # between β by ≤ 0.01–0.1 nats, a tenth of the spread over seeds, at half the cost of 32 (docs/lesson.md)
    draws: int = 16
    max_images: int = 3000         # a larger folder is sampled (fixed seed) so that the lesson stays short
    min_batches: int = 8           # a smaller batch on a small folder, for this many batches per epoch (0: keep)
    learning_rate: float | None = 3e-3          # the shared start's step size (None: the config's)
    settle_learning_rate: float | None = 1e-3   # each β's continuation: smaller steps settle closer to its optimum

    def validate(self) -> Design:
        betas = [float(b) for b in self.betas]
        if len(betas) < 2 or len(set(betas)) != len(betas) or min(betas) < 0:
            raise ConfigError("the lesson needs at least two different β values, none negative")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("the lesson needs one or more different seeds")
        if int(self.min_batches) < 0:
            raise ConfigError("the lesson's batches per epoch must be 0 (keep the batch size) or more")
        for name in ("warm_epochs", "epochs", "draws", "max_images"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"the lesson's {name.replace('_', ' ')} must be at least 1")
        return self

    @property
    def sorted_betas(self) -> list[float]:
        return sorted(float(b) for b in self.betas)

    @property
    def runs_per_seed(self) -> int:
        return 1 + len(self.betas)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def design_for_sweep(betas, epochs: int, seed: int = 0) -> Design:
    """The lesson's design for a user's sweep of ``epochs`` epochs per β: a shared start of about two
    thirds of them at the smallest β, then the rest at each β (at least one epoch each), on all the
    images with the user's batch size."""
    warm = max(1, round(int(epochs) * 2 / 3))
    return Design(betas=tuple(float(b) for b in betas), seeds=(int(seed),), warm_epochs=warm,
                  epochs=max(1, int(epochs) - warm), max_images=10**9, min_batches=0, learning_rate=None,
                  settle_learning_rate=None).validate()


# -- the final evaluation ---------------------------------------------------------------------------
def evaluate(model, images: np.ndarray, draws: int = 32, seed: int = 0, batch_size: int = 512) -> dict:
    """Validation rate and distortion of ``model`` on ``images``, per image (nats): rate = the exact
    KL(q(z|x) ‖ N(0, I)); distortion = −log p(x|z) averaged over ``draws`` samples z ~ q(z|x). The ε
    come from ``seed`` alone, so every model evaluated with the same seed sees the same ε. Also
    ``code_spread``: how far the codes spread, the standard deviation of z_mean over the images (mean
    over dimensions; the prior's is 1)."""
    import tensorflow as tf

    from latentlab import surgery
    from latentlab.model.vae import kl_per_dim, output_to_image

    rng = np.random.default_rng(seed)
    rates, dists, codes, spreads = [], [], [], []
    for start in range(0, len(images), batch_size):
        x = tf.convert_to_tensor(images[start:start + batch_size], tf.float32)
        z_mean, z_log_var = model.encoder(x, training=False)
        codes.append(z_mean.numpy())
        spreads.append(z_log_var.numpy())
        rates.append(tf.reduce_sum(kl_per_dim(z_mean, z_log_var), axis=1).numpy())
        total = np.zeros(int(x.shape[0]), np.float64)
        sd = tf.exp(0.5 * z_log_var)
        for _ in range(int(draws)):
            eps = tf.constant(rng.standard_normal(tuple(z_mean.shape)), tf.float32)
            raw = model.decoder(z_mean + sd * eps, training=False)
            total += model.reconstruction_nll(x, raw).numpy()
        dists.append(total / int(draws))
    rate = np.concatenate(rates) if rates else np.zeros(0)
    dist = np.concatenate(dists) if dists else np.zeros(0)
    z = np.concatenate(codes) if codes else np.zeros((0, 1))
    out = {"rate": float(rate.mean()) if rate.size else math.nan,
           "distortion": float(dist.mean()) if dist.size else math.nan,
           "code_spread": float(np.std(z, axis=0).mean()) if len(z) > 1 else math.nan,
           "per_image_rate": rate, "per_image_distortion": dist}
    if len(z):
        lv = np.concatenate(spreads)
        split = surgery.split_rate(z, lv, draws=surgery.DEFAULT_DRAWS, seed=seed)
        # the rate here is the float32 model's; the split's own (float64, same codes) agrees to ~1e-6
        out.update(mutual_info=split.mutual_info, marginal_kl=split.marginal_kl,
                   rate_split_se=split.standard_error, mutual_info_bound=split.log_n,
                   hole_fraction=surgery.hole_fraction(z, lv, draws=surgery.DEFAULT_DRAWS, seed=seed))
        prior_z = np.random.default_rng(PRIOR_SAMPLES_SEED).standard_normal(
            (PRIOR_SAMPLES, int(model.latent_dim))).astype(np.float32)
        raw = model.decoder(tf.convert_to_tensor(prior_z), training=False)
        out["prior_images"] = np.asarray(output_to_image(raw, model.likelihood), np.float32)
        out["prior_in_hole"] = surgery.in_hole(prior_z, z, lv)
        many = np.random.default_rng(PRIOR_SAMPLES_SEED + 1).standard_normal(
            (QUALITY_SAMPLES, int(model.latent_dim))).astype(np.float32)
        out["quality_images"] = np.concatenate([
            np.asarray(output_to_image(model.decoder(tf.convert_to_tensor(many[i:i + batch_size]), training=False),
                                       model.likelihood), np.float32) for i in range(0, len(many), batch_size)])
    return out


QUALITY_SAMPLES = 1000      # prior samples per β for the sample-quality figure (latentlab.sample_quality)
QUALITY_IMAGES = 1000       # validation images they are compared with, at most


PRIOR_SAMPLES = 64          # the lesson's prior samples: the same z ~ N(0, I) decoded by every β
PRIOR_SAMPLES_SEED = 2016
PRIOR_SAMPLES_FILE = "prior_samples.png"   # in each β's run folder
HOLE_FRAME = (0.85, 0.1, 0.1)              # the frame of a prior sample that lands in a hole (red)


def framed_mosaic(images: np.ndarray, in_hole, cols: int, pad: int = 2) -> np.ndarray:
    """Images (N, H, W, C) in [0, 1] as one RGB mosaic, ``cols`` a row, each in a ``pad``-pixel frame: red
    (`HOLE_FRAME`) where ``in_hole`` is true, white elsewhere."""
    images = np.asarray(images, np.float32)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    n, h, w, _ = images.shape
    rows = math.ceil(n / cols)
    out = np.ones((rows * (h + 2 * pad), cols * (w + 2 * pad), 3), np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = r * (h + 2 * pad), c * (w + 2 * pad)
        out[y:y + h + 2 * pad, x:x + w + 2 * pad] = HOLE_FRAME if in_hole[k] else (1.0, 1.0, 1.0)
        out[y + pad:y + pad + h, x + pad:x + pad + w] = images[k]
    return out


def prior_samples_png(path, images: np.ndarray, in_hole: np.ndarray, cols: int = 8) -> None:
    """The prior samples as one PNG, 8 a row, each in a 2-pixel frame: red where its z lies in a hole of
    the aggregate posterior (q(z) < a tenth of p(z)), white elsewhere."""
    from PIL import Image

    arr = np.clip(framed_mosaic(images, in_hole, cols) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    runs.atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format="PNG"))


# -- the summary -----------------------------------------------------------------------------------
def _spread(values) -> float:
    """Half the range of a figure over the seeds (0 with one seed)."""
    v = np.asarray(values, np.float64)
    return float((v.max() - v.min()) / 2) if v.size > 1 else 0.0


def _paired(by: dict, seeds, lo: float, hi: float) -> tuple[list, list]:
    """Per seed that has both: the change of rate and of distortion from β ``lo`` to β ``hi``."""
    both = [s for s in seeds if (s, lo) in by and (s, hi) in by]
    return ([by[(s, hi)]["rate"] - by[(s, lo)]["rate"] for s in both],
            [by[(s, hi)]["distortion"] - by[(s, lo)]["distortion"] for s in both])


def summarise(results: list[dict], design: Design, seconds: float, extra: dict | None = None) -> dict:
    """The lesson's summary from one result per (seed, β) run: ``{"beta", "seed", "rate", "distortion",
    "active_units", "run_dir", "last_epoch": {...}}``. One object per β in ``runs``: means over seeds, with
    several seeds ``spread`` (half the range over seeds) and ``vs_first`` (the paired change from the smallest
    β: mean and half the range over seeds); ``steps``: the paired changes between neighbouring β; and the
    verdict in words. Seeds differ in validation images and start, so paired changes are what they agree on."""
    betas = sorted({r["beta"] for r in results})
    seeds = sorted({r["seed"] for r in results})
    multi = len(seeds) > 1
    by = {(r["seed"], r["beta"]): r for r in results}
    out_runs = []
    for b in betas:
        rows = [by[(s, b)] for s in seeds if (s, b) in by]
        rate = [r["rate"] for r in rows]
        dist = [r["distortion"] for r in rows]
        entry = {"beta": b, "rate": float(np.mean(rate)), "distortion": float(np.mean(dist)),
                 "neg_elbo": float(np.mean(rate) + np.mean(dist)),
                 "code_spread": float(np.mean([r.get("code_spread", math.nan) for r in rows])),
                 "active_units": int(min(r["active_units"] for r in rows)),
                 "collapsed": bool(any(r["active_units"] == 0 or r["rate"] < COLLAPSE_KL_NATS for r in rows)),
                 "run_dirs": [r["run_dir"] for r in rows], "seeds": [r["seed"] for r in rows],
                 "per_seed": [{k: r[k] for k in ("seed", "rate", "distortion", "active_units", "last_epoch")}
                              for r in rows]}
        if all("marginal_kl" in r for r in rows):
            # ELBO surgery: the rate = I(x; z) + KL(q(z) ‖ p(z)), means over seeds (latentlab.surgery)
            entry.update({k: float(np.mean([r[k] for r in rows])) for k in SPLIT_KEYS})
            for r, p in zip(rows, entry["per_seed"]):
                p.update({k: r[k] for k in ("mutual_info", "marginal_kl")})
        if rows and rows[0].get("sample_quality"):
            entry["sample_quality"] = rows[0]["sample_quality"]
        if rows and rows[0].get("prior_samples"):
            entry["prior_samples"] = rows[0]["prior_samples"]
            entry["prior_in_hole"] = rows[0]["prior_in_hole"]
        if multi:
            entry["spread"] = {"rate": _spread(rate), "distortion": _spread(dist)}
            d_rate, d_dist = _paired(by, seeds, betas[0], b)
            entry["vs_first"] = {"rate": float(np.mean(d_rate)), "rate_spread": _spread(d_rate),
                                 "distortion": float(np.mean(d_dist)), "distortion_spread": _spread(d_dist)}
        out_runs.append(entry)
    steps = []
    for lo, hi in itertools.pairwise(betas):
        d_rate, d_dist = _paired(by, seeds, lo, hi)
        if not d_rate:
            continue
        steps.append({"from": lo, "to": hi, "rate_change": float(np.mean(d_rate)),
                      "distortion_change": float(np.mean(d_dist)),
                      "rate_spread": _spread(d_rate), "distortion_spread": _spread(d_dist),
                      # the sign held in every seed and the mean is larger than the seeds' spread
                      "rate_clear": bool(all(v < 0 for v in d_rate) and -np.mean(d_rate) > _spread(d_rate)),
                      "distortion_clear": bool(all(v > 0 for v in d_dist) and np.mean(d_dist) > _spread(d_dist))})
    rates = [r["rate"] for r in out_runs]
    dists = [r["distortion"] for r in out_runs]
    mismatch = [r["marginal_kl"] for r in out_runs if "marginal_kl" in r]
    summary = {"seconds": float(seconds), "design": design.to_dict(), "seeds": seeds, "runs": out_runs,
               "steps": steps,
               "rate_falls": bool(len(rates) > 1 and all(a > b for a, b in itertools.pairwise(rates))),
               "distortion_rises": bool(len(dists) > 1 and all(a < b for a, b in itertools.pairwise(dists))),
               "marginal_kl_falls": bool(len(mismatch) == len(out_runs) > 1
                                         and all(a > b for a, b in itertools.pairwise(mismatch))),
               "prior_samples": [{"beta": r["beta"], "png": r["prior_samples"],
                                  "in_hole": int(sum(r["prior_in_hole"]))} for r in out_runs if "prior_samples" in r],
               **(extra or {})}
    summary["verdict"] = verdict_lines(summary)
    return summary


def _n(v: float) -> str:
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


SHARED_START_DIR = "warm-start"   # the designed sweep's shared start, one run per seed, inside its folder


def is_shared_start(run_dir) -> bool:
    """Whether ``run_dir`` is a designed sweep's shared start (not one of its β runs)."""
    return run_dir is not None and Path(run_dir).parent.name == SHARED_START_DIR


def _places(x: float) -> int:
    """Decimals that keep a small difference readable: +0.4 ± 0.03, not ± 0.0."""
    return 1 if abs(x) >= 0.1 or x == 0 else 2


def verdict_lines(summary: dict) -> list[str]:
    """What the lesson found, in plain words: the headline, one line per β, and what to read from them."""
    runs_ = summary["runs"]
    if not runs_:
        return ["No run finished, so there is nothing to compare yet."]
    first, last = runs_[0], runs_[-1]
    multi = len(summary.get("seeds", [])) > 1
    lines = []
    if len(runs_) > 1:
        rate_word = "fell at every step" if summary["rate_falls"] else "did not fall at every step"
        dist_word = "rose at every step" if summary["distortion_rises"] else "did not rise at every step"
        lines.append(f"Raising β from {first['beta']:g} to {last['beta']:g} cut the rate from {_n(first['rate'])} to "
                     f"{_n(last['rate'])} nats (the code keeps less about each image) and changed the distortion by "
                     f"{last['distortion'] - first['distortion']:+.1f} nats (worse reconstructions): the rate "
                     f"{rate_word} and the distortion {dist_word}.")
    for r in runs_:
        text = f"β {r['beta']:g}: rate {_n(r['rate'])} nats, distortion "
        seeds = f"over {len(r['seeds'])} seeds"
        if r is first:
            text += f"{_n(r['distortion'])} nats"
            if multi:
                text += (f" (± {_n(r['spread']['distortion'])} {seeds}, which differ in validation images and "
                         f"start)")
        elif multi:
            v = r["vs_first"]
            d, spread = v["distortion"], v["distortion_spread"]
            text += f"{d:+.{_places(d)}f} ± {spread:.{_places(spread)}f} nats vs β {first['beta']:g} ({seeds})"
        else:
            text += f"{r['distortion'] - first['distortion']:+.1f} nats vs β {first['beta']:g}"
        text += f"; {r['active_units']} active unit{'s' if r['active_units'] != 1 else ''}"
        if r["collapsed"] and first["collapsed"]:
            # collapsed at the smallest β too: not β's doing but the start's (a seed's start can collapse)
            text += (" (a seed's run collapsed" + (": its shared start carried nothing already, at the smallest β; "
                     "another --seed or more images usually avoids that" if r is first else "") + ")")
        elif r["collapsed"]:
            text += (" — posterior collapse: the code carries nothing and the decoder draws the average image. "
                     "That is the other half of the lesson: too large a β switches the latent space off")
        lines.append(text + ".")
    spreads = [r["code_spread"] for r in (first, last) if math.isfinite(r.get("code_spread", math.nan))]
    if len(runs_) > 1 and len(spreads) == 2:
        lines.append(f"The codes of the validation images spread over ±{spreads[0]:.2f} at β {first['beta']:g} "
                     f"and ±{spreads[1]:.2f} at β {last['beta']:g} (standard deviation of z; the prior's is 1): a "
                     f"larger β pulls them towards the prior, and the latent maps shrink.")
    if multi:
        weak = [s for s in summary["steps"] if not (s["rate_clear"] and s["distortion_clear"])]
        if weak:
            names = ", ".join(f"β {s['from']:g} → {s['to']:g} (distortion {s['distortion_change']:+.2f} ± "
                              f"{s['distortion_spread']:.2f})" for s in weak)
            lines.append(f"Below the seed spread (not a measured difference): {names}.")
        else:
            lines.append("Every step between neighbouring β is larger than the spread over the seeds, with the same "
                         "sign in each seed.")
    return lines + _split_lines(summary)


def _split_lines(summary: dict) -> list[str]:
    """The lesson's other half in words: what the rate buys (ELBO surgery, latentlab.surgery)."""
    runs_ = [r for r in summary["runs"] if "marginal_kl" in r]
    if not runs_:
        return []
    lines = ["What the rate buys: each β's rate splits into what the code says about its image, I(x; z), and codes "
             "the prior never draws, KL(q(z) ‖ p(z)) — where a sample from the prior decodes to nothing like the "
             "data."]
    for r in runs_:
        bound = r.get("mutual_info_bound", math.nan)
        near = (f", near its ceiling log N = {bound:.1f} for {round(math.exp(bound))} validation images"
                if math.isfinite(bound) and r["mutual_info"] > 0.9 * bound else "")
        holes = r.get("hole_fraction", math.nan)
        hole_text = f"; {holes:.0%} of the prior's mass lies in holes" if math.isfinite(holes) else ""
        lines.append(f"β {r['beta']:g}: of {_n(r['rate'])} nats, {_n(r['marginal_kl'])} are codes the prior never "
                     f"draws and {_n(r['mutual_info'])} say which image it is{near}{hole_text}.")
    quality = [r for r in summary["runs"] if "sample_quality" in r]
    if len(quality) > 1:
        cov = ", ".join(f"{r['sample_quality']['coverage']:.2f}" for r in quality)
        betas = ", ".join(f"{r['beta']:g}" for r in quality)
        lines.append(f"Prior samples against the validation images, in the codes of the β {quality[0]['beta']:g} "
                     f"encoder: coverage (the share of images with a sample near them) {cov} at β {betas}.")
    if len(runs_) > 1:
        word = ("fell at every step" if summary.get("marginal_kl_falls") else "did not fall at every step")
        lines.append(f"The mismatch with the prior {word} as β rose ({_n(runs_[0]['marginal_kl'])} → "
                     f"{_n(runs_[-1]['marginal_kl'])} nats): that is what a larger β buys — prior samples that "
                     f"look like the data — for the reconstructions it costs.")
    return lines


# -- the runs ----------------------------------------------------------------------------------------
@dataclass
class _Plan:
    seed: int
    beta: float
    run_dir: Path
    warm: bool
    warm_dir: Path | None = None


@dataclass
class _State:
    results: list = field(default_factory=list)
    evaluation: dict | None = None
    quality: dict = field(default_factory=dict)    # β → its prior samples decoded (first seed), for the figure


class Lesson:
    """Run the designed sweep for ``config`` (its model and training settings; β, epochs, seed and the
    KL schedule are the design's) into ``out_dir``. ``run()`` blocks and returns the summary;
    ``stop()`` ends the current run after its batch (keeping its last finished epoch) and skips the rest;
    a run that fails ends the lesson too (its message is the summary's ``failed``).

    ``on_event`` receives a `SweepStep` before each run (the warm starts' run folders are in
    ``warm-start/``), then that run's Trainer events."""

    def __init__(self, config: TrainConfig, out_dir, dataset=None, on_event=None, design: Design | None = None,
                 model_pool: ModelPool | None = None):
        self.design = (design or Design()).validate()
        self.config = config.replace(kl_schedule="constant").validate()
        self.out_dir = Path(out_dir)
        self.dataset = dataset
        self.on_event = on_event or (lambda e: None)
        self.model_pool = model_pool if model_pool is not None else ModelPool()   # one model, re-initialised per run
        self.trainer: Trainer | None = None
        self._stopped = False
        self.summary: dict | None = None

    # -- where each run goes ---------------------------------------------------------------------------
    def run_dir(self, seed: int, beta: float) -> Path:
        first = seed == self.design.seeds[0]
        return (self.out_dir if first else self.out_dir / "seeds" / f"seed-{seed}") / run_name(beta)

    def warm_dir(self, seed: int) -> Path:
        return self.out_dir / SHARED_START_DIR / f"seed-{seed}"

    def plans(self) -> list[_Plan]:
        out = []
        low = self.design.sorted_betas[0]
        for seed in self.design.seeds:
            warm = self.warm_dir(seed)
            out.append(_Plan(seed, low, warm, True))
            out += [_Plan(seed, b, self.run_dir(seed, b), False, warm) for b in self.design.sorted_betas]
        return out

    def check_out_dir(self) -> None:
        for p in self.plans():
            d = p.run_dir
            if d.exists() and (not d.is_dir() or any(d.iterdir())):
                raise ConfigError(f"{d} already exists and is not empty: choose a new lesson folder")
        summary = self.out_dir / SUMMARY_FILE
        if summary.exists():
            raise ConfigError(f"{summary} already exists: choose a new lesson folder")

    def stop(self) -> None:
        self._stopped = True
        if self.trainer is not None:
            self.trainer.stop()

    @property
    def stopped(self) -> bool:
        return self._stopped

    # -- running -----------------------------------------------------------------------------------------
    def _data(self):
        from latentlab import data as ld

        if self.dataset is None:
            self.dataset = ld.load_folder(self.config.dataset, image_size=self.config.image_size,
                                          color=self.config.color, background=self.config.background,
                                          fit=self.config.fit)
        ds = self.dataset
        note = {"images": len(ds.images), "folder_images": len(ds.images)}
        if len(ds.images) > self.design.max_images:
            keep = np.sort(np.random.default_rng(0).permutation(len(ds.images))[: self.design.max_images])
            ds = ld.Dataset(ds.root, ds.images[keep], ds.labels[keep], list(ds.class_names),
                            [ds.paths[i] for i in keep])
            note["images"] = len(keep)
        return ds, note

    def _config_for(self, dataset, seed: int) -> TrainConfig:
        """The design's training settings: a batch that gives at least 8 batches per epoch on a small folder."""
        cfg = self.config.replace(seed=int(seed), beta=self.design.sorted_betas[0], epochs=self.design.warm_epochs)
        if self.design.learning_rate is not None:
            cfg = cfg.replace(learning_rate=float(self.design.learning_rate))
        if not self.design.min_batches:
            return cfg
        n_train = max(1, round(len(dataset.images) * (1 - cfg.val_fraction)))
        return cfg.replace(batch_size=max(1, min(cfg.batch_size, n_train // self.design.min_batches or 1)))

    def run(self) -> dict:
        t0 = time.perf_counter()
        self.check_out_dir()
        dataset, note = self._data()
        plans = self.plans()
        state = _State()
        failure = None
        for i, plan in enumerate(plans):
            if self._stopped:
                break
            cfg = self._config_for(dataset, plan.seed)
            self.on_event(SweepStep(i, len(plans), plan.beta, str(plan.run_dir)))
            if plan.warm:
                trainer = Trainer(cfg, dataset, plan.run_dir, self.on_event, model_pool=self.model_pool,
                                  latents_every_epoch_max=0)
            else:
                runs.copy_run(plan.warm_dir, plan.run_dir)
                cfg = cfg.replace(beta=plan.beta, epochs=self.design.warm_epochs + self.design.epochs,
                                  learning_rate=float(self.design.settle_learning_rate or cfg.learning_rate))
                # no per-epoch −log p(x) in the continuations: the lesson's own evaluation ends each one
                trainer = Trainer(cfg, dataset, plan.run_dir, None, resume=True, model_pool=self.model_pool,
                                  latents_every_epoch_max=0, likelihood_samples=0)
                trainer.on_event = self._evaluating(trainer, cfg, state)
            self.trainer = trainer
            if self._stopped:
                trainer.stop()
            result = trainer.run()
            if isinstance(result, Failed):   # its own Failed event has gone out; the rest is skipped
                failure = f"β {plan.beta:g} (seed {plan.seed}): {result.message}"
                break
            if result.stopped:
                self._stopped = True
                break
            if not plan.warm:
                if state.evaluation is None:
                    failure = f"β {plan.beta:g} (seed {plan.seed}): the run ended without its last epoch"
                    break
                last = result.history[-1]
                state.results.append({"beta": plan.beta, "seed": plan.seed, "run_dir": str(plan.run_dir),
                                      "rate": state.evaluation["rate"], "distortion": state.evaluation["distortion"],
                                      "code_spread": state.evaluation["code_spread"],
                                      **{k: state.evaluation[k] for k in SPLIT_KEYS if k in state.evaluation},
                                      **self._prior_samples(plan, state.evaluation),
                                      "active_units": int(last.get("active_units", -1)),
                                      "last_epoch": {"rate": float(last.get("val_kl_loss", math.nan)),
                                                     "distortion": float(last.get("val_reconstruction_loss",
                                                                                  math.nan))}})
                self.on_event(LessonRunDone(i, len(plans), dict(state.results[-1])))   # on the plane now
                if plan.seed == self.design.seeds[0] and "quality_images" in state.evaluation:
                    state.quality[plan.beta] = state.evaluation["quality_images"]
                state.evaluation = None
        self.trainer = None
        if not self._stopped and failure is None:
            try:
                self._sample_quality(dataset, state)
            except (OSError, ValueError, runs.RunError):
                pass   # a figure beside the lesson: without it the summary is still whole
        state.quality.clear()
        self._stopped = self._stopped and len(state.results) < len(plans) - len(self.design.seeds)
        cfg = self._config_for(dataset, self.design.seeds[0])
        extra = {"folder": str(self.config.dataset), **note, "stopped": self._stopped, "failed": failure,
                 "out_dir": str(self.out_dir), "latent_dim": cfg.latent_dim, "batch_size": cfg.batch_size,
                 "learning_rates": {"shared start": cfg.learning_rate,
                                    "each β": self.design.settle_learning_rate or cfg.learning_rate}}
        self.summary = summarise(state.results, self.design, time.perf_counter() - t0, extra)
        if state.results:
            write_summary(self.out_dir / SUMMARY_FILE, self.summary)
        return self.summary

    def _sample_quality(self, dataset, state: _State) -> None:
        """Coverage and the rest (`latentlab.sample_quality.prdc`) of each β's prior samples against the first
        seed's validation images, in the codes of the smallest β's encoder (loaded from its run folder)."""
        from latentlab.model.latent import encode
        from latentlab.sample_quality import prdc

        seed = self.design.seeds[0]
        rows = sorted((r for r in state.results if r["seed"] == seed and r["beta"] in state.quality),
                      key=lambda r: r["beta"])
        if len(rows) < 2:
            return
        ref = runs.open_run(rows[0]["run_dir"]).load_model()
        trainer_cfg = self._config_for(dataset, seed)
        from latentlab import data as ld

        _, val = ld.split_indices(len(dataset.images), trainer_cfg.val_fraction, seed)
        images = dataset.images[val[:QUALITY_IMAGES]] if len(val) else dataset.images[:QUALITY_IMAGES]
        real = encode(ref, images)[0]
        for r in rows:
            try:
                r["sample_quality"] = prdc(real, encode(ref, state.quality[r["beta"]])[0])
            except ValueError:
                return
            r["sample_quality"]["features"] = f"z_mean of the β {rows[0]['beta']:g} encoder"

    def _prior_samples(self, plan: _Plan, evaluation: dict) -> dict:
        """The run's prior samples as a PNG in its folder: where and which of them lie in holes."""
        if "prior_images" not in evaluation:
            return {}
        path = plan.run_dir / PRIOR_SAMPLES_FILE
        prior_samples_png(path, evaluation["prior_images"], evaluation["prior_in_hole"])
        return {"prior_samples": str(path), "prior_in_hole": [bool(v) for v in evaluation["prior_in_hole"]]}

    def _evaluating(self, trainer: Trainer, cfg: TrainConfig, state: _State):
        """The trainer's event handler: after the last epoch, evaluate its model on the validation images
        (on the training thread, before the model goes back to the pool), then pass the event on."""
        from latentlab.events import EpochEnd

        def on_event(ev):
            if isinstance(ev, EpochEnd) and ev.epoch == cfg.epochs and trainer.model is not None:
                images = trainer.dataset.images[trainer.val_idx]
                if not len(images):
                    images = trainer.dataset.images[trainer.train_idx]
                state.evaluation = evaluate(trainer.model, images, self.design.draws, seed=cfg.seed)
            self.on_event(ev)

        return on_event


def write_summary(path, summary: dict) -> None:
    import json

    runs.atomic_write_text(path, json.dumps(summary, indent=2, allow_nan=True) + "\n")


def read_summary(path) -> dict:
    """A lesson.json (the folder holding it, or the file itself); LessonError with one line otherwise."""
    import json

    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LessonError(f"{path}: not a lesson summary ({getattr(e, 'strerror', None) or e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise LessonError(f"{path}: not a lesson summary (no runs)")
    return data

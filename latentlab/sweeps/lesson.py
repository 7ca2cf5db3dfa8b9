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

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from latentlab.runs import folder as runs
from latentlab.config import ConfigError, TrainConfig
from latentlab.events import Failed, LessonRunDone, SweepStep
from latentlab.model.pool import ModelPool
from latentlab.sweeps.sweep import run_name
from latentlab.training.trainer import Trainer
# the lesson's parts, importable from here as before
from latentlab.sweeps.lesson_design import (DEFAULT_BETAS, SHARED_START_DIR, Design, LessonError,  # noqa: F401
                                            design_for_sweep, is_shared_start)
from latentlab.sweeps.lesson_evaluate import (HOLE_FRAME, PRIOR_SAMPLES, PRIOR_SAMPLES_FILE,  # noqa: F401
                                              PRIOR_SAMPLES_SEED, QUALITY_IMAGES, QUALITY_SAMPLES, evaluate,
                                              framed_mosaic, prior_samples_png)
from latentlab.sweeps.lesson_summary import (SPLIT_KEYS, SUMMARY_FILE, read_summary, summarise,  # noqa: F401
                                             verdict_lines, write_summary)

if TYPE_CHECKING:
    from latentlab.data.dataset import Dataset

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

    def __init__(self, config: TrainConfig, out_dir: str | Path, dataset: Dataset | None = None,
                 on_event: Callable[[object], None] | None = None, design: Design | None = None,
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
    def _data(self) -> tuple[Dataset, dict]:
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

    def _config_for(self, dataset: Dataset, seed: int) -> TrainConfig:
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

    def _sample_quality(self, dataset: Dataset, state: _State) -> None:
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

    def _evaluating(self, trainer: Trainer, cfg: TrainConfig, state: _State) -> Callable[[object], None]:
        """The trainer's event handler: after the last epoch, evaluate its model on the validation images
        (on the training thread, before the model goes back to the pool), then pass the event on."""
        from latentlab.events import EpochEnd

        def on_event(ev: object) -> None:
            if isinstance(ev, EpochEnd) and ev.epoch == cfg.epochs and trainer.model is not None:
                images = trainer.data.images[trainer.val_idx]
                if not len(images):
                    images = trainer.data.images[trainer.train_idx]
                state.evaluation = evaluate(trainer.model, images, self.design.draws, seed=cfg.seed)
            self.on_event(ev)

        return on_event

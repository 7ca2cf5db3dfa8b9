"""Sweeps: one normal run folder per point of a grid over β × latent size × seed, the same data and
other settings. `Sweep` trains them here, one after another (``latentlab sweep`` and the app's sweep
panel); `latentlab.sweeps.cluster.ClusterSweep` trains each as one task on a Dask cluster.

A sweep folder can be given again: runs that have all their epochs are skipped, runs with some finished
epochs are resumed from the last one, and a folder holding something else is refused (`plan`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from latentlab.runs import folder as runs
from latentlab.config import BETA_RANGE, ConfigError, TrainConfig
from latentlab.events import Failed, Finished, SweepStep
from latentlab.model.pool import ModelPool

if TYPE_CHECKING:
    from latentlab.training.trainer import Trainer

__all__ = ["RunSpec", "parse_betas", "parse_ints", "run_name", "grid", "plan", "Sweep",
           "NEW", "RESUME", "DONE", "RESTART"]

NEW, RESUME, DONE, RESTART = "new", "resume", "done", "restart"   # what `plan` finds for a run


def parse_betas(text: str) -> list[float]:
    """'0.1, 1,4' → [0.1, 1.0, 4.0]; ConfigError (one line) for anything else."""
    return _parse_list(text, float, "β", BETA_RANGE, "a number", " (e.g. 0.1,1,4)")


def parse_ints(text: str, what: str, bounds: tuple[int, int]) -> list[int]:
    """'2, 8' → [2, 8] for ``what`` (latent size, seed) within ``bounds``; ConfigError (one line)."""
    return _parse_list(text, int, what, bounds, "a whole number", "")


def _parse_list(text, convert, what, bounds, kind, example) -> list:
    lo, hi = bounds
    values = []
    for part in _parts(text):
        try:
            v = convert(part)
        except ValueError:
            raise ConfigError(f"each {what} must be {kind}, not {part!r}{example}") from None
        if not lo <= v <= hi:
            raise ConfigError(f"each {what} must be between {lo:g} and {hi:g}, not {part}")
        values.append(v)
    if not values:
        raise ConfigError(f"give at least one {what} value{example or ''}")
    if len(set(values)) != len(values):
        raise ConfigError(f"a {what} value is repeated in {text!r}")
    return values


def _parts(text) -> list[str]:
    return [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]


def run_name(beta: float, latent_dim: int | None = None, seed: int | None = None) -> str:
    """``beta-<β>`` for a plain β sweep (the folders the app's comparison reads); with a grid over latent
    size or seed, all three: ``beta-<β>_z-<latent>_seed-<seed>``."""
    if latent_dim is None and seed is None:
        return f"beta-{beta:g}"
    return f"beta-{beta:g}_z-{latent_dim}_seed-{seed}"


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its folder name and its settings."""
    name: str
    config: TrainConfig

    @property
    def beta(self) -> float:
        return float(self.config.beta)


def grid(config: TrainConfig, betas, latent_dims=None, seeds=None) -> list[RunSpec]:
    """Every combination of β × latent size × seed (β varying slowest), ``config`` for the rest."""
    config = config.validate()
    plain = not latent_dims and not seeds
    dims = list(latent_dims or [config.latent_dim])
    seed_list = list(seeds or [config.seed])
    specs = []
    for beta in betas:
        for d in dims:
            for s in seed_list:
                cfg = config.replace(beta=float(beta), latent_dim=int(d), seed=int(s)).validate()
                specs.append(RunSpec(run_name(beta) if plain else run_name(beta, d, s), cfg))
    return specs


_IGNORED_WHEN_COMPARING = ("epochs", "extra")   # a sweep given again may ask for more epochs


def plan(specs: list[RunSpec], out_dir) -> list[tuple[RunSpec, str]]:
    """What to do with each run in ``out_dir``: NEW (no folder, or an empty one), RESUME (some epochs
    finished), DONE (all its epochs), RESTART (a run folder with no finished epoch). ConfigError (one
    line) when a folder holds something else, or a run trained with other settings."""

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is a file: choose a folder for the sweep")
    result = []
    for spec in specs:
        d = out_dir / spec.name
        # empty, or only a lock: a new run (when another writer holds that lock, it refuses the run, not the sweep)
        if not d.exists() or (d.is_dir() and {e.name for e in os.scandir(d)} <= {runs.LOCK_FILE}):
            result.append((spec, NEW))
            continue
        if not (d / runs.CONFIG_FILE).is_file():
            raise ConfigError(f"{d} already exists and is not a run folder: choose a new sweep folder")
        try:
            run = runs.open_run(d)
        except runs.RunError as e:
            if "no finished epoch" not in str(e):
                raise ConfigError(f"{d} cannot be resumed ({e}); move it away or choose a new sweep folder") from None
            result.append((spec, RESTART))
            continue
        _check_same_settings(d, run.config, spec.config)
        result.append((spec, DONE if run.epochs_done >= spec.config.epochs else RESUME))
    return result


def _check_same_settings(path, have: TrainConfig, want: TrainConfig) -> None:
    a, b = have.to_dict(), want.to_dict()
    for key in sorted(set(a) | set(b)):
        if key not in _IGNORED_WHEN_COMPARING and a.get(key) != b.get(key):
            raise ConfigError(f"{path} holds a run with other settings ({key} {a.get(key)!r}, not {b.get(key)!r}): "
                              "choose a new sweep folder")


def finished_event(run_dir) -> Finished:
    """The Finished event a sweep publishes for a run that had all its epochs already (skipped)."""
    run = runs.open_run(run_dir)
    return Finished(run.epochs_done, False, f"already finished ({run.epochs_done} epochs)", str(run_dir),
                    list(run.history))


class Sweep:
    """Train ``config`` once per β (× latent size × seed) into ``out_dir/<run name>``, here, one run after
    another. ``run()`` blocks; ``stop()`` ends the current run cleanly (keeping its last finished epoch)
    and skips the rest. A run that fails is reported (its Failed event) and the next one goes on."""

    def __init__(self, config: TrainConfig, betas, out_dir, dataset=None, on_event=None,
                 model_pool: ModelPool | None = None, latent_dims=None, seeds=None):
        self.config = config.validate()
        # one model, re-initialised for each run: TensorFlow keeps memory for every model built
        self.model_pool = model_pool if model_pool is not None else ModelPool()
        self.betas = list(betas)
        self.specs = grid(self.config, self.betas, latent_dims, seeds)
        self.out_dir = Path(out_dir)
        self.dataset = dataset
        self.on_event = on_event or (lambda e: None)
        self.trainer: Trainer | None = None
        self._stopped = False
        self.results: list[tuple[float, Path, object]] = []

    def plan(self) -> list[tuple[RunSpec, str]]:
        return plan(self.specs, self.out_dir)

    def check_out_dir(self) -> list[tuple[RunSpec, str]]:
        """`plan`, raising ConfigError (one line) for a sweep folder that cannot be used."""
        return self.plan()

    def stop(self) -> None:
        self._stopped = True
        if self.trainer is not None:
            self.trainer.stop()

    def run(self) -> list:
        from latentlab import data as ld
        from latentlab.training.trainer import Trainer

        todo = self.plan()
        if self.dataset is None:
            self.dataset = ld.load_folder(self.config.dataset, image_size=self.config.image_size,
                                          color=self.config.color, background=self.config.background,
                                          fit=self.config.fit)
        for i, (spec, action) in enumerate(todo):
            if self._stopped:
                break
            run_dir = self.out_dir / spec.name
            self.on_event(SweepStep(i, len(todo), spec.beta, str(run_dir)))
            result: Finished | Failed
            if action == DONE:
                result = finished_event(run_dir)
                self.on_event(result)
            else:
                self.trainer = Trainer(spec.config, self.dataset, run_dir, self.on_event,
                                       model_pool=self.model_pool, resume=action == RESUME)
                if self._stopped:
                    self.trainer.stop()
                result = self.trainer.run()
            self.results.append((spec.beta, run_dir, result))
            if isinstance(result, Finished) and result.stopped:
                break
            # a Failed run was published with its reason; the others go on
        return self.results


def failures(results) -> list[str]:
    """One line per failed run of a sweep's results: '<run>: <reason>'."""
    return [f"{Path(str(d)).name}: {r.message}" for _, d, r in results if isinstance(r, Failed)]

"""β sweeps: one normal run folder per β, trained one after another on the same data,
seed and settings. Used by ``latentlab sweep`` and by the app's sweep worker."""

from __future__ import annotations

from pathlib import Path

from latentlab import runs
from latentlab.config import BETA_RANGE, ConfigError, TrainConfig
from latentlab.events import Failed, Finished, SweepStep
from latentlab.pool import ModelPool
from latentlab.train import Trainer


def parse_betas(text: str) -> list[float]:
    """'0.1, 1,4' → [0.1, 1.0, 4.0]; ConfigError (one line) for anything else."""
    values = []
    for part in str(text).replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            v = float(part)
        except ValueError:
            raise ConfigError(f"each β must be a number, not {part!r} (e.g. 0.1,1,4)") from None
        if not BETA_RANGE[0] <= v <= BETA_RANGE[1]:
            raise ConfigError(f"each β must be between {BETA_RANGE[0]:g} and {BETA_RANGE[1]:g}, not {part}")
        values.append(v)
    if not values:
        raise ConfigError("give at least one β value, e.g. 0.1,1,4")
    if len(set(values)) != len(values):
        raise ConfigError(f"a β value is repeated in {text!r}")
    return values


def run_name(beta: float) -> str:
    return f"beta-{beta:g}"


class Sweep:
    """Train ``config`` once per β into ``out_dir/beta-<β>``. ``run()`` blocks; ``stop()`` ends the
    current run cleanly (keeping its last finished epoch) and skips the rest."""

    def __init__(self, config: TrainConfig, betas, out_dir, dataset=None, on_event=None,
                 model_pool: ModelPool | None = None):
        self.config = config.validate()
        # one model, re-initialised for each β: TensorFlow keeps memory for every model built
        self.model_pool = model_pool if model_pool is not None else ModelPool()
        self.betas = list(betas)
        self.out_dir = Path(out_dir)
        self.dataset = dataset
        self.on_event = on_event or (lambda e: None)
        self.trainer: Trainer | None = None
        self._stopped = False
        self.results: list[tuple[float, Path, object]] = []

    def check_out_dir(self) -> None:
        for beta in self.betas:
            d = self.out_dir / run_name(beta)
            if d.exists() and not runs.is_empty_folder(d):
                raise ConfigError(f"{d} already exists and is not empty: choose a new sweep folder")

    def stop(self) -> None:
        self._stopped = True
        if self.trainer is not None:
            self.trainer.stop()

    def run(self) -> list:
        from latentlab import data as ld

        self.check_out_dir()
        if self.dataset is None:
            self.dataset = ld.load_folder(self.config.dataset, image_size=self.config.image_size,
                                          color=self.config.color)
        for i, beta in enumerate(self.betas):
            if self._stopped:
                break
            run_dir = self.out_dir / run_name(beta)
            self.on_event(SweepStep(i, len(self.betas), beta, str(run_dir)))
            self.trainer = Trainer(self.config.replace(beta=beta), self.dataset, run_dir, self.on_event,
                                   model_pool=self.model_pool)
            if self._stopped:
                self.trainer.stop()
            result = self.trainer.run()
            self.results.append((beta, run_dir, result))
            if isinstance(result, Failed) or (isinstance(result, Finished) and result.stopped):
                break
        return self.results

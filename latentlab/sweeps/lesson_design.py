"""The lesson's design (see `latentlab.sweeps.lesson` for why it is made so): the β values, seeds, epochs and
step sizes of the sweep, and where its shared start lives."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from latentlab.config import ConfigError

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


def design_for_sweep(betas: Iterable[float], epochs: int, seed: int = 0) -> Design:
    """The lesson's design for a user's sweep of ``epochs`` epochs per β: a shared start of about two
    thirds of them at the smallest β, then the rest at each β (at least one epoch each), on all the
    images with the user's batch size."""
    warm = max(1, round(int(epochs) * 2 / 3))
    return Design(betas=tuple(float(b) for b in betas), seeds=(int(seed),), warm_epochs=warm,
                  epochs=max(1, int(epochs) - warm), max_images=10**9, min_batches=0, learning_rate=None,
                  settle_learning_rate=None).validate()


SHARED_START_DIR = "warm-start"   # the designed sweep's shared start, one run per seed, inside its folder


def is_shared_start(run_dir: str | Path | None) -> bool:
    """Whether ``run_dir`` is a designed sweep's shared start (not one of its β runs)."""
    return run_dir is not None and Path(run_dir).parent.name == SHARED_START_DIR

"""Continuing a run: the rules `latentlab train --resume` and the app's *Continue training* share, and the
β a run ended at.

β belongs to the run's history, not only to config.json (which keeps the β the run started with): β may
change while a run trains (the app's slider), and each history row records the β set for that epoch
(``beta_target``; ``beta`` is the β in effect after the KL schedule's factor). A run continues at the β
it last trained at, and its label says so ("β 33.9, from 1 at epoch 6").
"""

from __future__ import annotations

import math
from pathlib import Path

from latentlab.config import ConfigError, TrainConfig
from latentlab.runs.folder import Run

__all__ = ["last_beta", "beta_changes", "beta_label", "continue_config", "KEPT_ON_CONTINUE"]

# what a person may change when a run goes on; the model's own settings stay the run's
KEPT_ON_CONTINUE = ("epochs", "beta", "batch_size", "learning_rate")


def _row_beta(row: dict, config: TrainConfig) -> float | None:
    """The β set for the epoch of ``row``: its ``beta_target``; for runs written before that column, its
    ``beta`` where no schedule scales it (a constant schedule), else None."""
    value = row.get("beta_target")
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    if config.kl_schedule == "constant" and row.get("beta") is not None:
        return float(row["beta"])
    return None


def last_beta(config: TrainConfig, history: list[dict]) -> float:
    """The β the run last trained at (config.json's β for a run with no epoch)."""
    for row in reversed(history):
        beta = _row_beta(row, config)
        if beta is not None:
            return beta
    return float(config.beta)


def beta_changes(config: TrainConfig, history: list[dict]) -> list[tuple[int, float]]:
    """(epoch, β) for every epoch whose β differs from the epoch before (the first epoch's β against
    config.json's): where a plot marks a β change."""
    out: list[tuple[int, float]] = []
    prev = float(config.beta)
    for row in history:
        beta = _row_beta(row, config)
        if beta is None:
            continue
        if not math.isclose(beta, prev, rel_tol=1e-6):
            out.append((int(row.get("epoch", len(out) + 1)), beta))
        prev = beta
    return out


def beta_label(config: TrainConfig, history: list[dict]) -> str:
    """"β 1" for a run trained at one β; "β 33.9, from 1 at epoch 6" when β changed (the last change)."""
    end = last_beta(config, history)
    changes = beta_changes(config, history)
    if not changes:
        return f"β {end:g}"
    if len(changes) == 1:
        return f"β {end:g}, from {float(config.beta):g} at epoch {changes[0][0]}"
    return f"β {end:g}, from {float(config.beta):g}, changed {len(changes)} times (last at epoch {changes[-1][0]})"


def continue_config(run: Run, changes: dict | None = None, dataset_root: str | Path | None = None,
                    image_hw: tuple[int, int] | None = None) -> TrainConfig:
    """The TrainConfig that trains ``run`` (a `latentlab.runs.folder.Run`) further: its own config, at the β it last
    trained at, with ``changes`` (only the keys of KEPT_ON_CONTINUE; None values ignored) and, with
    ``dataset_root``, that dataset. ConfigError (one line) when it cannot go on: ``image_hw`` (the dataset's
    height and width) differs from the run's images, or epochs do not go past the epochs it has."""
    keep = {k: v for k, v in (changes or {}).items() if k in KEPT_ON_CONTINUE and v is not None}
    keep.setdefault("beta", last_beta(run.config, run.history))
    cfg = run.config.replace(**keep)
    if dataset_root is not None:
        cfg = cfg.replace(dataset=str(Path(dataset_root).expanduser().resolve()))
    cfg = cfg.validate()
    done = len(run.history)
    if image_hw is not None and cfg.image_size is not None and list(cfg.image_size) != list(image_hw):
        h, w = image_hw
        raise ConfigError(f"{run.path} was trained on {cfg.image_size[0]}×{cfg.image_size[1]} images but "
                          f"{cfg.dataset} gives {h}×{w}: open the run's dataset to continue it")
    if cfg.epochs <= done:
        raise ConfigError(f"{run.path} has {done} epoch{'s' if done != 1 else ''} already: ask for more than "
                          f"{done} epochs in all to continue it")
    return cfg

"""`TrainConfig`: every setting of a run, from the form to the trainer to ``config.json`` and back."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

KL_SCHEDULES = ("constant", "linear", "cyclical", "free-bits", "capacity")
LIKELIHOODS = ("bernoulli", "gaussian")
COLORS = ("auto", "gray", "rgb")
BACKGROUNDS = ("auto", "white", "black", "alpha")   # what transparent pixels become (latentlab.data)
FITS = ("pad", "crop", "stretch")                   # how an image of another shape is brought to the size
# Every range a setting may take: the one source for the form, the app's and the CLI's flags, the trainer
# and config.json. A form may offer a narrower slider (β's runs 0.01-100 on a log scale), never a
# narrower value: a run trained headless with β = 500 shows β = 500 when it is reopened.
BETA_RANGE = (0.0, 1000.0)
BETA_SLIDER_RANGE = (0.01, 100.0)   # the form's log slider; its spin box takes all of BETA_RANGE
LATENT_RANGE = (1, 64)
EPOCHS_RANGE = (1, 100_000)
BATCH_RANGE = (1, 65_536)
LR_RANGE = (1e-7, 10.0)
HIDDEN_RANGE = (0, 4096)   # 0: automatic (latentlab.model.vae.architecture)
AUTO_HIDDEN_UNITS = 128    # the encoder's dense width when hidden_units is 0 (at least 2× the latent size)
IMAGE_SIDE_RANGE = (8, 128)
WARMUP_RANGE = (1, 10_000)
VAL_FRACTION_RANGE = (0.0, 0.5)
SIGMA_RANGE = (1e-3, 10.0)
SEED_RANGE = (0, 2**31 - 1)
FREE_BITS_RANGE = (0.0, 100.0)      # λ, nats per latent dimension
CAPACITY_RANGE = (0.0, 10_000.0)    # C at the end of its ramp, nats per image


class ConfigError(ValueError):
    """A setting is invalid. ``str(e)`` is one line that names the setting and what to do."""


def check_beta(beta: object) -> float:
    """β as a float within BETA_RANGE (finite), or ConfigError with one line."""
    import math

    try:
        value = float(beta)   # type: ignore[arg-type]  # anything float() takes; the rest is caught below
    except (TypeError, ValueError):
        raise ConfigError(f"beta must be a number, not {beta!r}") from None
    lo, hi = BETA_RANGE
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"beta must be a number between {lo:g} and {hi:g}, not {beta}")
    return value


@dataclass
class TrainConfig:
    dataset: str = ""
    image_size: list[int] | None = None     # [height, width]; None = the folder's most common size (≤ 64)
    color: str = "auto"                     # auto | gray | rgb
    background: str = "auto"                # auto | white | black | alpha: what transparent pixels become
    fit: str = "pad"                        # pad | crop | stretch: how other shapes reach the size
    latent_dim: int = 2
    hidden_units: int = 0                   # the encoder's dense layer; 0 = automatic (128 for small images)
    beta: float = 1.0
    kl_schedule: str = "constant"           # constant | linear (warm-up) | cyclical
    warmup_epochs: int = 5                  # linear: epochs to reach β; cyclical: one cycle; capacity: C's ramp
    free_bits: float = 0.5                  # free-bits: the KL floor λ of each latent dimension (nats)
    capacity: float = 25.0                  # capacity: C, reached after warmup_epochs (nats per image)
    epochs: int = 10
    batch_size: int = 64                    # with 128 hidden units: the classic recipe's 5-epoch ELBO in 1 epoch
    learning_rate: float = 1e-3
    likelihood: str = "bernoulli"           # bernoulli | gaussian
    gaussian_sigma: float = 0.1
    val_fraction: float = 0.1
    seed: int = 0
    mixed_precision: bool = False
    extra: dict = field(default_factory=dict)  # free-form notes (e.g. who made the run); never interpreted

    # -- checks -----------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        def in_range(name: str, value: float, lo: float, hi: float, what: str) -> None:
            if not lo <= value <= hi:
                raise ConfigError(f"{name} must be {what} between {lo:g} and {hi:g}, not {value:g}")

        in_range("beta", self.beta, *BETA_RANGE, "a number")
        in_range("latent size", self.latent_dim, *LATENT_RANGE, "a whole number")
        in_range("hidden units", self.hidden_units, *HIDDEN_RANGE, "a whole number (0 = automatic)")
        in_range("epochs", self.epochs, *EPOCHS_RANGE, "a whole number")
        in_range("batch size", self.batch_size, *BATCH_RANGE, "a whole number")
        in_range("learning rate", self.learning_rate, *LR_RANGE, "a number")
        in_range("warm-up epochs", self.warmup_epochs, *WARMUP_RANGE, "a whole number")
        in_range("validation fraction", self.val_fraction, *VAL_FRACTION_RANGE, "a number")
        in_range("gaussian sigma", self.gaussian_sigma, *SIGMA_RANGE, "a number")
        in_range("free bits", self.free_bits, *FREE_BITS_RANGE, "a number of nats per dimension")
        in_range("capacity", self.capacity, *CAPACITY_RANGE, "a number of nats")
        if self.image_size is not None:
            if len(self.image_size) != 2:
                raise ConfigError(f"image size must be one number or HEIGHTxWIDTH, not {self.image_size}")
            for side in self.image_size:
                in_range("image size", side, *IMAGE_SIDE_RANGE, "pixels per side")
        for name, value, allowed in (("kl schedule", self.kl_schedule, KL_SCHEDULES),
                                     ("likelihood", self.likelihood, LIKELIHOODS),
                                     ("color", self.color, COLORS),
                                     ("background", self.background, BACKGROUNDS),
                                     ("fit", self.fit, FITS)):
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        return self

    # -- (de)serialisation ------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Strict: unknown keys and wrong types are refused, nothing is half-applied."""
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a JSON object, not {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
        # a run saved before these settings existed was loaded that way (transparency on black, stretched):
        # reopening or resuming it must see the same images
        kwargs: dict[str, Any] = {"background": "black", "fit": "stretch"}
        for name, value in data.items():
            kwargs[name] = _check_type(name, value, str(fields[name].type))   # (annotations are strings here)
        return cls(**kwargs).validate()

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config is not valid JSON ({e.msg} at line {e.lineno})") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def kl_factor(schedule: str, t: float, period: int) -> float:
    """What a KL schedule means: the fraction of β applied at (fractional) epoch ``t``.

    constant: 1; linear: warm-up from 0 to 1 over ``period`` epochs; cyclical: repeat that
    ramp every ``period`` epochs, rising over the first half of each cycle, then flat at 1
    (Fu et al., 2019). free-bits and capacity change the KL term itself (`kl_objective`), not β: 1."""
    if schedule in ("constant", "free-bits", "capacity"):
        return 1.0
    if schedule == "linear":
        return min(1.0, t / period)
    if schedule == "cyclical":
        phase = (t % period) / period
        return min(1.0, phase / 0.5)
    raise ConfigError(f"kl schedule must be one of {', '.join(KL_SCHEDULES)}, not {schedule!r}")


def kl_objective(schedule: str, t: float, period: int, free_bits: float, capacity: float) -> tuple[float, float]:
    """The KL term's shape at (fractional) epoch ``t``: (λ, C). The loss is recon + β·K with

    - K = Σ_d max(λ, KL_d), KL_d the batch's mean KL in dimension d (free bits, Kingma et al. 2016): a
      dimension below λ nats costs nothing more, so the encoder may use it freely; λ = 0 is the plain KL;
    - K = |KL − C| with C rising linearly from 0 to ``capacity`` over ``period`` epochs (controlled capacity,
      Burgess et al. 2018; β plays their γ): the KL is steered towards C. C < 0: off.

    Other schedules: (0, −1), the plain KL."""
    if schedule == "free-bits":
        return float(free_bits), -1.0
    if schedule == "capacity":
        return 0.0, float(capacity) * min(1.0, t / period)
    return 0.0, -1.0


def _check_type(name: str, value: Any, annotation: str) -> Any:
    """Check a JSON value against the field's annotation (a string, thanks to __future__)."""
    def bad(expected: str) -> ConfigError:
        raise ConfigError(f"config key {name!r} must be {expected}, not {type(value).__name__} {value!r}")

    if annotation == "str":
        if not isinstance(value, str):
            bad("a string")
    elif annotation == "bool":
        if not isinstance(value, bool):
            bad("true or false")
    elif annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            bad("a whole number")
    elif annotation == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad("a number")
        value = float(value)
    elif annotation == "dict":
        if not isinstance(value, dict):
            bad("an object")
    elif annotation == "list[int] | None":
        if value is not None:
            if (not isinstance(value, list) or len(value) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
                bad("null or [height, width]")
    else:  # pragma: no cover - a new field without a check
        raise AssertionError(f"no type check for {annotation}")
    return value


def parse_image_size(text: str | int | None) -> list[int] | None:
    """'28' → [28, 28]; '32x48' → [32, 48]; None/'' /'auto' → None."""
    if text is None or text == "" or text == "auto":
        return None
    if isinstance(text, int):
        return [text, text]
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        sides = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"image size must be a number or HEIGHTxWIDTH (e.g. 28 or 32x48), not {text!r}") from None
    if len(sides) == 1:
        sides = sides * 2
    if len(sides) != 2:
        raise ConfigError(f"image size must be a number or HEIGHTxWIDTH, not {text!r}")
    return sides

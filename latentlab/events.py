"""What a training publishes while it runs: plain Python objects holding numbers and numpy arrays
(never tensors), so that any thread, the CLI, the GUI and the tests can read them.

A `latentlab.training.trainer.Trainer` publishes ``Started``, then ``BatchEnd`` (and now and then
``WeightsSnapshot``) per batch and ``EpochEnd`` per finished epoch, then ``Finished`` or ``Failed``.
A sweep (`latentlab.sweeps.sweep`) publishes a ``SweepStep`` before each of its runs; a sweep whose runs train
at the same time (`latentlab.sweeps.cluster`) wraps each run's events in a ``RunEvent`` that names the run.
A lesson (`latentlab.sweeps.lesson`) publishes a ``LessonRunDone`` as each β's run is trained and evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

__all__ = ["Started", "BatchEnd", "EpochEnd", "WeightsSnapshot", "Finished", "Failed", "SweepStep", "RunEvent",
           "to_wire", "from_wire", "LessonRunDone"]


@dataclass
class Started:
    device: str
    epochs: int
    initial_epoch: int
    steps_per_epoch: int
    num_train: int
    num_val: int
    image_shape: tuple
    run_dir: str | None


@dataclass
class BatchEnd:
    epoch: int            # 0-based index of the running epoch
    step: int             # batches done in this epoch (1-based)
    steps: int            # batches per epoch
    logs: dict            # running means of this epoch: loss, reconstruction_loss, kl_loss, neg_elbo
    beta: float           # the β used for this batch
    images_per_second: float
    eta_seconds: float    # until the last epoch ends


@dataclass
class EpochEnd:
    epoch: int                      # epochs finished so far (1-based)
    logs: dict                      # train and val_ metrics of this epoch
    beta: float
    kl_per_dim: np.ndarray          # mean KL of each latent dimension over the epoch's training batches
    active_units: int
    val_z_mean: np.ndarray
    val_z_log_var: np.ndarray
    val_indices: np.ndarray         # indices into the dataset of the validation images
    decoder_weights: list
    seconds: float
    history: list                   # all rows so far (dicts, as in history.csv)


@dataclass
class WeightsSnapshot:
    """The decoder's weights mid-epoch, so views can follow training between epochs."""
    epoch: int
    step: int
    decoder_weights: list


@dataclass
class Finished:
    epochs_done: int
    stopped: bool         # True when stopped by request before the last epoch
    message: str
    run_dir: str | None
    history: list = field(default_factory=list)


@dataclass
class Failed:
    message: str
    epochs_done: int
    run_dir: str | None


@dataclass
class SweepStep:
    """Published by a sweep before each of its runs starts."""
    index: int
    total: int
    beta: float
    run_dir: str


@dataclass
class LessonRunDone:
    """Published by a lesson as one β's run (one seed) is trained and evaluated, before the next starts:
    ``result`` is its row of the summary to come (beta, seed, run_dir, rate, distortion, prior_samples …,
    plain numbers and strings); ``index`` of ``total`` runs (the shared starts counted)."""
    index: int
    total: int
    result: dict


@dataclass
class RunEvent:
    """One event of one run of a sweep whose runs train at the same time (on a Dask cluster): ``event``
    is that run's Started, BatchEnd, EpochEnd, Finished or Failed. An EpochEnd from a worker carries no
    decoder weights (an empty list); its history is the run's, all rows so far."""
    run: str              # the run's folder name in the sweep folder
    beta: float
    run_dir: str          # on the machine that started the sweep
    event: object
    worker: str = ""      # the Dask worker it trains on ('' when not known)


# -- on the wire ------------------------------------------------------------------------------------------
# A Dask worker sends a run's events to the client as plain dicts (msgpack-safe: str, numbers, bytes, lists,
# dicts), made from the dataclass's own fields, so that a field added to an event travels with no other edit.
_WIRE = {cls.__name__: cls for cls in (Started, BatchEnd, EpochEnd, WeightsSnapshot, Finished, Failed, SweepStep)}
_ARRAY, _TUPLE = "__ndarray__", "__tuple__"


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        return {_ARRAY: a.tobytes(), "dtype": a.dtype.str, "shape": list(a.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if _ARRAY in value:
            return np.frombuffer(value[_ARRAY], np.dtype(value["dtype"])).reshape(value["shape"]).copy()
        if _TUPLE in value:
            return tuple(_decode(v) for v in value[_TUPLE])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def to_wire(event: Any, **replace: Any) -> dict:
    """``event`` (one of this module's events but RunEvent) as a plain dict: ``{"event": class name, field:
    value, ...}``; numpy arrays as their bytes, dtype and shape, numpy scalars as Python numbers. ``replace``
    sends other values for some fields (e.g. ``decoder_weights=[]`` to leave the weights behind)."""
    name = type(event).__name__
    if _WIRE.get(name) is not type(event):
        raise TypeError(f"{name} does not travel on the wire")
    unknown = set(replace) - {f.name for f in fields(event)}
    if unknown:
        raise TypeError(f"{name} has no field {sorted(unknown)}")
    values = {f.name: replace[f.name] if f.name in replace else getattr(event, f.name) for f in fields(event)}
    return {"event": name, **{k: _encode(v) for k, v in values.items()}}


def from_wire(wire: dict, **replace: Any) -> Any:
    """The event that ``to_wire`` made ``wire`` from (arrays, tuples and dicts as they were sent);
    ``replace`` sets some fields to other values (e.g. ``run_dir`` on the machine that receives it)."""
    cls = _WIRE.get(str(wire.get("event")))
    if cls is None:
        raise ValueError(f"not an event on the wire: {wire.get('event')!r}")
    values = {f.name: _decode(wire[f.name]) for f in fields(cls) if f.name in wire}
    return cls(**{**values, **replace})

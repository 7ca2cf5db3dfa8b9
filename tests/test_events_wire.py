"""Events on the Dask wire: events.to_wire / from_wire, made from the dataclasses' fields, round-trip every
field (numpy arrays with their dtype and shape, tuples, numpy scalars as Python numbers) and only plain types
travel."""

import dataclasses

import numpy as np
import pytest

from latentlab.events import BatchEnd, EpochEnd, Failed, Finished, RunEvent, Started, from_wire, to_wire


def _plain(value):
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool, bytes))


def _epoch_end():
    rng = np.random.default_rng(0)
    return EpochEnd(epoch=3, logs={"loss": np.float32(1.5), "val_loss": 2.0}, beta=np.float64(0.5),
                    kl_per_dim=rng.random(4).astype(np.float32), active_units=np.int64(2),
                    val_z_mean=rng.normal(size=(5, 4)).astype(np.float32),
                    val_z_log_var=rng.normal(size=(5, 4)), val_indices=np.arange(5, dtype=np.int64),
                    decoder_weights=[rng.random((2, 3))], seconds=1.25,
                    history=[{"epoch": 1, "loss": np.float32(3.0)}, {"epoch": 2, "loss": 2.5}])


def _same(a, b):
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray) and y.dtype == x.dtype and np.array_equal(x, y), f.name
        elif f.name == "decoder_weights":
            assert len(x) == len(y) and all(np.array_equal(p, q) for p, q in zip(x, y, strict=True))
        else:
            assert x == y and type(y) is type(x if not isinstance(x, np.generic) else x.item()), f.name


@pytest.mark.parametrize("event", [
    Started("CPU", 4, 1, 10, 300, 100, (28, 28, 1), "/somewhere/run"),
    BatchEnd(0, 5, 10, {"loss": 1.0}, 1.0, 1200.0, 3.5),
    _epoch_end(),
    Finished(4, False, "done", "/r", [{"epoch": 1, "loss": 1.0}]),
    Failed("boom", 2, None),
])
def test_round_trip_every_field(event):
    wire = to_wire(event)
    assert wire["event"] == type(event).__name__ and _plain(wire), wire
    _same(event, from_wire(wire))


def test_replace_on_either_side():
    ev = _epoch_end()
    back = from_wire(to_wire(ev, decoder_weights=[]))
    assert back.decoder_weights == [] and np.array_equal(back.val_z_log_var, ev.val_z_log_var)
    started = from_wire(to_wire(Started("CPU", 1, 0, 1, 1, 1, (2, 2, 1), "/worker/tmp")), run_dir="/client/run")
    assert started.run_dir == "/client/run" and started.image_shape == (2, 2, 1)
    with pytest.raises(TypeError, match="no field"):
        to_wire(ev, weights=[])
    with pytest.raises(TypeError, match="does not travel"):
        to_wire(RunEvent("r", 1.0, "/r", ev))
    with pytest.raises(ValueError, match="not an event"):
        from_wire({"event": "Nope"})

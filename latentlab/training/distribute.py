"""One host, several devices: ``tf.distribute.MirroredStrategy`` for `latentlab.training.trainer.Trainer`.

``latentlab train DIR --strategy mirrored`` trains on every visible GPU (``--devices N`` for fewer): one
replica per device, each with a slice of the batch the user gave (the global batch), gradients summed
across replicas. The model and its optimizer are built in ``strategy.scope()``; `latentlab.model.vae.VAE`
weights each replica's loss by its share of the global batch for the gradient and gives the trackers
the unscaled values; each image's sampling noise is keyed by its index (`latentlab.model.keyed_normal`),
so N replicas train the model one device trains.

``--cpu-replicas N`` splits the CPU into N logical devices (before TensorFlow initialises its devices), so
that the mirrored strategy runs, and is tested, on a machine without GPUs.

MultiWorkerMirroredStrategy is not offered: it is broken under Keras 3 (keras-team/keras#20585). Across
machines the unit of work is a whole run (`latentlab.sweeps.cluster`).
"""

from __future__ import annotations

__all__ = ["STRATEGIES", "StrategyError", "split_cpu", "visible_gpus", "make_strategy", "describe"]

STRATEGIES = ("default", "mirrored")


class StrategyError(ValueError):
    """A strategy cannot be set up as asked. ``str(e)`` is one line."""


def split_cpu(replicas: int) -> None:
    """Make the CPU appear as ``replicas`` logical devices. Must run before TensorFlow initialises its
    devices (before any op runs); afterwards it is refused with one line."""
    from latentlab.tfquiet import import_tensorflow

    tf = import_tensorflow()
    replicas = int(replicas)
    if replicas < 1:
        raise StrategyError(f"--cpu-replicas must be at least 1, not {replicas}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != replicas:
            raise StrategyError(f"TensorFlow has started with {have} CPU device(s) already; --cpu-replicas "
                                "must be set before anything trains in this process") from None


def visible_gpus() -> int:
    """How many GPUs TensorFlow sees (0 on a machine without one)."""
    from latentlab.tfquiet import import_tensorflow, quiet_stderr

    tf = import_tensorflow()
    with quiet_stderr():
        return len(tf.config.list_physical_devices("GPU"))


def make_strategy(name: str = "default", devices: int = 0):
    """None for ``default`` (one device, TensorFlow's own placement); a MirroredStrategy over the first
    ``devices`` GPUs (0: all of them), or over the CPU's logical devices when there is no GPU and the
    CPU was split (`split_cpu`). StrategyError (one line) when there is nothing to mirror over."""
    if name not in STRATEGIES:
        raise StrategyError(f"strategy must be one of {', '.join(STRATEGIES)}, not {name!r}")
    if name == "default":
        return None
    from latentlab.tfquiet import import_tensorflow, quiet_stderr

    tf = import_tensorflow()
    with quiet_stderr():
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    kind = "GPU" if gpus else "CPU"
    names = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    devices = int(devices or 0)
    if devices < 0 or devices > len(names):
        raise StrategyError(f"--devices {devices}: this machine has {len(names)} {kind} device(s)"
                            + ("" if gpus else " (split the CPU with --cpu-replicas N)"))
    chosen = names[:devices] if devices else names
    if kind == "CPU" and len(chosen) < 2:
        raise StrategyError("--strategy mirrored needs GPUs, or the CPU split into replicas with --cpu-replicas N "
                            "(no GPU is visible here)")
    # Between CPU devices NCCL does not exist: reduce on one device. Between GPUs, TensorFlow's choice (NCCL).
    ops = tf.distribute.ReductionToOneDevice() if kind == "CPU" else None
    with quiet_stderr():
        return tf.distribute.MirroredStrategy(chosen, cross_device_ops=ops)


def describe(strategy, device: str) -> str:
    """The device line a run shows: the device, or 'mirrored over N replicas of <device>'."""
    if strategy is None:
        return device
    n = strategy.num_replicas_in_sync
    kind = "GPU" if device.startswith("GPU") else "CPU"
    return f"{device}, mirrored over {n} {kind} replica{'s' if n != 1 else ''}"

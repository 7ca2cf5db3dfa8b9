"""What a run's extra logging costs a training: TensorBoard event files (`latentlab.training.tensorboard_logs`) and
the per-epoch −log p(x) estimate (`latentlab.model.likelihood`, via `latentlab.training.callbacks.LikelihoodEstimate`).

Three measures, side by side in one process:

- direct: every epoch-end callback of a training with a run folder (the shipped defaults) is timed, so
  each extra's milliseconds per epoch are set against that epoch's own seconds (the same epoch: the
  machine's load falls on both);
- per batch: the median batch (from one BatchEnd to the next) with the extras and without, taking turns
  run by run, in ABBA order: what they cost between epochs (nothing is written there);
- A/B: the median epoch (from one EpochEnd to the next, so the callbacks after the checkpoint count) with
  and without; on a loaded machine the noisiest of the three (an epoch's checkpoint writes vary most).

    python -m benchmarks.run_logging --images 12000 --epochs 3 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import log

__all__ = ["bench_logging"]


def _timed_trainer():
    from latentlab.training.trainer import Trainer

    class TimedTrainer(Trainer):
        """Records each epoch-end callback's seconds per epoch (by class name)."""

        def _callbacks(self):
            out = super()._callbacks()
            self.callback_seconds = {}
            for cb in out:
                name, inner = type(cb).__name__, cb.on_epoch_end

                def timed(epoch, logs=None, _name=name, _inner=inner):
                    t0 = time.perf_counter()
                    try:
                        return _inner(epoch, logs)
                    finally:
                        self.callback_seconds.setdefault(_name, []).append(time.perf_counter() - t0)
                cb.on_epoch_end = timed
            return out

    return TimedTrainer


def bench_logging(x, y, images: int, epochs: int, rounds: int, seed: int = 0) -> dict:
    from latentlab.config import TrainConfig
    from latentlab.data import Dataset
    from latentlab.events import BatchEnd, EpochEnd
    from latentlab.model.pool import ModelPool

    ds = Dataset.from_arrays(x[:images], y[:images], root="fashion-mnist")
    cfg = TrainConfig(dataset="fashion-mnist", epochs=epochs, seed=seed)   # the defaults: 10 % validation
    pool = ModelPool()                       # both variants reuse one traced model: no build in the timing
    Timed = _timed_trainer()
    tmp = Path(tempfile.mkdtemp(prefix="latentlab-bench-logging-"))
    epoch_s = {"shipped": [], "plain": []}
    batch_s = {"shipped": [], "plain": []}
    extra_ms = {"tensorboard": [], "likelihood": []}
    shares = {"tensorboard": [], "likelihood": []}
    n = 0
    for r in range(rounds):
        for variant in (("shipped", "plain") if r % 2 == 0 else ("plain", "shipped")):   # ABBA: order falls alike
            ends, batches = [], []
            on = variant == "shipped"

            def on_event(ev, ends=ends, batches=batches):
                now = time.perf_counter()
                if isinstance(ev, EpochEnd):
                    ends.append(now)
                elif isinstance(ev, BatchEnd):
                    batches.append((ev.epoch, ev.step, now))

            tr = Timed(cfg, ds, tmp / f"{variant}-{r}", on_event=on_event, latents_every_epoch_max=0, model_pool=pool,
                       tensorboard=on, likelihood_samples=None if on else 0)
            tr.run()
            n = tr.likelihood_idx.size if on else n
            gaps = [b - a for a, b in zip(ends, ends[1:])]       # epoch 2 on: the first traces
            epoch_s[variant] += gaps
            batch_s[variant] += [t1 - t0 for (e0, _, t0), (e1, s1, t1) in zip(batches, batches[1:])
                                 if e1 == e0 and e1 > 0 and s1 > 1]   # within an epoch, after the first
            if on:
                cs = tr.callback_seconds
                tb = [a + b for a, b in zip(cs["EpochScalars"], cs["EpochPictures"])]
                lik = cs["LikelihoodEstimate"]
                for k, (t, g) in enumerate(zip(tb[1:], gaps)):
                    extra_ms["tensorboard"].append(t * 1000)
                    shares["tensorboard"].append(t / g)
                    extra_ms["likelihood"].append(lik[k + 1] * 1000)
                    shares["likelihood"].append(lik[k + 1] / g)
            log(f"logging round {r + 1} {variant}: epochs {', '.join(f'{g:.2f}' for g in gaps)} s")
    med = {k: statistics.median(v) for k, v in epoch_s.items()}
    batch_ms = {k: statistics.median(v) * 1000 for k, v in batch_s.items()}
    return {"logging_images": images, "logging_epoch_s": med, "logging_batch_ms": batch_ms,
            "logging_batch_overhead": batch_ms["shipped"] / batch_ms["plain"] - 1.0,
            "tensorboard_ms_per_epoch": statistics.median(extra_ms["tensorboard"]),
            "tensorboard_share_of_epoch": statistics.median(shares["tensorboard"]),
            "likelihood_ms_per_epoch": statistics.median(extra_ms["likelihood"]),
            "likelihood_share_of_epoch": statistics.median(shares["likelihood"]),
            "likelihood_training_images": int(n),
            "logging_overhead_ab": med["shipped"] / med["plain"] - 1.0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=12_000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json")
    args = p.parse_args(argv)
    from benchmarks import fashion_mnist

    x, y = fashion_mnist.load("train")
    res = bench_logging(x, y, args.images, args.epochs, args.rounds)
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

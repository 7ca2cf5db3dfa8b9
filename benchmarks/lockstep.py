"""Training throughput in lockstep: two training processes taking turns every few batches.

The bench's "shipped" section: latentlab as shipped against the classic recipe as a user runs it, each
in its own process.

latentlab sets TensorFlow options before TensorFlow is imported (``tfquiet.configure_environment``:
oneDNN kernels on x86-64), and those hold for a whole process. The benchmark's main training section
runs every participant in one process, so its ratio compares the two at the *same* kernels. Here the
reference runs where latentlab was never imported, with TensorFlow's own defaults (the keras.io
example's situation), and latentlab's Trainer runs as the app and ``latentlab train`` run it.

Only one of the two computes at any time: a child prints a slice record and blocks on its stdin until
the parent sends the next turn, so the machine's speed swings fall on both sides of each pair.

    python -m benchmarks.lockstep shipped [--epochs 5 --slice 40 --n-train 60000]   # the bench's "shipped" section
    python -m benchmarks.lockstep onednn [--shape 64x64x3 --model defaults]        # does oneDNN pay on this CPU?
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.common import Turns, paired_ratio

SIDES = ("reference", "latentlab")


# -- the child: one side, one process -------------------------------------------------------------------
def _say(record: dict) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _say_slice(epoch: int, images: int, seconds: float) -> None:
    _say({"epoch": epoch, "images": images, "seconds": seconds})


def wait_turn() -> None:
    if not sys.stdin.readline():       # the parent is gone: stop at once
        os._exit(3)


def images(n_train: int, shape: tuple[int, int, int]):
    """Fashion-MNIST's first ``n_train`` training images; for another shape, scaled up 2x, padded and
    given per-channel tints (for throughput only: real pictures' sizes, not real pictures)."""
    import numpy as np

    from benchmarks import fashion_mnist

    x, y = fashion_mnist.load("train")
    x, y = x[:n_train], y[:n_train]
    if shape == (28, 28, 1):
        return x, y
    h, w, c = shape
    big = x.repeat(2, axis=1).repeat(2, axis=2)[:, :h, :w]
    out = np.zeros((len(x), h, w, c), np.float32)
    out[:, :big.shape[1], :big.shape[2]] = big * np.linspace(1.0, 0.6, c, dtype=np.float32)
    return out, y


def child(side: str, epochs: int, slice_steps: int, n_train: int, seed: int,
          shape: tuple[int, int, int] = (28, 28, 1), model: str = "equal") -> None:
    x, y = images(n_train, shape)
    if side == "reference":
        # TensorFlow as the keras.io example gets it: nothing of latentlab imported in this process
        import keras

        from benchmarks import reference_vae

        turns = Turns(128, len(x), slice_steps, _say_slice, wait_turn)
        steps = -(-len(x) // 128)

        class Cb(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                turns.batch_end(batch + 1, steps)

            def on_epoch_end(self, epoch, logs=None):
                turns.end_epoch(steps)
                wait_turn()
                turns.begin_epoch(epoch + 1)

        _say({"ready": True, "onednn": _onednn()})
        wait_turn()
        keras.utils.set_random_seed(seed)
        model = reference_vae.build()
        model.compile(optimizer=keras.optimizers.Adam())
        turns.begin_epoch(0)
        model.fit(x, epochs=epochs, batch_size=128, verbose=0, callbacks=[Cb()])
    else:
        from latentlab.data import Dataset
        from latentlab.config import TrainConfig
        from latentlab.tfquiet import import_tensorflow
        from latentlab.events import BatchEnd, EpochEnd, Failed
        from latentlab.training.trainer import Trainer

        import_tensorflow()
        equal = dict(hidden_units=16, batch_size=128) if model == "equal" else {}   # else TrainConfig's defaults
        cfg = TrainConfig(dataset="fmnist", epochs=epochs, seed=seed, val_fraction=0.0, learning_rate=1e-3, **equal)
        turns = Turns(cfg.batch_size, len(x), slice_steps, _say_slice, wait_turn)
        steps = -(-len(x) // cfg.batch_size)
        failed = []

        def on_event(ev):
            if isinstance(ev, BatchEnd):
                turns.batch_end(ev.step, ev.steps)
            elif isinstance(ev, EpochEnd):
                turns.end_epoch(steps)
                wait_turn()
                turns.begin_epoch(ev.epoch)    # EpochEnd.epoch counts from 1: the next one's index
            elif isinstance(ev, Failed):
                failed.append(ev.message)

        _say({"ready": True, "onednn": _onednn()})
        wait_turn()
        turns.begin_epoch(0)
        Trainer(cfg, Dataset.from_arrays(x, y), None, on_event=on_event, latents_every_epoch_max=0).run()
        if failed:
            raise RuntimeError(failed[0])
    _say({"done": True})


def _onednn():
    # (not latentlab.tfquiet.onednn_enabled: the reference's process imports nothing of latentlab)
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


# -- the parent ---------------------------------------------------------------------------------------------
def lockstep(a: dict, b: dict, epochs: int, slice_steps: int, n_train: int, seed: int = 0,
             timeout: float = 3600) -> dict:
    """Two child processes taking turns; ``a``/``b``: ``{"side", "env" (changes), "args" (extra child
    arguments)}``. Returns each one's epoch rates and oneDNN state; a's rate over b's in each epoch after
    the first (``epoch_ratios``, median ``epoch_ratio``); and the median (and interquartile range) of
    a's k-th slice rate over b's k-th slice rate after the first epoch (``slice_ratio``)."""
    base = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}   # as a fresh process
    specs = {"a": a, "b": b}
    procs, errs = {}, {}
    deadline = time.monotonic() + timeout
    slices = {k: [] for k in specs}
    info = {k: {} for k in specs}
    try:
        for k, spec in specs.items():
            cmd = [sys.executable, "-m", "benchmarks.lockstep", "child", spec["side"], "--epochs", str(epochs),
                   "--slice", str(slice_steps), "--n-train", str(n_train), "--seed", str(seed), *spec.get("args", [])]
            errs[k] = tempfile.TemporaryFile("w+")          # a file, not a pipe: a full pipe would block
            procs[k] = subprocess.Popen(cmd, env=dict(base, **spec.get("env", {})), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=errs[k], text=True,
                                        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            info[k].update(_read(procs[k], spec["side"], errs[k]))          # {"ready", "onednn"}
        active = list(specs)
        while active:
            for k in list(active):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the lockstep benchmark ran past {timeout:.0f} s")
                p = procs[k]
                p.stdin.write("go\n")
                p.stdin.flush()
                rec = _read(p, specs[k]["side"], errs[k])
                if rec.get("done"):
                    active.remove(k)
                else:
                    slices[k].append(rec)
    finally:
        for p in procs.values():
            try:
                p.stdin.close()
            except OSError:
                pass
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in errs.values():
            f.close()
    out = {"onednn": {k: info[k].get("onednn") for k in specs}}
    rates = {}
    for k in specs:               # images per second of own time, per epoch
        by_epoch = {}
        for r in slices[k]:
            by_epoch.setdefault(r["epoch"], [0, 0.0])
            by_epoch[r["epoch"]][0] += r["images"]
            by_epoch[r["epoch"]][1] += r["seconds"]
        rates[k] = {e: i / s for e, (i, s) in by_epoch.items() if s > 0}
        later = [v for e, v in sorted(rates[k].items()) if e > 0] or list(rates[k].values())
        out[f"{k}_images_per_second"] = statistics.median(later) if later else None
        out[f"{k}_epoch_rates"] = [rates[k][e] for e in sorted(rates[k])]
    # epoch by epoch (each epoch's slices interleaved with the other side's): what a user waits,
    # per-epoch costs such as making a new input iterator included
    epochs_ab = [rates["a"][e] / rates["b"][e] for e in sorted(rates["a"]) if e > 0 and e in rates["b"]]
    out["epoch_ratios"] = epochs_ab
    out["epoch_ratio"] = statistics.median(epochs_ab) if epochs_ab else None
    # slice by slice: the steady rate between such costs (a median passes over a slow first slice)
    sa, sb = ([(r["images"], r["seconds"]) for r in slices[k] if r["epoch"] > 0] for k in "ab")
    p = paired_ratio(sa, sb)
    out["slice_ratio"], out["pairs"] = p["ratio"], p["pairs"]
    if "iqr" in p:
        out["slice_iqr"] = p["iqr"]
    return out


def bench_shipped(epochs: int, slice_steps: int, n_train: int, seed: int = 0) -> dict:
    """latentlab's Trainer at the recipe's model and batch, as shipped, over the recipe in a process
    with TensorFlow's defaults: the median over the epochs after the first of the two rates (own time)
    in the same epoch, and the steady rate from paired slices."""
    r = lockstep({"side": "latentlab"}, {"side": "reference"}, epochs, slice_steps, n_train, seed)
    out = {"shipped_onednn": {"latentlab": r["onednn"]["a"], "reference": r["onednn"]["b"]},
           "shipped_latentlab_images_per_second": r["a_images_per_second"],
           "shipped_reference_images_per_second": r["b_images_per_second"],
           "shipped_latentlab_epoch_rates": r["a_epoch_rates"], "shipped_reference_epoch_rates": r["b_epoch_rates"],
           "throughput_ratio_shipped": r["epoch_ratio"], "throughput_ratio_shipped_epochs": r["epoch_ratios"],
           "throughput_ratio_shipped_steady": r["slice_ratio"], "throughput_ratio_shipped_steady_pairs": r["pairs"]}
    if "slice_iqr" in r:
        out["throughput_ratio_shipped_steady_iqr"] = r["slice_iqr"]
    return out


def onednn_speedup(shape: tuple[int, int, int], model: str, epochs: int, slice_steps: int, n_train: int) -> dict:
    """latentlab's Trainer with oneDNN on over the same with it off, each in its own process."""
    args = ["--shape", "x".join(map(str, shape)), "--model", model]
    return lockstep({"side": "latentlab", "env": {"TF_ENABLE_ONEDNN_OPTS": "1"}, "args": args},
                    {"side": "latentlab", "env": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "args": args},
                    epochs, slice_steps, n_train)


def _read(p: subprocess.Popen, side: str, err_file) -> dict:
    """The child's next JSON record; its stderr's last line as the reason if it died."""
    while True:
        line = p.stdout.readline()
        if not line:
            err_file.seek(0)
            err = [ln for ln in err_file.read().splitlines() if ln.strip()]
            p.wait()
            raise RuntimeError(f"the {side} process exited with {p.returncode}: {err[-1] if err else 'no output'}")
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("child")
    c.add_argument("side", choices=SIDES)
    c.add_argument("--epochs", type=int, default=3)
    c.add_argument("--slice", type=int, default=40)
    c.add_argument("--n-train", type=int, default=60_000)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--shape", default="28x28x1")
    c.add_argument("--model", choices=("equal", "defaults"), default="equal")
    o = sub.add_parser("onednn", help="latentlab's trainer with oneDNN on ÷ off, as JSON")
    o.add_argument("--shape", default="28x28x1", help="HxWxC (other than 28x28x1: Fashion-MNIST scaled up)")
    o.add_argument("--model", choices=("equal", "defaults"), default="defaults")
    r = sub.add_parser("shipped", help="latentlab ÷ the recipe, each as shipped, as JSON")
    for q in (o, r):
        q.add_argument("--epochs", type=int, default=3 if q is o else 5)
        q.add_argument("--slice", type=int, default=40)
        q.add_argument("--n-train", type=int, default=60_000)
    args = p.parse_args(argv)
    if args.cmd == "child":
        shape = tuple(int(v) for v in args.shape.split("x"))
        child(args.side, args.epochs, args.slice, args.n_train, args.seed, shape, args.model)
    elif args.cmd == "onednn":
        shape = tuple(int(v) for v in args.shape.split("x"))
        print(json.dumps(onednn_speedup(shape, args.model, args.epochs, args.slice, args.n_train), indent=2))
    else:
        print(json.dumps(bench_shipped(args.epochs, args.slice, args.n_train), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

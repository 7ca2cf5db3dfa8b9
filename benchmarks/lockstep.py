"""Training throughput of latentlab as shipped against the classic recipe as a user runs it: each in
its own process, taking turns every few batches.

latentlab sets TensorFlow options before TensorFlow is imported (``tfquiet.configure_environment``:
oneDNN kernels on x86-64), and those hold for a whole process. The benchmark's main training section
runs every participant in one process, so its ratio compares the two at the *same* kernels. Here the
reference runs where latentlab was never imported, with TensorFlow's own defaults (the keras.io
example's situation), and latentlab's Trainer runs as the app and ``latentlab train`` run it.

Only one of the two computes at any time: a child prints a slice record and blocks on its stdin until
the parent sends the next turn, so the machine's speed swings fall on both sides of each pair.

    python -m benchmarks.lockstep child reference|latentlab --epochs E --slice S --n-train N   (internal)
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

SIDES = ("reference", "latentlab")


# -- the child: one side, one process -------------------------------------------------------------------
class _Turns:
    """Report own time every ``slice_steps`` batches and at each epoch's end, then wait for the turn."""

    def __init__(self, batch_size: int, n: int, slice_steps: int):
        self.bs, self.n, self.slice = batch_size, n, slice_steps
        self.epoch, self.done, self.t0 = 0, 0, time.perf_counter()

    def _cut(self, step: int, end: bool = False):
        seconds = time.perf_counter() - self.t0
        images = min(step * self.bs, self.n) - self.done
        self.done += images
        _say({"epoch": self.epoch, "images": images, "seconds": seconds})
        if end:
            self.epoch, self.done = self.epoch + 1, 0
        wait_turn()
        self.t0 = time.perf_counter()

    def batch_end(self, step: int, steps: int):   # step: 1-based within the epoch
        if step % self.slice == 0 and step < steps:
            self._cut(step)

    def epoch_end(self, steps: int):
        self._cut(steps, end=True)


def _say(record: dict) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def wait_turn() -> None:
    if not sys.stdin.readline():       # the parent is gone: stop at once
        os._exit(3)


def child(side: str, epochs: int, slice_steps: int, n_train: int, seed: int) -> None:
    from benchmarks import fashion_mnist

    x, y = fashion_mnist.load("train")
    x, y = x[:n_train], y[:n_train]
    steps = -(-len(x) // 128)
    if side == "reference":
        # TensorFlow as the keras.io example gets it: nothing of latentlab imported in this process
        import keras

        from benchmarks import reference_vae

        turns = _Turns(128, len(x), slice_steps)

        class Cb(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                turns.batch_end(batch + 1, steps)

            def on_epoch_end(self, epoch, logs=None):
                turns.epoch_end(steps)

        _say({"ready": True, "onednn": _onednn()})
        wait_turn()
        keras.utils.set_random_seed(seed)
        model = reference_vae.build()
        model.compile(optimizer=keras.optimizers.Adam())
        turns.t0 = time.perf_counter()
        model.fit(x, epochs=epochs, batch_size=128, verbose=0, callbacks=[Cb()])
    else:
        from benchmarks.bench import _dataset_from_arrays
        from latentlab.config import TrainConfig
        from latentlab.tfquiet import import_tensorflow
        from latentlab.train import BatchEnd, EpochEnd, Failed, Trainer

        import_tensorflow()
        cfg = TrainConfig(dataset="fmnist", epochs=epochs, seed=seed, val_fraction=0.0, hidden_units=16,
                          batch_size=128, learning_rate=1e-3)
        turns = _Turns(128, len(x), slice_steps)
        failed = []

        def on_event(ev):
            if isinstance(ev, BatchEnd):
                turns.batch_end(ev.step, ev.steps)
            elif isinstance(ev, EpochEnd):
                turns.epoch_end(steps)
            elif isinstance(ev, Failed):
                failed.append(ev.message)

        _say({"ready": True, "onednn": _onednn()})
        wait_turn()
        turns.t0 = time.perf_counter()
        Trainer(cfg, _dataset_from_arrays(x, y), None, on_event=on_event, latents_every_epoch_max=0).run()
        if failed:
            raise RuntimeError(failed[0])
    _say({"done": True})


def _onednn():
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


# -- the parent ---------------------------------------------------------------------------------------------
def bench_shipped(epochs: int, slice_steps: int, n_train: int, seed: int = 0, timeout: float = 3600) -> dict:
    """Both sides in their own processes, taking turns; the ratio pairs latentlab's k-th slice with the
    reference's k-th slice after the first epoch (median and interquartile range)."""
    # both start as a fresh user's process: TensorFlow's default for this CPU, unless latentlab sets it
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    procs, errs = {}, {}
    deadline = time.monotonic() + timeout
    slices = {s: [] for s in SIDES}
    info = {s: {} for s in SIDES}
    try:
        for side in SIDES:
            cmd = [sys.executable, "-m", "benchmarks.lockstep", "child", side, "--epochs", str(epochs),
                   "--slice", str(slice_steps), "--n-train", str(n_train), "--seed", str(seed)]
            errs[side] = tempfile.TemporaryFile("w+")          # a file, not a pipe: a full pipe would block
            procs[side] = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=errs[side], text=True,
                                           cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            info[side].update(_read(procs[side], side, errs[side]))          # {"ready", "onednn"}
        active = list(SIDES)
        while active:
            for side in list(active):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the lockstep benchmark ran past {timeout:.0f} s")
                p = procs[side]
                p.stdin.write("go\n")
                p.stdin.flush()
                rec = _read(p, side, errs[side])
                if rec.get("done"):
                    active.remove(side)
                else:
                    slices[side].append(rec)
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
    out = {"shipped_onednn": {s: info[s].get("onednn") for s in SIDES}}
    for side in SIDES:
        by_epoch = {}
        for r in slices[side]:
            by_epoch.setdefault(r["epoch"], [0, 0.0])
            by_epoch[r["epoch"]][0] += r["images"]
            by_epoch[r["epoch"]][1] += r["seconds"]
        rates = [i / s for e, (i, s) in sorted(by_epoch.items()) if e > 0 and s > 0] or \
                [i / s for i, s in by_epoch.values() if s > 0]
        out[f"shipped_{side}_images_per_second"] = statistics.median(rates) if rates else None
    a = [(r["images"], r["seconds"]) for r in slices["latentlab"] if r["epoch"] > 0]
    b = [(r["images"], r["seconds"]) for r in slices["reference"] if r["epoch"] > 0]
    pairs = [(ia / ta) / (ib / tb) for (ia, ta), (ib, tb) in zip(a, b) if ta > 0 and tb > 0]
    out["throughput_ratio_shipped"] = statistics.median(pairs) if pairs else None
    out["throughput_ratio_shipped_pairs"] = len(pairs)
    if len(pairs) >= 4:
        q = statistics.quantiles(pairs, n=4)
        out["throughput_ratio_shipped_iqr"] = [q[0], q[2]]
    return out


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
    r = sub.add_parser("run", help="run both sides and print the figures as JSON")
    r.add_argument("--epochs", type=int, default=3)
    r.add_argument("--slice", type=int, default=40)
    r.add_argument("--n-train", type=int, default=60_000)
    args = p.parse_args(argv)
    if args.cmd == "child":
        child(args.side, args.epochs, args.slice, args.n_train, args.seed)
    else:
        print(json.dumps(bench_shipped(args.epochs, args.slice, args.n_train), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What following a run costs (`latentlab.runs.follow`, `gui.run_follower`): the follower's CPU while the
run it follows is idle, and the writer's training throughput with a follower beside it.

- ``follow_idle_cpu``: share of one core that the app's follower takes while a writer holds the run and
  commits nothing: the CPU seconds of N polls of `gui.run_follower.RunFollowing.poll` (the engine's stats
  and lock look, the status line's text set on a real label, offscreen), divided by N × the poll interval.
  The engine alone (`RunFollower.poll`) is given too.
- ``follow_writer_overhead``: ``latentlab train`` in a child process, with and without a follower in this
  process that does what the window does (polls once a second and reads each new epoch's decoder and codes,
  `load_followed_epoch`), taking turns (ABBA); throughput from the child's own epoch seconds (history.csv,
  epochs after the first). 1 − with ÷ without.
- ``follow_commit_bytes_per_epoch`` / ``follow_commit_ms_per_epoch``: what the writer commits each epoch that
  the follower reads (model.keras, decoder_weights.npz, latents.npz, epochs.npz, history.csv, state.json):
  bytes, and the time the writes of those files take (atomic, fsynced), measured on the finished run's own
  model and arrays; ``follow_decoder_weights_*``: the one file written for followers alone.

    python -m benchmarks.bench_follow --json follow.json [--small]
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
from pathlib import Path

from benchmarks.common import log

__all__ = ["bench_follow"]


def _idle_cpu(polls: int) -> dict:
    """The follower's CPU per poll on a run a live writer holds and does not change."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    from gui.run_follower import RunFollowing
    from latentlab.runs import folder as runs
    from latentlab.config import TrainConfig
    from latentlab.runs.follow import POLL_SECONDS, FollowState, RunFollower

    app = QApplication.instance() or QApplication([])   # noqa: F841  (the label needs one)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        lock = runs.RunLock(run, create=True).acquire()
        try:
            runs.write_config(run, TrainConfig(epochs=40))
            rows = [{"epoch": e, "loss": 100.0 - e, "beta": 1.0} for e in range(1, 13)]
            runs.atomic_write_text(run / runs.HISTORY_FILE, runs.history_to_csv(rows))
            runs.write_state(run, status="running", epochs_done=12, model_epoch=12, updated=time.time())
            engine = RunFollower(run)
            assert engine.poll().state is FollowState.WRITING
            t0 = time.process_time()
            for _ in range(polls):
                engine.poll()
            engine_s = (time.process_time() - t0) / polls

            class Window(QMainWindow):   # what RunFollowing.poll touches of a window while nothing changes
                class training:
                    state = "idle"

            win = Window()
            following = RunFollowing(win)
            following.follower, following.path = RunFollower(run), run
            following.follower.poll()
            following.shown_epoch = 12
            t0 = time.process_time()
            for _ in range(polls):
                following.poll()
            app_s = (time.process_time() - t0) / polls
            assert isinstance(following.label, QLabel) and following.text.startswith("following: written by")
            following.timer.stop()
        finally:
            lock.release()
    return {"follow_idle_cpu": app_s / POLL_SECONDS, "follow_poll_us_app": app_s * 1e6,
            "follow_poll_us_engine": engine_s * 1e6, "follow_idle_polls": polls}


def _train(folder: Path, out: Path, epochs: int, follow: bool) -> dict:
    """``latentlab train`` in a child; with ``follow``, this process follows it as the window does."""
    from latentlab.runs import folder as runs
    from latentlab.runs.follow import POLL_SECONDS, RunFollower, load_followed_epoch
    from latentlab.runtime import import_tensorflow

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    child = subprocess.Popen([sys.executable, "-m", "latentlab", "train", str(folder), "--latent-dim", "2",
                              "--epochs", str(epochs), "--out", str(out), "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    loads, load_s = 0, []
    if follow:
        import_tensorflow()
        follower, shown, key = RunFollower(out), 0, None
        while child.poll() is None:
            u = follower.poll()
            if u.epochs_done > shown:
                t0 = time.perf_counter()
                try:
                    epoch = load_followed_epoch(out, key)   # as the window: the model once, then the weights file
                    shown, key = epoch.epochs_done, epoch.view.model_key
                    loads += 1
                    load_s.append(time.perf_counter() - t0)
                except runs.RunError:
                    pass
            time.sleep(POLL_SECONDS)
    err = child.communicate()[1]
    if child.returncode != 0:
        raise RuntimeError(f"latentlab train failed: {err.strip().splitlines()[-1:]}")
    run = runs.open_run(out)
    n_train = int(round((1 - run.config.val_fraction) * len(run.latents["z_mean"])))
    seconds = [r["seconds"] for r in run.history[1:]]
    return {"rate": n_train / statistics.median(seconds), "loads": loads,
            "load_s": statistics.median(load_s) if load_s else None}


def _commit_cost(run: Path, reps: int = 5) -> dict:
    """Bytes and write time of what one epoch's commit holds for a follower."""
    import numpy as np

    from latentlab.runs import folder as runs

    r = runs.open_run(run)
    model = r.load_model()
    epochs = max(1, len(r.history))
    sizes = {name: (run / name).stat().st_size for name in (runs.MODEL_FILE, runs.LATENTS_FILE, runs.HISTORY_FILE,
                                                           runs.STATE_FILE, runs.DECODER_WEIGHTS_FILE)}
    sizes[runs.EPOCH_LATENTS_FILE] = (run / runs.EPOCH_LATENTS_FILE).stat().st_size   # grows by one frame an epoch
    with tempfile.TemporaryDirectory(dir=run.parent) as tmp:
        tmp = Path(tmp)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            runs.atomic_save_model(model, tmp / runs.MODEL_FILE)
            runs.atomic_save_npz(tmp / runs.LATENTS_FILE, **r.latents)
            runs.atomic_save_npz(tmp / runs.EPOCH_LATENTS_FILE, **r.epoch_latents)
            runs.atomic_write_text(tmp / runs.HISTORY_FILE, runs.history_to_csv(r.history))
            runs.write_state(tmp, **r.state)
            runs.write_decoder_weights(tmp, model.decoder.get_weights(), epochs)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(reps):   # written for followers alone: the decoder's weights (the rest is the checkpoint)
            runs.write_decoder_weights(tmp, model.decoder.get_weights(), epochs)
        weights_s = (time.perf_counter() - t0) / reps
    frame = int(np.asarray(r.epoch_latents["z_mean"][0]).nbytes)
    return {"follow_commit_bytes_per_epoch": sum(sizes.values()), "follow_commit_bytes": sizes,
            "follow_commit_epochs_npz_bytes_per_frame": frame, "follow_commit_epochs": epochs,
            "follow_commit_ms_per_epoch": 1000 * statistics.median(times),
            "follow_decoder_weights_ms_per_epoch": 1000 * weights_s,
            "follow_decoder_weights_bytes": sizes[runs.DECODER_WEIGHTS_FILE]}


def bench_follow(small: bool = False) -> dict:
    from benchmarks.fashion_mnist import png_folder

    res = _idle_cpu(200 if small else 2000)
    log(f"follow: idle poll {res['follow_poll_us_app']:.0f} µs in the app, {res['follow_idle_cpu']:.3%} of a core")
    images, epochs = (600, 3) if small else (3000, 6)
    folder = png_folder(images)
    rates = {True: [], False: []}
    loads, load_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        order = [False, True] if small else [False, True, True, False] * 2   # ABBA, twice
        last, sequence = None, []
        for k, follow in enumerate(order):
            out = Path(tmp) / f"run{k}"
            r = _train(folder, out, epochs, follow)
            rates[follow].append(r["rate"])
            sequence.append(r["rate"])
            if follow:
                loads.append(r["loads"])
                if r["load_s"] is not None:
                    load_s.append(r["load_s"])
            log(f"follow: writer {'with' if follow else 'without'} a follower: {r['rate']:.0f} images/s")
            last = out
        res.update(_commit_cost(last))
    # each turn against its neighbour of the other kind (A B | B A | ...): the machine's load drifts slowly
    ratios = [(sequence[i + 1] / sequence[i]) if order[i + 1] else (sequence[i] / sequence[i + 1])
              for i in range(0, len(order) - 1, 2)]
    res.update({"follow_writer_overhead": 1 - statistics.median(ratios), "follow_writer_pair_ratios": ratios,
                "follow_load_avg": os.getloadavg()[0], "follow_writer_rate_with": rates[True],
                "follow_writer_rate_without": rates[False], "follow_writer_images": images,
                "follow_writer_epochs": epochs, "follow_epoch_loads": loads,
                "follow_epoch_load_s": statistics.median(load_s) if load_s else None})
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="what following a run costs")
    p.add_argument("--small", action="store_true")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    res = bench_follow(args.small)
    text = json.dumps(res, indent=2, default=float)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What following a run costs (`latentlab.runs.follow`, `gui.run_follower`): the follower's CPU while the
run it follows is idle, and the writer's training throughput with a follower beside it.

- ``follow_idle_cpu``: share of one core that the app's follower takes while a writer holds the run and
  commits nothing: the CPU seconds of N polls of `gui.run_follower.RunFollowing.poll` (the engine's stats
  and lock look, the status line's text set on a real label, offscreen), divided by N × the poll interval.
  The engine alone (`RunFollower.poll`) is given too.
  ``follow_watch_cpu`` / ``follow_watch_us``: the same for a shown run that no one writes, whose lock is
  watched for a resume (`LockWatch.poll`, one stat).
- ``follow_writer_overhead``: ``latentlab train`` in a child process, with and without a follower in this
  process that does what the window does (TensorFlow imported before, as the app has it; the run opened at
  its first committed epoch, one model load as File → Open run does; then polls once a second and reads each
  new epoch's decoder weights and codes, `load_followed_epoch`), taking turns (ABBA, twice); throughput from
  the child's own epoch seconds (history.csv, median epoch), over the epochs after the one that overlapped the
  open (``follow_writer_skip_epochs``, the same epochs in every turn). 1 − with ÷ without, median of the
  pairs. ``follow_writer_overhead_with_open``: the same over every epoch after the first (the open's model
  load included); ``follow_open_s``: the open; ``follow_follower_cpu_share``: this process's CPU seconds
  while following (after the open) ÷ the writer's seconds over the same epochs.
- ``follow_window_cpu_share``: the same for the real window (offscreen, `gui.main_window.MainWindow`, its own
  event loop) following one more child from its open to "finished": every thread of the window's process
  (polls, epoch reads, the map's grid, points and prior layers, the curves) ÷ the writer's seconds.
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
    from latentlab.runs.follow import POLL_SECONDS, FollowState, LockWatch, RunFollower

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
        # a shown run that no one writes: its lock watched for a resume (LockWatch, one stat a poll)
        watch = LockWatch(run)
        assert not watch.poll()
        t0 = time.process_time()
        for _ in range(polls):
            watch.poll()
        watch_s = (time.process_time() - t0) / polls
    return {"follow_idle_cpu": app_s / POLL_SECONDS, "follow_poll_us_app": app_s * 1e6,
            "follow_poll_us_engine": engine_s * 1e6, "follow_idle_polls": polls,
            "follow_watch_us": watch_s * 1e6, "follow_watch_cpu": watch_s / POLL_SECONDS}


def _train(folder: Path, out: Path, epochs: int, follow: bool) -> dict:
    """``latentlab train`` in a child; with ``follow``, this process follows it as the window does: TensorFlow
    is imported already (the app imports it at start), the run is opened at its first committed epoch (the
    model loaded once, as File → Open run does), then each new epoch's decoder weights and codes are read."""
    from latentlab.runs import folder as runs
    from latentlab.runs.follow import POLL_SECONDS, RunFollower, load_followed_epoch

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    child = subprocess.Popen([sys.executable, "-m", "latentlab", "train", str(folder), "--latent-dim", "2",
                              "--epochs", str(epochs), "--out", str(out), "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    loads, load_s, opened = 0, [], None
    open_s = follow_cpu = None
    if follow:
        follower, shown, key = RunFollower(out), 0, None
        while child.poll() is None:
            u = follower.poll()
            if u.epochs_done > shown:
                t0 = time.perf_counter()
                try:
                    epoch = load_followed_epoch(out, key)   # as the window: the model once, then the weights file
                except runs.RunError:
                    epoch = None
                if epoch is not None:
                    shown, key = epoch.epochs_done, epoch.view.model_key
                    if opened is None:      # the open: what File → Open run costs, once
                        opened, open_s, cpu0 = shown, time.perf_counter() - t0, time.process_time()
                    else:
                        loads += 1
                        load_s.append(time.perf_counter() - t0)
            time.sleep(POLL_SECONDS)
        if opened is not None:
            follow_cpu = time.process_time() - cpu0    # this process's CPU while following, after the open
    err = child.communicate()[1]
    if child.returncode != 0:
        raise RuntimeError(f"latentlab train failed: {err.strip().splitlines()[-1:]}")
    run = runs.open_run(out)
    n_train = int(round((1 - run.config.val_fraction) * len(run.latents["z_mean"])))
    return {"n_train": n_train, "seconds": [r["seconds"] for r in run.history], "loads": loads,
            "load_s": statistics.median(load_s) if load_s else None, "opened": opened, "open_s": open_s,
            "follow_cpu_s": follow_cpu}


def _threads_cpu() -> dict:
    """CPU seconds of this process's threads by name (Linux /proc; empty elsewhere)."""
    out: dict = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for task in Path("/proc/self/task").glob("*"):
        try:
            name = (task / "comm").read_text().strip()
            f = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(f[11]) + int(f[12])) / tick
    return out


def _window_follow(folder: Path, out: Path, epochs: int) -> dict:
    """``latentlab train`` in a child, followed by the real window (offscreen, its own event loop), opened at
    the child's first committed epoch as File → Open run does: the window's CPU seconds (every thread of
    this process: the poll, the epoch reads, the map's grid, points and prior layers, the curves) from the
    open on, against the writer's seconds over the same epochs."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow
    from latentlab.runs import folder as runs

    app = QApplication.instance() or QApplication([])   # noqa: F841
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    win = MainWindow(runs_root=out.parent / "window-runs", snapshot_seconds=2.0)
    win.confirm_stop = lambda: True
    win.resize(1280, 800)
    win.show()
    child = subprocess.Popen([sys.executable, "-m", "latentlab", "train", str(folder), "--latent-dim", "2",
                              "--epochs", str(epochs), "--out", str(out), "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    state: dict = {}
    loop = QEventLoop()

    def committed() -> int:
        try:
            return int(json.loads((out / runs.STATE_FILE).read_text()).get("epochs_done", 0))
        except (OSError, ValueError):
            return 0

    def tick():
        if "asked" not in state and committed() >= 1:
            state["asked"] = time.perf_counter()
            win.open_run_path(out)
        if child.poll() is not None and ("cpu0" not in state or not win.following.following):
            loop.quit()

    def opened(_path):
        state.update(opened=committed(), open_s=time.perf_counter() - state["asked"])

    def shown(epoch):   # following proper: from the first epoch shown once the open's loading settled
        if "cpu0" not in state and "opened" in state and not win.dataset_panel.is_loading and not win.files.loading:
            threads0 = _threads_cpu()    # (read before the clock starts: /proc reads are not the window's)
            state.update(cpu0=time.process_time(), shown_from=epoch, shown=0, threads0=threads0)
        state["shown"] = state.get("shown", 0) + 1

    def ended(_how):
        state["cpu1"], state["threads1"] = time.process_time(), _threads_cpu()
        loop.quit()

    win.runOpened.connect(opened)
    win.following.epochShown.connect(shown)
    win.following.ended.connect(ended)
    timer = QTimer()
    timer.setInterval(100)
    timer.timeout.connect(tick)
    timer.start()
    loop.exec()
    timer.stop()
    err = child.communicate()[1]
    win.close()
    win.shutdown()
    if child.returncode != 0:
        raise RuntimeError(f"latentlab train failed: {err.strip().splitlines()[-1:]}")
    run = runs.open_run(out)
    seconds = [r["seconds"] for r in run.history]
    if "cpu0" not in state:
        return {"opened": None}
    cpu = state.get("cpu1", time.process_time()) - state["cpu0"]
    writer_s = sum(seconds[state["shown_from"]:])
    return {"opened": state["opened"], "open_s": state["open_s"], "cpu_s": cpu, "writer_s": writer_s,
            "share": cpu / writer_s if writer_s else None, "epochs_followed": len(seconds) - state["shown_from"],
            "epochs_shown": state["shown"],
            "threads": {k: round(v - state["threads0"].get(k, 0.0), 2) for k, v in state.get("threads1", {}).items()
                        if v - state["threads0"].get(k, 0.0) >= 0.01}}


def _rate(r: dict, skip: int) -> float:
    """Images a second over the epochs after the first ``skip`` (median epoch)."""
    return r["n_train"] / statistics.median(r["seconds"][skip:])


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
    from latentlab.runtime import import_tensorflow

    res = _idle_cpu(200 if small else 2000)
    log(f"follow: idle poll {res['follow_poll_us_app']:.0f} µs in the app, {res['follow_idle_cpu']:.3%} of a core")
    import_tensorflow()    # the app has it: the follower's own start is not the writer's cost
    images, epochs = (600, 4) if small else (3000, 10)
    folder = png_folder(images)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        order = [False, True] if small else [False, True, True, False] * 2   # ABBA, twice
        for k, follow in enumerate(order):
            out = Path(tmp) / f"run{k}"
            r = _train(folder, out, epochs, follow)
            results.append(r)
            log(f"follow: writer {'with' if follow else 'without'} a follower: {_rate(r, 1):.0f} images/s"
                + (f" (opened at epoch {r['opened']} in {r['open_s']:.1f} s; then {r['follow_cpu_s']:.2f} s CPU "
                   f"following)" if follow and r["opened"] else ""))
        res.update(_commit_cost(out))
        w = _window_follow(folder, Path(tmp) / "window", epochs)
        if w["opened"] is not None:
            log(f"follow: the window opened the run at epoch {w['opened']} in {w['open_s']:.1f} s, then took "
                f"{w['cpu_s']:.2f} CPU s over the writer's {w['writer_s']:.1f} s ({w['share']:.1%})")
        res.update({"follow_window_cpu_share": w.get("share"), "follow_window_cpu_s": w.get("cpu_s"),
                    "follow_window_writer_s": w.get("writer_s"), "follow_window_open_s": w.get("open_s"),
                    "follow_window_epochs_followed": w.get("epochs_followed"),
                    "follow_window_epochs_shown": w.get("epochs_shown"), "follow_window_threads_s": w.get("threads")})
    # Following proper starts once the window has opened the run (its one model load, overlapping the
    # epoch after the one it opened at): the writer's epochs from then on, the same epochs in every turn.
    with_ = [r for r in results if r["opened"] is not None]
    skip = max([r["opened"] + 1 for r in with_] + [1])
    if skip >= epochs - 1:
        skip = 1
    # each turn against its neighbour of the other kind (A B | B A | ...): the machine's load drifts slowly
    def ratios(sk):
        rates = [_rate(r, sk) for r in results]
        return [(rates[i + 1] / rates[i]) if order[i + 1] else (rates[i] / rates[i + 1])
                for i in range(0, len(order) - 1, 2)]

    steady, with_open = ratios(skip), ratios(1)
    follows = [r for r in results if r["follow_cpu_s"] is not None]
    writer_s = [sum(r["seconds"][r["opened"]:]) for r in follows]
    res.update({"follow_writer_overhead": 1 - statistics.median(steady), "follow_writer_pair_ratios": steady,
                "follow_writer_skip_epochs": skip,
                "follow_writer_overhead_with_open": 1 - statistics.median(with_open),
                "follow_writer_pair_ratios_with_open": with_open,
                "follow_open_s": statistics.median([r["open_s"] for r in follows]) if follows else None,
                "follow_follower_cpu_share": (statistics.median([r["follow_cpu_s"] / s for r, s in zip(follows, writer_s)])
                                              if follows else None),
                "follow_load_avg": os.getloadavg()[0],
                "follow_writer_rate_with": [_rate(r, skip) for r, f in zip(results, order) if f],
                "follow_writer_rate_without": [_rate(r, skip) for r, f in zip(results, order) if not f],
                "follow_writer_images": images, "follow_writer_epochs": epochs,
                "follow_epoch_loads": [r["loads"] for r, f in zip(results, order) if f],
                "follow_epoch_load_s": statistics.median([r["load_s"] for r in results if r["load_s"] is not None] or [0.0])})
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

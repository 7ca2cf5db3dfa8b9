"""latentlab's benchmark: speed, time to quality, likelihood, app overhead, responsiveness, loading, memory.

    python -m benchmarks.bench                 # the full suite (Fashion-MNIST, ~20 min on 2 cores)
    python -m benchmarks.bench --small         # seconds, not minutes (CI: tests/test_benchmark_small.py)
    python -m benchmarks.bench --json out.json --markdown out.md --only train,shipped,data,rss,grid,logging,cluster,gui,map,follow

Everything compared is measured side by side, taking turns every few batches (a baton passed between
training threads, only one of which computes at any time), so a machine whose speed drifts affects both
sides of each ratio alike. The "train" section runs all participants in this process, under the same
TensorFlow settings; the "shipped" section (benchmarks/lockstep.py) runs latentlab and the classic recipe
each in its own process, as a user runs them, taking turns the same way. Test ELBO is evaluated at
epoch ends outside the timed span. Figures that cannot be measured here are ``null`` with a reason in
``reasons``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks.fashion_mnist import png_folder
from benchmarks.common import Baton, Turns, log, paired_ratio, pct

REQUIRED_KEYS = ("throughput_ratio", "time_to_quality_ratio", "app_overhead", "gui_stall_p50_ms",
                 "gui_stall_p99_ms", "click_p50_ms", "click_p99_ms", "grid_ms", "cold_load_s", "warm_load_s",
                 "keras_load_s", "peak_rss_gb", "test_neg_elbo", "reference_test_neg_elbo", "map_fps_100k",
                 "sweep_speedup", "cluster_overhead", "test_neg_log_likelihood", "reference_test_neg_log_likelihood",
                 "tensorboard_share_of_epoch", "follow_idle_cpu", "follow_writer_overhead")

# sizes: the full suite and the small (CI) mode
FULL = dict(n_train=60_000, n_test=10_000, elbo_samples=2, iwae_samples=100, iwae_images=2_000, ref_epochs=5,
            extra_epochs=1, slice_steps=40, log_images=12_000, log_epochs=3, log_rounds=2,
            shipped_epochs=5, png_count=60_000, data_rounds=5, app_images=12_000, app_epochs=3, app_rounds=3,
            rss_epochs=1, grid_reps=20, sweep_rounds=3, sweep_epochs=3, sweep_images=None,
            overhead_rounds=5)
SMALL = dict(n_train=1_024, n_test=500, elbo_samples=1, iwae_samples=10, iwae_images=200, ref_epochs=2,
             extra_epochs=0, slice_steps=3, log_images=1_024, log_epochs=3, log_rounds=1,
             shipped_epochs=2, png_count=300, data_rounds=1, app_images=512, app_epochs=2, app_rounds=1,
             rss_epochs=0, grid_reps=5, sweep_rounds=1, sweep_epochs=1, sweep_images=300,
             overhead_rounds=1)



# -- 1 + 2: throughput and time to quality ---------------------------------------------------------------
def bench_training(size: dict, x, y, x_test, seed: int = 0) -> dict:  # noqa: C901
    """Reference (classic recipe, fit on numpy, batch 128) and latentlab trainers taking turns every
    ``slice_steps`` batches (and at each epoch's end, where test ELBO is scored outside the timed span).
    Each participant's epoch seconds are its own turns' time; the throughput ratio pairs the equal
    model's k-th slice with the reference's k-th slice (seconds apart, the same batches per slice), so
    the machine's speed swings, which last minutes, fall on both sides of each ratio.

    - ``equal``: latentlab's Trainer with the reference's model (``hidden_units=16``: conv 32/64, dense 16),
      batch and learning rate: the throughput ratio and the same-quality check at equal epochs;
    - ``latentlab``: the Trainer with TrainConfig's defaults (val_fraction 0: the same 60,000 images):
      time to quality. It stops once its test ELBO reaches the reference's final one."""
    import keras

    from benchmarks import reference_vae
    from latentlab.config import TrainConfig
    from latentlab.data import Dataset
    from latentlab.events import BatchEnd, EpochEnd, Failed, Finished, Started
    from latentlab.model.latent import Decoder, encode
    from latentlab.training.trainer import Trainer

    ds = Dataset.from_arrays(x, y)
    E = size["ref_epochs"]
    participants = {
        "reference": None,
        "equal": (Trainer, TrainConfig(dataset="fmnist", epochs=E, seed=seed, val_fraction=0.0, hidden_units=16,
                                       batch_size=128, learning_rate=1e-3)),
        "latentlab": (Trainer, TrainConfig(dataset="fmnist", epochs=E + size["extra_epochs"], seed=seed,
                                           val_fraction=0.0)),
    }
    baton = Baton(participants)
    results = {name: {"epoch_seconds": [], "elbo": [], "images": len(x), "slices": []} for name in participants}
    T0 = time.perf_counter()   # slices: (epoch index, images, own seconds, end in seconds since T0)

    def turns_of(name, batch_size):
        """``name``'s own time (lockstep.Turns), its turns cut every ``slice_steps`` batches."""
        def record(epoch, images, seconds):
            results[name]["slices"].append((epoch, images, seconds, time.perf_counter() - T0))

        def hand_over():
            baton.pass_on(name)
            baton.wait(name)

        return Turns(batch_size, len(x), size["slice_steps"], record, hand_over)
    target = {"value": None}
    lock = threading.Lock()
    errors = []
    models, snapshots = {}, {"reference": [], "latentlab": []}   # weights after each epoch, for −log p(x)

    def score(encode_fn, decode_fn):
        return reference_vae.neg_elbo(encode_fn, decode_fn, x_test, samples=size["elbo_samples"], seed=seed)

    def run_reference():
        try:
            baton.wait("reference")            # build inside its turn: seeding and init are not interleaved
            keras.utils.set_random_seed(seed)
            model = reference_vae.build()
            model.compile(optimizer=keras.optimizers.Adam())
            models["reference"] = model
            r = results["reference"]

            turns = turns_of("reference", 128)
            steps = -(-len(x) // 128)

            class RefTurns(keras.callbacks.Callback):
                def on_train_begin(self, logs=None):
                    baton.wait("reference")

                def on_epoch_begin(self, epoch, logs=None):
                    turns.begin_epoch(epoch)

                def on_train_batch_end(self, batch, logs=None):
                    turns.batch_end(batch + 1, steps)

                def on_epoch_end(self, epoch, logs=None):
                    r["epoch_seconds"].append(turns.end_epoch(steps))
                    snapshots["reference"].append(model.get_weights())

                    def enc(xb):
                        m, lv, _ = model.encoder(xb, training=False)
                        return m.numpy(), lv.numpy()

                    r["elbo"].append(score(enc, lambda z: model.decoder(z, training=False).numpy()))
                    log(f"reference epoch {epoch + 1}: {r['epoch_seconds'][-1]:.1f} s, "
                        f"test -ELBO {r['elbo'][-1]:.2f}")
                    if epoch + 1 == E:
                        with lock:
                            target["value"] = r["elbo"][-1]
                    else:
                        baton.pass_on("reference")
                        baton.wait("reference")

            model.fit(x, epochs=E, batch_size=128, verbose=0, callbacks=[RefTurns()])
        except BaseException as e:  # noqa: BLE001
            errors.append(f"reference: {type(e).__name__}: {e}")
        finally:
            baton.pass_on("reference", done=True)

    def run_trainer(name, cls, cfg):
        r = results[name]
        r["config"] = {"batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate,
                       "kl_schedule": cfg.kl_schedule, "hidden_units": cfg.hidden_units}
        holder = {}
        turns = turns_of(name, cfg.batch_size)

        def on_event(ev):
            tr = holder["trainer"]
            if isinstance(ev, Started):
                baton.wait(name)
                turns.begin_epoch(0)
            elif isinstance(ev, BatchEnd):
                turns.batch_end(ev.step, ev.steps)
            elif isinstance(ev, EpochEnd):
                r["epoch_seconds"].append(turns.end_epoch(tr.steps_per_epoch))
                if name in snapshots:
                    models[name] = tr.model
                    snapshots[name].append(tr.model.get_weights())
                dec = Decoder.from_model(tr.model)
                r["elbo"].append(score(lambda xb: encode(tr.model, xb), dec.decode))
                log(f"{name} epoch {ev.epoch}: {r['epoch_seconds'][-1]:.1f} s, test -ELBO {r['elbo'][-1]:.2f}")
                with lock:
                    reached = (name != "equal" and target["value"] is not None
                               and r["elbo"][-1] <= target["value"])
                if reached:
                    tr.stop()                        # keep the baton until Finished: no batch runs out of turn
                elif ev.epoch < cfg.epochs:
                    baton.pass_on(name)
                    baton.wait(name)
                    turns.begin_epoch(ev.epoch)
            elif isinstance(ev, (Finished, Failed)):
                if isinstance(ev, Failed):
                    errors.append(f"{name}: {ev.message}")

        try:
            baton.wait(name)                   # build inside its turn (Started then finds the turn held)
            holder["trainer"] = cls(cfg, ds, None, on_event=on_event, latents_every_epoch_max=0)
            holder["trainer"].run()
        except BaseException as e:  # noqa: BLE001
            errors.append(f"{name}: {type(e).__name__}: {e}")
        finally:
            baton.pass_on(name, done=True)

    threads = [threading.Thread(target=run_reference, name="reference")]
    for name, spec in participants.items():
        if spec is not None:
            threads.append(threading.Thread(target=run_trainer, args=(name, *spec), name=name))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors))

    def rate(r):
        secs = r["epoch_seconds"][1:] or r["epoch_seconds"]   # the first epoch traces and warms up
        return r["images"] / statistics.median(secs)

    def time_to(r, value):
        total = 0.0
        for s, e in zip(r["epoch_seconds"], r["elbo"]):
            total += s
            if e <= value:
                return total
        return None

    ref = results["reference"]
    goal = ref["elbo"][E - 1]
    ref_tt = sum(ref["epoch_seconds"][:E])
    out = {"participants": results, "target_neg_elbo": goal, "reference_seconds_to_target": ref_tt}
    for name in ("equal", "latentlab"):
        r = results[name]
        r["images_per_second"] = rate(r)
        r["seconds_to_target"] = time_to(r, goal)
    ref["images_per_second"] = rate(ref)
    # the same TensorFlow settings on both sides (latentlab's, this process's): the same kernels; the
    # headline ``throughput_ratio`` is the "shipped" section's, each side in its own process
    later = [[(i, s) for e, i, s, _ in r["slices"] if e > 0] for r in (results["equal"], ref)]
    p = paired_ratio(*later)     # the equal model's k-th slice rate over the reference's, after epoch 1
    out["throughput_ratio_epochs"] = results["equal"]["images_per_second"] / ref["images_per_second"]
    out["throughput_ratio_same_kernels"] = p["ratio"] if p["ratio"] is not None else out["throughput_ratio_epochs"]
    out["throughput_ratio_same_kernels_pairs"] = p["pairs"]
    if "iqr" in p:
        out["throughput_ratio_same_kernels_iqr"] = p["iqr"]
    out["throughput_ratio_defaults"] = results["latentlab"]["images_per_second"] / ref["images_per_second"]

    def best(r):   # the least disturbed epoch after the first: a slower neighbour only ever slows an epoch
        return r["images"] / min(r["epoch_seconds"][1:] or r["epoch_seconds"])

    out["throughput_ratio_best_epochs"] = best(results["equal"]) / best(ref)
    t = results["latentlab"]["seconds_to_target"]
    out["time_to_quality_ratio"] = t / ref_tt if t is not None else None
    if t is None:
        ll = results["latentlab"]["elbo"]
        out.setdefault("reasons", {})["time_to_quality_ratio"] = (
            f"latentlab did not reach the reference's test -ELBO {goal:.2f} within {len(ll)} epochs "
            f"(best {min(ll):.2f})")
    out["time_to_quality_epochs"] = next((i + 1 for i, e in enumerate(results["latentlab"]["elbo"]) if e <= goal),
                                         None)
    # quality at equal model and epochs: speed must not change results
    eq = results["equal"]["elbo"]
    out["test_neg_elbo"] = eq[min(E, len(eq)) - 1]
    out["test_neg_elbo_epochs"] = min(E, len(eq))
    out["reference_test_neg_elbo"] = goal
    out["defaults_test_neg_elbo_per_epoch"] = results["latentlab"]["elbo"]
    out.update(test_log_likelihoods(size, models, snapshots, x_test, seed))
    return out


def test_log_likelihoods(size: dict, models: dict, snapshots: dict, x_test, seed: int = 0) -> dict:
    """Test −log p(x) by importance sampling (`reference_vae.neg_log_likelihood`: one estimator, K draws per
    image, on the first ``iwae_images`` test images) of latentlab's defaults and of the reference at the same
    epoch — the last the defaults trained (they stop once they reach the reference's final ELBO) — and of
    the reference after all its epochs. Scored after training, from each epoch's weights."""
    from benchmarks import reference_vae
    from latentlab.model.latent import Decoder, encode

    xs, k = x_test[:size["iwae_images"]], size["iwae_samples"]

    def score(name, epoch):
        model = models[name]
        model.set_weights(snapshots[name][epoch - 1])
        if name == "reference":
            return reference_vae.neg_log_likelihood(
                lambda xb: tuple(t.numpy() for t in model.encoder(xb, training=False)[:2]),
                lambda z: model.decoder(z, training=False).numpy(), xs, k, seed)
        return reference_vae.neg_log_likelihood(lambda xb: encode(model, xb), Decoder.from_model(model).decode,
                                                xs, k, seed)

    last = len(snapshots["reference"])
    same = min(len(snapshots["latentlab"]), last)
    ours, ref = score("latentlab", same), score("reference", same)
    final = score("reference", last) if last != same else ref
    log(f"test -log p(x) after {same} epochs: latentlab {ours.neg_log_likelihood:.2f}, reference "
        f"{ref.neg_log_likelihood:.2f}; reference after {last}: {final.neg_log_likelihood:.2f} (K={k})")
    return {"test_neg_log_likelihood": ours.neg_log_likelihood, "test_neg_log_likelihood_epochs": same,
            "reference_test_neg_log_likelihood": ref.neg_log_likelihood,
            "reference_test_neg_log_likelihood_final": final.neg_log_likelihood,
            "reference_test_neg_log_likelihood_final_epochs": last,
            "test_log_likelihood_detail": {"samples": k, "images": len(xs), "latentlab": ours.to_json(),
                                           "reference": ref.to_json(), "reference_final": final.to_json()}}


# -- 5: data loading and memory ------------------------------------------------------------------------
def _count_files(root: Path) -> int:
    return sum(1 for _, _, files in os.walk(root) for f in files if f.endswith(".png"))


def bench_data(root: Path, rounds: int = 1) -> dict:
    """Cold (no latentlab cache) `load_folder` and Keras' own loader reading the folder once, taking
    turns ``rounds`` times (the ratio is the median of each round's ratio: the machine's speed swings
    for minutes, so a single pair can land on either side of a swing); then warm (cache) loads.
    The OS file cache is warm for every loader (the files are read once beforehand)."""
    import keras

    from latentlab.data import load_folder
    from latentlab.data.cache import wait_for_cache_writes

    for dirpath, _, files in os.walk(root):        # the same OS page cache state for every loader
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                fh.read()
    out = {"png_folder": str(root), "png_files": _count_files(root), "data_rounds": rounds}
    keras_s, cold_s = [], []
    cache_dir = None
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            kds = keras.utils.image_dataset_from_directory(str(root), color_mode="grayscale", image_size=(28, 28),
                                                           batch_size=128, shuffle=False, verbose=False)
            n = 0
            for xb, _ in kds:
                n += int(xb.shape[0])
            keras_s.append(time.perf_counter() - t0)
            out["keras_images"] = n
            if cache_dir is not None:
                wait_for_cache_writes()   # the last load's cache file is written on a thread of its own
                shutil.rmtree(cache_dir, ignore_errors=True)
            cache_dir = tempfile.mkdtemp(prefix="latentlab-bench-cache-")
            t0 = time.perf_counter()
            d = load_folder(root, cache=True, cache_dir=cache_dir)
            cold_s.append(time.perf_counter() - t0)
            out["latentlab_images"] = int(len(d.images))
            del d
        out["keras_load_s"] = statistics.median(keras_s)
        out["cold_load_s"] = statistics.median(cold_s)
        out["keras_load_s_each"], out["cold_load_s_each"] = keras_s, cold_s
        out["cold_vs_keras"] = statistics.median(c / k for c, k in zip(cold_s, keras_s))
        warm = []
        for _ in range(5):
            t0 = time.perf_counter()
            d2 = load_folder(root, cache=True, cache_dir=cache_dir)
            warm.append(time.perf_counter() - t0)
            assert d2.from_cache, "the second load did not come from the cache"
            del d2
        out["warm_load_s"] = statistics.median(warm)
        out["warm_load_s_each"] = warm
        # one file touched (a new mtime): the per-file cache table decodes that file alone
        victim = next(os.path.join(dp, f) for dp, _, fs in sorted(os.walk(root)) for f in sorted(fs)
                      if f.endswith(".png"))
        st = os.stat(victim)
        incremental = []
        for k in range(3):
            os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + (k + 1) * 10**9))
            t0 = time.perf_counter()
            d3 = load_folder(root, cache=True, cache_dir=cache_dir)
            incremental.append(time.perf_counter() - t0)
            assert not d3.from_cache and len(d3.images) == out["latentlab_images"]
            del d3
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
        out["incremental_reload_s"] = statistics.median(incremental)
        out["incremental_reload_s_each"] = incremental
        out["incremental_vs_warm"] = out["incremental_reload_s"] / out["warm_load_s"]
    finally:
        if cache_dir is not None:
            wait_for_cache_writes()
            shutil.rmtree(cache_dir, ignore_errors=True)
    return out


def bench_rss(root: Path, epochs: int) -> dict:
    """Peak RSS of a whole `latentlab train` run on the PNG folder (its cache cold): the process and its
    children (decoding workers) summed, sampled from /proc every 50 ms; ru_maxrss where there is no /proc.
    ``epochs=0`` (small mode): this benchmark process's own peak instead (it trained too)."""
    if epochs <= 0:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"peak_rss_gb": kb / 1024 ** 2, "rss_command": "this benchmark process (small mode)"}
    cache_dir = tempfile.mkdtemp(prefix="latentlab-bench-cache-")
    out_dir = tempfile.mkdtemp(prefix="latentlab-bench-run-")
    env = dict(os.environ, LATENTLAB_CACHE_DIR=cache_dir, TF_CPP_MIN_LOG_LEVEL="2")
    try:
        cmd = [sys.executable, "-m", "latentlab", "train", str(root), "--epochs", str(epochs), "--quiet",
               "--out", os.path.join(out_dir, "run")]
        t0 = time.perf_counter()
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)
            tree_peak = 0
            while proc.poll() is None:   # the process and its children together (decoding workers)
                tree_peak = max(tree_peak, _tree_rss_kb(proc.pid))
                time.sleep(0.05)
            seconds = time.perf_counter() - t0
            err.seek(0)
            if proc.returncode != 0:
                raise RuntimeError(f"latentlab train failed ({proc.returncode}): {err.read().strip()[-500:]}")
        # ru_maxrss of the children (Linux: kB, the largest one) also counts what a child shared with this
        # process between fork and exec (Linux keeps the pre-exec high-water mark), i.e. this benchmark's
        # own size when it started the child; the /proc samples see only the train process tree
        kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out = {"peak_rss_gb": (tree_peak or kb) / 1024 ** 2, "peak_rss_children_maxrss_gb": kb / 1024 ** 2,
               "rss_command": " ".join(cmd[1:]), "rss_run_seconds": seconds}
        if tree_peak:
            out["peak_rss_tree_gb"] = tree_peak / 1024 ** 2
        return out
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
        shutil.rmtree(out_dir, ignore_errors=True)


def _tree_rss_kb(pid: int) -> int:
    """Resident memory (kB) of ``pid`` and its direct children, summed, from /proc (0 where there is
    none: the peak then falls back to ru_maxrss, the largest single process)."""
    total = 0
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):   # a child belongs to the thread that started it
        try:
            children += (task / "children").read_text().split()
        except OSError:
            pass
    for p in [pid, *map(int, children)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except (OSError, ValueError):
            pass
    return total


# -- 4: grid decode, engine only -------------------------------------------------------------------------
def bench_grid_engine(reps: int) -> dict:
    from latentlab.model.latent import Decoder, decode_grid, decode_point

    dec = Decoder((28, 28, 1), 2)
    dec.warm_up()
    decode_grid(dec, (-3, 3), (-3, 3), 20)
    grid = []
    for _ in range(reps):
        t0 = time.perf_counter()
        decode_grid(dec, (-3, 3), (-3, 3), 20)
        grid.append((time.perf_counter() - t0) * 1000)
    point = []
    rng = np.random.default_rng(0)
    for _ in range(reps * 10):
        z = rng.standard_normal(2).astype(np.float32)
        t0 = time.perf_counter()
        decode_point(dec, z)
        point.append((time.perf_counter() - t0) * 1000)
    return {"grid_engine_ms": statistics.median(grid), "decode_point_engine_p50_ms": pct(point, 50),
            "decode_point_engine_p99_ms": pct(point, 99)}


# -- 3 + 4: the app ------------------------------------------------------------------------------------
def bench_app(size: dict, x, y, seed: int = 0) -> dict:  # noqa: C901
    """The real MainWindow (offscreen) training on a Fashion-MNIST subset, beside the headless Trainer
    with the same config and a run folder too; each round runs headless, then the app watched (curves
    and latent map live, nobody clicking: the overhead), then the app clicked. During app training a
    10 ms QTimer heartbeat measures GUI-thread stalls; in the clicked runs a click every 250 ms decodes
    one z and paints it (synchronously: ``click_at`` then ``repaint``); grid refreshes are timed request → shown, and
    the seconds between grids shown while training are reported (the grid waits its turn then:
    `gui.main_window.GRID_DUTY_TRAINING`). The app runs its own event loop (``QEventLoop.exec``) as
    it does for a user; the GUI thread's CPU seconds per second of training are reported too."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
        from PySide6.QtWidgets import QApplication

        from gui.main_window import MainWindow
    except Exception as e:  # noqa: BLE001
        return {"reasons": {"app": f"the app cannot be imported: {type(e).__name__}: {e}"}}
    from latentlab.config import TrainConfig
    from latentlab.data import Dataset
    from latentlab.events import BatchEnd
    from latentlab.training.trainer import Trainer

    n = size["app_images"]
    ds = Dataset.from_arrays(x[:n], y[:n])
    app = QApplication.instance() or QApplication(["latentlab-bench"])
    tmp = Path(tempfile.mkdtemp(prefix="latentlab-bench-app-"))
    settings = {"epochs": size["app_epochs"], "batch_size": 128, "learning_rate": 1e-3, "beta": 1.0,
                "latent_dim": 2, "kl_schedule": "constant"}
    head_rates, app_rates = [], {"watch": [], "click": []}
    stalls, clicks, grids, grid_gaps = [], [], [], []
    gui_cpu = {"watch": [], "click": []}                     # GUI thread's CPU seconds per second
    app_cpu, head_cpu = {"watch": [], "click": []}, []      # process CPU seconds per training image

    def epoch_rates(rows, n_train):
        secs = [r["seconds"] for r in rows][1:] or [r["seconds"] for r in rows]
        return n_train / statistics.median(secs)

    def run_headless(k):
        cfg = TrainConfig(dataset=str(ds.root), image_size=[28, 28], color="gray", **settings)
        tr = Trainer(cfg, ds, tmp / f"headless-{k}", snapshot_seconds=2.0)
        p0 = time.process_time()
        ev = tr.run()
        head_cpu.append((time.process_time() - p0) / (len(ev.history) * len(tr.train_idx)))
        return epoch_rates(ev.history, len(tr.train_idx))

    def run_app(k, mode):  # noqa: C901
        win = MainWindow(runs_root=tmp / f"app-{k}", snapshot_seconds=2.0)
        win.show()
        win._on_dataset_loaded(ds)
        win.training_panel.apply_settings(**settings)
        done = {"flag": False, "result": None}
        win.trainingFinished.connect(lambda res: done.update(flag=True, result=res))
        beat = QElapsedTimer()
        beat.start()
        last = [beat.nsecsElapsed()]
        hb_ms = 10
        state = {"training": False, "grid_t0": None, "n_train": None}

        def heartbeat():
            now = beat.nsecsElapsed()
            if state["training"]:
                stalls.append(max(0.0, (now - last[0]) / 1e6 - hb_ms))
                if "cpu0" not in state:     # the GUI thread's CPU clock, from the first batch on
                    state["cpu0"], state["wall0"] = time.thread_time(), time.perf_counter()
            last[0] = now

        rng = np.random.default_rng(k)

        def click():
            if not state["training"] or win.map_view.point_decoder is None or win.map_view.latest_weights is None:
                return
            lo, hi = -2.0, 2.0
            px, py = rng.uniform(lo, hi, 2)
            t0 = time.perf_counter()
            win.latent_map.click_at(float(px), float(py))
            win.image_panel.view.repaint()
            clicks.append((time.perf_counter() - t0) * 1000)

        def on_event(ev):
            if isinstance(ev, BatchEnd) and not state["training"]:   # (on the training thread)
                state["training"] = True

        def on_grid():
            timing = win.map_view.last_grid_timing or {}
            if timing.get("latency_s") is not None:
                grids.append(timing["latency_s"] * 1000)
            now = time.perf_counter()
            if state["training"] and state["grid_t0"] is not None:
                grid_gaps.append(now - state["grid_t0"])
            state["grid_t0"] = now

        win.gridShown.connect(on_grid)
        hb = QTimer()
        hb.setInterval(hb_ms)
        hb.timeout.connect(heartbeat)
        hb.start()
        ct = QTimer()
        ct.setInterval(250)
        ct.timeout.connect(click)
        if mode == "click":
            ct.start()
        p0 = time.process_time()
        if not win.start_training():
            raise RuntimeError("the app refused to start training")
        win.training.event.connect(on_event)
        loop = QEventLoop()
        win.trainingFinished.connect(loop.quit)
        guard = QTimer()
        guard.setSingleShot(True)
        guard.timeout.connect(loop.quit)
        guard.start(1800 * 1000)
        if not done["flag"]:
            loop.exec()
        p1 = time.process_time()
        if "cpu0" in state:
            gui_cpu[mode].append((time.thread_time() - state["cpu0"]) / (time.perf_counter() - state["wall0"]))
        state["training"] = False
        hb.stop()
        ct.stop()
        guard.stop()
        # the last weights' grid may still be on its way (waiting its turn, or in the map's 40 ms debounce)
        t_grid = time.time() + 10
        while not win.is_idle() and time.time() < t_grid:
            app.processEvents()
            time.sleep(0.001)
        res = done["result"]
        if res is None or not getattr(res, "history", None):
            raise RuntimeError(f"app training did not finish: {res}")
        n_train = n - int(round(n * TrainConfig().val_fraction))
        win.shutdown() if hasattr(win, "shutdown") else None
        win.close()
        win.deleteLater()
        app.processEvents()
        app_cpu[mode].append((p1 - p0) / (len(res.history) * n_train))
        return epoch_rates(res.history, n_train)

    try:
        for k in range(size["app_rounds"]):
            head_rates.append(run_headless(k))
            log(f"headless round {k + 1}: {head_rates[-1]:.0f} img/s")
            for mode in ("watch", "click"):
                app_rates[mode].append(run_app(k, mode))
                log(f"app round {k + 1} ({mode}): {app_rates[mode][-1]:.0f} img/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    head_rate = statistics.median(head_rates)
    app_rate, click_rate = statistics.median(app_rates["watch"]), statistics.median(app_rates["click"])
    out = {"app_images_per_second": app_rate, "headless_images_per_second": head_rate,
           "app_clicking_images_per_second": click_rate,
           "app_overhead": 1.0 - app_rate / head_rate,
           "app_overhead_clicking": 1.0 - click_rate / head_rate,
           "app_overhead_cpu": statistics.median(app_cpu["watch"]) / statistics.median(head_cpu) - 1.0,
           "gui_stall_p50_ms": pct(stalls, 50), "gui_stall_p99_ms": pct(stalls, 99),
           "gui_stall_max_ms": max(stalls) if stalls else None, "heartbeats": len(stalls),
           "click_p50_ms": pct(clicks, 50), "click_p99_ms": pct(clicks, 99),
           "click_max_ms": max(clicks) if clicks else None, "clicks": len(clicks),
           "grid_app_ms_median": statistics.median(grids) if grids else None, "grid_app_count": len(grids),
           "grid_interval_s_median": statistics.median(grid_gaps) if grid_gaps else None,
           "gui_thread_cpu_share": statistics.median(gui_cpu["watch"]) if gui_cpu["watch"] else None,
           "gui_thread_cpu_share_clicking": statistics.median(gui_cpu["click"]) if gui_cpu["click"] else None}
    return out


# -- the whole suite -----------------------------------------------------------------------------------------
def machine() -> dict:
    import keras
    import tensorflow as tf

    from latentlab.tfquiet import onednn_enabled
    from latentlab.runtime import training_device

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "device": training_device(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "platform": platform.platform(),
            "onednn": onednn_enabled()}


def bench_app_subprocess(small: bool) -> dict:
    """The app section in a child process: a crash there (Qt, a C extension) costs only its figures."""
    with tempfile.TemporaryDirectory(prefix="latentlab-bench-gui-") as tmp:
        out = os.path.join(tmp, "gui.json")
        cmd = [sys.executable, "-m", "benchmarks.bench", "--only", "gui", "--json", out] + (["--small"] if small else [])
        env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0 or not os.path.isfile(out):
            err = proc.stderr.splitlines()
            lines = ([ln for ln in err if "Fatal Python error" in ln] or [ln for ln in err if "Traceback" in ln]
                     or [ln for ln in err if "Error" in ln and "cuInit" not in ln and "cuda" not in ln])
            raise RuntimeError(f"the app benchmark process exited with {proc.returncode}: "
                               + (lines[0] if lines else proc.stderr.strip()[-300:]))
        with open(out) as f:
            child = json.load(f)
    keys = ("app_images_per_second", "headless_images_per_second", "app_clicking_images_per_second", "app_overhead",
            "app_overhead_clicking", "app_overhead_cpu", "gui_thread_cpu_share_clicking", "gui_stall_p50_ms",
            "gui_stall_p99_ms", "gui_stall_max_ms", "heartbeats", "click_p50_ms", "click_p99_ms", "click_max_ms",
            "clicks", "grid_app_ms_median", "grid_app_count", "grid_interval_s_median", "gui_thread_cpu_share")
    part = {k: child.get(k) for k in keys}
    if child.get("reasons"):
        part["reasons"] = {k: v for k, v in child["reasons"].items() if k in keys or k in ("app", "gui")}
    return part


def run(small: bool = False, only: set[str] | None = None, json_path: str | None = None) -> dict:  # noqa: C901
    from latentlab.tfquiet import import_tensorflow

    import_tensorflow()
    from benchmarks import fashion_mnist

    size = SMALL if small else FULL
    want = (lambda s: only is None or s in only)
    t_start = time.perf_counter()
    res: dict = {"mode": "small" if small else "full", "size": size, "machine": machine(),
                 "command": "python -m benchmarks.bench" + (" --small" if small else ""), "reasons": {}}
    for k in REQUIRED_KEYS:
        res[k] = None
    x, y = fashion_mnist.load("train")
    x_test, _ = fashion_mnist.load("test")
    x, y, x_test = x[:size["n_train"]], y[:size["n_train"]], x_test[:size["n_test"]]

    sections = []
    if want("train"):
        sections.append(("train", lambda: bench_training(size, x, y, x_test)))
    if want("shipped"):
        from benchmarks.lockstep import bench_shipped

        sections.append(("shipped", lambda: bench_shipped(size["shipped_epochs"], size["slice_steps"],
                                                          size["n_train"])))
    if want("data"):
        sections.append(("data", lambda: bench_data(png_folder(size["png_count"]), size["data_rounds"])))
    if want("rss"):
        rss = ("rss", lambda: bench_rss(png_folder(size["png_count"]), size["rss_epochs"]))
        sections.append(rss)
    if want("grid"):
        sections.append(("grid", lambda: bench_grid_engine(size["grid_reps"])))
    if want("logging"):
        from benchmarks.run_logging import bench_logging

        sections.append(("logging", lambda: bench_logging(x, y, size["log_images"], size["log_epochs"],
                                                          size["log_rounds"])))
    if want("cluster"):
        from benchmarks.bench_cluster import bench_cluster_overhead, bench_sweep_speedup

        sections.append(("cluster", lambda: {**bench_sweep_speedup(size["sweep_rounds"], size["sweep_epochs"],
                                                                   size["sweep_images"]),
                                             **bench_cluster_overhead(size["overhead_rounds"], size["sweep_epochs"],
                                                                      size["sweep_images"])}))
    if want("gui"):
        sections.append(("gui", (lambda: bench_app(size, x, y)) if only == {"gui"} else
                         (lambda: bench_app_subprocess(small))))
    if want("map"):
        from benchmarks.bench_map import bench_map_subprocess

        sections.append(("map", lambda: bench_map_subprocess(small)))
    if want("follow"):
        from benchmarks.bench_follow import bench_follow

        sections.append(("follow", lambda: bench_follow(small)))
    if want("rss") and size["rss_epochs"] <= 0:      # in-process: measure last, after everything trained
        sections.remove(rss)
        sections.append(rss)
    for name, fn in sections:
        log(f"section {name}")
        t0 = time.perf_counter()
        try:
            part = fn()
        except Exception as e:  # noqa: BLE001  one broken section leaves the others' figures
            import traceback

            traceback.print_exc()
            res["reasons"][name] = f"{type(e).__name__}: {e}"
            continue
        res["reasons"].update(part.pop("reasons", {}))
        res.update(part)
        res.setdefault("section_seconds", {})[name] = time.perf_counter() - t0
        if json_path:                                   # keep what is measured if a later section dies
            with open(json_path, "w") as f:
                json.dump(res, f, indent=2, default=float)
    if res.get("grid_engine_ms") is not None:
        res["grid_ms"] = res["grid_engine_ms"]
    if res.get("throughput_ratio_shipped") is not None:   # latentlab as shipped vs the recipe as a user runs it
        res["throughput_ratio"] = res["throughput_ratio_shipped"]
    failures = "; ".join(f"{s}: {m}" for s, m in res["reasons"].items())
    for k in REQUIRED_KEYS:
        if res.get(k) is None and k not in res["reasons"]:
            res["reasons"][k] = f"section not run or failed ({failures})" if failures else "section not run"
    res["total_seconds"] = time.perf_counter() - t_start
    return res


TABLE = [
    ("throughput_ratio", "Training throughput, latentlab ÷ reference (equal model, batch 128), each as shipped "
     "in its own process (the reference with TensorFlow's defaults), taking turns every 40 batches: median "
     "over the epochs after the first of the two sides' rates (own time) in the same epoch", "≥ 1.2×", "{:.2f}×"),
    ("throughput_ratio_shipped_steady", "… the steady rate between epoch starts: median of paired 40-batch slices",
     "", "{:.2f}×"),
    ("throughput_ratio_epochs", "… both in one process with the same TensorFlow settings (latentlab's: the same "
     "kernels), from each side's median epoch after the first", "", "{:.2f}×"),
    ("throughput_ratio_same_kernels", "… the same, steady rate: median of paired slices", "", "{:.2f}×"),
    ("throughput_ratio_best_epochs", "… the same, from each side's fastest epoch after the first", "", "{:.2f}×"),
    ("throughput_ratio_defaults", "… latentlab with its defaults (128 hidden units, batch 64) ÷ reference", "",
     "{:.2f}×"),
    ("time_to_quality_ratio", "Time to the reference's {E}-epoch test −ELBO, latentlab defaults ÷ reference",
     "≤ 0.5×", "{:.2f}×"),
    ("time_to_quality_epochs", "… epochs latentlab (defaults) needed", "", "{:d}"),
    ("test_neg_elbo", "Test −ELBO, latentlab at equal model (nats, after {E} epochs)", "≈ reference", "{:.2f}"),
    ("reference_test_neg_elbo", "Test −ELBO, reference (nats, after {E} epochs)", "", "{:.2f}"),
    ("test_neg_log_likelihood", "Test −log p(x) (importance-sampled), latentlab defaults (nats, after "
     "{L} epochs)", "", "{:.2f}"),
    ("reference_test_neg_log_likelihood", "Test −log p(x), reference after the same {L} epochs (nats)", "",
     "{:.2f}"),
    ("reference_test_neg_log_likelihood_final", "Test −log p(x), reference after {E} epochs (nats)", "", "{:.2f}"),
    ("app_overhead", "App overhead (1 − app ÷ headless throughput; curves and map live, watched)", "≤ 5 %", "{:.1%}"),
    ("app_overhead_clicking", "… while the map is clicked 4 times a second", "", "{:.1%}"),
    ("app_overhead_cpu", "… watched, from process CPU seconds per image (app ÷ headless − 1)", "", "{:.1%}"),
    ("gui_stall_p50_ms", "GUI-thread stall p50 (ms)", "", "{:.1f}"),
    ("gui_stall_p99_ms", "GUI-thread stall p99 (ms)", "≤ 50", "{:.1f}"),
    ("gui_stall_max_ms", "GUI-thread stall max (ms)", "", "{:.1f}"),
    ("click_p50_ms", "Click → decoded image painted, p50 (ms)", "≤ 20", "{:.1f}"),
    ("click_p99_ms", "Click → decoded image painted, p99 (ms)", "≤ 50", "{:.1f}"),
    ("grid_ms", "20×20 grid decode (`decode_grid`, ms)", "≤ 150", "{:.1f}"),
    ("grid_app_ms_median", "20×20 grid in the app, request → shown (ms)", "", "{:.1f}"),
    ("grid_interval_s_median", "… seconds between grids shown while training (weights every 2 s)", "", "{:.1f}"),
    ("gui_thread_cpu_share", "GUI thread's CPU seconds per second of training, watched", "", "{:.1%}"),
    ("gui_thread_cpu_share_clicking", "… clicked 4 times a second", "", "{:.1%}"),
    ("map_fps_100k", "Latent map with 100,000 points: frames per second, the slowest of pan, zoom and hover "
     "(real input events, offscreen window)", "≥ 30", "{:.0f}"),
    ("map_fps_100k_pan", "… pan (a drag)", "", "{:.0f}"),
    ("map_fps_100k_zoom", "… zoom (wheel steps)", "", "{:.0f}"),
    ("map_fps_100k_hover", "… hover (the preview under the mouse)", "", "{:.0f}"),
    ("map_cpu_ms_per_frame_pan", "… GUI-thread CPU per frame: pan (ms)", "", "{:.1f}"),
    ("map_cpu_ms_per_frame_zoom", "… GUI-thread CPU per frame: zoom (ms)", "", "{:.1f}"),
    ("map_cpu_ms_per_frame_hover", "… GUI-thread CPU per frame: hover (ms)", "", "{:.1f}"),
    ("map_load_avg", "… the machine's load average then (1 min)", "", "{:.1f}"),
    ("cold_load_s", "Cold load of the PNG folder (s, median of the rounds)", "", "{:.2f}"),
    ("keras_load_s", "Keras `image_dataset_from_directory`, read once (s, median of the rounds)", "", "{:.2f}"),
    ("cold_vs_keras", "Cold load ÷ Keras (median of each round's ratio, taking turns)", "≤ 1.5×", "{:.2f}×"),
    ("warm_load_s", "Warm load (cache) (s, median of 5)", "≤ 0.5", "{:.3f}"),
    ("incremental_reload_s", "Reload after touching one file (s, median of 3; that file decoded alone)", "≤ 3× warm",
     "{:.3f}"),
    ("peak_rss_gb", "Peak RSS of `latentlab train` on the folder (GB)", "≤ 3", "{:.2f}"),
    ("tensorboard_share_of_epoch", "TensorBoard event files (scalars, KL histogram, grid image) per epoch, "
     "share of the epoch ({G} images)", "not measurable", "{:.1%}"),
    ("tensorboard_ms_per_epoch", "… milliseconds per epoch", "", "{:.0f}"),
    ("likelihood_share_of_epoch", "Per-epoch −log p(x) estimate (K = 10), share of the epoch", "≈ 5 %", "{:.1%}"),
    ("logging_batch_overhead", "… both, between epochs: median batch with them ÷ without − 1 (taking turns run "
     "by run)", "≈ 0", "{:.1%}"),
    ("logging_overhead_ab", "… both, from epoch times with them and without (A/B; noisy on a loaded machine)", "",
     "{:.1%}"),
    ("sweep_speedup", "β sweep (0.1, 1, 4, 16) with `--workers 2` (one thread each) ÷ the same sweep in one "
     "process, wall time of each command, taking turns (median of the rounds)", "≥ 1.2×", "{:.2f}×"),
    ("follow_idle_cpu", "Following a run in the app while it is idle: share of one core (a poll a second)", "≤ 1 %",
     "{:.3%}"),
    ("follow_writer_overhead", "The writer's training throughput lost to a follower on the same machine (taking "
     "turns)", "≤ 5 %", "{:.1%}"),
    ("follow_commit_ms_per_epoch", "… what each epoch commits for it (model, codes, history, state): ms per epoch",
     "", "{:.0f}"),
    ("cluster_overhead", "A run's wall time as a Dask task (warm worker; folder shipped back) ÷ the same run alone, "
     "− 1", "≤ 5 %", "{:.1%}"),
]


def table(res: dict) -> str:
    lines = ["| figure | value | target |", "| --- | --- | --- |"]
    extra = {}
    for key in ("throughput_ratio_shipped_steady", "throughput_ratio_same_kernels"):
        if res.get(f"{key}_iqr"):
            lo, hi = res[f"{key}_iqr"]
            extra[key] = f"| … interquartile range of the {res.get(f'{key}_pairs')} slice pairs | {lo:.2f}–{hi:.2f}× | |"
    E = (res.get("size") or {}).get("ref_epochs", 5)
    subs = {"{E}": E, "{L}": res.get("test_neg_log_likelihood_epochs", "?"), "{G}": f"{res.get('logging_images', 0):,}"}
    for key, label, target, fmt in TABLE:
        for k, v in subs.items():
            label = label.replace(k, str(v))
        v = res.get(key)
        text = fmt.format(v) if isinstance(v, (int, float)) and v is not None and math.isfinite(v) else \
            f"n/a ({res.get('reasons', {}).get(key, 'not measured')})"
        lines.append(f"| {label} | {text} | {target} |")
        if key in extra:
            lines.append(extra[key])
    return "\n".join(lines)


def markdown(res: dict) -> str:
    """The figures as a Markdown section (machine, command, table, per-participant details)."""
    m = res.get("machine", {})
    lines = [f"Command: `{res.get('command')}` ({res.get('mode')} mode, {res.get('total_seconds', 0) / 60:.1f} min)",
             "",
             f"Machine: {m.get('cpu')} × {m.get('cores')} cores, training on {m.get('device')}; "
             f"Python {m.get('python')}, TensorFlow {m.get('tensorflow')}, Keras {m.get('keras')}; "
             f"oneDNN kernels in latentlab's processes: {m.get('onednn')}, in the shipped reference's: "
             f"{(res.get('shipped_onednn') or {}).get('reference')}.",
             "", table(res), ""]
    parts = res.get("participants") or {}
    if parts:
        lines += ["| participant | hidden units, batch, lr | img/s (median, epochs ≥ 2) | epoch seconds | "
                  "test −ELBO per epoch |", "| --- | --- | --- | --- | --- |"]
        for name, r in parts.items():
            cfg = r.get("config") or {"batch_size": 128, "learning_rate": 1e-3, "hidden_units": 16}
            lines.append(f"| {name} | {cfg['hidden_units'] or 'auto'}, {cfg['batch_size']}, {cfg['learning_rate']:g} | "
                         f"{r.get('images_per_second', float('nan')):.0f} | "
                         f"{', '.join(f'{s:.0f}' for s in r['epoch_seconds'])} | "
                         f"{', '.join(f'{e:.1f}' for e in r['elbo'])} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="seconds, not minutes (a few thousand images)")
    p.add_argument("--json", help="write every figure here")
    p.add_argument("--markdown", help="write the figures as Markdown here (for docs/benchmarks.md)")
    p.add_argument("--only", help="comma-separated sections: train,shipped,data,rss,grid,logging,cluster,gui,map")
    args = p.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    res = run(small=args.small, only=only, json_path=args.json)
    print(table(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2, default=float)
    if args.markdown:
        Path(args.markdown).write_text(markdown(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

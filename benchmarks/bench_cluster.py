"""The benchmark's cluster section: a β sweep on a local Dask cluster against the same sweep here, and
what a run pays for being a Dask task.

``sweep_speedup``: ``latentlab sweep SAMPLE --betas 0.1,1,4,16 --epochs 3`` with ``--workers 2`` (two worker
processes, one thread each) ÷ the same command without (one run after another in one process), each as a
user runs it (its own process, wall time from start to exit: the local cluster's start-up counts), taking
turns (the order swaps every round); the median of the rounds' ratios.

``cluster_overhead``: one run (β 1, 3 epochs) as a task on a warm one-worker local cluster, from the
client connected (a sweep connects once) to its folder written on the client (scatter, task start, every
commit shipped back and written) ÷ the same run trained alone by a Trainer in this process (warm too: its
model traced by a first run), minus 1; turns alternate, the median of the rounds.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import log

BETAS = "0.1,1,4,16"


def _sample(images: int | None, root: Path) -> Path:
    """The bundled sample, or its first ``images`` (spread over the classes) copied to ``root``."""
    from latentlab.data import sample_dataset_path

    src = sample_dataset_path()
    if not images:
        return src
    classes = sorted(p for p in src.iterdir() if p.is_dir())
    per = max(1, images // len(classes))
    for c in classes:
        (root / c.name).mkdir(parents=True, exist_ok=True)
        for f in sorted(c.glob("*.png"))[:per]:
            shutil.copy(f, root / c.name / f.name)
    return root


def _timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        err = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()] or proc.stderr.splitlines()[-1:]
        raise RuntimeError(f"{' '.join(cmd[2:4])} exited with {proc.returncode}: {(err or [''])[0][:300]}")
    return seconds


def bench_sweep_speedup(rounds: int, epochs: int, images: int | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="latentlab-bench-sweep-") as tmp:
        tmp = Path(tmp)
        folder = _sample(images, tmp / "data")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", LATENTLAB_CACHE_DIR=str(tmp / "cache"))
        cli = [sys.executable, "-m", "latentlab", "sweep", str(folder), "--quiet"]
        _timed(cli + ["--betas", "1", "--epochs", "1", "--out", str(tmp / "warm")], env)   # fills the folder's cache
        base = cli + ["--betas", BETAS, "--epochs", str(epochs)]
        seq, par = [], []
        for r in range(rounds):
            order = ("sequential", "workers") if r % 2 == 0 else ("workers", "sequential")
            for side in order:
                out = tmp / f"{side}-{r}"
                extra = ["--workers", "2"] if side == "workers" else []
                seconds = _timed(base + ["--out", str(out)] + extra, env)
                (par if side == "workers" else seq).append(seconds)
                log(f"sweep {side}: {seconds:.1f} s")
        ratios = [s / p for s, p in zip(seq, par)]
        return {"sweep_speedup": statistics.median(ratios), "sweep_speedup_rounds": ratios,
                "sweep_sequential_s": seq, "sweep_workers_s": par,
                "sweep_setup": f"β {BETAS}, {epochs} epochs, {images or 'all 3,000'} sample images, "
                               f"--workers 2 vs one process, {rounds} round(s)"}


def bench_cluster_overhead(rounds: int, epochs: int, images: int | None) -> dict:
    from latentlab.sweeps.cluster import ClusterSweep, connect
    from latentlab.config import TrainConfig
    from latentlab.data import load_folder
    from latentlab.model.pool import ModelPool
    from latentlab.training.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="latentlab-bench-task-") as tmp:
        tmp = Path(tmp)
        ds = load_folder(_sample(images, tmp / "data"), cache=False)
        cfg = TrainConfig(dataset=ds.root, beta=1.0, epochs=epochs)
        client, cluster = connect(None, 1)
        address = cluster.scheduler_address
        client.close()
        try:
            pool = ModelPool()
            Trainer(cfg.replace(epochs=1), ds, tmp / "warm-alone", model_pool=pool).run()     # traced once, each side
            ClusterSweep(cfg.replace(epochs=1), [1.0], tmp / "warm-task", ds, address=address).run()
            alone, task = [], []
            for r in range(rounds):
                for side in (("alone", "task") if r % 2 == 0 else ("task", "alone")):
                    t0 = time.perf_counter()
                    if side == "alone":
                        Trainer(cfg, ds, tmp / f"alone-{r}", model_pool=pool).run()
                    else:
                        sweep = ClusterSweep(cfg, [1.0], tmp / f"task-{r}", ds, address=address)
                        sweep.open()      # a sweep connects once, whatever number of runs it has
                        t0 = time.perf_counter()
                        sweep.run()
                    (alone if side == "alone" else task).append(time.perf_counter() - t0)
                    log(f"one run {side}: {(alone if side == 'alone' else task)[-1]:.1f} s")
            shipped = max(sweep.bytes_back.values()) if sweep.bytes_back else None
        finally:
            cluster.close()
        overheads = [t / a - 1.0 for a, t in zip(alone, task)]
        return {"cluster_overhead": statistics.median(overheads), "cluster_overhead_rounds": overheads,
                "cluster_run_alone_s": alone, "cluster_run_task_s": task, "cluster_commit_bytes": shipped,
                "cluster_setup": f"β 1, {epochs} epochs, {len(ds.images)} images, default model; one warm worker"}

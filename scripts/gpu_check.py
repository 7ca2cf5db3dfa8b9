"""The GPU check's steps (``scripts/gpu-check`` sets up the venv and runs this).

    python -m scripts.gpu_check --mode gpu       on a machine with an NVIDIA GPU (≤ 8 minutes in all)
    python -m scripts.gpu_check --mode tiny      the same steps, tiny, on whatever device is here
    python -m scripts.gpu_check --mode dry       print the steps and targets, run nothing

Steps: the device TensorFlow sees; training throughput on the full Fashion-MNIST (60,000 images) with the
classic recipe's model (16 hidden units, batch 128) and with latentlab's defaults (128 hidden units) at
batch 64 and at FAST_BATCH, the batch the 30,000 img/s target is set for; mixed precision off and on at
FAST_BATCH; the benchmark's app section (GUI stall, click and grid latency) with the GPU training; a 2-run
β sweep on a local Dask cluster with ``--gpus-per-run 1``. Prints a table with the targets and writes
every figure as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAST_BATCH = 1024    # latentlab's defaults at this batch: the ≥ 30,000 img/s target on an H200-class GPU
TARGETS = {          # figure: (target, at least?)
    "defaults_fast_images_per_second": (30_000, True),
    "gui_stall_p99_ms": (50.0, False),
    "click_p99_ms": (50.0, False),
}
SIZES = {"gpu": dict(images=60_000, epochs=2, app_small=False, sweep_epochs=2),
         "tiny": dict(images=2_000, epochs=2, app_small=True, sweep_epochs=1)}
STEPS = [
    ("device", "which device TensorFlow sees"),
    ("throughput", "img/s on Fashion-MNIST: reference model (16 hidden, batch 128); defaults (128 hidden) at "
                   f"batch 64 and at batch {FAST_BATCH}"),
    ("mixed_precision", f"defaults at batch {FAST_BATCH}, mixed precision off and on"),
    ("app", "the benchmark's app section with the GPU training: GUI stall p50/p99, click p50/p99, grid ms"),
    ("sweep", "latentlab sweep --betas 1,4 --workers 2 --gpus-per-run 1 (a 2-run sweep, one GPU each)"),
]


def log(msg: str) -> None:
    print(f"[gpu-check {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def step_device() -> dict:
    from latentlab.runtime import training_device
    from latentlab.tfquiet import import_tensorflow

    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    return {"device": training_device(), "gpus": len(gpus), "tensorflow": tf.__version__,
            "cuda_build": bool(tf.test.is_built_with_cuda())}


def _rate(x, y, *, hidden: int, batch: int, epochs: int, mixed: bool = False) -> float:
    """Training images per second of the last epoch (the first traces), from the Trainer's own timing."""
    from latentlab.config import TrainConfig
    from latentlab.data import Dataset
    from latentlab.training.trainer import Trainer

    ds = Dataset.from_arrays(x, y)
    cfg = TrainConfig(dataset="fashion-mnist", hidden_units=hidden, batch_size=batch, epochs=epochs,
                      mixed_precision=mixed, val_fraction=0.0)
    trainer = Trainer(cfg, ds, None)
    result = trainer.run()
    if type(result).__name__ != "Finished":
        raise RuntimeError(result.message)
    return len(trainer.train_idx) / result.history[-1]["seconds"]


def step_throughput(x, y, epochs: int) -> dict:
    out = {"reference_images_per_second": _rate(x, y, hidden=16, batch=128, epochs=epochs),
           "defaults_images_per_second": _rate(x, y, hidden=0, batch=64, epochs=epochs),
           "defaults_fast_images_per_second": _rate(x, y, hidden=0, batch=FAST_BATCH, epochs=epochs)}
    out["fast_batch"] = FAST_BATCH
    return out


def step_mixed_precision(x, y, epochs: int, fp32_rate: float | None) -> dict:
    rate = fp32_rate if fp32_rate is not None else _rate(x, y, hidden=0, batch=FAST_BATCH, epochs=epochs)
    mixed = _rate(x, y, hidden=0, batch=FAST_BATCH, epochs=epochs, mixed=True)
    return {"mixed_off_images_per_second": rate, "mixed_on_images_per_second": mixed, "mixed_speedup": mixed / rate}


def step_app(small: bool) -> dict:
    from benchmarks.bench import bench_app_subprocess

    part = bench_app_subprocess(small)
    keys = ("gui_stall_p50_ms", "gui_stall_p99_ms", "click_p50_ms", "click_p99_ms", "grid_app_ms_median",
            "app_images_per_second", "headless_images_per_second", "app_overhead")
    return {k: part.get(k) for k in keys}


def step_sweep(x, y, epochs: int) -> dict:
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="latentlab-gpu-check-") as tmp:
        folder = Path(tmp) / "images"
        for i in range(min(len(x), 2_000)):          # a folder of PNGs, as a user gives one
            d = folder / f"class_{int(y[i])}"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray((x[i, ..., 0] * 255).astype("uint8")).save(d / f"{i}.png")
        cmd = [sys.executable, "-m", "latentlab", "sweep", str(folder), "--betas", "1,4", "--epochs", str(epochs),
               "--workers", "2", "--gpus-per-run", "1", "--out", str(Path(tmp) / "sweep")]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                              env=dict(os.environ, LATENTLAB_CACHE_DIR=str(Path(tmp) / "cache")))
        seconds = time.perf_counter() - t0
        devices = sorted({ln.split("(")[-1].rstrip(")") for ln in proc.stderr.splitlines() if "started on" in ln})
        if proc.returncode != 0:
            raise RuntimeError((proc.stderr.strip().splitlines() or ["the sweep failed"])[-1])
        finished = sum(1 for ln in proc.stdout.splitlines() if "/sweep/beta-" in ln and "(" not in ln)
        return {"sweep_seconds": seconds, "sweep_runs_finished": finished, "sweep_devices": devices}


def _fmt(v, unit=""):
    if isinstance(v, float):
        return f"{v:,.1f}{unit}" if abs(v) < 1000 else f"{v:,.0f}{unit}"
    return "n/a" if v is None else f"{v}{unit}"


def report(res: dict) -> str:
    rows = [("device TensorFlow sees", res.get("device")),
            ("reference model (16 hidden, batch 128), img/s", res.get("reference_images_per_second")),
            ("defaults (128 hidden, batch 64), img/s", res.get("defaults_images_per_second")),
            (f"defaults at batch {FAST_BATCH}, img/s", res.get("defaults_fast_images_per_second")),
            (f"… mixed precision on, img/s (× {_fmt(res.get('mixed_speedup'))})", res.get("mixed_on_images_per_second")),
            ("GUI stall p50 / p99, ms", f"{_fmt(res.get('gui_stall_p50_ms'))} / {_fmt(res.get('gui_stall_p99_ms'))}"),
            ("click p50 / p99, ms", f"{_fmt(res.get('click_p50_ms'))} / {_fmt(res.get('click_p99_ms'))}"),
            ("20×20 grid in the app, ms", res.get("grid_app_ms_median")),
            ("2-run sweep, --gpus-per-run 1: seconds, runs finished",
             f"{_fmt(res.get('sweep_seconds'))}, {res.get('sweep_runs_finished')}")]
    lines = ["| figure | value |", "| --- | --- |"] + [f"| {a} | {_fmt(b)} |" for a, b in rows]
    lines += ["", "| target (H200-class GPU) | value | met |", "| --- | --- | --- |"]
    for key, (target, at_least) in TARGETS.items():
        v = res.get(key)
        met = "n/a" if v is None else ("yes" if (v >= target if at_least else v <= target) else "NO")
        lines.append(f"| {key} {'≥' if at_least else '≤'} {target:,} | {_fmt(v)} | {met} |")
    for step, why in res.get("reasons", {}).items():
        lines.append(f"\n{step}: not measured ({why})")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("gpu", "tiny", "dry"), default="gpu")
    p.add_argument("--json", help="write every figure here")
    p.add_argument("--skip", default="", help="comma-separated steps to leave out: " + ",".join(s for s, _ in STEPS))
    args = p.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    if args.mode == "dry":
        print(f"gpu-check: {len(STEPS)} steps on {SIZES['gpu']['images']:,} Fashion-MNIST images "
              f"(tiny mode: {SIZES['tiny']['images']:,}), ≤ 8 minutes on a GPU")
        for i, (name, what) in enumerate(STEPS, 1):
            print(f"{i}. {name}: {what}")
        for key, (target, at_least) in TARGETS.items():
            print(f"target: {key} {'>=' if at_least else '<='} {target}")
        return 0
    size = SIZES[args.mode]
    t_start = time.perf_counter()
    res: dict = {"mode": args.mode, "reasons": {}}
    res.update(step_device())
    log(f"TensorFlow {res['tensorflow']} trains on {res['device']}")
    if args.mode == "gpu" and not res["gpus"]:
        print(f"gpu-check: TensorFlow sees no GPU (it trains on {res['device']}; built with CUDA: "
              f"{res['cuda_build']}); check the NVIDIA driver and that .[gpu] installed", file=sys.stderr)
        return 3
    from benchmarks import fashion_mnist

    x, y = fashion_mnist.load("train")
    x, y = x[:size["images"]], y[:size["images"]]
    plan = [("throughput", lambda: step_throughput(x, y, size["epochs"])),
            ("mixed_precision", lambda: step_mixed_precision(x, y, size["epochs"],
                                                             res.get("defaults_fast_images_per_second"))),
            ("app", lambda: step_app(size["app_small"])),
            ("sweep", lambda: step_sweep(x, y, size["sweep_epochs"]))]
    for name, fn in plan:
        if name in skip:
            res["reasons"][name] = "skipped (--skip)"
            continue
        log(f"step {name}")
        t0 = time.perf_counter()
        try:
            res.update(fn())
        except Exception as e:  # noqa: BLE001  one failed step leaves the others' figures
            res["reasons"][name] = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        res.setdefault("step_seconds", {})[name] = time.perf_counter() - t0
    res["total_seconds"] = time.perf_counter() - t_start
    print(report(res))
    print(f"\ngpu-check: {res['total_seconds'] / 60:.1f} min in all")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=float))
    return 0 if not res["reasons"] or skip else 1


if __name__ == "__main__":
    sys.exit(main())

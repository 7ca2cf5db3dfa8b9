#!/usr/bin/env python
"""The full reliability run: crashes, disks, divergence, bad input, untrusted runs, the app, soak.

The tests in tests/test_reliability_*.py are the small CI versions of these; this script runs
the full sizes and prints the figures that docs/reliability.md quotes.

    .venv/bin/python scripts/reliability.py                 # everything, about 10-15 min on 2 cores
    .venv/bin/python scripts/reliability.py --kills 5 --fuzz 300 --app-cycles 10 --clicks 100   # quick
    .venv/bin/python scripts/reliability.py --only soak --soak          # the hour-long soak (3600 s)
    .venv/bin/python scripts/reliability.py --only soak --soak 300      # a 5-minute soak

Sections: crash, disk, divergence, untrusted, corpus, fuzz, options, app, soak (``--only a,b``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import _engine  # noqa: E402
import _reliability as R  # noqa: E402
import numpy as np  # noqa: E402

SECTIONS = ["crash", "disk", "divergence", "untrusted", "corpus", "fuzz", "options", "app", "soak"]
FIGURES: dict[str, dict] = {}


def say(*args):
    print(*args, flush=True)


def header(title):
    say("")
    say(f"== {title} " + "=" * max(0, 70 - len(title)))


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        total = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")) / 1024 / 1024
    except (OSError, StopIteration):
        total = float("nan")
    import tensorflow as tf

    return (f"{platform.node() or 'host'}: {os.cpu_count()} cores ({cpu}), {total:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}, GPU: {'yes' if tf.config.list_physical_devices('GPU') else 'none'}")


# -- sections ----------------------------------------------------------------------------------------
def crash(args, work: Path):
    header(f"crash: SIGKILL during training, {args.kills} times")
    data = _engine.write_digits_folder(work / "digits", per_class=30, size=16)

    def export(run_dir, i):
        argv = ["export", run_dir, "--grid", work / "g.png", "--grid-size", 6, "--samples", 9, work / "s.png",
                "--latents", work / "z.csv"]
        if i % 5 == 4:  # every fifth time as a user runs it, otherwise in this process (faster)
            code, _, err = R.run_cli(*argv)
        else:
            from latentlab.cli import main as cli_main

            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):
                code, err = cli_main([str(a) for a in argv]), ""
        if code:
            say("   export failed:", R.last_line(err))
        return code

    fig = R.crash_campaign(data, work / "crash-run", kills=args.kills, seed=args.seed, batch_size=16,
                           span=args.span, startup_share=0.2, export=export, log=lambda m: say("  " + m))
    details = fig.pop("details")
    fig["kill_moments_s"] = [round(k.delay, 2) for k in details]
    FIGURES["crash"] = fig
    for k, v in fig.items():
        if k != "kill_moments_s":
            say(f"  {k}: {v if not isinstance(v, float) else round(v, 1)}")


def pytest_section(name, selector, extra_env=None):
    """Run some of the reliability tests and report each outcome (they hold the assertions)."""
    header(name)
    env = {**os.environ, **(extra_env or {})}
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", "--tb=line",
                        *selector], capture_output=True, text=True, cwd=REPO, env=env)
    outcome = {}
    for line in p.stdout.splitlines():
        for word in ("PASSED", "FAILED", "SKIPPED", "XFAIL", "ERROR"):
            if line.startswith(word + " "):
                test = line.split(" ", 1)[1].split(" - ")[0].split("::")[-1]
                reason = line.split(" - ", 1)[1] if " - " in line else ""
                outcome[test] = (word, reason)
                say(f"  {word:<7} {test}" + (f"\n            {reason[:300]}" if reason else ""))
    tail = [l for l in p.stdout.splitlines() if l.strip()][-1:] or ["(no output)"]
    say(f"  -> {tail[0]}  ({time.monotonic() - t0:.0f}s)")
    FIGURES[name] = {"tests": {k: v[0] for k, v in outcome.items()}, "summary": tail[0]}


def corpus(args, work: Path):
    header("corpus: broken and odd image files")
    from latentlab.data import load_folder

    root = work / "corpus"
    files = R.write_corpus(root)
    os.mkfifo(root / "bad" / "pipe.png")
    files.append(R.CorpusFile("bad/pipe.png", "skip", "named pipe (FIFO) called .png"))
    t0 = time.perf_counter()
    ds = load_folder(root, image_size=[16, 16], cache=False)
    seconds = time.perf_counter() - t0
    loaded = {os.fsdecode(p).rstrip("/") for p in ds.paths}
    skipped = {os.fsdecode(s.path).rstrip("/"): s.reason for s in ds.skipped}
    rows, bad = [], 0
    for path, f in R.corpus_paths(root, files).items():
        got = "loaded" if path in loaded else ("skipped" if path in skipped else "MISSING")
        ok = (f.expect == "either" and got != "MISSING") or (f.expect == "load" and got == "loaded") or \
             (f.expect == "skip" and got == "skipped") or ("permission" in f.why and os.geteuid() == 0)
        bad += not ok
        rows.append((f.why, got, skipped.get(path, ""), ok))
        say(f"  {'ok ' if ok else 'BAD'} {f.why:<36} {got:<8} {skipped.get(path, '')[:90]}")
    say(f"  {len(files)} files, {len(ds.images)} images loaded, {len(ds.skipped)} skipped, {bad} unexpected, "
        f"{seconds:.2f}s")
    FIGURES["corpus"] = {"files": len(files), "loaded": len(ds.images), "skipped": len(ds.skipped),
                         "unexpected": bad, "seconds": round(seconds, 2)}


def fuzz(args, work: Path):
    header(f"fuzz: {args.fuzz} random + {args.fuzz} mutated + {args.fuzz // 4} bomb-header files")
    from latentlab.data import DatasetError

    rng = random.Random(args.seed)
    seeds = R.seed_images()
    exts = [".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff"]
    counts = {"loaded": 0, "skipped": 0, "error": 0, "crash": 0}
    times = []
    crashes = []
    folder = work / "fuzz"

    def one(data, ext):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        (folder / f"f{ext}").write_bytes(data)
        t0 = time.perf_counter()
        try:
            from latentlab.data import load_folder

            ds = load_folder(folder, cache=False)
            ok = (np.isfinite(ds.images).all() and (len(ds.images) == 0 or
                  (ds.images.min() >= 0 and ds.images.max() <= 1)))
            kind = "loaded" if len(ds.images) else "skipped"
            if not ok:
                kind = "crash"
                crashes.append((ext, "non-finite or out-of-range pixels", data[:64]))
        except DatasetError as e:
            kind = "error" if "\n" not in str(e) else "crash"
        except Exception as e:  # noqa: BLE001 - that is what we are counting
            kind = "crash"
            crashes.append((ext, f"{type(e).__name__}: {e}"[:200], data[:64]))
        times.append(time.perf_counter() - t0)
        counts[kind] += 1

    t0 = time.monotonic()
    for _ in range(args.fuzz):
        one(rng.randbytes(rng.randrange(0, 4096)), rng.choice(exts))
    for _ in range(args.fuzz):
        ext, good = rng.choice(seeds)
        one(R.mutate(good, rng, rng.randrange(1, 16)), ext)
    for _ in range(args.fuzz // 4):
        one(R.png_with_dimensions(rng.randrange(0, 2**31), rng.randrange(0, 2**31)), ".png")
    n = sum(counts.values())
    say(f"  {n} files in {time.monotonic() - t0:.0f}s: {counts}")
    say(f"  load time per file: median {statistics.median(times) * 1000:.1f} ms, "
        f"max {max(times) * 1000:.0f} ms")
    for c in crashes[:10]:
        say(f"  CRASH {c[0]}: {c[1]}  first bytes {c[2][:24]!r}")
    FIGURES["fuzz"] = {"files": n, **counts, "median_ms": round(statistics.median(times) * 1000, 2),
                       "max_ms": round(max(times) * 1000, 1)}


def app(args, work: Path):
    header("app: start/stop/pause cycles, dataset change, close mid-epoch, latent-map clicks")
    if not (REPO / "gui" / "main_window.py").exists():
        say("  skipped: gui/main_window.py does not exist yet")
        FIGURES["app"] = {"skipped": "gui not present"}
        return
    env = {**os.environ, "LATENTLAB_APP_CYCLES": str(args.app_cycles), "LATENTLAB_APP_CLICKS": str(args.clicks),
           "LATENTLAB_RELIABILITY_FIGURES": str(work / "app.json")}
    pytest_section("app", ["tests/test_reliability_app.py"], env)
    if (work / "app.json").exists():
        FIGURES["app"]["figures"] = json.loads((work / "app.json").read_text())
        for k, v in FIGURES["app"]["figures"].items():
            say(f"  {k}: {v}")


def soak(args, work: Path):
    seconds = args.soak
    header(f"soak: training for {seconds:.0f}s" + (" with the app open" if _has_gui() and not args.soak_engine
                                                    else " (engine + a decoder following the weights, no app)"))
    soak_app = None
    if _has_gui() and not args.soak_engine:
        try:
            from test_reliability_app import soak_app  # the app driver lives with the app tests
        except ImportError as e:
            say(f"  (app soak driver not available: {e}; soaking the engine alone)")
    if soak_app is not None:
        fig = soak_app(seconds, work, log=lambda m: say("  " + m))
    else:
        fig = soak_engine(seconds, work, log=lambda m: say("  " + m))
    FIGURES["soak"] = fig
    for k, v in fig.items():
        if k not in ("samples",):
            say(f"  {k}: {v}")


def _has_gui() -> bool:
    return (REPO / "gui" / "main_window.py").exists() and (REPO / "gui" / "app.py").exists()


def soak_engine(seconds: float, work: Path, log=print) -> dict:
    """Train for ``seconds`` in this process, with a decoder following the weights (as the app does);
    sample RSS every few seconds and fit a line."""
    import threading

    from latentlab.config import TrainConfig
    from latentlab.data import load_folder
    from latentlab.model.latent import Decoder
    from latentlab.events import EpochEnd
    from latentlab.training.trainer import Trainer

    data = _engine.write_digits_folder(work / "soak-digits", per_class=60, size=16)
    ds = load_folder(data, cache=False)
    dec = Decoder(ds.images.shape[1:], 2)
    dec.warm_up()
    latencies, samples = [], []
    t0 = time.monotonic()

    def on_event(e):
        if isinstance(e, EpochEnd):
            dec.set_weights(e.decoder_weights)

    trainer = Trainer(TrainConfig(dataset=str(data), batch_size=32, epochs=100_000), ds, work / "soak-run",
                      on_event, snapshot_seconds=0.5)
    th = threading.Thread(target=trainer.run, daemon=True)
    th.start()
    while time.monotonic() - t0 < seconds:
        z = np.random.default_rng().standard_normal((1, 2)).astype(np.float32)
        s = time.perf_counter()
        dec.decode(z)
        latencies.append(time.perf_counter() - s)
        samples.append((time.monotonic() - t0, R.rss_mb()))
        if len(samples) % 30 == 0:
            log(f"t={samples[-1][0]:6.0f}s rss={samples[-1][1]:7.1f} MB epochs={len(trainer.history)}")
        time.sleep(1.0)
    trainer.stop()
    th.join(60)
    return _soak_figures(samples, latencies, len(trainer.history))


def _soak_figures(samples, latencies, epochs) -> dict:
    ts = [t for t, _ in samples]
    rss = [m for _, m in samples]
    warm = [(t, m) for t, m in samples if t >= min(60.0, ts[-1] / 4)]  # after warm-up
    slope = R.slope_mb_per_hour([t for t, _ in warm], [m for _, m in warm])
    return {"seconds": round(ts[-1]), "epochs": epochs, "rss_start_mb": round(rss[0], 1),
            "rss_after_warmup_mb": round(warm[0][1], 1), "rss_end_mb": round(rss[-1], 1),
            "rss_max_mb": round(max(rss), 1), "slope_mb_per_hour_after_warmup": round(slope, 1),
            "decode_latency_median_ms": round(statistics.median(latencies) * 1000, 2),
            "decode_latency_p99_ms": round(float(np.percentile(latencies, 99)) * 1000, 2),
            "samples": len(samples)}


# -- main ------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20, help="SIGKILLs during training (default 20)")
    p.add_argument("--span", type=float, default=8.0,
                   help="kills land uniformly within this many seconds after a process announces training "
                        "(default 8: its first epoch with tracing, then several short epochs and their saves)")
    p.add_argument("--soak-engine", action="store_true",
                   help="soak the engine and a decoder without the app (the app soak needs a PySide6 "
                        "without the 6.12.0 reference-count bug)")
    p.add_argument("--fuzz", type=int, default=3000, help="fuzz files per kind (default 3000)")
    p.add_argument("--app-cycles", type=int, default=100)
    p.add_argument("--clicks", type=int, default=1000)
    p.add_argument("--soak", type=float, nargs="?", const=3600.0, default=None,
                   help="also soak: train this many seconds with the app open (default 3600 when given)")
    p.add_argument("--only", default=None, help=f"comma-separated sections of: {', '.join(SECTIONS)}")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(SECTIONS) - ({"soak"} if args.soak is None else set())
    if "soak" in only and args.soak is None:
        args.soak = 3600.0
    work = Path(tempfile.mkdtemp(prefix="latentlab-reliability-"))
    os.environ["LATENTLAB_CACHE_DIR"] = str(work / "cache")
    t0 = time.monotonic()
    say(f"latentlab reliability run, {time.strftime('%Y-%m-%d %H:%M')}")
    say(f"machine: {machine()}")
    say(f"command: {' '.join([Path(sys.executable).name, 'scripts/reliability.py', *(argv or sys.argv[1:])])}")
    try:
        if "crash" in only:
            crash(args, work)
        if "disk" in only:
            pytest_section("disk", ["tests/test_reliability_engine.py", "-k",
                                    "read_only or disk or file_size or temporary or umask or model_save"])
        if "divergence" in only:
            pytest_section("divergence", ["tests/test_reliability_engine.py", "-k", "divergence"])
        if "untrusted" in only:
            pytest_section("untrusted", ["tests/test_reliability_engine.py", "-k",
                                         "lambda or refus or code_outside or damaged or config_json "
                                         "or exactly_one_line"])
        if "corpus" in only:
            corpus(args, work)
            pytest_section("inputs", ["tests/test_reliability_inputs.py", "-k", "not fuzz and not bad_option"])
        if "fuzz" in only:
            fuzz(args, work)
        if "options" in only:
            pytest_section("options", ["tests/test_reliability_inputs.py", "-k", "bad_option"])
        if "app" in only:
            app(args, work)
        if "soak" in only:
            soak(args, work)
    finally:
        header(f"done in {time.monotonic() - t0:.0f}s")
        if args.json:
            Path(args.json).write_text(json.dumps(FIGURES, indent=2, default=str))
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

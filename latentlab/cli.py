"""The ``latentlab`` command.

``latentlab`` alone (or with app options such as ``--dataset``) opens the desktop app;
``latentlab train|info|export|sweep`` work headless. Errors print one line on stderr and
exit non-zero; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import threading
import time
from pathlib import Path

SUBCOMMANDS = ("train", "info", "export", "sweep")


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + traceback
        raise CliError(f"{message} (see '{self.prog} --help')")


def _quiet_tensorflow():
    import warnings

    warnings.filterwarnings("ignore", module="keras")
    from latentlab.tfquiet import import_tensorflow

    import_tensorflow()


# -- argument types -----------------------------------------------------------------------------
def number_arg(kind, lo=None, hi=None, name="value"):
    """An argparse type: a number of `kind` within [lo, hi] (finite), with a one-line reason otherwise."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {'a whole number' if kind is int else 'a number'}, "
                                             f"not {text!r}") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{name} must be finite, not {text!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{name} must be between {lo:g} and {hi:g}, not {text}")
        return v
    return parse


def _add_train_options(p: argparse.ArgumentParser):
    """Training options; any left out keep TrainConfig's defaults."""
    from latentlab.config import (AUTO_HIDDEN_UNITS, BATCH_RANGE, EPOCHS_RANGE, HIDDEN_RANGE, KL_SCHEDULES,
                                  LATENT_RANGE, LIKELIHOODS, LR_RANGE)
    p.add_argument("--latent-dim", type=number_arg(int, *LATENT_RANGE, "--latent-dim"), default=None,
                   help="size of the latent space (default 2: a map you can click)")
    p.add_argument("--hidden-units", type=number_arg(int, *HIDDEN_RANGE, "--hidden-units"), default=None,
                   help=f"width of the encoder's dense layer (default 0: automatic, {AUTO_HIDDEN_UNITS}; "
                        "16 = the classic Keras recipe)")
    p.add_argument("--epochs", type=number_arg(int, *EPOCHS_RANGE, "--epochs"), default=None,
                   help="epochs in all (with --resume: the total the run should reach)")
    p.add_argument("--batch-size", type=number_arg(int, *BATCH_RANGE, "--batch-size"), default=None)
    p.add_argument("--lr", type=number_arg(float, *LR_RANGE, "--lr"), default=None, help="Adam learning rate")
    p.add_argument("--kl-schedule", choices=KL_SCHEDULES, default=None,
                   help="how β is applied over time: constant, linear warm-up, or cyclical")
    p.add_argument("--warmup-epochs", type=number_arg(int, 1, 10_000, "--warmup-epochs"), default=None,
                   help="warm-up length (linear) or cycle length (cyclical), in epochs")
    p.add_argument("--image-size", default=None, help="resize to N or HxW pixels (8..64; default: most common size)")
    p.add_argument("--color", choices=("auto", "gray", "rgb"), default=None)
    p.add_argument("--likelihood", choices=LIKELIHOODS, default=None,
                   help="reconstruction likelihood: bernoulli (BCE) or gaussian (MSE-like)")
    p.add_argument("--val-fraction", type=number_arg(float, 0.0, 0.5, "--val-fraction"), default=None)
    p.add_argument("--seed", type=number_arg(int, 0, 2**31 - 1, "--seed"), default=None)
    p.add_argument("--mixed-precision", action="store_true", default=None,
                   help="float16 compute on a GPU (ignored on the CPU)")


def build_parser() -> argparse.ArgumentParser:
    from latentlab.config import BETA_RANGE

    parser = _Parser(prog="latentlab", description="A laboratory for variational autoencoders. "
                     "Without a sub-command, opens the desktop app (see 'latentlab app --help').")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", help="train a β-VAE on an image folder, headless")
    t.add_argument("folder", nargs="?", help="image folder (class subfolders become labels)")
    t.add_argument("--beta", type=number_arg(float, *BETA_RANGE, "--beta"), default=None,
                   help="KL weight β (default 1): higher = smoother latent space, blurrier images")
    _add_train_options(t)
    t.add_argument("--out", help="run folder to create")
    t.add_argument("--resume", metavar="RUN", help="continue a run folder until it has --epochs epochs in all")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    i = sub.add_parser("info", help="summarise an image folder: images, skipped files, classes, size")
    i.add_argument("folder")
    i.add_argument("--image-size", default=None)
    i.add_argument("--color", choices=("auto", "gray", "rgb"), default="auto")
    i.add_argument("--no-cache", action="store_true", help="decode every image again")

    e = sub.add_parser("export", help="write pictures and numbers from a run folder")
    e.add_argument("run")
    e.add_argument("--grid", metavar="PNG", help="decoded-image grid over the latent map")
    e.add_argument("--grid-size", type=number_arg(int, 2, 64, "--grid-size"), default=20)
    e.add_argument("--latents", metavar="CSV", help="z_mean and z_log_var of every image")
    e.add_argument("--samples", nargs=2, metavar=("N", "PNG"), help="N images decoded from prior samples")
    e.add_argument("--seed", type=number_arg(int, 0, 2**31 - 1, "--seed"), default=0)

    s = sub.add_parser("sweep", help="train one run per β value, same data, seed and settings")
    s.add_argument("folder")
    s.add_argument("--betas", required=True, help="comma-separated β values, e.g. 0.1,1,4")
    _add_train_options(s)
    s.add_argument("--out", required=True, help="folder that will hold one run folder per β")
    s.add_argument("--quiet", action="store_true")
    return parser


# -- progress -----------------------------------------------------------------------------------
def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class ProgressPrinter:
    """Prints training events: a live bar on a terminal, one line per epoch otherwise."""

    def __init__(self, stream=None, quiet: bool = False, prefix: str = ""):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.prefix = prefix
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last = 0.0
        self.epochs = 0

    def __call__(self, event):
        from latentlab import train as tr

        if self.quiet:
            return
        w = self.stream
        if isinstance(event, tr.Started):
            self.epochs = event.epochs
            print(f"{self.prefix}training on {event.device}: {event.num_train} images ({event.num_val} for "
                  f"validation) of {'x'.join(map(str, event.image_shape))}, epochs {event.initial_epoch + 1}"
                  f"..{event.epochs}", file=w, flush=True)
        elif isinstance(event, tr.BatchEnd) and self.tty:
            now = time.monotonic()
            if now - self.last < 0.1 and event.step != event.steps:
                return
            self.last = now
            frac = (event.epoch + event.step / event.steps) / max(self.epochs, 1)
            bar = "#" * int(frac * 24)
            lg = event.logs
            w.write(f"\r{self.prefix}[{bar:<24}] epoch {event.epoch + 1}/{self.epochs} batch {event.step}/"
                    f"{event.steps} loss {lg.get('loss', 0):.2f} (recon {lg.get('reconstruction_loss', 0):.2f}"
                    f" + β{event.beta:g}·KL {lg.get('kl_loss', 0):.2f}) ETA {_duration(event.eta_seconds)}  ")
            w.flush()
        elif isinstance(event, tr.EpochEnd):
            lg = event.logs
            val = (f"  val loss {lg['val_loss']:.2f} (neg ELBO {lg['val_neg_elbo']:.2f})"
                   if "val_loss" in lg else "")
            print(f"{chr(13) if self.tty else ''}{self.prefix}epoch {event.epoch}/{self.epochs}: loss "
                  f"{lg['loss']:.2f} = recon {lg['reconstruction_loss']:.2f} + β{event.beta:g}·KL {lg['kl_loss']:.2f}"
                  f"{val}  active units {event.active_units}  {event.seconds:.1f}s" + " " * 10, file=w, flush=True)


def _final_metrics(history: list[dict]) -> str:
    if not history:
        return "no epoch finished"
    r = history[-1]
    parts = [f"epoch {r['epoch']}", f"loss {r['loss']:.3f}", f"reconstruction {r['reconstruction_loss']:.3f}",
             f"kl {r['kl_loss']:.3f}", f"neg ELBO {r['neg_elbo']:.3f}"]
    if "val_loss" in r:
        parts += [f"val loss {r['val_loss']:.3f}", f"val neg ELBO {r['val_neg_elbo']:.3f}"]
    return ", ".join(parts) + " (nats per image)"


def _run_in_thread(job):
    """``job.run()`` in a thread so Ctrl+C calls ``job.stop()`` (keeping the last finished epoch).
    Returns what run() returned; re-raises what it raised."""
    result = {}

    def target():
        try:
            result["value"] = job.run()
        except BaseException as e:  # handed to the main thread
            result["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        print("\nstopping after this batch (Ctrl+C again to abort)...", file=sys.stderr, flush=True)
        job.stop()
        thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


# -- sub-commands -----------------------------------------------------------------------------
def _config_from_args(args, folder: str, beta: float | None):
    """A TrainConfig from parsed options; options left out (None) keep TrainConfig's defaults."""
    from latentlab.config import TrainConfig, parse_image_size

    names = {"latent_dim": "latent_dim", "hidden_units": "hidden_units", "epochs": "epochs",
             "batch_size": "batch_size", "lr": "learning_rate",
             "kl_schedule": "kl_schedule", "warmup_epochs": "warmup_epochs", "color": "color",
             "likelihood": "likelihood", "val_fraction": "val_fraction", "seed": "seed",
             "mixed_precision": "mixed_precision"}
    given = {field: getattr(args, arg) for arg, field in names.items() if getattr(args, arg, None) is not None}
    if beta is not None:
        given["beta"] = beta
    return TrainConfig(dataset=str(Path(folder).expanduser().resolve()),
                       image_size=parse_image_size(args.image_size), **given).validate()


def _check_folder(folder: str):
    p = Path(folder).expanduser()
    if not p.exists():
        raise CliError(f"dataset folder {p} does not exist")
    if not p.is_dir():
        raise CliError(f"{p} is a file: give a folder of images (class subfolders become labels)")


def _check_paths(args) -> None:
    if args.command in ("train", "sweep") and getattr(args, "folder", None):
        _check_folder(args.folder)
    for attr in ("resume", "run"):
        value = getattr(args, attr, None)
        if value:
            from latentlab.runs import open_run
            open_run(value)  # raises RunError with the reason


def cmd_train(args) -> int:
    from latentlab import runs
    from latentlab.train import Failed, Trainer

    if args.resume:
        run = runs.open_run(args.resume)
        cfg = run.config
        changes = {k: v for k, v in (("epochs", args.epochs), ("learning_rate", args.lr),
                                      ("batch_size", args.batch_size), ("beta", args.beta)) if v is not None}
        cfg = cfg.replace(**changes).validate()
        if args.folder:
            cfg = cfg.replace(dataset=str(Path(args.folder).expanduser().resolve()))
        _check_folder(cfg.dataset)
        out = Path(args.resume)
    else:
        if not args.folder:
            raise CliError("give an image folder to train on (or --resume RUN)")
        if not args.out:
            raise CliError("give --out RUN, the run folder to create")
        _check_folder(args.folder)
        out = Path(args.out).expanduser()
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise CliError(f"{out} already exists and is not empty: choose a new --out folder, "
                           "or continue it with --resume")
        cfg = _config_from_args(args, args.folder, args.beta)
    dataset = _load_dataset(cfg, args.quiet)
    _quiet_tensorflow()
    printer = ProgressPrinter(quiet=args.quiet)
    trainer = Trainer(cfg, dataset, run_dir=out, on_event=printer, resume=bool(args.resume))
    event = _run_in_thread(trainer)
    if isinstance(event, Failed) or event is None:
        raise CliError(event.message if event else "training ended unexpectedly")
    print(_final_metrics(event.history), file=sys.stdout)
    print(f"{event.message}; run saved in {out}", file=sys.stdout)
    return 0


def _load_dataset(cfg, quiet: bool):
    """Load (and validate) the training images before TensorFlow starts, saying what was skipped."""
    from latentlab.data import load_folder

    ds = load_folder(cfg.dataset, image_size=cfg.image_size, color=cfg.color)
    if not quiet:
        h, w, c = ds.image_shape
        note = f", {len(ds.skipped)} skipped (see 'latentlab info {cfg.dataset}')" if ds.skipped else ""
        print(f"{ds.num_images} images of {h}x{w}x{c}{note}, loaded in {ds.load_seconds:.1f}s"
              f"{' from cache' if ds.from_cache else ''}", file=sys.stderr, flush=True)
    return ds


def cmd_info(args) -> int:
    from latentlab.config import parse_image_size
    from latentlab.data import load_folder

    _check_folder(args.folder)
    ds = load_folder(args.folder, image_size=parse_image_size(args.image_size), color=args.color,
                     cache=not args.no_cache)
    print(ds.summary())
    return 0


def cmd_export(args) -> int:
    import numpy as np
    from PIL import Image

    from latentlab import latent, runs

    if not (args.grid or args.latents or args.samples):
        raise CliError("nothing to export: give --grid PNG, --latents CSV and/or --samples N PNG")
    run = runs.open_run(args.run)
    _quiet_tensorflow()
    written = []
    if args.latents:
        if run.latents is None:
            raise CliError(f"{args.run} has no latents.npz yet (it is written when an epoch or the training "
                           "finishes); open the run in the app to encode its dataset")
        _write_latents_csv(args.latents, run.latents)
        written.append(args.latents)
    if args.grid or args.samples:
        vae = run.load_model()
        dec = latent.Decoder.from_model(vae)
        if args.grid:
            z = run.latents["z_mean"] if run.latents is not None else np.zeros((0, vae.latent_dim))
            projection = latent.PCA(z) if vae.latent_dim > 2 and len(z) > 2 else None
            if projection is not None:
                lo, hi = latent.grid_range(projection.transform(z))
            else:
                lo, hi = latent.grid_range(z)
            if vae.latent_dim == 1:
                lo, hi = np.array([lo[0], -0.0]), np.array([hi[0], 0.0])
                mosaic = latent.tile(latent.traversal(dec, np.zeros(1), 0, np.linspace(lo[0], hi[0], args.grid_size))
                                     [None])
            else:
                mosaic = latent.decode_grid(dec, (lo[0], hi[0]), (lo[1], hi[1]), args.grid_size,
                                            projection=projection)
            _save_png(args.grid, mosaic)
            written.append(args.grid)
        if args.samples:
            n = number_arg(int, 1, 10_000, "--samples N")(args.samples[0])
            rng = np.random.default_rng(args.seed)
            images = dec.decode(rng.standard_normal((n, vae.latent_dim)).astype(np.float32))
            cols = math.ceil(math.sqrt(n))
            rows = math.ceil(n / cols)
            pad = np.ones((rows * cols - n, *images.shape[1:]), np.float32)
            _save_png(args.samples[1], latent.tile(np.concatenate([images, pad]).reshape(rows, cols, *images.shape[1:])))
            written.append(args.samples[1])
    print("wrote " + ", ".join(written))
    return 0


def _save_png(path, image):
    import numpy as np
    from PIL import Image

    from latentlab.runs import atomic_write

    arr = np.clip(np.asarray(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = arr[..., 0]
    try:
        atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format="PNG"))
    except OSError as e:
        raise CliError(f"cannot write {path} ({e.strerror or e})") from None


def _write_latents_csv(path, latents: dict):
    import io

    from latentlab.runs import atomic_write_text

    z_mean, z_log_var = latents["z_mean"], latents["z_log_var"]
    names = list(latents.get("class_names", []))
    d = z_mean.shape[1]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["path", "label", "class", "split"] + [f"z_mean_{i}" for i in range(d)]
               + [f"z_log_var_{i}" for i in range(d)])
    split = latents.get("split")
    for i in range(len(z_mean)):
        label = int(latents["labels"][i])
        w.writerow([str(latents["paths"][i]), label, names[label] if 0 <= label < len(names) else "",
                    ("val" if split is not None and split[i] else "train")]
                   + [repr(float(v)) for v in z_mean[i]] + [repr(float(v)) for v in z_log_var[i]])
    try:
        atomic_write_text(path, out.getvalue())
    except OSError as e:
        raise CliError(f"cannot write {path} ({e.strerror or e})") from None


def cmd_sweep(args) -> int:
    from latentlab.config import ConfigError
    from latentlab.sweep import Sweep, SweepStep, parse_betas
    from latentlab.train import Failed

    try:
        betas = parse_betas(args.betas)
    except ConfigError as e:
        raise CliError(f"--betas: {e}") from None
    _check_folder(args.folder)
    cfg = _config_from_args(args, args.folder, betas[0])
    sweep = Sweep(cfg, betas, Path(args.out).expanduser())
    sweep.check_out_dir()
    sweep.dataset = _load_dataset(cfg, args.quiet)
    _quiet_tensorflow()
    printer = ProgressPrinter(quiet=args.quiet)

    def on_event(event):
        if isinstance(event, SweepStep):
            printer.prefix = f"[β={event.beta:g} {event.index + 1}/{event.total}] "
        printer(event)

    sweep.on_event = on_event
    results = _run_in_thread(sweep)
    for beta, _, result in results or []:
        if isinstance(result, Failed):
            raise CliError(f"β={beta:g}: {result.message}")
    print(f"{'beta':>8} {'val recon':>10} {'val KL':>8} {'val negELBO':>12} {'active':>6}  run")
    for beta, run_dir, result in results:
        r = result.history[-1] if result.history else {}
        print(f"{beta:>8g} {r.get('val_reconstruction_loss', float('nan')):>10.3f} "
              f"{r.get('val_kl_loss', float('nan')):>8.3f} {r.get('val_neg_elbo', float('nan')):>12.3f} "
              f"{r.get('active_units', 0):>6}  {run_dir}")
    return 0


# -- entry point --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        if argv and argv[0] == "app":
            argv = argv[1:]
        from gui.app import main as app_main

        return app_main(argv)
    if argv[0] == "--version":
        from latentlab import __version__

        print(f"latentlab {__version__}")
        return 0
    from latentlab.config import ConfigError
    from latentlab.data import DatasetError
    from latentlab.runs import RunError

    try:
        args = build_parser().parse_args(argv)
        _check_paths(args)  # cheap checks first: a typo should not wait for TensorFlow
        return {"train": cmd_train, "info": cmd_info, "export": cmd_export, "sweep": cmd_sweep}[args.command](args)
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except (CliError, ConfigError, DatasetError, RunError) as e:
        print(f"latentlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentlab: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"latentlab: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""What every ``latentlab`` sub-command shares: one-line errors, number flags checked against
`latentlab.config`'s ranges, the training options, the progress printer, and running a job in a
thread so that Ctrl+C stops it cleanly."""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any

from latentlab import config as C

__all__ = ["CliError", "Parser", "number_arg", "add_train_options", "add_train_flags", "TRAIN_FLAGS", "ProgressPrinter", "final_metrics",
           "run_in_thread", "config_from_args", "check_folder", "load_dataset", "quiet_tensorflow", "save_png",
           "add_image_options", "load_progress"]


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + traceback
        raise CliError(f"{message} (see '{self.prog} --help')")


def quiet_tensorflow() -> None:
    """Import TensorFlow now, with its start-up chatter silenced (see latentlab.tfquiet)."""
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


def _train_flags() -> dict[str, dict]:
    """Each training flag declared once (argparse keywords, default None: TrainConfig's default applies)."""
    n = number_arg
    return {
        "--beta": dict(type=n(float, *C.BETA_RANGE, "--beta"),
                       help="KL weight β (default 1): higher = smoother latent space, blurrier images"),
        "--latent-dim": dict(type=n(int, *C.LATENT_RANGE, "--latent-dim"),
                             help="size of the latent space (default 2: a map you can click)"),
        "--hidden-units": dict(type=n(int, *C.HIDDEN_RANGE, "--hidden-units"),
                               help=f"width of the encoder's dense layer (default 0: automatic, "
                                    f"{C.AUTO_HIDDEN_UNITS}; 16 = the classic Keras recipe)"),
        "--epochs": dict(type=n(int, *C.EPOCHS_RANGE, "--epochs"),
                         help="epochs in all (with --resume: the total the run should reach)"),
        "--batch-size": dict(type=n(int, *C.BATCH_RANGE, "--batch-size"), help="images per batch"),
        "--lr": dict(type=n(float, *C.LR_RANGE, "--lr"), help="Adam learning rate"),
        "--kl-schedule": dict(choices=C.KL_SCHEDULES,
                              help="how β is applied over time: constant, linear warm-up, cyclical; or the KL "
                                   "term's shape: free-bits (a floor of --free-bits nats per dimension) or capacity "
                                   "(β·|KL − C|, C rising to --capacity over --warmup-epochs)"),
        "--free-bits": dict(type=n(float, *C.FREE_BITS_RANGE, "--free-bits"),
                            help=f"free-bits: the KL floor λ of each latent dimension, nats "
                                 f"(default {C.TrainConfig.free_bits:g})"),
        "--capacity": dict(type=n(float, *C.CAPACITY_RANGE, "--capacity"),
                           help=f"capacity: the KL target C at the end of its ramp, nats "
                                f"(default {C.TrainConfig.capacity:g})"),
        "--warmup-epochs": dict(type=n(int, *C.WARMUP_RANGE, "--warmup-epochs"),
                                help="warm-up length (linear), cycle length (cyclical) or C's ramp (capacity), "
                                     "in epochs"),
        "--likelihood": dict(choices=C.LIKELIHOODS,
                             help="reconstruction likelihood: bernoulli (BCE) or gaussian (MSE-like)"),
        "--val-fraction": dict(type=n(float, *C.VAL_FRACTION_RANGE, "--val-fraction"),
                               help="share of the images held out for validation"),
        "--seed": dict(type=n(int, *C.SEED_RANGE, "--seed"), help="random seed"),
        "--mixed-precision": dict(action="store_true", help="float16 compute on a GPU (ignored on the CPU)"),
    }


TRAIN_FLAGS = _train_flags()


def add_train_flags(p: argparse.ArgumentParser, *flags: str, **changes) -> None:
    """Add training flags (names from TRAIN_FLAGS) as declared there; ``changes`` maps a flag's name with
    underscores (``latent_dim``) to argparse keywords that differ for this parser (a help, a default)."""
    for flag in flags:
        p.add_argument(flag, **{"default": None, **TRAIN_FLAGS[flag], **changes.get(flag[2:].replace("-", "_"), {})})


def add_train_options(p: argparse.ArgumentParser) -> None:
    """Training options (train, sweep); any left out keep TrainConfig's defaults."""
    add_train_flags(p, "--latent-dim", "--hidden-units", "--epochs", "--batch-size", "--lr", "--kl-schedule",
                    "--free-bits", "--capacity", "--warmup-epochs")
    add_image_options(p)
    add_train_flags(p, "--likelihood", "--val-fraction", "--seed", "--mixed-precision")


def add_image_options(p: argparse.ArgumentParser, defaults: bool = False) -> None:
    """How images are read: size, colour, background of transparent pixels, fit. With ``defaults`` the
    flags default to TrainConfig's (for commands without a config, like ``info``), else to None."""
    d = C.TrainConfig()
    lo, hi = C.IMAGE_SIDE_RANGE
    p.add_argument("--image-size", default=None,
                   help=f"resize to N or HxW pixels ({lo}..{hi}; default: most common size, at most 64)")
    p.add_argument("--color", choices=C.COLORS, default=d.color if defaults else None)
    p.add_argument("--background", choices=C.BACKGROUNDS, default=d.background if defaults else None,
                   help="what transparent pixels become: auto (per image: white behind dark content, black behind "
                        "light), white, black, or alpha (kept as a channel the model learns); default auto")
    p.add_argument("--fit", choices=C.FITS, default=d.fit if defaults else None,
                   help="images of another shape: pad (aspect kept, the rest filled with the background; default), "
                        "crop (aspect kept, centre cut) or stretch")


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
        from latentlab import events as ev

        if self.quiet:
            return
        w = self.stream
        if isinstance(event, ev.Started):
            self.epochs = event.epochs
            print(f"{self.prefix}training on {event.device}: {event.num_train} images ({event.num_val} for "
                  f"validation) of {'x'.join(map(str, event.image_shape))}, epochs {event.initial_epoch + 1}"
                  f"..{event.epochs}", file=w, flush=True)
        elif isinstance(event, ev.BatchEnd) and self.tty:
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
        elif isinstance(event, ev.EpochEnd):
            lg = event.logs
            val = (f"  val loss {lg['val_loss']:.2f} (neg ELBO {lg['val_neg_elbo']:.2f})"
                   if "val_loss" in lg else "")
            print(f"{chr(13) if self.tty else ''}{self.prefix}epoch {event.epoch}/{self.epochs}: loss "
                  f"{lg['loss']:.2f} = recon {lg['reconstruction_loss']:.2f} + β{event.beta:g}·KL {lg['kl_loss']:.2f}"
                  f"{val}  active units {event.active_units}  {event.seconds:.1f}s" + " " * 10, file=w, flush=True)


def final_metrics(history: list[dict]) -> str:
    if not history:
        return "no epoch finished"
    r = history[-1]
    parts = [f"epoch {r['epoch']}", f"loss {r['loss']:.3f}", f"reconstruction {r['reconstruction_loss']:.3f}",
             f"kl {r['kl_loss']:.3f}", f"neg ELBO {r['neg_elbo']:.3f}"]
    if "val_loss" in r:
        parts += [f"val loss {r['val_loss']:.3f}", f"val neg ELBO {r['val_neg_elbo']:.3f}"]
    return ", ".join(parts) + " (nats per image)"


def run_in_thread(job):
    """``job.run()`` in a thread so Ctrl+C calls ``job.stop()`` (keeping the last finished epoch).
    Returns what run() returned; re-raises what it raised."""
    result = {}
    done = threading.Event()

    def target():
        try:
            result["value"] = job.run()
        except BaseException as e:  # handed to the main thread
            result["error"] = e
        finally:
            done.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    # wait on an Event, not Thread.join: a Ctrl+C that interrupts join() can leave the thread looking
    # finished (CPython 3.11), and the command then exited mid-epoch saying "training ended unexpectedly"
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        print("\nstopping after this batch (Ctrl+C again to abort)...", file=sys.stderr, flush=True)
        job.stop()
        while not done.wait(0.2):
            pass
    if "error" in result:
        raise result["error"]
    return result.get("value")


# -- settings and inputs ----------------------------------------------------------------------------
def config_from_args(args, folder: str, beta: float | None):
    """A TrainConfig from parsed options; options left out (None) keep TrainConfig's defaults."""
    names = {"latent_dim": "latent_dim", "hidden_units": "hidden_units", "epochs": "epochs",
             "batch_size": "batch_size", "lr": "learning_rate",
             "kl_schedule": "kl_schedule", "warmup_epochs": "warmup_epochs", "color": "color",
             "background": "background", "fit": "fit",
             "likelihood": "likelihood", "val_fraction": "val_fraction", "seed": "seed",
             "mixed_precision": "mixed_precision", "free_bits": "free_bits", "capacity": "capacity"}
    given = {field: getattr(args, arg) for arg, field in names.items() if getattr(args, arg, None) is not None}
    if beta is not None:
        given["beta"] = beta
    return C.TrainConfig(dataset=str(Path(folder).expanduser().resolve()),
                         image_size=C.parse_image_size(args.image_size), **given).validate()


def check_folder(folder: str) -> None:
    from latentlab.data.arrays import is_array_source

    p = Path(folder).expanduser()
    if not p.exists():
        raise CliError(f"dataset folder {p} does not exist")
    if not p.is_dir() and not is_array_source(p):
        raise CliError(f"{p} is a file: give a folder of images (class subfolders become labels), "
                       "a .npz or .npy of images, or IDX files")


def load_progress(stream=None, desc: str = "decoding images"):
    """A ``progress(done, total)`` for ``load_folder`` that shows loading on the terminal: a tqdm bar on a
    terminal, a plain line every 10 % otherwise (a log file gets no carriage returns). Its ``stage(text)``
    (``load_folder``'s ``on_stage``) prints each long step as it starts."""
    return _LoadProgress(stream or sys.stderr, desc)


def encode_progress(stream=None):
    """The same for encoding every image once training ends (``Trainer(encode_progress=...)``)."""
    return _LoadProgress(stream or sys.stderr, "encoding images")


class _LoadProgress:
    def __init__(self, stream, desc: str = "decoding images"):
        self.desc = desc
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.bar: Any = None   # a tqdm bar once the first progress comes
        self.next = 0.0
        self.t0 = time.monotonic()

    def stage(self, text: str) -> None:
        if self.tty:   # (a log gets the decoding lines of a large folder only)
            print(f"{text} …", file=self.stream, flush=True)

    def __call__(self, done: int, total: int) -> None:
        if self.tty:
            from tqdm import tqdm

            if self.bar is None:
                self.bar = tqdm(total=total, file=self.stream, unit="img", desc=self.desc,
                                dynamic_ncols=True, leave=False)
            self.bar.update(done - self.bar.n)
            if done >= total:
                self.bar.close()
            return
        if total >= 1000 and (done >= self.next * total or done == total):
            print(f"{self.desc}: {done:,}/{total:,} ({done / max(total, 1):.0%}, "
                  f"{time.monotonic() - self.t0:.0f}s)", file=self.stream, flush=True)
            self.next = done / total + 0.1


def load_dataset(cfg, quiet: bool):
    """Load (and validate) the training images before TensorFlow starts, saying what was skipped."""
    from latentlab.data import load_folder

    shown = None if quiet else load_progress()
    ds = load_folder(cfg.dataset, image_size=cfg.image_size, color=cfg.color, background=cfg.background, fit=cfg.fit,
                     progress=shown, on_stage=None if shown is None else shown.stage)
    if not quiet:
        from latentlab.epoch_time import estimate_epoch_seconds, slow_note

        h, w, c = ds.image_shape
        note = f", {len(ds.skipped)} skipped (see 'latentlab info {cfg.dataset}')" if ds.skipped else ""
        print(f"{ds.num_images} images of {h}x{w}x{c}{note}, loaded in {ds.load_seconds:.1f}s"
              f"{' from cache' if ds.from_cache else ''}", file=sys.stderr, flush=True)
        slow = slow_note(estimate_epoch_seconds(ds.num_images, ds.image_shape, cfg.val_fraction), ds.image_shape)
        if slow:
            print(slow, file=sys.stderr, flush=True)
    return ds


def save_png(path, image, scale: int = 1) -> None:
    """An image (H, W, C) in [0, 1] written atomically as a PNG, each pixel enlarged ``scale`` times
    (nearest neighbour); 2 or 4 channels are gray or RGB with alpha. CliError when it cannot be written."""
    import numpy as np
    from PIL import Image

    from latentlab.runs.folder import atomic_write

    arr = np.clip(np.asarray(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if scale > 1:
        arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    if arr.shape[-1] == 1:
        arr = arr[..., 0]
    try:
        atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format="PNG"))
    except OSError as e:
        raise CliError(f"cannot write {path} ({e.strerror or e})") from None

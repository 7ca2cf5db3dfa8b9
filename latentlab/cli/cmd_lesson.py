"""``latentlab lesson``: the β sweep designed to show the trade-off beyond training noise (latentlab.sweeps.lesson)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from latentlab import config as C
from latentlab.cli.common import (
    CliError,
    ProgressPrinter,
    add_image_options,
    add_train_flags,
    check_folder,
    load_dataset,
    number_arg,
    quiet_tensorflow,
    run_in_thread,
)

NAME = "lesson"


def add_parser(sub) -> None:
    from latentlab.sweeps.lesson import DEFAULT_BETAS, Design

    d = Design()
    s = sub.add_parser(NAME, help="show what β does: a sweep designed so that rate falls and distortion rises "
                                  "beyond training noise (about 2.5 minutes on 2 idle CPU cores)")
    s.add_argument("folder")
    s.add_argument("--out", help="folder for its run folders and lesson.json (default: a new lesson-* folder in "
                                 "$LATENTLAB_RUNS_DIR or the temporary folder)")
    s.add_argument("--json", metavar="FILE", help="also write the summary (seconds, runs, verdict) to FILE")
    s.add_argument("--betas", default=",".join(f"{b:g}" for b in DEFAULT_BETAS),
                   help="comma-separated β values (default %(default)s)")
    s.add_argument("--seeds", type=number_arg(int, 1, 100, "--seeds"), default=len(d.seeds),
                   help="repeat the whole design with this many seeds for a spread (default %(default)s)")
    s.add_argument("--seed", type=number_arg(int, *C.SEED_RANGE, "--seed"), default=0,
                   help="the first seed (default 0): the seeds are SEED, SEED+1, …")
    s.add_argument("--warm-epochs", type=number_arg(int, 1, 1000, "--warm-epochs"), default=d.warm_epochs,
                   help="epochs of the shared start at the smallest β (default %(default)s)")
    s.add_argument("--epochs", type=number_arg(int, 1, 1000, "--epochs"), default=d.epochs,
                   help="epochs each β then trains from that start (default %(default)s)")
    s.add_argument("--draws", type=number_arg(int, 1, 1000, "--draws"), default=d.draws,
                   help="samples of z per validation image in the final figures (default %(default)s)")
    s.add_argument("--max-images", type=number_arg(int, 10, 10_000_000, "--max-images"), default=d.max_images,
                   help="a larger folder is sampled down to this many images (default %(default)s)")
    add_train_flags(s, "--latent-dim", "--batch-size", "--lr",
                    lr=dict(help=f"Adam learning rate for all runs (default {d.learning_rate:g} for the shared "
                                 f"start, {d.settle_learning_rate:g} for each β)"))
    add_image_options(s)
    add_train_flags(s, "--likelihood", "--val-fraction",   # a lesson needs validation images
                    val_fraction=dict(type=number_arg(float, 0.01, C.VAL_FRACTION_RANGE[1], "--val-fraction")))
    s.add_argument("--quiet", action="store_true", help="no progress lines")


def default_out_dir() -> Path:
    from latentlab.runs.folder import new_run_dir

    env = os.environ.get("LATENTLAB_RUNS_DIR")
    return new_run_dir(Path(env) if env else Path(tempfile.gettempdir()) / "latentlab-runs", prefix="lesson")


def run(args) -> int:
    from latentlab.config import ConfigError
    from latentlab.events import SweepStep
    from latentlab.sweeps.lesson import Design, Lesson
    from latentlab.runs.folder import atomic_write_text
    from latentlab.sweeps.sweep import parse_betas

    try:
        betas = parse_betas(args.betas)
        design = Design(betas=tuple(betas), seeds=tuple(range(args.seed, args.seed + args.seeds)),
                        warm_epochs=args.warm_epochs,
                        epochs=args.epochs, draws=args.draws, max_images=args.max_images,
                        **({"learning_rate": args.lr, "settle_learning_rate": args.lr} if args.lr else {})).validate()
    except ConfigError as e:
        raise CliError(f"--betas: {e}") from None
    check_folder(args.folder)
    given = {f: getattr(args, a) for a, f in (("latent_dim", "latent_dim"), ("batch_size", "batch_size"),
                                                ("color", "color"), ("background", "background"), ("fit", "fit"),
                                                ("likelihood", "likelihood"), ("val_fraction", "val_fraction"))
             if getattr(args, a) is not None}
    cfg = C.TrainConfig(dataset=str(Path(args.folder).expanduser().resolve()),
                        image_size=C.parse_image_size(args.image_size), **given).validate()
    json_path = Path(args.json).expanduser() if args.json else None
    if json_path is not None and not json_path.parent.is_dir():
        raise CliError(f"--json: the folder {json_path.parent} does not exist")
    out = Path(args.out).expanduser() if args.out else None
    if out is not None:
        Lesson(cfg, out, design=design).check_out_dir()   # before the images load: a typo should not wait
    dataset = load_dataset(cfg, args.quiet)
    lesson = Lesson(cfg, out or default_out_dir(), dataset, design=design)
    out = lesson.out_dir
    quiet_tensorflow()
    printer = ProgressPrinter(quiet=args.quiet)
    if not args.quiet:
        print(f"lesson: {len(design.seeds) * design.runs_per_seed} runs into {out} (a shared start at β "
              f"{design.sorted_betas[0]:g} for {design.warm_epochs} epochs, then {design.epochs} epochs at each β"
              f"{f', {len(design.seeds)} seeds' if len(design.seeds) > 1 else ''})", file=sys.stderr, flush=True)

    def on_event(event):
        if isinstance(event, SweepStep):
            run_dir = Path(event.run_dir)
            what = f"warm start at β={event.beta:g}" if run_dir.parent.name == "warm-start" else f"β={event.beta:g}"
            printer.prefix = f"[{what} {event.index + 1}/{event.total}] "
        printer(event)

    lesson.on_event = on_event
    summary = run_in_thread(lesson)
    if summary and summary.get("failed"):
        raise CliError(summary["failed"])
    if summary is None or not summary["runs"]:
        raise CliError("the lesson stopped before any β finished")
    text = json.dumps(summary, indent=2) + "\n"
    if json_path is not None:
        try:
            atomic_write_text(json_path, text)
        except OSError as e:
            raise CliError(f"cannot write {json_path} ({e.strerror or e})") from None
    print(f"{'beta':>8} {'rate':>8} {'I(x;z)':>7} {'KL(q|p)':>7} {'distortion':>11} {'neg ELBO':>9} {'active':>6}  run")
    for r in summary["runs"]:
        split = (f"{r['mutual_info']:>7.2f} {r['marginal_kl']:>7.2f}" if "marginal_kl" in r else f"{'':>7} {'':>7}")
        print(f"{r['beta']:>8g} {r['rate']:>8.2f} {split} {r['distortion']:>11.2f} {r['neg_elbo']:>9.2f} "
              f"{r['active_units']:>6}  {r['run_dirs'][0]}")
    print()
    for line in summary["verdict"]:
        print(line)
    stopped = " (stopped early: the runs after the last one shown were skipped)" if summary.get("stopped") else ""
    print(f"\n{summary['seconds']:.0f} s; summary in {out / 'lesson.json'}{stopped}")
    return 0

"""``latentlab train``: train a β-VAE on an image folder, or continue a run folder (``--resume``)."""

from __future__ import annotations

import sys
from pathlib import Path

from latentlab.cli.common import (CliError, ProgressPrinter, add_train_flags, add_train_options, check_folder,
                                  config_from_args, encode_progress, final_metrics, load_dataset, number_arg,
                                  quiet_tensorflow, run_in_thread)

NAME = "train"


def add_parser(sub) -> None:
    t = sub.add_parser(NAME, help="train a β-VAE on an image folder, headless")
    t.add_argument("folder", nargs="?", help="image folder (class subfolders become labels)")
    add_train_flags(t, "--beta")
    add_train_options(t)
    t.add_argument("--out", help="run folder to create")
    t.add_argument("--resume", metavar="RUN", help="continue a run folder until it has --epochs epochs in all")
    t.add_argument("--strategy", choices=("default", "mirrored"), default="default",
                   help="mirrored: train on every visible GPU at once (tf.distribute.MirroredStrategy); "
                        "--batch-size is the global batch, split across them")
    t.add_argument("--devices", type=number_arg(int, 1, 1024, "--devices"), default=None,
                   help="with --strategy mirrored: use the first N GPUs (default: all)")
    t.add_argument("--cpu-replicas", type=number_arg(int, 1, 64, "--cpu-replicas"), default=None,
                   help="split the CPU into N devices (for --strategy mirrored on a machine without GPUs)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")


def _refuse_if_locked(run_dir: Path) -> None:
    """Refuse at once, before the dataset loads, when another process trains ``run_dir`` (the trainer's
    own lock is what decides: two commands started together may both pass this look)."""
    from latentlab.runs import folder as runs

    try:
        runs.check_unlocked(run_dir)
    except runs.RunLocked as e:
        raise CliError(str(e)) from None


def run(args) -> int:
    from latentlab.runs import folder as runs
    from latentlab.events import Failed
    from latentlab.training.trainer import Trainer

    if args.resume:
        from latentlab.runs.continuing import continue_config

        run_folder = runs.open_run(args.resume)
        changes = {"epochs": args.epochs, "learning_rate": args.lr, "batch_size": args.batch_size, "beta": args.beta}
        cfg = continue_config(run_folder, changes, dataset_root=args.folder)   # β: the one it last trained at
        check_folder(cfg.dataset)
        out = Path(args.resume)
        _refuse_if_locked(out)
    else:
        if not args.folder:
            raise CliError("give an image folder to train on (or --resume RUN)")
        if not args.out:
            raise CliError("give --out RUN, the run folder to create")
        check_folder(args.folder)
        out = Path(args.out).expanduser()
        if out.is_dir():
            _refuse_if_locked(out)   # another `train --out` the same moment: say who, not "not empty"
        if out.exists() and not runs.is_empty_folder(out):
            raise CliError(f"{out} already exists and is not empty: choose a new --out folder, "
                           "or continue it with --resume")
        cfg = config_from_args(args, args.folder, args.beta)
    if args.devices and args.strategy != "mirrored":
        raise CliError("--devices needs --strategy mirrored")
    dataset = load_dataset(cfg, args.quiet)
    quiet_tensorflow()
    strategy = _strategy(args)
    trainer = Trainer(cfg, dataset, run_dir=out, on_event=ProgressPrinter(quiet=args.quiet), resume=bool(args.resume),
                      strategy=strategy, encode_progress=None if args.quiet else encode_progress())
    event = run_in_thread(trainer)
    if isinstance(event, Failed) or event is None:
        raise CliError(event.message if event else "training ended unexpectedly")
    print(final_metrics(event.history), file=sys.stdout)
    print(f"{event.message}; run saved in {out}", file=sys.stdout)
    return 0


def _strategy(args):
    """The tf.distribute strategy the flags ask for (None: one device); CliError (one line) otherwise."""
    from latentlab.training.distribute import StrategyError, make_strategy, split_cpu

    try:
        if args.cpu_replicas:
            split_cpu(args.cpu_replicas)
        return make_strategy(args.strategy, args.devices or 0)
    except StrategyError as e:
        raise CliError(str(e)) from None

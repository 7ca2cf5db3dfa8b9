"""``latentlab sweep``: one run folder per β value, the same data, seed and settings."""

from __future__ import annotations

from pathlib import Path

from latentlab.cli.common import (CliError, ProgressPrinter, add_train_options, check_folder, config_from_args,
                                  load_dataset, quiet_tensorflow, run_in_thread)

NAME = "sweep"


def add_parser(sub) -> None:
    s = sub.add_parser(NAME, help="train one run per β value, same data, seed and settings")
    s.add_argument("folder")
    s.add_argument("--betas", required=True, help="comma-separated β values, e.g. 0.1,1,4")
    add_train_options(s)
    s.add_argument("--out", required=True, help="folder that will hold one run folder per β")
    s.add_argument("--quiet", action="store_true")


def run(args) -> int:
    from latentlab.config import ConfigError
    from latentlab.events import Failed, SweepStep
    from latentlab.sweep import Sweep, parse_betas

    try:
        betas = parse_betas(args.betas)
    except ConfigError as e:
        raise CliError(f"--betas: {e}") from None
    check_folder(args.folder)
    cfg = config_from_args(args, args.folder, betas[0])
    sweep = Sweep(cfg, betas, Path(args.out).expanduser())
    sweep.check_out_dir()
    sweep.dataset = load_dataset(cfg, args.quiet)
    quiet_tensorflow()
    printer = ProgressPrinter(quiet=args.quiet)

    def on_event(event):
        if isinstance(event, SweepStep):
            printer.prefix = f"[β={event.beta:g} {event.index + 1}/{event.total}] "
        printer(event)

    sweep.on_event = on_event
    results = run_in_thread(sweep)
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

"""``latentlab sweep``: one run folder per point of β × latent size × seed, the same data and other
settings; here one after another, or one Dask task per run (``--cluster``, ``--workers``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from latentlab.cli.common import (CliError, ProgressPrinter, add_train_options, check_folder, config_from_args,
                                  load_dataset, number_arg, quiet_tensorflow, run_in_thread)

NAME = "sweep"


def add_parser(sub) -> None:
    s = sub.add_parser(NAME, help="train one run per β value (× latent size × seed), same data and settings")
    s.add_argument("folder")
    s.add_argument("--betas", required=True, help="comma-separated β values, e.g. 0.1,1,4")
    s.add_argument("--latent-dims", help="comma-separated latent sizes, e.g. 2,8 (a grid: every β with each)")
    s.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2 (a grid: every β with each)")
    add_train_options(s)
    s.add_argument("--out", required=True, help="folder that will hold one run folder per run; given again, "
                   "finished runs are skipped and unfinished ones resumed")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--cluster", metavar="tcp://HOST:PORT",
                       help="train each run as one task on the Dask cluster whose scheduler is there")
    where.add_argument("--workers", type=number_arg(int, 1, 1024, "--workers"),
                       help="start a local Dask cluster of N worker processes (127.0.0.1, one thread each) and use it")
    s.add_argument("--gpus-per-run", type=number_arg(int, 1, 64, "--gpus-per-run"), default=0,
                   help="with --cluster/--workers: each run needs K of a worker's GPU resource "
                        "('dask worker ADDRESS --resources GPU=1')")
    s.add_argument("--quiet", action="store_true")


def run(args) -> int:
    from latentlab.config import ConfigError

    specs_args = _grid_args(args)
    check_folder(args.folder)
    if args.gpus_per_run and not (args.cluster or args.workers):
        raise CliError("--gpus-per-run needs --cluster ADDRESS or --workers N")
    cfg = config_from_args(args, args.folder, specs_args["betas"][0])
    out = Path(args.out).expanduser()
    sweep: Any
    cluster_errors: tuple[type[Exception], ...] = ()   # nothing to catch without a cluster
    if args.cluster or args.workers:
        from latentlab.sweeps.cluster import ClusterError, ClusterSweep, require_distributed

        cluster_errors = (ClusterError,)

        try:
            require_distributed("--cluster" if args.cluster else "--workers")
        except ClusterError as e:
            raise CliError(str(e)) from None
        sweep = ClusterSweep(cfg, specs_args["betas"], out, latent_dims=specs_args["latent_dims"],
                             seeds=specs_args["seeds"], address=args.cluster, workers=args.workers or 0,
                             gpus_per_run=args.gpus_per_run)
    else:
        from latentlab.sweeps.sweep import Sweep

        sweep = Sweep(cfg, specs_args["betas"], out, latent_dims=specs_args["latent_dims"], seeds=specs_args["seeds"])
    try:
        sweep.check_out_dir()
    except ConfigError as e:
        raise CliError(str(e)) from None
    if args.cluster or args.workers:
        try:
            sweep.open()     # a scheduler that cannot be reached says so before the folder is loaded
        except cluster_errors as e:
            raise CliError(str(e)) from None
    try:
        sweep.dataset = load_dataset(cfg, args.quiet)
    except BaseException:
        getattr(sweep, "close", lambda: None)()   # the local cluster, if one was started
        raise
    if not (args.cluster or args.workers):
        quiet_tensorflow()   # the client of a cluster sweep trains nothing: no TensorFlow here
    sweep.on_event = SweepProgress(len(sweep.specs), quiet=args.quiet)
    try:
        results = run_in_thread(sweep) or []
    except cluster_errors as e:
        raise CliError(str(e)) from None
    _print_table(sweep, results)
    from latentlab.sweeps.sweep import failures

    failed = failures(results)
    if failed:
        raise CliError(f"{len(failed)} of {len(sweep.specs)} runs failed; {'; '.join(failed)}")
    return 0


def _grid_args(args) -> dict:
    from latentlab.config import LATENT_RANGE, SEED_RANGE, ConfigError
    from latentlab.sweeps.sweep import parse_betas, parse_ints

    out = {}
    for key, flag, parse in (("betas", "--betas", parse_betas),
                             ("latent_dims", "--latent-dims", lambda t: parse_ints(t, "latent size", LATENT_RANGE)),
                             ("seeds", "--seeds", lambda t: parse_ints(t, "seed", SEED_RANGE))):
        text = getattr(args, key)
        try:
            out[key] = parse(text) if text is not None else None
        except ConfigError as e:
            raise CliError(f"{flag}: {e}") from None
    return out


def _print_table(sweep, results) -> None:
    by_dir = {str(Path(sweep.out_dir) / s.name): s for s in sweep.specs}
    print(f"{'beta':>8} {'latent':>6} {'seed':>5} {'val recon':>10} {'val KL':>8} {'val negELBO':>12} {'active':>6}  run")
    for beta, run_dir, result in results:
        spec = by_dir.get(str(run_dir))
        history = getattr(result, "history", None) or []
        r = history[-1] if history else {}
        latent, seed = (spec.config.latent_dim, spec.config.seed) if spec else ("", "")
        status = "" if type(result).__name__ == "Finished" and not result.stopped else \
            f"  ({'failed' if type(result).__name__ == 'Failed' else 'stopped'})"
        print(f"{beta:>8g} {latent:>6} {seed:>5} {r.get('val_reconstruction_loss', float('nan')):>10.3f} "
              f"{r.get('val_kl_loss', float('nan')):>8.3f} {r.get('val_neg_elbo', float('nan')):>12.3f} "
              f"{r.get('active_units', 0):>6}  {run_dir}{status}")


class SweepProgress:
    """A sweep's events on the terminal. Runs one after another: the training progress of each (prefixed
    with its run). Runs at the same time (RunEvent): one line per run — redrawn in place on a terminal,
    or a line per started, finished epoch and end of a run otherwise."""

    REDRAW_S = 0.2

    def __init__(self, total: int, stream=None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.printer = ProgressPrinter(self.stream, quiet=quiet)
        self.total = total
        self.lines: dict[str, str] = {}
        self.drawn = 0
        self.last = 0.0

    def __call__(self, event) -> None:
        from latentlab import events as ev

        if self.quiet:
            return
        if isinstance(event, ev.SweepStep):
            self.printer.prefix = f"[{Path(event.run_dir).name} {event.index + 1}/{event.total}] "
            return
        if not isinstance(event, ev.RunEvent):
            self.printer(event)
            return
        line, final = self._line(event)
        if line is None:
            return
        self.lines[event.run] = line
        if self.tty:
            now = time.monotonic()
            if final or now - self.last >= self.REDRAW_S:
                self.last = now
                self._redraw()
        elif not isinstance(event.event, ev.BatchEnd):
            print(f"[{event.run}] {line}", file=self.stream, flush=True)

    def _line(self, event):
        from latentlab import events as ev

        e = event.event
        where = f" on {event.worker}" if event.worker else ""
        if isinstance(e, ev.Started):
            return f"started{where}: epochs {e.initial_epoch + 1}..{e.epochs} ({e.device})", False
        if isinstance(e, ev.BatchEnd):
            lg = e.logs
            return (f"epoch {e.epoch + 1} batch {e.step}/{e.steps} loss {lg.get('loss', 0):.2f} "
                    f"(recon {lg.get('reconstruction_loss', 0):.2f} + β{e.beta:g}·KL {lg.get('kl_loss', 0):.2f})"
                    f"{where}"), False
        if isinstance(e, ev.EpochEnd):
            lg = e.logs
            val = f", val neg ELBO {lg['val_neg_elbo']:.2f}" if "val_neg_elbo" in lg else ""
            return f"epoch {e.epoch} done: loss {lg.get('loss', 0):.2f}{val}{where}", False
        if isinstance(e, ev.Finished):
            return e.message, True
        if isinstance(e, ev.Failed):
            return f"failed: {e.message}", True
        return None, False

    def _redraw(self) -> None:
        w = self.stream
        if self.drawn:
            w.write(f"\x1b[{self.drawn}F")       # back to the first line of the block
        for run, line in self.lines.items():
            w.write(f"\x1b[K{run:<24} {line}\n")
        self.drawn = len(self.lines)
        w.flush()

"""``latentlab tensorboard``: TensorBoard on 127.0.0.1 for a run, a whole sweep or a projector folder.

It serves on the loopback address only (never another: a run's images stay on this machine; reach it from
elsewhere through an SSH tunnel), prints the address, and stops cleanly on Ctrl+C. A run trained before
latentlab wrote event files gets them from its history.csv first (numbers only).
"""

from __future__ import annotations

import sys
from pathlib import Path

from latentlab.cli.common import CliError, number_arg, quiet_tensorflow

NAME = "tensorboard"
HOST = "127.0.0.1"


def add_parser(sub) -> None:
    t = sub.add_parser(NAME, help="show a run, a sweep or a projector folder in TensorBoard (on 127.0.0.1)")
    t.add_argument("folder", metavar="RUN_OR_SWEEP",
                   help="a run folder, a folder of runs (a sweep), or a folder from `latentlab export --projector`")
    t.add_argument("--port", type=number_arg(int, 0, 65535, "--port"), default=None,
                   help="port on 127.0.0.1 (default: 6006, or the next free one; 0: any free port)")


def log_folder(folder) -> tuple[Path, list[str]]:
    """The folder TensorBoard reads for ``folder``, and notes (one line each) on what was done for it."""
    from latentlab.runs import folder as runs
    from latentlab.training.tensorboard_logs import TENSORBOARD_DIR, write_history

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CliError(f"{folder} {'is a file' if folder.exists() else 'does not exist'}: give a run folder, "
                       "a folder of runs or a projector folder")
    run_dirs = [Path(p) for p in runs.find_runs(folder)]
    notes = []
    for run_dir in run_dirs:
        if (run_dir / TENSORBOARD_DIR).is_dir():
            continue
        history = runs.open_run(run_dir).history
        if not history:
            continue
        try:
            write_history(run_dir / TENSORBOARD_DIR, history)
        except Exception as e:  # a read-only folder: TensorBoard shows the other runs
            notes.append(f"{run_dir} has no TensorBoard files and they cannot be written there ({e})")
            continue
        notes.append(f"{run_dir} was trained before latentlab wrote TensorBoard files: its history "
                     f"({len(history)} epochs, numbers only) is now in {run_dir / TENSORBOARD_DIR}")
    if (folder / runs.CONFIG_FILE).is_file():
        logdir = folder / TENSORBOARD_DIR
        if not logdir.is_dir():
            raise CliError(f"{folder} has no finished epoch yet: there is nothing to show")
        return logdir, notes
    from latentlab.runs.projector import CONFIG_FILE as PROJECTOR

    if not (run_dirs or (folder / PROJECTOR).is_file() or any(folder.rglob("events.out.tfevents.*"))):
        raise CliError(f"{folder} holds no run, sweep, projector folder or TensorBoard files")
    return folder, notes


def run(args) -> int:
    logdir, notes = log_folder(args.folder)
    for note in notes:
        print(f"latentlab: note: {note}", file=sys.stderr, flush=True)
    quiet_tensorflow()
    from tensorboard import program

    class LoopbackServer(program.WerkzeugServer):
        """TensorBoard's own server, bound to 127.0.0.1 only, saying where it serves on stdout."""
        current = None

        def __init__(self, wsgi_app, flags):
            if flags.host != HOST or flags.bind_all:
                raise program.TensorBoardServerException(f"latentlab serves TensorBoard on {HOST} only")
            super().__init__(wsgi_app, flags)
            LoopbackServer.current = self

        def print_serving_message(self):
            print(f"TensorBoard for {logdir} at {self.get_url()} (Ctrl+C stops it)", flush=True)

    class CannotServe(Exception):
        pass

    scanning = program.with_port_scanning(LoopbackServer)

    def make_server(wsgi_app, flags):
        try:
            return scanning(wsgi_app, flags)
        except program.TensorBoardServerException as e:   # main() would print it its own way
            raise CannotServe(e.msg) from None

    board = program.TensorBoard(server_class=make_server)
    board.configure(logdir=str(logdir), host=HOST, bind_all=False, port=args.port, load_fast="false")
    try:
        board.main()
    except KeyboardInterrupt:
        pass
    except CannotServe as e:
        raise CliError(f"TensorBoard could not start: {e}; try another --port") from None
    finally:
        if LoopbackServer.current is not None:
            LoopbackServer.current.server_close()
    print("TensorBoard stopped", flush=True)
    return 0

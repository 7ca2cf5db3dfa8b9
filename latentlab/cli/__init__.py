"""The headless ``latentlab`` sub-commands: ``train``, ``info``, ``export``, ``sweep``, ``lesson``,
``eval``, ``tensorboard``.

The ``latentlab`` console script enters through ``gui.app``, which hands these sub-commands here and
opens the window otherwise; ``python -m latentlab SUBCOMMAND`` comes here directly. Nothing here knows
a screen. Each sub-command is a module (``cmd_*.py``) with ``NAME``, ``add_parser(sub)`` and
``run(args)``; errors print one line on stderr and exit non-zero: no traceback reaches the user.
"""

from __future__ import annotations

import sys

from latentlab.cli import cmd_eval, cmd_export, cmd_info, cmd_lesson, cmd_sweep, cmd_tensorboard, cmd_train
from latentlab.cli.common import CliError, Parser, number_arg

__all__ = ["main", "build_parser", "SUBCOMMANDS", "CliError", "number_arg"]

COMMANDS = {m.NAME: m for m in (cmd_train, cmd_info, cmd_export, cmd_sweep, cmd_lesson, cmd_eval, cmd_tensorboard)}
SUBCOMMANDS = tuple(COMMANDS)


def build_parser() -> Parser:
    parser = Parser(prog="latentlab", description="A laboratory for variational autoencoders. "
                    "Without a sub-command, `latentlab` opens the desktop app (see 'latentlab app --help').")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--version":
        from latentlab import __version__

        print(f"latentlab {__version__}")
        return 0
    from latentlab.config import ConfigError
    from latentlab.data import DatasetError
    from latentlab.model.keras_files import KerasFileError
    from latentlab.runs.folder import RunError

    try:
        if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
            raise CliError(f"give a sub-command ({', '.join(SUBCOMMANDS)}); the desktop app opens with "
                           "`latentlab` alone or `python -m gui.app`")
        args = build_parser().parse_args(argv)
        _check_paths(args)  # cheap checks first: a typo should not wait for TensorFlow
        return COMMANDS[args.command].run(args)
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except (CliError, ConfigError, DatasetError, RunError, KerasFileError) as e:
        print(f"latentlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentlab: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"latentlab: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1


def _check_paths(args) -> None:
    from latentlab.cli.common import check_folder

    if args.command in ("train", "sweep", "lesson") and getattr(args, "folder", None):
        check_folder(args.folder)
    for attr in ("resume", "run"):
        value = getattr(args, attr, None)
        if value:
            from latentlab.runs.folder import open_run
            open_run(value)  # raises RunError with the reason


if __name__ == "__main__":
    sys.exit(main())

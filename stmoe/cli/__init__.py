"""The `stmoe` command. Each subcommand lives in its own module with `register(subparsers)`.
`main` is the last line of defence: whatever goes wrong while reading or writing exits 2 with one
line naming the file and the problem, never a traceback (`--debug` shows it)."""

from __future__ import annotations

import argparse
import sys

from stmoe.cli import (
    analyze_command,
    datasets_command,
    explore_command,
    info_command,
    lab_command,
    predict_command,
    record_command,
    report_command,
    sensitivity_command,
    simulate_command,
)
from stmoe.errors import StmoeError, one_line
from stmoe.version import __version__

# Subcommand modules, in the order `stmoe --help` lists them.
COMMANDS = [info_command, datasets_command, analyze_command, predict_command, record_command,
            simulate_command, sensitivity_command, explore_command, report_command, lab_command]


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other stmoe error (subparsers inherit the class)."""

    def error(self, message: str):
        # an argument may hold a line break; shown escaped, the error stays one line
        message = message.replace("\r", "\\r").replace("\n", "\\n")
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stmoe",
        description="Spatio-temporal expert prefetching for MoE inference: traces, predictors, "
                    "buffers and timing.")
    parser.add_argument("--version", action="version", version=f"stmoe {__version__}")
    debug_help = "on an error, show the Python traceback instead of one line"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    # Not required here: `main` checks it after the unknown flags, so `stmoe --nosuchflag` names
    # the flag rather than a missing COMMAND.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    for subparser in sub.choices.values():
        # Accepted after the subcommand too; SUPPRESS keeps an absent flag from undoing one before it.
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.error("the following arguments are required: COMMAND")
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt as exc:
        # a command may say what its interruption left (explore: points finished, how to resume)
        print(f"stmoe: interrupted{f': {exc}' if str(exc) else ''}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output (e.g. `| head`) has gone: not an error worth a traceback.
        sys.stderr.close()
        return 0
    except Exception as exc:
        if args.debug:
            raise
        message = one_line(exc)
        if not isinstance(exc, StmoeError | OSError):
            # No check foresaw this input: name what was being read, and how to see more.
            subject = getattr(args, "trace", None) or getattr(args, "model", None) or getattr(args, "spec", None)
            message = f"{subject + ': ' if subject else ''}{message} (rerun with --debug for the traceback)"
        print(f"stmoe: error: {message}", file=sys.stderr)
        return 2

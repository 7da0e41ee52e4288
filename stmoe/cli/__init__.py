"""The `stmoe` command. Each subcommand lives in its own module with `register(subparsers)`;
bad input exits 2 with one line naming the file and the problem, never a traceback."""

from __future__ import annotations

import argparse
import sys

from stmoe.cli import (
    analyze_command,
    datasets_command,
    explore_command,
    info_command,
    predict_command,
    record_command,
    report_command,
    simulate_command,
)
from stmoe.errors import StmoeError
from stmoe.version import __version__

# Subcommand modules, in the order `stmoe --help` lists them.
COMMANDS = [info_command, datasets_command, analyze_command, predict_command, record_command,
            simulate_command, explore_command, report_command]


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other stmoe error (subparsers inherit the class)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stmoe",
        description="Spatio-temporal expert prefetching for MoE inference: traces, predictors, "
                    "buffers and timing.")
    parser.add_argument("--version", action="version", version=f"stmoe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except StmoeError as exc:
        print(f"stmoe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stmoe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output (e.g. `| head`) has gone: not an error worth a traceback.
        sys.stderr.close()
        return 0

"""What the workbench's commands share: the parser of ``python -m workbench`` and its error rule.

Each command module (``workbench.batch_export``, ``workbench.bench``, ``workbench.precompute``)
exposes ``register(subparsers)``, which adds its sub-command with a ``func`` default that takes
the parsed arguments and returns an exit code; ``register`` stays cheap (heavy imports go inside
``func``). :func:`run` parses, calls ``func`` and turns an error the workbench raises on purpose
(``TauformerError``) into one line on stderr and exit code 2. This module imports no command
module, so a command can build its own one-command parser here without an import cycle.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable

PROG = "python -m workbench"


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends each option with its default, unless the text already says it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        nothing = action.default is None or action.default is False or action.default is argparse.SUPPRESS
        if "default" in text or nothing or action.required:
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text
        return f"{text} (default: %(default)s)"


def add_command(subparsers, name: str, doc: str, func: Callable) -> argparse.ArgumentParser:
    """A sub-command whose help and description are the first paragraph of ``doc``, running ``func(args)``."""
    summary = doc.strip().split("\n\n")[0].replace("\n", " ")
    parser = subparsers.add_parser(name, help=summary, description=summary, formatter_class=DefaultsFormatter)
    parser.set_defaults(func=func)
    return parser


def build_parser(registers: Iterable[Callable]) -> argparse.ArgumentParser:
    """``python -m workbench`` with one sub-command per ``register`` function."""
    parser = argparse.ArgumentParser(prog=PROG, description="The workbench's commands besides the app itself.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in registers:
        register(subparsers)
    return parser


def run(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """Parse ``argv`` and run the chosen command: its exit code, 2 after a one-line error."""
    from workbench.data.errors import TauformerError

    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TauformerError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run_one(register: Callable, name: str, argv: list[str] | None) -> int:
    """One command on its own, as ``python -m workbench NAME ARGV`` runs it (argv None: sys.argv[1:])."""
    return run(build_parser([register]), [name, *(sys.argv[1:] if argv is None else argv)])


def parse_one(register: Callable, name: str, argv: list[str] | None) -> argparse.Namespace:
    """The arguments of one command, parsed as ``python -m workbench NAME ARGV`` parses them."""
    return build_parser([register]).parse_args([name, *(sys.argv[1:] if argv is None else argv)])

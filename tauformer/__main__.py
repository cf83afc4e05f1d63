"""Command line: python -m tauformer {prepare, train, generate, demo, domain, bench, study}.

Each command lives in its own module, which exposes ``register(subparsers)`` and sets a ``func``
default that takes the parsed arguments and returns an exit code. ``register`` stays cheap: no
torch at module level (`bench` imports a benchmark only when it runs), so that ``domain info``
starts in about half a second; heavy imports go inside the ``func``. Every failure ends in one
line on stderr: errors this package raises on purpose (TauformerError) and failures of the machine
or the input (out of memory, disk full, too deeply nested data, ...) as ``error: ...`` with exit
code 2; anything else is a bug and exits with 1, also in one line plus a hint. ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
import traceback

from .errors import TauformerError

COMMAND_MODULES = (
    "tauformer.prepare",
    "tauformer.train_cli",
    "tauformer.generate_cli",
    "tauformer.demo",
    "tauformer.domain.cli",
    "tauformer.bench.cli",
    "tauformer.study.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one sub-command per module in COMMAND_MODULES that exists."""
    parser = argparse.ArgumentParser(prog="python -m tauformer", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_path in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as err:
            if err.name and module_path.startswith(err.name):  # command not built yet; else a real error
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 -- the one place every failure becomes one line
        if args.debug:
            traceback.print_exc()
        message, code = describe_failure(err)
        hint = "" if args.debug or code == 2 else " (--debug shows the traceback)"
        print(f"error: {message}{hint}", file=sys.stderr)
        return code


def describe_failure(err: BaseException) -> tuple[str, int]:
    """One line for a failure and its exit code: 2 for bad input or a machine limit, 1 for a bug."""
    if isinstance(err, TauformerError):
        return _one_line(str(err)), 2
    if isinstance(err, MemoryError):
        return "out of memory (the input or the configuration is too large for this machine)", 2
    if isinstance(err, RecursionError):
        return "input nested too deeply to process", 2
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename else ""
        what = err.strerror or str(err)
        if err.errno == errno.ENOSPC:
            what = "no space left on the device"
        return _one_line(f"{where}{what}"), 2
    if isinstance(err, ValueError):
        return _one_line(f"invalid value: {err}"), 2
    return _one_line(f"internal error: {type(err).__name__}: {err}"), 1


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


if __name__ == "__main__":
    sys.exit(main())

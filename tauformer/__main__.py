"""Command line: python -m tauformer {prepare, train, generate, demo, domain, bench, study}.

Each command lives in its own module, which exposes ``register(subparsers)`` and sets a ``func``
default that takes the parsed arguments and returns an exit code. Errors this package raises on
purpose (TauformerError) are printed as one clear line, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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
    except TauformerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

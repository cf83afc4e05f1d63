"""Command line: python -m workbench {export, bench, precompute} (the app itself is app.py).

Each command lives in its own module, which exposes ``register(subparsers)``
(see :mod:`workbench.cli`): ``export`` (workbench.batch_export) writes every page's figures for
a paper, ``bench`` times every page interaction, ``precompute`` stores a domain memory's item
layout beside it. Bad input ends in one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from workbench import cli

COMMAND_MODULES = (
    "workbench.batch_export",
    "workbench.bench",
    "workbench.precompute",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one sub-command per module in COMMAND_MODULES."""
    return cli.build_parser(importlib.import_module(path).register for path in COMMAND_MODULES)


def main(argv: list[str] | None = None) -> int:
    return cli.run(build_parser(), sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())

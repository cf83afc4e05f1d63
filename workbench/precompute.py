"""python -m workbench precompute DOMAIN_DIR: store a domain memory's item layout beside it.

The UMAP layout of a domain's items takes from seconds to a minute or two the first time
(numba compiles on first use). Stored in DOMAIN_DIR/layouts/, it is used by every app that
opens the domain memory, so the Domain graph page starts with it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from workbench import cli

COMMAND = "precompute"


def register(subparsers) -> None:
    """The ``precompute`` sub-command of ``python -m workbench``."""
    p = cli.add_command(subparsers, COMMAND, "Store a domain memory's item layout beside it.", run)
    p.add_argument("domain", type=Path, help="a domain-memory directory saved with its items")


def main(argv=None) -> int:
    """``python -m workbench precompute ARGV`` (argv None: the command line)."""
    return cli.run_one(register, COMMAND, argv)


def run(args: argparse.Namespace) -> int:
    """Lay out the domain memory's items and store the layout in its directory."""
    from workbench.data import DomainStore
    from workbench.data.errors import TauformerError
    from workbench.data.item_layout import bundle

    if not args.domain.is_dir():
        raise TauformerError(f"{args.domain}: not a domain-memory directory (a layout is stored inside it)")
    store = DomainStore([args.domain])
    if store.problems:
        raise TauformerError(store.problems[0])
    memory = store.load(store.names()[0])
    if not memory.has_items:
        raise TauformerError(f"{args.domain}: the domain memory was saved without its items; nothing to lay out")
    start = time.perf_counter()
    path = bundle(args.domain, memory)
    print(f"{len(memory.items)} items laid out in {time.perf_counter() - start:.1f} s -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

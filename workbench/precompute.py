"""python -m workbench.precompute DOMAIN_DIR: store a domain memory's item layout beside it.

The UMAP layout of a domain's items takes from seconds to a minute or two the first time
(numba compiles on first use). Stored in DOMAIN_DIR/layouts/, it is used by every app that
opens the domain memory, so the Domain graph page starts with it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.precompute", description=__doc__.splitlines()[0])
    parser.add_argument("domain", type=Path, help="a domain-memory directory saved with its items")
    args = parser.parse_args(argv)
    from tauformer.domain import load_domain_memory
    from tauformer.errors import TauformerError
    from workbench.data.item_layout import bundle

    try:
        if not args.domain.is_dir():
            raise TauformerError(f"{args.domain}: not a domain-memory directory (a layout is stored inside it)")
        memory = load_domain_memory(args.domain)
        if not memory.has_items:
            raise TauformerError(f"{args.domain}: the domain memory was saved without its items; nothing to lay out")
    except TauformerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    path = bundle(args.domain, memory)
    print(f"{len(memory.items)} items laid out in {time.perf_counter() - start:.1f} s -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

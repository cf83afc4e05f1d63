"""`python -m tauformer bench NAME [--json]`: runs one benchmark from `BENCHMARKS`."""

from __future__ import annotations

import argparse
import importlib

from . import BENCHMARKS
from .common import format_table, machine_summary, to_json


def register(subparsers) -> None:
    """Add the `bench` command and one sub-command per benchmark module."""
    bench = subparsers.add_parser("bench", help="run a side-by-side benchmark and print ratios")
    names = bench.add_subparsers(dest="bench_name", metavar="NAME", required=True)
    for name, module_path in BENCHMARKS.items():
        module = importlib.import_module(module_path)
        sub = names.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        module.add_arguments(sub)
        sub.set_defaults(func=_run_benchmark, bench_module=module)


def _run_benchmark(args: argparse.Namespace) -> int:
    log = (lambda *a, **k: None) if args.json else print
    result = args.bench_module.run(args, log)
    result.setdefault("machine", machine_summary())
    if args.json:
        print(to_json(result))
    else:
        print(format_table(result.get("rows", []), result.get("columns")))
        for line in result.get("summary", []):
            print(line)
    return 0

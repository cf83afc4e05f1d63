"""`python -m tauformer bench NAME [--json]`: runs one benchmark from `BENCHMARKS`."""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
from pathlib import Path

from . import BENCHMARKS
from .common import format_table, machine_summary, to_json


class BenchmarkParser(argparse.ArgumentParser):
    """The parser of one benchmark, filled in by its module's ``add_arguments`` only when that
    benchmark is run (or asked for --help): the modules import torch, which every other command
    of ``python -m tauformer`` would otherwise pay for at start-up."""

    module_path: str | None = None

    def parse_known_args(self, args=None, namespace=None):
        if self.module_path is not None:
            module = importlib.import_module(self.module_path)
            self.module_path = None
            module.add_arguments(self)
            self.set_defaults(bench_module=module)
        return super().parse_known_args(args, namespace)


def first_doc_line(module_path: str) -> str:
    """The first line of a module's docstring, read from its source without importing it."""
    spec = importlib.util.find_spec(module_path)
    source = Path(spec.origin).read_text(encoding="utf-8") if spec and spec.origin else ""
    doc = ast.get_docstring(ast.parse(source)) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def register(subparsers) -> None:
    """Add the `bench` command and one sub-command per benchmark module (imported when run)."""
    bench = subparsers.add_parser("bench", help="run a side-by-side benchmark and print ratios")
    names = bench.add_subparsers(dest="bench_name", metavar="NAME", required=True,
                                 parser_class=BenchmarkParser)
    for name, module_path in BENCHMARKS.items():
        sub = names.add_parser(name, help=first_doc_line(module_path))
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        sub.module_path = module_path
        sub.set_defaults(func=_run_benchmark)


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

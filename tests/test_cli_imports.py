"""`python -m tauformer` imports torch only for the commands that need it."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DRIVER = """
import json, runpy, sys
sys.argv = ["tauformer"] + json.loads(sys.argv[1])
code = 0
try:
    runpy.run_module("tauformer", run_name="__main__")
except SystemExit as stop:
    code = stop.code
heavy = [name for name in ("torch", "triton", "sklearn") if name in sys.modules]
print(json.dumps({"code": code, "heavy": heavy}))
"""


def run_cli(argv):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(argv)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.stdout, json.loads(done.stdout.strip().splitlines()[-1])


def test_domain_info_does_not_import_torch():
    out, seen = run_cli(["domain", "info", str(ROOT / "assets" / "demo" / "domain")])
    assert seen["code"] in (0, None) and "spectral gap" in out
    assert seen["heavy"] == []


def test_bench_help_lists_every_benchmark_without_importing_them():
    from tauformer.bench import BENCHMARKS

    out, seen = run_cli(["bench", "--help"])
    assert seen["code"] == 0 and seen["heavy"] == []
    for name in BENCHMARKS:
        assert name in out
    assert "Domain-memory build" in out  # the help line comes from the module's docstring


def test_a_benchmark_gets_its_arguments_when_chosen():
    from tauformer.__main__ import build_parser

    args = build_parser().parse_args(["bench", "domain", "--items", "10", "--topics", "3"])
    assert args.items == 10 and args.topics == 3 and args.bench_module.__name__ == "tauformer.bench.domain"

"""Server time of every page interaction, measured by calling the views' callbacks as functions.

    python -m workbench bench [--domain FILE] [--synthetic N] [--layout] [--repeat 5]

Each page module (:func:`workbench.views.pages_with_data`) may define
``bench_cases(workspace) -> dict[name, callable]``;
every callable is one interaction (what a callback computes for it). A case's time includes
serialising its result the way Dash does, since that is part of the server's answer. The first
call is reported apart (cold caches), then the median of ``--repeat`` further calls.
With ``--layout`` the item layout (kNN + UMAP in the worker process) is timed first, from
nothing and then from the disk cache as after a restart. ``--load USERS --seconds S`` is a
load test of the served app instead (workbench/loadtest.py): USERS concurrent users issuing
the Attention page's callback requests, cached and with fresh prompts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from workbench import cli

if TYPE_CHECKING:
    from workbench.data import Workspace

COMMAND = "bench"


def register(subparsers) -> None:
    """The ``bench`` sub-command of ``python -m workbench``."""
    p = cli.add_command(subparsers, COMMAND, __doc__, run)
    p.add_argument("--runs", nargs="*", default=None, metavar="DIR", help="run directories (default: the demo's)")
    p.add_argument("--domain", nargs="*", default=None, metavar="FILE",
                   help="domain memories (default: the demo's, unless --runs is given)")
    p.add_argument("--synthetic", type=int, default=None, metavar="N",
                   help="measure on a seeded synthetic domain memory with N items instead (default: none)")
    p.add_argument("--layout", action="store_true", help="also time the item layout (UMAP), first and cached")
    p.add_argument("--repeat", type=int, default=5, help="warm calls per case")
    p.add_argument("--cache-dir", default=None, help="cache directory (default: a new temporary one)")
    p.add_argument("--only", default=None, help="run only cases whose name contains this text (default: all)")
    p.add_argument("--cold-start", nargs="*", default=None, metavar="PATH",
                   help="time `python app.py` (the demo) until PATH (default / and /domain) has "
                        "answered its callbacks in headless Chromium (needs playwright)")
    p.add_argument("--load", type=int, default=None, metavar="USERS",
                   help="load test: start the app on 127.0.0.1 and simulate USERS concurrent users (default: none)")
    p.add_argument("--seconds", type=float, default=10.0, help="--load: seconds per phase")
    p.add_argument("--threads", type=int, default=8, help="--load: the app's waitress threads")


def parse_args(argv=None) -> argparse.Namespace:
    """The arguments of ``python -m workbench bench ARGV``."""
    return cli.parse_one(register, COMMAND, argv)


def collect_cases(workspace: Workspace) -> dict:
    """``bench_cases`` of every page module that has data, in page order."""
    from workbench.views import pages_with_data

    cases = {}
    for module in pages_with_data(workspace):
        if hasattr(module, "bench_cases"):
            cases.update(module.bench_cases(workspace))
    return cases


def time_case(fn, repeat: int) -> tuple[float, float, int]:
    """(first ms, median warm ms, bytes of the serialised result)."""
    from dash._utils import to_json

    def once():
        t0 = time.perf_counter()
        size = len(to_json(fn()))
        return 1000 * (time.perf_counter() - t0), size

    first, size = once()
    warm = [once()[0] for _ in range(max(1, repeat))]
    return first, statistics.median(warm), size


def time_layout(workspace: Workspace, log) -> dict:
    """Seconds to the first item layout of the first domain (worker) and to reading it back."""
    from workbench.data import domain_views as dv
    from workbench.data import item_layout

    name = workspace.domains.names()[0]
    memory = dv.load(workspace, name)
    if not memory.has_items:
        return {}
    jobs = item_layout.jobs_for(workspace)
    cached_before = jobs.path(item_layout.layout_key(memory)).exists()
    t0 = time.perf_counter()
    found = item_layout.wait(workspace, memory, timeout=900)
    first = time.perf_counter() - t0
    log(f"item layout of {len(memory.items):,} items: {found.status} in {first:.1f} s"
        + (" (was cached already)" if cached_before else "") + f"; worker phases {found.seconds}")
    fresh = item_layout.LayoutJobs(jobs.directory)  # as after a restart: only the disk cache
    t0 = time.perf_counter()
    again = fresh.request(item_layout.layout_key(memory), memory.items)
    cached = time.perf_counter() - t0
    log(f"item layout from the disk cache: {again.status} in {1000 * cached:.1f} ms")
    return {"first_s": first, "cached_ms": 1000 * cached, "worker": found.seconds}


def time_cold_start(paths, log) -> list[dict]:
    """Seconds from starting `python app.py` to the first page served and to ``path``'s
    callbacks answered and graphs drawn, each in a fresh app with an empty cache dir."""
    import os
    import shutil
    import socket
    import subprocess
    import urllib.request

    from playwright.sync_api import sync_playwright

    repo = Path(__file__).resolve().parents[1]
    chromium = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        for path in paths:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            url = f"http://127.0.0.1:{port}"
            cache = tempfile.mkdtemp(prefix="workbench-cold-")
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--cache-dir", cache],
                                    cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                while True:
                    try:
                        urllib.request.urlopen(url + "/", timeout=2).read()
                        break
                    except OSError:
                        time.sleep(0.05)
                served = time.perf_counter() - t0
                page = browser.new_page()
                page.goto(url + path)
                page.wait_for_function(
                    "() => document.querySelector('#status-bar') && document.querySelector('#status-bar').innerText"
                    " && !document.querySelector('[data-dash-is-loading=\"true\"]')"
                    " && [...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector("
                    "'.scatterlayer .trace, .heatmaplayer image, .barlayer path, canvas') || p.querySelector('.annotation'))",
                    timeout=120_000)
                answered = time.perf_counter() - t0
                page.close()
            finally:
                proc.terminate()
                proc.wait(10)
                shutil.rmtree(cache, ignore_errors=True)
            log(f"cold start {path}: first page served {served:.2f} s, callbacks answered {answered:.2f} s")
            rows.append({"path": path, "served_s": served, "answered_s": answered})
        browser.close()
    return rows


def main(argv=None) -> int:
    """``python -m workbench bench ARGV`` (argv None: the command line)."""
    return cli.run_one(register, COMMAND, argv)


def run(args: argparse.Namespace) -> int:
    """Time what the parsed arguments ask for and print it: 0, or 2 after a one-line error."""
    from workbench.data import Workspace, open_workspace

    cache_dir = Path(args.cache_dir or tempfile.mkdtemp(prefix="workbench-bench-"))

    def log(message):
        print(message, file=sys.stderr, flush=True)

    if args.load is not None:
        from workbench.loadtest import format_rows, load_test

        try:
            rows = load_test(args.load, args.seconds, runs=args.runs, domains=args.domain, threads=args.threads,
                             log=log)
        except (ValueError, RuntimeError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(format_rows(rows), flush=True)
        return 0

    if args.cold_start is not None:
        time_cold_start(args.cold_start or ["/", "/domain"], log)
        return 0

    if args.synthetic:
        from workbench.data.synthetic import synthetic_domain

        t0 = time.perf_counter()
        path = synthetic_domain(cache_dir, args.synthetic)
        log(f"synthetic domain memory with {args.synthetic:,} items: {path} ({time.perf_counter() - t0:.1f} s)")
        workspace = Workspace(runs=args.runs or [], domains=[path], cache_dir=cache_dir)
    else:
        workspace = open_workspace(args.runs, args.domain, cache_dir=cache_dir)
    if args.layout:
        time_layout(workspace, log)
    cases = collect_cases(workspace)
    print(f"{'interaction':48s} {'first ms':>9s} {'warm ms':>9s} {'KiB':>8s}")
    for name, fn in cases.items():
        if args.only and args.only not in name:
            continue
        first, warm, size = time_case(fn, args.repeat)
        print(f"{name:48s} {first:9.1f} {warm:9.1f} {size / 1024:8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

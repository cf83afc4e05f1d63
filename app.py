"""Start the Tauformer Workbench: python app.py [--runs DIR ...] [--domain FILE ...] [--host H] [--port P].

With no --runs / --domain it opens on the bundled demo in assets/demo/. The server binds to
127.0.0.1 unless --host says otherwise and never runs in debug mode unless --debug is given.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Explore Tauformer checkpoints and domain memories in the browser.")
    p.add_argument("--runs", nargs="+", default=None, metavar="DIR",
                   help="run directories (or folders of runs); default: the bundled demo")
    p.add_argument("--domain", nargs="+", default=None, metavar="FILE", help="domain-memory files or directories")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--cache-dir", default=None, help="where layouts and uploads are cached (default: a temp folder)")
    p.add_argument("--max-upload-mb", type=float, default=50.0,
                   help="largest embedding / corpus file the app accepts for upload (default 50)")
    p.add_argument("--profile", action="store_true", help="log the server time of every callback")
    p.add_argument("--debug", action="store_true", help="Dash debug mode (development only)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from workbench.app import create_app
    from workbench.data import DEMO_DIR, open_workspace

    workspace = open_workspace(args.runs, args.domain, cache_dir=args.cache_dir, max_upload_mb=args.max_upload_mb)
    if args.runs is None and args.domain is None:
        what = f"the bundled demo ({DEMO_DIR})"
    else:
        what = f"{len(workspace.runs.names())} run(s), {len(workspace.domains.names())} domain memory(ies)"
    for problem in workspace.problems:
        print(f"warning: {problem}", file=sys.stderr)
    app = create_app(workspace, profile=args.profile)
    url = f"http://{args.host}:{args.port}/"
    print(f"Tauformer Workbench on {what}\nready in {time.perf_counter() - started:.1f} s: open {url}", flush=True)
    app.run(host=args.host, port=args.port, debug=args.debug, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

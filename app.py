"""Start the Tauformer Workbench: python app.py [--runs DIR ...] [--domain FILE ...] [--host H] [--port P].

With no --runs / --domain it opens on the bundled demo in assets/demo/. It is served by
waitress and binds to 127.0.0.1 unless --host says otherwise; on another interface every
request needs the access token printed in the URL (or given with --token). The cache
directory must be private to the user (exit code 2 otherwise). Debug mode (Flask's
development server) only with --debug, and only on loopback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time


def port_number(text: str) -> int:
    """An argparse type: a TCP port 1..65535 (a larger one would wrap and the printed URL would be wrong)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1..65535)")
    return port


MIN_TOKEN_CHARS = 16  # shorter tokens are easy to guess by trying


def short_token_warning(token: str | None) -> str | None:
    """One warning line for a --token too short to resist guessing, else None."""
    if token is None or len(token) >= MIN_TOKEN_CHARS:
        return None
    return (f"warning: --token has {len(token)} characters; use at least {MIN_TOKEN_CHARS} "
            "so it cannot be guessed by trying")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Explore Tauformer checkpoints and domain memories in the browser.")
    p.add_argument("--runs", nargs="+", default=None, metavar="DIR",
                   help="run directories (or folders of runs); default: the bundled demo")
    p.add_argument("--domain", nargs="+", default=None, metavar="FILE", help="domain-memory files or directories")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_number, default=8050, help="TCP port 1..65535 (default 8050)")
    p.add_argument("--cache-dir", default=None,
                   help="where layouts and uploads are cached (default: $XDG_CACHE_HOME/tauformer-workbench, "
                        "else ~/.cache/tauformer-workbench; must be yours and not writable by others)")
    p.add_argument("--cache-max-mb", type=float, default=None,
                   help="largest size of the cache directory on disk; the oldest entries go first (default 2048)")
    p.add_argument("--max-upload-mb", type=float, default=50.0,
                   help="largest embedding / corpus file the app accepts for upload (default 50)")
    p.add_argument("--token", default=None,
                   help="access token every request must carry (default: none on 127.0.0.1, a random one "
                        "printed in the URL on any other --host)")
    p.add_argument("--threads", type=int, default=8, help="waitress worker threads (default 8)")
    p.add_argument("--profile", action="store_true", help="log the server time of every callback")
    p.add_argument("--debug", action="store_true", help="Dash debug mode (development only)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from workbench.app import create_app
    from workbench.data import DEMO_DIR, CacheDirError, open_workspace
    from workbench.serving import install_guards, is_loopback, make_server, new_token

    if args.debug and not is_loopback(args.host):
        print(f"error: --debug serves Flask's development server and only on 127.0.0.1, not {args.host}",
              file=sys.stderr)
        return 2
    try:
        workspace = open_workspace(args.runs, args.domain, cache_dir=args.cache_dir,
                                   max_upload_mb=args.max_upload_mb, cache_max_mb=args.cache_max_mb)
    except CacheDirError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.runs is None and args.domain is None:
        what = f"the bundled demo ({DEMO_DIR})"
    else:
        what = f"{len(workspace.runs.names())} run(s), {len(workspace.domains.names())} domain memory(ies)"
    for problem in workspace.problems:
        print(f"warning: {problem}", file=sys.stderr)
    app = create_app(workspace, profile=args.profile)
    if short_token_warning(args.token):
        print(short_token_warning(args.token), file=sys.stderr)
    token = args.token or (None if is_loopback(args.host) else new_token())
    install_guards(app.server, host=args.host, port=args.port, token=token)
    url = f"http://{args.host}:{args.port}/" + (f"?token={token}" if token else "")
    if args.debug:
        print(f"Tauformer Workbench on {what} (debug mode)\nopen {url}", flush=True)
        app.run(host=args.host, port=args.port, debug=True, use_reloader=False)
        return 0
    try:
        server = make_server(app, host=args.host, port=args.port, threads=args.threads)
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port} ({err.strerror or err})", file=sys.stderr)
        return 2
    print(f"Tauformer Workbench on {what}\nready in {time.perf_counter() - started:.1f} s: open {url}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

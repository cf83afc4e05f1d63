"""create_app(workspace) -> dash.Dash: the shell, every page, export, and callback timings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import logging
import threading
import time
from collections import deque
from pathlib import Path

import dash
from flask import g, request

from workbench import theme  # noqa: F401  (importing it registers the plot templates)
from workbench.views import common, page_modules, shell

if TYPE_CHECKING:
    from workbench.data import Workspace

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
log = logging.getLogger("workbench")


def create_app(workspace: Workspace, *, profile: bool = False) -> dash.Dash:
    """Build the Dash app for a Workspace. Nothing is computed until a page asks for it.

    There is no background-callback manager: Dash's disk-backed one unpickles what it finds
    in its directory. Long work runs in the in-process job registry (workbench.data.jobs)
    and is polled by dcc.Interval. Requests are bounded by the workspace's upload limit.
    """
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS_DIR),
        assets_ignore=r"demo/.*",
        title="Tauformer Workbench",
        suppress_callback_exceptions=True,
        update_title=None,
    )
    modules = page_modules()
    pages = [m.PAGE for m in modules]
    for module in modules:
        page = module.PAGE
        dash.register_page(
            module.__name__, path=page["path"], name=page["name"], order=page["order"],
            title=f"{page['name']} - Tauformer Workbench", description=page["description"],
            layout=_page_layout(module, workspace, pages),
        )
    app.server.config["MAX_CONTENT_LENGTH"] = max_request_bytes(workspace.max_upload_mb)
    app.layout = shell.layout(workspace, pages)
    shell.register_callbacks(app, workspace, pages)
    common.register_export(app, workspace, pages)
    for module in modules:
        module.register_callbacks(app, workspace)
    warmers = [m.warm_up for m in modules if hasattr(m, "warm_up")]
    warm_up_after_first_request(app, lambda: [warm(workspace) for warm in warmers])
    install_timings(app, profile=profile)
    app.workspace = workspace
    return app


def _page_layout(module, workspace: Workspace, pages):
    def layout(**query):
        if module.PAGE["id"] == "home":
            return module.layout(workspace, pages=pages, **query)
        return module.layout(workspace, **query)

    return layout


def warm_up_after_first_request(app, warm, delay: float = 3.0) -> None:
    """Run ``warm()`` in a background thread ``delay`` seconds after the app's first request.

    Pages' first views (spectra, layouts, the default probes, torch itself) are then computed
    while the user reads the overview, and start-up stays light. Errors are logged, never raised.
    """
    started = threading.Event()

    def run():
        try:
            warm()
        except Exception:  # a failed warm-up only means a slower first view
            log.warning("warm-up failed", exc_info=True)

    @app.server.before_request
    def _warm_up():
        if not started.is_set():
            started.set()
            timer = threading.Timer(delay, run)
            timer.daemon = True
            timer.start()


def max_request_bytes(max_upload_mb: float) -> int:
    """Largest request body Flask accepts: an upload arrives base64-encoded (4/3 of its size)
    inside the JSON of a callback request, plus room for the rest of that request."""
    return int(max_upload_mb * 2**20 * 4 / 3) + 2**20


def install_timings(app: dash.Dash, *, profile: bool) -> None:
    """With profile=True, log the server time of each callback request and serve the last 500
    as JSON at /_timings; without it, requests are not touched.
    """
    if not profile:
        return
    timings: deque = deque(maxlen=500)
    lock = threading.Lock()
    app.server.config["CALLBACK_TIMINGS"] = timings
    server = app.server

    @server.before_request
    def _start():
        g.tauformer_start = time.perf_counter()

    @server.after_request
    def _stop(response):
        if request.path.endswith("/_dash-update-component") and hasattr(g, "tauformer_start"):
            ms = 1000 * (time.perf_counter() - g.tauformer_start)
            payload = request.get_json(silent=True) or {}
            output = payload.get("output", "?")
            with lock:
                timings.append((output, ms))
            log.warning("callback %-60s %8.1f ms", output[:60], ms)
        return response

    @server.route("/_timings")
    def _timings():
        with lock:
            return {"timings": [{"output": o, "ms": ms} for o, ms in timings]}

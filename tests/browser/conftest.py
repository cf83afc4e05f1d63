"""Real-browser fixtures: `python app.py` on a free port, driven by headless Chromium (Playwright).

Chromium comes from the system (/usr/bin/chromium, or $BROWSER_PATH); Playwright never
downloads a browser. Every page fixture fails the test on a console error or a Dash error.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


def chromium_path() -> str:
    path = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Chromium is needed for browser tests: apt-get install -y chromium (or set BROWSER_PATH)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(args: list[str], cache_dir: Path, timeout: float = 90.0):
    """Start `python app.py ARGS` on a free port; returns (process, base url) once it answers."""
    port = free_port()
    log = open(cache_dir / f"app-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--cache-dir", str(cache_dir), *args],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}: {(cache_dir / f'app-{port}.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"app.py did not answer within {timeout} s")


def stop_app(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def demo_app(tmp_path_factory):
    """Base URL of `python app.py` started with no arguments (the bundled demo)."""
    proc, url = start_app([], tmp_path_factory.mktemp("app-cache"))
    yield url
    stop_app(proc)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


class PageWatch:
    """A Playwright page plus the console errors and failed requests seen on it."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def goto(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_load_state("networkidle")

    def open(self, url: str, graphs: int) -> None:
        """Go to ``url`` and wait until its callbacks have settled with ``graphs`` graphs drawn."""
        self.goto(url)
        self.wait_idle()
        self.graphs_rendered(graphs)
        self.wait_idle()

    def wait_idle(self, timeout: float = 30_000) -> None:
        """Wait until Dash has no callback in flight (its loading state is cleared)."""
        self.page.wait_for_function(
            "() => !document.querySelector('[data-dash-is-loading=\"true\"]')", timeout=timeout)
        self.page.wait_for_load_state("networkidle")

    def graphs_rendered(self, min_count: int = 1, timeout: float = 60_000) -> int:
        """Wait for at least min_count plotly graphs with drawn content (SVG marks or a WebGL canvas)."""
        self.page.wait_for_function(
            """(n) => {
                const plots = [...document.querySelectorAll('.js-plotly-plot')];
                const drawn = plots.filter(p => p.querySelector(
                    '.scatterlayer path, .scatterlayer .point, .heatmaplayer image, .barlayer path, ' +
                    '.violinlayer path, canvas.gl-canvas-context, .imagelayer image, .hm image, g.trace path'));
                return drawn.length >= n;
            }""", arg=min_count, timeout=timeout)
        return self.page.evaluate("document.querySelectorAll('.js-plotly-plot').length")

    def click_plot_point(self, graph: str, x: float, y: float, timeout: float = 30_000) -> None:
        """Click the plotly point at pixel (x, y) of ``graph`` as a user would.

        Plotly clicks what it hovers, so the hover label must be up before the click; a click
        sent while the plot is still wiring its handlers is lost, so the hover is awaited first.
        """
        self.page.mouse.move(x - 3, y)
        self.page.mouse.move(x, y)
        self.page.wait_for_selector(graph + " .hoverlayer .hovertext", timeout=timeout)
        self.page.mouse.click(x, y)

    def assert_healthy(self) -> None:
        """No Dash error overlay / callback error and no console errors."""
        overlay = self.page.locator(".dash-fe-error__title, .dash-error-card").count()
        assert overlay == 0, "Dash shows an error"
        real = [e for e in self.errors if "favicon" not in e]
        assert not real, f"console errors: {real[:5]}"


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    watch = PageWatch(context.new_page())
    yield watch
    context.close()

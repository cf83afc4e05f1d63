"""Off loopback, the token in the URL lets a real browser in: the page and Dash's own requests."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from .conftest import REPO, free_port, stop_app

pytestmark = pytest.mark.browser


def test_the_token_url_opens_the_app_and_its_callbacks_answer(tmp_path, page):
    port = free_port()
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--host", "0.0.0.0", "--port", str(port), "--token",
                             "browser-token", "--cache-dir", str(tmp_path / "cache")],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline, status = time.time() + 90, None
        while time.time() < deadline and status is None:
            try:
                urllib.request.urlopen(base, timeout=2)
                status = 200
            except urllib.error.HTTPError as err:
                status = err.code
            except OSError:
                time.sleep(0.3)
        assert status == 403  # no token: refused
        assert f"?token=browser-token" in (tmp_path / "app.log").read_text()
        page.goto(base + "?token=browser-token")
        page.wait_idle()
        assert "Run tau" in page.page.locator("#status-bar").inner_text()  # filled by a callback
        cookies = page.page.context.cookies()
        assert any(c["name"] == "tauformer_workbench_token" and c["httpOnly"] for c in cookies)
        page.goto(base + "?run=dot")  # no token in this URL: the cookie carries it
        page.wait_idle()
        assert "Run dot" in page.page.locator("#status-bar").inner_text()
        page.assert_healthy()
    finally:
        stop_app(proc)

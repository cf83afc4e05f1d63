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


def test_a_file_over_the_upload_limit_is_refused_in_the_page_without_being_sent(tmp_path, page):
    import numpy as np

    from .conftest import start_app

    proc, url = start_app(["--max-upload-mb", "0.05"], tmp_path)
    try:
        np.save(tmp_path / "big.npy", np.zeros((300, 64), np.float32))  # 75 KB > 0.05 MB (51 KB)
        np.save(tmp_path / "small.npy", np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32))
        page.goto(url + "domain")
        page.wait_idle()
        sent = []
        page.page.on("request", lambda r: sent.append(len(r.post_data_buffer or b"")) if "_dash-update" in r.url else None)
        upload = page.page.locator("#domain-upload input[type=file]")
        upload.set_input_files(str(tmp_path / "big.npy"))
        page.page.wait_for_selector(".upload-error", timeout=30_000)
        text = page.page.locator("#upload-message").inner_text()
        assert "big.npy: 0.1 MB is over the upload limit of 0.05 MB (start the app with --max-upload-mb" in text, text
        assert all(size < 40_000 for size in sent)  # the file never went to the server
        upload.set_input_files(str(tmp_path / "small.npy"))
        page.page.wait_for_selector(".upload-done", timeout=90_000)
        page.assert_healthy()
    finally:
        stop_app(proc)

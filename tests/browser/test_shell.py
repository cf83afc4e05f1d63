"""The app's frame on the demo: it starts, shows the pickers and status, keeps state in the URL."""

import pytest

pytestmark = pytest.mark.browser


def test_overview_opens_on_the_demo_with_state_in_the_url(demo_app, page):
    page.goto(demo_app)
    page.wait_idle()
    status = page.page.locator("#status-bar").inner_text()
    assert "Run tau" in status and "dot" in status
    assert "run=tau" in page.page.url and "step=" in page.page.url
    assert page.page.locator(".runs-table tbody tr").count() == 3
    page.assert_healthy()


def test_a_bookmarked_url_restores_the_pickers(demo_app, page):
    page.goto(demo_app + "?run=dot&compare=tau-reference")
    page.wait_idle()
    status = page.page.locator("#status-bar").inner_text()
    assert "Run dot" in status and "Compared with tau-reference" in status
    page.assert_healthy()


def test_the_server_binds_to_localhost_only(demo_app):
    assert demo_app.startswith("http://127.0.0.1:")

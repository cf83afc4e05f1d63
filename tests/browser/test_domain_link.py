"""The Spectrum page says when the domain memory on screen is not the one the model was trained
with, and its button brings the model's own -- in a real browser, demo runs plus a second domain."""

from __future__ import annotations

import numpy as np
import pytest

from tauformer.domain import build_domain_memory, save_domain_memory

from .conftest import start_app, stop_app

pytestmark = pytest.mark.browser
REPO_DEMO_DOMAIN = "assets/demo/domain"


@pytest.fixture(scope="module")
def two_domain_app(tmp_path_factory):
    """The demo runs with the demo domain memory and another one ("other") the runs never saw."""
    base = tmp_path_factory.mktemp("two-domains")
    X = np.random.default_rng(2).normal(size=(80, 40)).astype(np.float32)
    save_domain_memory(build_domain_memory(X, dim=32, eps=2.0, topk=3, name="other"), base / "other")
    proc, url = start_app(["--domain", REPO_DEMO_DOMAIN, str(base / "other")], tmp_path_factory.mktemp("cache"))
    yield url
    stop_app(proc)


def test_spectrum_page_flags_another_domain_and_brings_the_models_own(two_domain_app, page):
    page.open(two_domain_app + "spectrum?run=tau&domain=other", 4)
    line = page.page.locator("#spectrum-domain-notice")
    assert line.inner_text() == "tau was trained with the domain memory demo, not other."
    button = page.page.locator("#spectrum-domain-own")
    assert button.is_visible() and button.inner_text() == "Show demo"
    button.click()
    page.page.wait_for_function("() => location.search.includes('domain=demo')")
    page.wait_idle()
    assert "demo" in page.page.locator("#domain-picker").inner_text()
    assert page.page.locator("#spectrum-summary").inner_text().startswith("demo")
    assert line.inner_text() == "" and not page.page.locator(".domain-notice").is_visible()
    page.assert_healthy()

"""A card's export menu in a real browser: the CSV of the figure's numbers and a standalone HTML
page that draws the figure offline."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

CARD = "#card-train-speed"


def choose(page, dropdown: str, index: int) -> None:
    """Pick option ``index`` of a Dash dropdown (the button with CSS selector ``dropdown``)."""
    page.page.locator(dropdown).click()
    page.page.locator(f'.dash-dropdown-option[data-option-index="{index}"]:visible').click()


def download(page) -> Path:
    with page.page.expect_download(timeout=90_000) as started:
        page.page.locator(f"{CARD} .export-button").click()
    return Path(started.value.path()), started.value.suggested_filename


def test_a_card_downloads_its_numbers_as_csv_and_itself_as_html(demo_app, page, tmp_path):
    page.open(demo_app + "training", 4)
    drawn = page.page.locator(f"{CARD} .js-plotly-plot").evaluate(
        "gd => gd._fullData.map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}))")
    choose(page, f"{CARD} .export-format", 3)  # CSV
    page.page.wait_for_function(  # no paper width for CSV
        f"() => document.querySelector('{CARD} button.export-columns').disabled")
    path, name = download(page)
    assert name == "train-speed.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert list(rows[0]) == ["series", "step", "tokens / s"]
    for trace in drawn:  # the server's numbers are the ones the page draws
        mine = [r for r in rows if r["series"] == trace["name"]]
        np.testing.assert_allclose([float(r["step"]) for r in mine], trace["x"])
        np.testing.assert_allclose([float(r["tokens / s"]) for r in mine], trace["y"], rtol=1e-12)

    choose(page, f"{CARD} .export-format", 4)  # HTML
    path, name = download(page)
    assert name == "train-speed.html"
    html = path.read_text()
    assert "<script src" not in html and "Plotly.newPlot" in html  # plotly.js inline, no CDN
    standalone = tmp_path / name
    standalone.write_text(html)
    offline = page.page.context.new_page()  # the file alone, with every network request refused
    fetched = []
    offline.route("**/*", lambda route: (fetched.append(route.request.url), route.abort())
                  if not route.request.url.startswith("file://") else route.continue_())
    offline.goto(standalone.as_uri())
    offline.wait_for_selector(".js-plotly-plot .scatterlayer path", timeout=30_000)
    assert offline.evaluate("document.querySelector('.js-plotly-plot').data.length") == len(drawn)
    assert not fetched
    offline.close()
    page.assert_healthy()

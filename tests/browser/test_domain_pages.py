"""Domain graph and Spectrum pages in a real browser, on the demo.

The app gets a cache dir in which the demo's item layout is already stored (a PCA layout in
place of UMAP), so these tests exercise the pages without waiting for UMAP to compile; the
worker that computes real layouts is tested in tests/test_domain_views.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout


pytestmark = pytest.mark.browser

ITEM_MAP = "#card-domain-item-map .js-plotly-plot"
FEATURES = "#card-domain-feature-graph .js-plotly-plot"


@pytest.fixture(scope="module")
def domain_app(demo_app):
    """The demo app: its domain memory ships its item layout, so no UMAP runs in these tests."""
    return demo_app


def choose(page, dropdown: str, index: int) -> None:
    """Pick option ``index`` of a Dash dropdown (the button with CSS selector ``dropdown``)."""
    page.page.locator(dropdown).click()
    page.page.locator(f'.dash-dropdown-option[data-option-index="{index}"]:visible').click()


def last_trace(page, graph: str, what: str):
    """A property of the graph's last trace, e.g. 'marker.color' (as a plain list)."""
    return page.page.locator(graph).evaluate(
        """(gd, what) => { let v = gd._fullData[gd._fullData.length - 1];
                           for (const k of what.split('.')) v = v[k];
                           return v === undefined ? null : Array.from(v); }""", what)


def test_domain_page_draws_items_and_feature_graph_and_switches_the_eigenvector(domain_app, page):
    page.open(domain_app + "domain", 2)
    assert "1,976 items" in page.page.locator("#domain-summary").inner_text()
    assert "UMAP layout of 1,976 items" in page.page.locator("#domain-layout-note").inner_text()
    assert page.page.locator(f"{ITEM_MAP} .scatterlayer path.point").count() >= 1976
    before = last_trace(page, FEATURES, "marker.color")
    assert len(before) == 32  # one node per feature
    choose(page, "#domain-eig", 4)
    page.page.wait_for_function("() => location.search.includes('eig=4')")
    page.wait_idle()
    after = last_trace(page, FEATURES, "marker.color")
    assert len(after) == 32 and not np.allclose(after, before)
    link = page.page.locator("#domain-to-spectrum").get_attribute("href")
    assert link.startswith("/spectrum?") and "eig=4" in link and "domain=demo" in link
    page.assert_healthy()


def test_clicking_an_item_highlights_it_and_lists_its_neighbours(domain_app, page):
    page.open(domain_app + "domain", 2)
    for attempt in range(3):  # a click that lands while the map is redrawn (a layout poll) is lost
        # pixel position of item 100, from the plot's own axes (read anew: a redraw may move it)
        x, y = page.page.locator(ITEM_MAP).evaluate("""gd => {
            const t = gd._fullData.find(d => d.name === 'items');
            const i = Array.from(t.customdata).indexOf(100);
            const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
            return [box.left + gd._fullLayout.xaxis.l2p(t.x[i]), box.top + gd._fullLayout.yaxis.l2p(t.y[i])];
        }""")
        page.click_plot_point(ITEM_MAP, x, y)
        try:
            page.page.wait_for_selector("#domain-neighbour-list li", timeout=15_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.wait_idle()
    page.wait_idle()
    listed = page.page.locator("#domain-neighbour-list li").count()
    dots = page.page.locator(ITEM_MAP).evaluate(
        "gd => gd._fullLayout.shapes.filter(s => s.type === 'circle').map(s => [s.xanchor, s.yanchor])")
    assert len(dots) == listed + 1 >= 2  # a ring per listed neighbour, a dot on the item
    item = int(page.page.locator("#domain-selected-text").inner_text().split("\n")[0].split()[1])
    assert f"item={item}" in page.page.url  # bookmarkable
    xy = page.page.locator(ITEM_MAP).evaluate("""(gd, item) => {
        const t = gd._fullData.find(d => d.name === 'items');
        const i = Array.from(t.customdata).indexOf(item); return [t.x[i], t.y[i]]; }""", item)
    np.testing.assert_allclose(dots[-1], xy, rtol=1e-5)
    # a listed neighbour moves the selection there
    first = page.page.locator("#domain-neighbour-list li button").first
    first.click()
    page.page.wait_for_function("(u) => !location.search.includes('item=' + u + '&') && "
                                "!location.search.endsWith('item=' + u)", arg=item)
    page.wait_idle()
    assert f"item {item} " not in page.page.locator("#domain-selected-text").inner_text()
    page.assert_healthy()


def test_spectrum_page_shares_the_eigenvector_and_exports_svg_and_pdf(domain_app, page):
    page.open(domain_app + "spectrum?eig=4", 4)
    legend = page.page.locator("#card-spectrum-eigenvalues .legendtext").evaluate_all(
        "els => els.map(e => e.textContent)")
    assert "demo" in legend and "chain (D=32)" in legend
    assert page.page.locator("#spectrum-facts-table tbody tr").count() >= 8
    assert "4:" in page.page.locator("#spectrum-eig").inner_text()
    graph = "#card-spectrum-feature-graph .js-plotly-plot"
    colours = last_trace(page, graph, "marker.color")
    choose(page, "#spectrum-eig", 2)
    page.page.wait_for_function("() => location.search.includes('eig=2')")
    page.wait_idle()
    assert not np.allclose(colours, last_trace(page, graph, "marker.color"))
    # a click on the spectrum picks that mode's eigenvector
    x, y = page.page.locator("#card-spectrum-eigenvalues .js-plotly-plot").evaluate("""gd => {
        const t = gd._fullData.find(d => d.name === 'demo');
        const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
        return [box.left + gd._fullLayout.xaxis.l2p(t.x[6]), box.top + gd._fullLayout.yaxis.l2p(t.y[6])]; }""")
    page.click_plot_point("#card-spectrum-eigenvalues .js-plotly-plot", x, y)
    page.page.wait_for_function("() => location.search.includes('eig=6')")
    page.wait_idle()
    assert page.page.locator("#spectrum-eig").inner_text().startswith("6:")
    # the export menu: SVG, then PDF, rendered on the server
    card = "#card-spectrum-feature-graph"
    choose(page, f"{card} .export-format", 1)  # SVG
    with page.page.expect_download(timeout=90_000) as svg_download:
        page.page.locator(f"{card} .export-button").click()
    svg = ET.parse(svg_download.value.path()).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg_download.value.suggested_filename == "spectrum-feature-graph.svg"
    choose(page, f"{card} .export-format", 0)  # PDF
    with page.page.expect_download(timeout=90_000) as pdf_download:
        page.page.locator(f"{card} .export-button").click()
    pdf = Path(pdf_download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
    page.assert_healthy()


def test_uploading_an_embedding_builds_and_selects_its_domain(domain_app, page, tmp_path):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(4, 12))[rng.integers(4, size=80)] + 0.3 * rng.normal(size=(80, 12)))
    np.save(tmp_path / "my-topics.npy", X.astype(np.float32))
    bad = tmp_path / "model.pkl"
    bad.write_bytes(b"not an embedding")
    page.open(domain_app + "domain", 2)
    upload = page.page.locator("#domain-upload input[type=file]")
    upload.set_input_files(str(bad))
    page.page.wait_for_selector(".upload-error", timeout=60_000)
    assert "model.pkl: unknown format '.pkl'" in page.page.locator("#upload-message").inner_text()
    upload.set_input_files(str(tmp_path / "my-topics.npy"))
    page.page.wait_for_selector(".upload-done", timeout=90_000)
    assert "my-topics: D = 12" in page.page.locator("#upload-message").inner_text()
    page.page.wait_for_function("() => location.search.includes('domain=my-topics')")
    page.wait_idle()
    page.page.wait_for_function(
        """(sel) => { const gd = document.querySelector(sel);
                      return gd && gd._fullData && gd._fullData[gd._fullData.length - 1].x.length === 12; }""",
        arg=FEATURES, timeout=30_000)
    assert "my-topics" in page.page.locator("#domain-picker").inner_text()
    assert "80 items" in page.page.locator("#domain-summary").inner_text()
    page.assert_healthy()


def test_the_degree_card_draws_and_the_summary_names_the_structure(domain_app, page):
    page.open(domain_app + "domain", 3)
    degrees = "#card-domain-degrees .js-plotly-plot"
    page.page.wait_for_selector(f"{degrees} .barlayer .point", timeout=30_000)
    counts = page.page.locator(degrees).evaluate(
        "gd => gd._fullData.filter(d => d.type === 'bar').map(d => Array.from(d.y).reduce((a, b) => a + b, 0))")
    assert sum(counts) == 32  # every feature of the demo's domain memory is counted once
    summary = page.page.locator("#domain-summary .structure-line").inner_text()
    assert summary.startswith("Structure: no hubs (degree")  # the demo's graph is not hub-and-spoke
    sizes = last_trace(page, FEATURES, "marker.size")
    assert len(sizes) == 32 and max(sizes) > min(sizes)  # node size follows degree
    page.assert_healthy()

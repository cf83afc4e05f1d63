"""The overview on the demo: its three compact figures draw, and each one's link opens its page
with the global pickers carried along."""

import re

import pytest

pytestmark = pytest.mark.browser

GLANCES = [("home-loss", "/training", "Training"), ("home-entropy", "/attention", "Attention"),
           ("home-spectrum", "/spectrum", "Spectrum")]
DRAWN_JS = """(ids) => ids.map(id => {
    const card = document.getElementById('card-' + id);
    const graph = card && card.querySelector('.js-plotly-plot');
    return !!(graph && graph.querySelector('.scatterlayer path, .barlayer path') && graph._fullLayout
              && graph._fullLayout.height < 300);
})"""


def test_the_overview_draws_three_small_figures_that_link_to_their_pages(demo_app, page):
    page.open(demo_app, 3)
    assert page.page.evaluate(DRAWN_JS, [card for card, _, _ in GLANCES]) == [True, True, True]
    for card, path, title in GLANCES:
        link = page.page.locator(f"#{card}-link")
        page.page.wait_for_function(  # the link carries the pickers once they are set
            "(id) => (document.getElementById(id).getAttribute('href') || '').includes('run=tau')", arg=f"{card}-link")
        link.click()
        page.page.wait_for_url(re.compile(re.escape(path) + r"\?.*run=tau"))
        page.page.wait_for_selector(f"h1:has-text('{title}'), h2:has-text('{title}')")
        page.open(demo_app, 3)
    page.assert_healthy()

"""Heads that matter in a real browser on the demo: both models' heatmaps draw, a cell click picks the head."""

import re

import pytest

pytestmark = pytest.mark.browser

GRAPH = "#card-abl-heatmaps .js-plotly-plot"


def cell_position(page, trace: int, layer: int, head: int):
    """Page coordinates of cell (layer, head) of heatmap trace ``trace``."""
    return page.page.evaluate(
        """([sel, i, layer, head]) => {
            const gd = document.querySelector(sel);
            const box = gd.getBoundingClientRect();
            const t = gd._fullData[i];
            const xa = gd._fullLayout[t.xaxis.replace('x', 'xaxis')], ya = gd._fullLayout[t.yaxis.replace('y', 'yaxis')];
            return [box.left + xa._offset + xa.d2p(head), box.top + ya._offset + ya.d2p(layer)];
        }""", [GRAPH, trace, layer, head])


def test_the_page_draws_both_models_and_a_cell_click_picks_the_head(demo_app, page):
    page.open(demo_app + "ablation", 1)
    page.page.wait_for_function(
        """(sel) => { const gd = document.querySelector(sel);
             return gd && gd.data && gd.data.length === 4 && gd.querySelectorAll('.hm image, .heatmaplayer image').length === 4
                 && gd.data[0].name.startsWith('tau ') && gd.data[2].name.startsWith('dot '); }""", arg=GRAPH,
        timeout=60_000)
    assert page.page.locator("#abl-ranked .abl-model").count() == 2
    page.page.locator(GRAPH).scroll_into_view_if_needed()
    x, y = cell_position(page, 2, 3, 1)  # the compared (dot) model's layer 3, head 1
    page.page.mouse.move(x - 3, y)
    page.page.mouse.move(x, y)
    page.page.wait_for_selector(GRAPH + " .hoverlayer .hovertext")
    hover = page.page.locator(GRAPH + " .hoverlayer .hovertext").text_content()
    assert "layer 3, head 1" in hover and re.search(r"loss change [+-]\d\.\d{4} nats/token", hover), hover
    assert re.search(r"ablated loss \d+\.\d{4} \(unablated \d+\.\d{4}\)", hover), hover
    page.click_plot_point(GRAPH, x, y)
    page.page.wait_for_function("() => location.search.includes('layer=3') && location.search.includes('head=1')")
    page.page.wait_for_function(
        "() => (document.querySelector('#abl-to-attention') || {}).href?.includes('layer=3&head=1')")
    href = page.page.get_attribute("#abl-to-attention", "href")
    assert href.startswith("/attention?run=tau") and "compare=dot" in href
    page.page.wait_for_function(  # the heatmap redraws with the clicked head outlined in both models
        "(sel) => { const s = document.querySelector(sel).layout.shapes || [];"
        " return s.length === 2 && s.every(b => b.x0 === 0.5 && b.y0 === 2.5); }", arg=GRAPH)
    page.page.click("#abl-to-attention")
    page.page.wait_for_function("() => location.pathname === '/attention'")
    assert "layer=3" in page.page.url and "head=1" in page.page.url
    page.wait_idle()
    page.assert_healthy()

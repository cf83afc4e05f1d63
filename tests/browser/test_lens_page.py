"""The Logit lens page in a real browser on the demo: both models drawn, hovers name the top
predictions, the colour scale follows the control and the URL."""

import pytest

pytestmark = pytest.mark.browser


def graph(name: str) -> str:
    return f"#card-{name} .js-plotly-plot"


def panel_centre(page, name: str, curve: int = 0):
    """Page coordinates of the centre of the subplot holding trace ``curve``."""
    return page.page.evaluate(
        """([sel, curve]) => {
            const gd = document.querySelector(sel), box = gd.getBoundingClientRect(), t = gd._fullData[curve];
            const xa = gd._fullLayout[t.xaxis.replace('x', 'xaxis')], ya = gd._fullLayout[t.yaxis.replace('y', 'yaxis')];
            return [box.left + xa._offset + xa._length / 2, box.top + ya._offset + ya._length / 2];
        }""", [graph(name), curve])


def test_the_lens_page_draws_both_models_hovers_predictions_and_switches_to_ranks(demo_app, page):
    page.open(demo_app + "lens", 3)
    heat = page.page.evaluate(f"() => document.querySelector('{graph('lens-heatmap')}').data"
                              ".filter(t => t.type === 'heatmap').map(t => t.name)")
    assert [name.split(" ")[0] for name in heat] == ["tau", "dot"]
    assert page.page.locator("#lens-summary").inner_text().count("tau:") == 1
    assert page.page.locator(".lens-hardest-list li").count() > 0

    x, y = panel_centre(page, "lens-heatmap")
    page.page.mouse.move(x - 3, y)
    page.page.mouse.move(x, y)
    page.page.wait_for_selector(graph("lens-heatmap") + " .hoverlayer .hovertext")
    hover = page.page.locator(graph("lens-heatmap") + " .hoverlayer .hovertext").text_content()
    assert "top:" in hover and "rank" in hover and "tau" in hover

    page.page.click("#lens-scale input[value='rank']")
    page.page.wait_for_function(
        f"() => {{ const gd = document.querySelector('{graph('lens-heatmap')}');"
        " return gd && gd.data[0].reversescale === true; }")
    page.wait_idle()
    assert "scale=rank" in page.page.url
    page.assert_healthy()

"""The model pages in a real browser on the demo: they render, react to the prompt, clicks and controls."""

import re

import pytest

pytestmark = pytest.mark.browser

PAGES = {"heads": 4, "attention": 8, "why": 2, "whatif": 2, "training": 4, "memory": 1}


def graph(name: str) -> str:
    return f"#card-{name} .js-plotly-plot"


def point_position(page, name: str, trace_name_start: str | None = None, index: int = 0, curve: int | None = None):
    """Page coordinates of a data point (or of the centre of a heatmap trace's subplot)."""
    return page.page.evaluate(
        """([sel, start, index, curve]) => {
            const gd = document.querySelector(sel);
            const box = gd.getBoundingClientRect();
            const i = curve !== null ? curve : gd.data.findIndex(t => (t.name || '').startsWith(start));
            const t = gd._fullData[i];
            const xa = gd._fullLayout[t.xaxis.replace('x', 'xaxis')], ya = gd._fullLayout[t.yaxis.replace('y', 'yaxis')];
            if (curve !== null) {
                return [box.left + xa._offset + xa._length / 2, box.top + ya._offset + ya._length / 2];
            }
            return [box.left + xa._offset + xa.d2p(t.x[index]), box.top + ya._offset + ya.d2p(t.y[index])];
        }""", [graph(name), trace_name_start, index, curve])


@pytest.mark.parametrize("path", list(PAGES))
def test_each_model_page_opens_on_the_demo(demo_app, page, path):
    page.open(demo_app + path, PAGES[path])
    assert page.page.locator(".model-page h1").count() == 1
    page.assert_healthy()


def test_a_typed_prompt_goes_through_both_models(demo_app, page):
    page.open(demo_app + "attention", 8)
    text = "def tau(x):\n    return x  # a prompt typed in the browser"
    page.page.fill("#model-prompt-text", text)
    page.page.click("#model-prompt-run")
    page.page.wait_for_function("(n) => document.querySelector('#model-prompt-note').innerText.startsWith(n)",
                                arg=f"{len(text.encode())} tokens")
    page.wait_idle()
    for name, run in (("attn-grid-a", "tau"), ("attn-grid-b", "dot")):
        page.page.wait_for_function(
            """([sel, run]) => { const gd = document.querySelector(sel);
                 return gd && gd.data && gd.data.length === 12 && gd.querySelector('.heatmaplayer image, .hm image')
                     && (gd.layout.title.text || '').startsWith(run + ' '); }""", arg=[graph(name), run])
    n_tokens = page.page.evaluate("() => document.querySelector('#card-attn-tokens .js-plotly-plot')"
                                  ".data[0].text.flat().filter(t => t !== '').length")
    assert n_tokens == len(text.encode())  # the default query is the last token: every key shown
    assert "prompt=" in page.page.url
    page.page.click("#nav-heads")  # the prompt follows to the other model pages of this tab
    page.page.wait_for_function("(t) => { const el = document.querySelector('#model-prompt-text');"
                                " return el && el.value === t; }", arg=text)
    page.graphs_rendered(4)
    page.wait_idle()
    assert page.page.locator("#model-prompt-note").inner_text().startswith(f"{len(text.encode())} tokens")
    assert "/heads" in page.page.url and "prompt=" in page.page.url
    page.assert_healthy()


def test_clicking_a_grid_map_picks_the_head(demo_app, page):
    page.open(demo_app + "attention", 8)
    x, y = point_position(page, "attn-grid-a", curve=2 * 3 + 1)  # layer 2, head 1
    page.click_plot_point(graph("attn-grid-a"), x, y)
    page.page.wait_for_function(
        "() => (document.querySelector('#card-attn-pair .js-plotly-plot').layout.title.text || '')"
        ".startsWith('layer 2, head 1')")
    assert "layer=2" in page.page.url and "head=1" in page.page.url
    page.page.locator(graph("attn-tokens")).scroll_into_view_if_needed()
    x, y = page.page.evaluate("""(sel) => { const gd = document.querySelector(sel); const b = gd.getBoundingClientRect();
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        return [b.left + xa._offset + xa.d2p(3), b.top + ya._offset + ya.d2p(0)]; }""", graph("attn-tokens"))
    page.page.mouse.click(x, y)  # a token of the text panel becomes the query
    page.page.wait_for_function(
        "() => (document.querySelector('#card-attn-pair .js-plotly-plot').layout.title.text || '')"
        ".includes('query 3 ')")
    assert "token=3" in page.page.url
    page.assert_healthy()


def test_changing_the_temperature_changes_the_whatif_maps(demo_app, page):
    page.open(demo_app + "whatif", 2)
    assert "no change" in page.page.locator("#whatif-summary").inner_text()
    before = page.page.evaluate("() => document.querySelector('#card-whatif-maps .js-plotly-plot').data[1].z")
    rail = page.page.locator("#whatif-temperature").bounding_box()
    page.page.mouse.click(rail["x"] + 2, rail["y"] + rail["height"] / 2)  # left end: x0.01
    page.page.wait_for_function("() => document.querySelector('#whatif-summary').innerText.includes('temperature x')")
    page.wait_idle()
    after = page.page.evaluate("() => document.querySelector('#card-whatif-maps .js-plotly-plot').data[1].z")
    assert after != before
    assert re.search(r"temperature=-[12]", page.page.url)
    page.assert_healthy()


def test_clicking_a_checkpoint_loads_it_into_the_pickers(demo_app, page):
    page.open(demo_app + "training", 4)
    assert "Run tau" in page.page.locator("#status-bar").inner_text()
    # leave only the dot checkpoints clickable (the runs' curves overlap), as a legend click would
    page.page.evaluate("""(sel) => { const gd = document.querySelector(sel);
        const others = gd.data.map((t, i) => i).filter(i => !(gd.data[i].name || '').startsWith('dot checkpoints'));
        return Plotly.restyle(gd, {visible: 'legendonly'}, others); }""", graph("train-loss"))
    x, y = point_position(page, "train-loss", "dot checkpoints", index=0)
    page.click_plot_point(graph("train-loss"), x, y)
    page.page.wait_for_function("() => document.querySelector('#status-bar').innerText.includes('Run dot')")
    page.wait_idle()
    status = page.page.locator("#status-bar").inner_text()
    first_step = re.search(r"Run dot \(dot\) at step (\d+)", status)
    assert first_step, status
    assert "run=dot" in page.page.url and f"step={first_step.group(1)}" in page.page.url
    page.assert_healthy()


def test_a_diamond_among_all_curves_loads_exactly_that_checkpoint_and_never_compares_a_run_with_itself(
        demo_app, page):
    page.open(demo_app + "training", 4)
    for run, index, step in (("tau", 1, 1000), ("dot", 2, 1500)):  # every curve stays visible
        x, y = point_position(page, "train-loss", f"{run} checkpoints", index=index)
        page.click_plot_point(graph("train-loss"), x, y)
        page.page.wait_for_function(
            "(want) => document.querySelector('#status-bar').innerText.includes(want)",
            arg=f"Run {run} ({'dot' if run == 'dot' else 'tau'}) at step {step} ", timeout=60_000)
        page.wait_idle()
        assert f"run={run}&" in page.page.url and f"step={step}" in page.page.url
        status = page.page.locator("#status-bar").inner_text()
        assert f"Compared with {run}\n" not in status + "\n" and f"compare={run}&" not in page.page.url
    assert "Compared with tau" in page.page.locator("#status-bar").inner_text()  # dot's twin took its place
    page.assert_healthy()


def test_the_temperature_multiplier_applies_on_enter_not_per_keystroke(demo_app, page):
    page.open(demo_app + "whatif", 2)
    assert "temperature x" in page.page.locator(".whatif-controls").inner_text()
    box = page.page.locator("#whatif-temperature-x")
    box.fill("")
    box.type("0.1", delay=50)  # typing alone commits nothing
    page.page.wait_for_timeout(800)
    page.wait_idle()
    assert "no change" in page.page.locator("#whatif-summary").inner_text()
    box.press("Enter")
    page.page.wait_for_function(
        "() => document.querySelector('#whatif-summary').innerText.includes('temperature x0.1')", timeout=60_000)
    page.wait_idle()
    assert re.search(r"temperature=-1(&|$)", page.page.url)
    page.assert_healthy()

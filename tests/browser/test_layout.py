"""No card overlaps another and no graph spills out of its card, on every page, in the states
that used to break the layout: first load, a short prompt typed in, nothing compared.

Boxes are read from the real browser (getBoundingClientRect); one app server and one browser
page serve the whole module.
"""

import pytest

from .conftest import PageWatch

pytestmark = pytest.mark.browser

PROMPT_PAGES = ["attention", "heads", "why", "whatif", "lens", "ablation"]
COMPARE_PAGES = PROMPT_PAGES + ["training", "memory"]
OTHER_PAGES = ["", "domain", "spectrum", "spectrum?vs=none"]  # overview, domain pages (upload card included)
MIN_GRAPH_PX = 100

BOXES_JS = """() => [...document.querySelectorAll('.card, .tile')].filter(c => c.offsetParent !== null).map(c => {
  const r = c.getBoundingClientRect();
  const graphs = [...c.querySelectorAll('.js-plotly-plot')].map(g => {
      const svg = g.querySelector('.main-svg'), s = svg ? svg.getBoundingClientRect() : g.getBoundingClientRect();
      return {height: g.getBoundingClientRect().height, svg: [s.left, s.top, s.right, s.bottom]}; });
  return {id: c.id || c.className, box: [r.left, r.top, r.right, r.bottom], graphs}; })"""

SETTLED_JS = """() => {
  if (document.querySelector('[data-dash-is-loading="true"]')) { return false; }
  const plots = [...document.querySelectorAll('.card .js-plotly-plot')];
  return plots.every(gd => gd._fullLayout && gd.querySelector('.main-svg') &&
      !((gd.layout && gd.layout.annotations) || []).some(a => /^(Computing|Loading)\\.\\.\\./.test(a.text || '')));
}"""


def layout_problems(boxes) -> list[str]:
    """Cards that intersect, graphs that stick out of their card or collapsed below MIN_GRAPH_PX."""
    found = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            dx = min(a["box"][2], b["box"][2]) - max(a["box"][0], b["box"][0])
            dy = min(a["box"][3], b["box"][3]) - max(a["box"][1], b["box"][1])
            if dx > 2 and dy > 2:
                found.append(f"{a['id']} overlaps {b['id']} ({dx:.0f} x {dy:.0f} px)")
        for g in a["graphs"]:
            left, top, right, bottom = g["svg"]
            if bottom > a["box"][3] + 2 or right > a["box"][2] + 2 or top < a["box"][1] - 2:
                found.append(f"a graph spills out of {a['id']} (bottom {bottom:.0f} > {a['box'][3]:.0f})")
            if g["height"] < MIN_GRAPH_PX:
                found.append(f"a graph in {a['id']} collapsed to {g['height']:.0f} px")
    return found


@pytest.fixture(scope="module")
def shared_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield PageWatch(context.new_page())
    context.close()


def settle(watch: PageWatch) -> None:
    watch.wait_idle()
    watch.page.wait_for_function(SETTLED_JS, timeout=60_000)
    watch.page.wait_for_timeout(300)  # let plotly finish its resize pass


def open_settled(watch: PageWatch, url: str) -> None:
    watch.goto(url)
    settle(watch)


def assert_laid_out(watch: PageWatch, state: str) -> None:
    boxes = watch.page.evaluate(BOXES_JS)
    assert len(boxes) >= 2, f"{state}: the page shows no cards"
    problems = layout_problems(boxes)
    assert not problems, f"{state}: " + "; ".join(problems)


def test_the_overlap_check_sees_an_overlap_and_a_collapsed_graph():
    card = {"id": "a", "box": [0, 0, 100, 100], "graphs": [{"height": 0, "svg": [0, 10, 100, 460]}]}
    other = {"id": "b", "box": [0, 50, 100, 150], "graphs": []}
    problems = layout_problems([card, other])
    assert any("overlaps" in p for p in problems) and any("spills" in p for p in problems)
    assert any("collapsed" in p for p in problems)


@pytest.mark.parametrize("path", PROMPT_PAGES)
def test_first_load_and_a_short_prompt_keep_cards_apart(demo_app, shared_page, path):
    open_settled(shared_page, demo_app + path)
    assert_laid_out(shared_page, f"/{path} first load")
    shared_page.page.fill("#model-prompt-text", "hi")
    shared_page.page.click("#model-prompt-run")
    shared_page.page.wait_for_function(
        "() => document.querySelector('#model-prompt-note').innerText.startsWith('2 tokens')")
    settle(shared_page)
    assert_laid_out(shared_page, f"/{path} after the prompt 'hi'")
    shared_page.page.click("#model-prompt-reset")  # the next page starts from the default text
    settle(shared_page)


@pytest.mark.parametrize("path", COMPARE_PAGES)
def test_nothing_compared_keeps_cards_apart(demo_app, shared_page, path):
    open_settled(shared_page, demo_app + path + "?compare=__none__")
    assert shared_page.page.locator("#compare-picker").inner_text().strip() == "nothing"
    assert_laid_out(shared_page, f"/{path} with nothing compared")


@pytest.mark.parametrize("path", ["training", "memory", *OTHER_PAGES])
def test_first_load_keeps_cards_apart(demo_app, shared_page, path):
    open_settled(shared_page, demo_app + path)
    assert_laid_out(shared_page, f"/{path or 'overview'} first load")

"""The overview page: compact live figures of what is loaded, each linking to its page, and
left out when their data is absent (no runs, no domain memory, only a dot run, a study only)."""

import numpy as np
import plotly.graph_objects as go
import pytest
from dash.exceptions import PreventUpdate
from layout_tree import find

from workbench import figures as F
from workbench.data import Workspace, demo_workspace
from workbench.data.workspace import DEMO_DIR
from workbench.figures._common import COMPACT_HEIGHT, SCREEN_HEIGHT
from workbench.views import cards, home

GLANCE_LINKS = {"home-loss": "/training", "home-entropy": "/attention", "home-spectrum": "/spectrum"}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return demo_workspace(cache_dir=tmp_path_factory.mktemp("cache"))


def glance_cards(page) -> list[str]:
    """Ids of the figure cards in the overview's glance row, in order ([] when there is no row)."""
    row = find(page, "home-glance")
    return [] if row is None else [card.id.removeprefix("card-") for card in row.children]


def drawn(fig) -> bool:
    return isinstance(fig, go.Figure) and not (fig.layout.meta or {}).get("empty") and len(fig.data) > 0


# ------------------------------------------------------------------ the page for what is loaded
def test_the_demo_overview_shows_three_figures_each_linking_to_its_page(ws):
    page = home.layout(ws)
    assert glance_cards(page) == ["home-loss", "home-entropy", "home-spectrum"]
    for card, path in GLANCE_LINKS.items():
        assert find(page, f"{card}-link").href == path
        assert find(page, {"type": "figure", "id": card}) is not None
        assert find(page, {"type": "export-button", "id": card}) is not None  # exports like any card
    assert find(page, "home-glance") is not None and "runs-table" in str(page.to_plotly_json())


@pytest.mark.parametrize("runs, domains, expected", [
    ([], [], []),  # nothing loaded
    ([], [DEMO_DIR / "domain"], ["home-spectrum"]),  # a domain memory only
    ([DEMO_DIR / "dot"], [], ["home-loss", "home-entropy"]),  # only a dot run
    ([DEMO_DIR / "study"], [], []),  # a study only (its runs hold histories, no checkpoints)
])
def test_figures_whose_data_is_absent_are_left_out(tmp_path, runs, domains, expected):
    workspace = Workspace(runs=runs, domains=domains, cache_dir=tmp_path)
    page = home.layout(workspace, pages=[{"id": "home", "name": "Overview", "path": "/", "description": ""}])
    assert glance_cards(page) == expected
    text = str(page.to_plotly_json())
    assert ("No runs loaded" in text) == (not workspace.runs.names())


def test_the_page_layout_computes_nothing(ws, tmp_path):
    fresh = demo_workspace(cache_dir=tmp_path)
    home.layout(fresh)
    assert "probes" not in fresh.__dict__  # no ProbeStore: torch is not even asked for
    assert len(fresh.cache.part("histories")) == 0 and len(fresh.cache.part("domain-results")) == 0


# ------------------------------------------------------------------ the figures, from keys
def test_loss_glance_draws_every_run_small_with_the_checkpoint_marked(ws):
    step = ws.runs.info("tau").steps[-1]
    fig = home.loss_glance(ws, "tau", step)
    assert drawn(fig) and fig.layout.height == COMPACT_HEIGHT
    listed = sorted(t.name for t in fig.data if t.showlegend is not False)
    assert listed == ["dot val", "tau val", "tau-reference val"]  # one legend entry per run
    assert any(t.name.startswith("selected: tau") for t in fig.data)
    with pytest.raises(PreventUpdate):
        home.loss_glance(ws, None, None)


def test_entropy_glance_pairs_the_run_with_its_twin_on_the_default_prompt(ws):
    step = ws.runs.info("tau").steps[-1]
    fig = home.entropy_glance(ws, "tau", step, "dot")
    assert drawn(fig) and fig.layout.height == COMPACT_HEIGHT
    assert [t.name for t in fig.data] == ["tau", "dot"] and all(len(t.y) == 4 * 3 for t in fig.data)
    a, b = ws.probes.probe_pair("tau", step, "dot", ws.probes.default_prompt("tau"))
    assert np.allclose(fig.data[0].y, a.entropy.reshape(-1)) and np.allclose(fig.data[1].y, b.entropy.reshape(-1))
    alone = home.entropy_glance(ws, "tau", step, "__none__")
    assert [t.name for t in alone.data] == ["tau"]
    unknown = home.entropy_glance(ws, "no-such-run", step, "dot")  # a friendly message, drawn small
    assert (unknown.layout.meta or {}).get("empty") and unknown.layout.height == COMPACT_HEIGHT


def test_spectrum_glance_draws_the_domain_against_the_chain(ws):
    fig = home.spectrum_glance(ws, "demo")
    assert drawn(fig) and fig.layout.height == COMPACT_HEIGHT
    lines = [t.name for t in fig.data if t.showlegend is not False]
    assert lines == ["demo", "chain (D=32)"]
    with pytest.raises(PreventUpdate):
        home.spectrum_glance(ws, None)


def test_links_carry_the_global_pickers():
    link = home._linker("/attention")
    assert link("tau", 1500, "dot", "demo") == "/attention?run=tau&step=1500&compare=dot&domain=demo"
    assert link(None, None, None, None) == "/attention"


def test_the_glances_export_from_their_cards_but_stay_out_of_the_batch(ws):
    assert {card for card, made in cards.RECIPES.items() if made.page == "home"} == set(GLANCE_LINKS)
    assert cards.build_for_state(ws, "home", {"run": "tau"}) == {}
    names = [name for name, _ in home.bench_cases(ws)]
    assert names[0].startswith("overview: first load") and len(names) == 4


# ------------------------------------------------------------------ compact figures finish themselves
def test_compact_figures_are_small_and_the_default_ones_unchanged():
    steps = np.arange(0, 100, 10)
    history = {"tau": dict(step=steps, train_loss=np.linspace(4, 2, 10), val_loss=np.linspace(4.1, 2.1, 10))}
    entropy = {"tau": np.full((2, 2), 0.7), "dot": np.full((2, 2), 0.6)}
    spectrum = {"a": np.linspace(0, 4, 16)}
    for make in (lambda c: F.fig_loss_curves(history, compact=c), lambda c: F.fig_entropy_bars(entropy, compact=c),
                 lambda c: F.fig_spectrum(spectrum, gap={"a": 0.27}, compact=c)):
        small, large = make(True), make(False)
        assert small.layout.height == COMPACT_HEIGHT < large.layout.height
        assert small.layout.legend.orientation == "h" and small.layout.showlegend is True
        assert [t.y.tolist() for t in small.data] == [t.y.tolist() for t in large.data]  # same data
    assert F.fig_empty("nothing", compact=True).layout.height == COMPACT_HEIGHT
    assert F.fig_empty("nothing").layout.height == SCREEN_HEIGHT
    assert F.fig_loss_curves({}, compact=True).layout.height == COMPACT_HEIGHT

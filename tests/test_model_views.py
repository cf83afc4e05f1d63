"""Model pages' callbacks as plain functions on the demo: figures, empty states, clicks, URL state."""

import importlib

import plotly.graph_objects as go
import pytest
from dash.exceptions import PreventUpdate
from layout_tree import find

from workbench.data import demo_workspace
from workbench.views import PAGE_MODULES, attention, cards, heads, memory, model_shared, training, whatif, why

MODEL_PAGES = [heads, attention, why, whatif, training, memory]


@pytest.fixture(scope="module")
def ws():
    return demo_workspace()


@pytest.fixture(scope="module")
def step(ws):
    return ws.runs.info("tau").steps[-1]


def drawn(fig) -> bool:
    return isinstance(fig, go.Figure) and not (fig.layout.meta or {}).get("empty") and len(fig.data) > 0


def empty_text(fig) -> str:
    assert (fig.layout.meta or {}).get("empty"), "expected an empty-state figure"
    return fig.layout.annotations[0].text


def test_every_model_page_is_registered_with_the_page_contract():
    modules = [importlib.import_module(p) for p in PAGE_MODULES]
    for page in MODEL_PAGES:
        assert page in modules
        assert set(page.PAGE) >= {"id", "path", "name", "order", "description"}
        assert callable(page.layout) and callable(page.register_callbacks)
        assert cards.page_recipes(page.PAGE["id"]) and callable(page.bench_cases)


def test_an_undecided_prompt_skips_the_update(ws, step):
    with pytest.raises(PreventUpdate):
        heads.update_strips(ws, "tau", step, model_shared.PENDING, 0, "full")
    with pytest.raises(PreventUpdate):
        model_shared.prompt_note(ws, model_shared.PENDING)
    assert model_shared.prompt_note(ws, None).endswith("of validation text")


def test_empty_pickers_skip_the_update(ws):
    with pytest.raises(PreventUpdate):
        heads.update_strips(ws, None, None, None, 0, "full")
    with pytest.raises(PreventUpdate):
        attention.update_grids(ws, "tau", None, "dot", None)


def test_heads_callbacks(ws, step):
    q, k = heads.update_strips(ws, "tau", step, None, 2, "data")
    assert drawn(q) and drawn(k) and "layer 2" in q.layout.title.text
    assert drawn(heads.update_distributions(ws, "tau", step, None, "validation", "lambda_k", "ridgeline"))
    assert drawn(heads.update_resolution(ws, "tau", step, None))
    q, _ = heads.update_strips(ws, "dot", ws.runs.info("dot").steps[-1], None, 0, "full")
    assert "no lambda" in empty_text(q)


def test_attention_callbacks(ws, step):
    grid_a, grid_b = attention.update_grids(ws, "tau", step, "dot", "hello tauformer")
    assert len(grid_a.data) == 12 and len(grid_b.data) == 12
    assert grid_a.layout.coloraxis.cmax == grid_b.layout.coloraxis.cmax  # one colour scale
    pair, tokens, top = attention.update_pair(ws, "tau", step, "dot", "hello tauformer", 3, 2, 4)
    assert drawn(pair) and drawn(tokens) and len(top) == 2 and "query 4" in pair.layout.title.text
    assert tokens.data[0].z.size >= 5 and list(tokens.layout.annotations[i].text for i in (0, 1)) == ["tau", "dot"]
    diff, sorted_fig = attention.update_head_maps(ws, "tau", step, "dot", None, 1, 1)
    assert drawn(diff) and drawn(sorted_fig)
    entropy, js = attention.update_summary(ws, "tau", step, "dot", None, "deficit")
    assert drawn(entropy) and drawn(js) and len(entropy.data) == 2
    _, none = attention.update_grids(ws, "tau", step, model_shared.NONE, None)
    assert "Nothing to compare" in empty_text(none)


def test_token_weights_figure():
    import numpy as np

    from workbench.figures.tokens import fig_token_weights

    fig = fig_token_weights(list("abcdefghij"), {"tau": np.full(8, 0.125), "dot": np.linspace(0, 1, 8)}, 7, per_row=4)
    assert len(fig.data) == 2 and fig.data[0].z.shape == (2, 4)  # 8 visible tokens in lines of 4
    assert np.isnan(fig.data[1].z[1, 3]) is np.False_ and fig.data[1].z[1, 3] == 1.0  # the largest weight
    assert list(fig.data[0].customdata[0, 2]) == [2, 0.125]
    assert len(fig.layout.shapes) == 2  # the query boxed in both panels


def test_attention_clicks_select_head_and_token(ws):
    assert attention.head_from_click(ws, "tau", {"points": [{"curveNumber": 7}]}) == (2, 1)
    assert attention.token_from_click({"points": [{"y": "12\u00b7e"}]}) == 12
    assert attention.token_from_click({"points": [{"y": "512\u2013513"}]}) == 512
    assert attention.token_from_text_click({"points": [{"customdata": [17, 0.2]}]}) == 17
    assert attention.token_from_text_click({"points": [{"customdata": {"0": 17.0, "1": 0.2}}]}) == 17


def test_why_callbacks(ws, step):
    fig, text = why.update_spectral(ws, "tau", step, None, 1, 2, 30)
    assert drawn(fig) and "token 30" in fig.layout.title.text
    assert "model:" in str(text)
    assert why.select_from_strip({"points": [{"x": "40\u00b7k", "y": "head 1"}]}) == (1, 40)
    fig, _ = why.update_spectral(ws, "dot", ws.runs.info("dot").steps[-1], None, 0, 0, 0)
    assert "no lambda" in empty_text(fig)


def test_whatif_callback_changes_the_maps(ws, step):
    same, _, summary = whatif.update_whatif(ws, "tau", step, None, 0, 0, 0.0, "model", 1.0, 0.5, "model", 0)
    sharp, _, _ = whatif.update_whatif(ws, "tau", step, None, 0, 0, -2.0, "model", 1.0, 0.5, "model", 0)
    assert (same.data[0].z == same.data[1].z).all()
    assert not (sharp.data[1].z == same.data[1].z).all()
    assert "no change" in str(summary)
    options = whatif.laplacian_options(ws, [{"label": "demo", "value": "demo"}])
    assert {"label": "domain memory: demo", "value": "domain:demo"} in options


def test_training_callbacks_and_checkpoint_click(ws, step):
    loss = training.update_loss(ws, 0.5, "log", "tau", step)
    assert drawn(loss) and loss.layout.yaxis.type == "log"
    names = {t.name for t in loss.data}
    assert {"tau val", "dot val", "tau-reference val"} <= names
    lam, note = training.update_lambda(ws, "tau-reference", "lambda_q", "all")
    assert drawn(lam) and "correlation" in str(note)
    assert drawn(training.update_entropy(ws, 1))
    assert training.load_checkpoint(ws, {"points": [{"customdata": ["dot", step - 1]}]}) == ("dot", step)
    assert training.load_checkpoint(ws, {"points": [{"customdata": ["nope", 3]}]})[0] is not None  # no_update


def test_memory_callbacks(ws, step):
    cache = memory.update_cache(ws, "tau", step, None)
    assert drawn(cache) and any("theory" in (t.name or "") for t in cache.data)
    fig, note = memory.update_latency(ws, False, "tau", step, "__none__")
    assert "press Measure" in empty_text(fig)


def test_layouts_restore_state_from_the_url(ws):
    page = attention.layout(ws, layer="2", head="1", token="7", prompt="hello world", entropy="deficit")
    assert find(page, "attn-layer").value == 2 and find(page, "attn-head").value == 1
    assert find(page, "attn-token").value == 7 and find(page, "attn-entropy-kind").value == "deficit"
    assert find(page, model_shared.PROMPT_TEXT).value == "hello world"
    assert find(page, model_shared.PROMPT_FROM_URL).data is True
    default = heads.layout(ws)
    assert find(default, model_shared.PROMPT_FROM_URL).data is False
    assert find(default, model_shared.PROMPT_TEXT).value == ws.probes.default_prompt("tau")
    page = whatif.layout(ws, temperature="-1.5", laplacian="chain", tau="median")
    assert find(page, "whatif-temperature").value == -1.5 and find(page, "whatif-laplacian").value == "chain"
    assert find(page, "whatif-tau-mode").value == "median"
    assert find(training.layout(ws, axis="log", smoothing="0.3"), "train-axis").value == "log"
    assert find(why.layout(ws, layer="9"), "why-layer").value == 3  # clamped to the model


def test_export_figures_and_bench_cases(ws):
    state = {"run": "tau", "step": ws.runs.nearest_step("tau", None), "compare": "dot", "domain": "demo",
             "prompt": "export me please"}
    for page in MODEL_PAGES:
        if page is memory:
            continue  # measures latency for seconds; its cache figure is checked above
        figures = cards.build_for_state(ws, page.PAGE["id"], state)
        assert figures and all(isinstance(f, go.Figure) and drawn(f) for f, _ in figures.values()), page.__name__
        assert all(keys.get("run", "tau") == "tau" for _, keys in figures.values())
        cases = page.bench_cases(ws)
        assert cases and all(callable(fn) for _, fn in cases)
        name, fn = cases[0]
        fn()


def test_pages_without_runs_say_so(tmp_path):
    from workbench.data import Workspace

    empty = Workspace(runs=[], domains=[], cache_dir=tmp_path)
    for page in MODEL_PAGES:
        assert "No training runs" in str(page.layout(empty).to_plotly_json())

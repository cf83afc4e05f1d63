"""Heads that matter: how much the loss rises when each head, or each layer, of both models is silenced."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from dash import Input, Output, dcc, html, no_update

from workbench.data.ablation import MODES, SOURCES, ablation_pair, top_heads
from workbench.figures.ablation import fig_ablation_heatmaps

from . import model_shared as ms
from .cards import Key, recipe, register_page_callback
from .common import figure_id, register_url_sync
from .shell import NONE

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="ablation", requires="runs", path="/ablation", name="Heads that matter", order=14,
            description="Silence each head or layer of both models and see how much the loss rises.")

MODE_OPTIONS = [{"label": "zero (output removed)", "value": "zero"},
                {"label": "mean (output replaced by its average)", "value": "mean"}]
SOURCE_OPTIONS = [{"label": "on validation text (2 x 4 x 256 tokens)", "value": "validation"},
                  {"label": "on the prompt", "value": "prompt"}]
TOP = 5  # heads in each model's "matter most" list
LEAD = ("Each attention head of the run and of the compared run is silenced in turn -- its output set to zero, "
        "or to its mean over the text's positions -- and so is each whole layer; the cells show how much the mean "
        "next-token loss rises (nats per token). The model is never edited: hooks rewrite the head's output "
        "for one measurement and are removed after it.")


def layout(workspace: Workspace, **query):
    mode = query.get("mode") if query.get("mode") in MODES else "zero"
    source = query.get("source") if query.get("source") in SOURCES else "validation"
    return ms.model_page(workspace, query, "Heads that matter", LEAD, lambda run: [
        html.Div(className="page-controls", children=[
            html.Label(["Ablation", dcc.RadioItems(id="abl-mode", options=MODE_OPTIONS, value=mode, inline=True)]),
            html.Label(["Measured", dcc.RadioItems(id="abl-source", options=SOURCE_OPTIONS, value=source,
                                                   inline=True)]),
            *ms.layer_head_pickers(workspace, run, query, "abl"),
            html.Span("Click a cell to select its head.", className="hint"),
        ]),
        ms.card("abl-heatmaps", "Loss change per silenced head, both models", figure_fn="fig_ablation_heatmaps"),
        html.Section(className="card abl-open", children=[
            html.H3("Open the selected head"),
            html.Div(id="abl-links", className="abl-links"),
        ]),
        html.Section(className="card abl-ranked-card", children=[
            html.H3("Heads that matter most"),
            html.Div(id="abl-ranked", className="abl-ranked"),
        ]),
        dcc.Store(id="abl-url"),
    ])


# ------------------------------------------------------------------ helpers
def sweeps(workspace: Workspace, run, step, compare, prompt, mode, source):
    """(sweep of run, sweep of the compared run or None) for the page's mode and source."""
    mode = mode if mode in MODES else "zero"
    source = source if source in SOURCES else "validation"
    text = ms.prompt_of(workspace, prompt, run) if source == "prompt" else None
    return ablation_pair(workspace, run, step, ms.compare_run(workspace, run, compare), mode=mode, source=source,
                         prompt=text)


def panel_name(sweep) -> str:
    return f"{sweep.run} ({sweep.kind}, step {sweep.step})"


def sweep_title(a, b, mode: str, source: str) -> str:
    """'zero-ablation on validation text: 2048 target tokens' (and the compared run's count if it differs)."""
    where = "validation text" if source == "validation" else "the prompt"
    counts = f"{a.n_tokens}" if b is None or b.n_tokens == a.n_tokens else f"{a.n_tokens} / {b.n_tokens}"
    title = f"{mode}-ablation on {where}: {counts} target token{'' if counts == '1' else 's'}"
    if mode == "mean" and source == "prompt" and a.n_tokens == 1:
        title += " (the mean over one position is the head's own output: nothing changes)"
    return title + ("" if b is not None else "; nothing compared")


def ranked_list(sweep) -> html.Div:
    """One model's top heads (largest loss rise first) and its most needed layer."""
    items = [html.Li(f"layer {t['layer']}, head {t['head']}: {t['delta']:+.4f}") for t in top_heads(sweep, TOP)]
    layer = int(sweep.layer_delta.argmax())
    return html.Div(className="abl-model", children=[
        html.H4(f"{panel_name(sweep)}: loss rise, nats/token"),
        html.Ol(items),
        html.P(f"Whole layer that matters most: layer {layer} ({sweep.layer_delta[layer]:+.4f}); "
               f"unablated loss {sweep.base_loss:.4f} nats/token.", className="muted"),
    ])


# ------------------------------------------------------------------ callbacks
@ms.model_callback(extra=(None,))
def update_ablation(workspace: Workspace, run, step, compare, prompt, mode, source, layer, head):
    """Both models' layer x head heatmaps on one diverging scale, the selected head outlined; ranked lists."""
    mode = mode if mode in MODES else "zero"
    source = source if source in SOURCES else "validation"
    a, b = sweeps(workspace, run, step, compare, prompt, mode, source)
    shown = [s for s in (a, b) if s is not None]
    models = {panel_name(s): {"head_delta": s.head_delta, "layer_delta": s.layer_delta, "base_loss": s.base_loss}
              for s in shown}
    highlight = (ms.clamp_index(layer, a.n_layer), ms.clamp_index(head, a.n_head))
    fig = fig_ablation_heatmaps(models, highlight=highlight, mode=mode, title=sweep_title(a, b, mode, source))
    return fig, [ranked_list(s) for s in shown]


def cell_from_click(click) -> tuple:
    """(layer, head) of a clicked cell (customdata [layer, head, loss]; head -1: a whole layer,
    which sets the layer only)."""
    if not click or not click.get("points"):
        return no_update, no_update
    data = click["points"][0].get("customdata")
    if isinstance(data, dict):  # a typed-array cell arrives as {"0": layer, "1": head, "2": loss}
        data = [data.get("0"), data.get("1")]
    try:
        layer, head = int(data[0]), int(data[1])
    except (TypeError, ValueError, IndexError, KeyError):
        return no_update, no_update
    return layer, (head if head >= 0 else no_update)


def head_query(**values) -> str:
    """A URL query of the values that are set (the undecided prompt is left out)."""
    return urlencode({k: v for k, v in values.items() if v not in (None, "", ms.PENDING)})


def head_links(workspace: Workspace, run, step, compare, prompt, layer, head) -> list:
    """Links opening the selected head on the Attention and Why-this-lambda pages, with the
    pickers and the prompt carried in their URLs; Why this lambda opens the tau model of the
    two (the compared run when the run is a dot-product model)."""
    if run is None or run not in workspace.runs.names():
        return []
    where = f"layer {layer}, head {head}"
    links = [dcc.Link(f"Attention of {where} \u2192", id="abl-to-attention", href="/attention?" + head_query(
        run=run, step=step, compare=compare, prompt=prompt, layer=layer, head=head))]
    other = ms.compare_run(workspace, run, compare)
    if workspace.runs.info(run).attention == "tau":
        tau, tau_step, tau_compare = run, step, compare
    elif other is not None and workspace.runs.info(other).attention == "tau":
        tau, tau_step, tau_compare = other, workspace.runs.nearest_step(other, step), run
    else:
        tau = None
    if tau is not None:
        links.append(dcc.Link(f"Why this lambda ({tau}), {where} \u2192", id="abl-to-why", href="/why?" + head_query(
            run=tau, step=tau_step, compare=tau_compare, prompt=prompt, layer=layer, head=head)))
    else:
        why_not = "nothing is compared" if other is None else f"neither is {other}"
        links.append(html.Span(f"Why this lambda needs a tau run: {run} is a dot-product model and {why_not}.",
                               className="muted"))
    if compare == NONE:
        links.append(html.Span("(nothing compared: the other pages show the run alone)", className="muted"))
    return links


# ------------------------------------------------------------------ cards: keys -> figures
MODEL_KEYS = (ms.RUN, ms.STEP, ms.COMPARE, ms.PROMPT_KEY)
HEATMAPS = recipe("ablation", "abl-heatmaps", update_ablation, (
    *MODEL_KEYS, Key("mode", "abl-mode", default="zero"), Key("source", "abl-source", default="validation"),
    Key("layer", "abl-layer", default=0), Key("head", "abl-head", default=0)), extra=[("abl-ranked", "children")])


def register_callbacks(app, workspace: Workspace) -> None:
    ms.register_prompt(app, workspace)
    ms.register_head_choices(app, workspace, "abl")
    register_page_callback(app, workspace, HEATMAPS)
    app.callback(Output("abl-layer", "value"), Output("abl-head", "value"),
                 Input(figure_id("abl-heatmaps"), "clickData"), prevent_initial_call=True)(cell_from_click)
    app.callback(Output("abl-links", "children"),
                 Input("run-picker", "value"), Input("step-picker", "value"), Input("compare-picker", "value"),
                 Input(ms.PROMPT, "data"), Input("abl-layer", "value"),
                 Input("abl-head", "value"))(ms.bind(workspace, head_links))
    register_url_sync(app, "abl-url", [
        ("prompt", ms.PROMPT, "data"), ("mode", "abl-mode", "value"), ("source", "abl-source", "value"),
        ("layer", "abl-layer", "value"), ("head", "abl-head", "value"),
    ])


# ------------------------------------------------------------------ bench
def bench_cases(workspace: Workspace) -> list:
    run, step, compare, prompt = ms.export_state(workspace, {})
    return [
        ("ablation: sweep both models on validation text", lambda: update_ablation(
            workspace, run, step, compare, prompt, "zero", "validation", 0, 0)),
        ("ablation: select head 1 of layer 2", lambda: update_ablation(
            workspace, run, step, compare, prompt, "zero", "validation", 2, 1)),
        ("ablation: mean-ablate on the prompt", lambda: update_ablation(
            workspace, run, step, compare, prompt, "mean", "prompt", 2, 1)),
        ("ablation: click a cell", lambda: cell_from_click({"points": [{"customdata": [3, 1, 1.5]}]})),
    ]

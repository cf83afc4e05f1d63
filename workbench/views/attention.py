"""Attention: the same prompt through the tau run and the compared run, head by head."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from dash import Input, Output, State, ctx, dcc, html, no_update

from workbench.figures import (
    fig_attention_difference,
    fig_attention_grid,
    fig_attention_pair,
    fig_entropy_bars,
    fig_js_divergence,
    fig_sorted_attention,
)
from workbench.figures.tokens import fig_token_weights, table_token_weights

from . import model_shared as ms
from .cards import Key, recipe, register_page_callback
from .common import figure_id, register_url_sync

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="attention", requires="runs", path="/attention", name="Attention", order=10,
            description="Both models' attention on one prompt: every head, one head large, differences, entropy.")

ENTROPY_KINDS = [{"label": "fraction of uniform", "value": "bars"},
                 {"label": "1 - fraction (log: separates 0.9999 from 0.99)", "value": "deficit"}]
GRID_NOTE = ("Every head of every layer (rows = layers, columns = heads; rows of a map are queries). "
             "Both grids share one colour scale, capped at the 99.5th percentile of their weights so that "
             "near-uniform maps stay visible. Click a map to open that head below.")
TOP_KEYS = 5
GRID_SIDE = 64  # cells per grid panel side: a panel is ~180 px wide in its half-width card
LEAD = ("The prompt goes through the run (Run picker) and the compared run (Compare with; the dot-product "
        "twin by default). Weights are recomputed from the captured queries, keys and lambdas, so the "
        "model's own kernel never has to materialise them.")


def layout(workspace: Workspace, **query):
    return ms.model_page(workspace, query, "Attention", LEAD, lambda run: [
        html.Div(className="page-controls", children=[
            *ms.layer_head_pickers(workspace, run, query, "attn"),
            ms.token_picker(query, "attn-token", "Query token", placeholder="last"),
            html.Span("Click a grid map to pick a head; click a row of the large maps to pick a query token.",
                      className="hint"),
        ]),
        html.Div(className="row", children=[
            ms.card("attn-grid-a", "Run: every head", description=GRID_NOTE),
            ms.card("attn-grid-b", "Compared run: every head", description=GRID_NOTE),
        ]),
        ms.card("attn-pair", "Selected head, both models", description=(
            "The same head of both models side by side on one colour scale (capped at the 99.5th percentile of "
            "their weights); the selected query row is outlined. Click a row to select that query.")),
        ms.card("attn-tokens", "What the query token attends to", figure_fn="fig_token_weights",
                controls=[html.Div(id="attn-topkeys", className="topkeys")]),
        html.Div(className="row", children=[
            ms.card("attn-difference", "Difference (run - compared)", description=(
                "Where the run attends more (red) or less (blue) than the compared run on the selected head; "
                "white is no difference. The scale is capped at the 99.5th percentile of |difference|.")),
            ms.card("attn-sorted", "Tau map ordered by lambda", figure_fn="fig_sorted_attention"),
        ]),
        html.Div(className="row", children=[
            ms.card("attn-entropy", "Entropy per head", figure_fn="fig_entropy_bars", controls=[
                dcc.RadioItems(id="attn-entropy-kind", options=ENTROPY_KINDS, inline=True,
                               value=query.get("entropy") if query.get("entropy") in ("bars", "deficit") else "bars")]),
            ms.card("attn-js", "JS divergence per head", figure_fn="fig_js_divergence"),
        ]),
        dcc.Store(id="attn-url"),
    ])


# ------------------------------------------------------------------ helpers
def probe_pair(workspace: Workspace, run, step, compare, prompt):
    """(view of run, view of the compared run or None)."""
    other = ms.compare_run(workspace, run, compare)
    a, b = workspace.probes.probe_pair(run, step, other, ms.prompt_of(workspace, prompt, run))
    return a, b


def run_title(view) -> str:
    return f"{view.run} ({view.kind}, step {view.step})"


def no_compare_message(run) -> str:
    return f"Nothing to compare {run} with: pick a run in 'Compare with'."


# ------------------------------------------------------------------ callbacks
@ms.model_callback(figures=2)
def update_grids(workspace: Workspace, run, step, compare, prompt):
    """The layer x head grids of both models on one colour scale."""
    a, b = probe_pair(workspace, run, step, compare, prompt)
    cap = ms.colour_cap(a.weights, *([b.weights] if b is not None else []))
    grid_a = fig_attention_grid(a.weights, title=run_title(a), zmax=cap, panel_side=GRID_SIDE)
    grid_b = fig_attention_grid(b.weights, title=run_title(b), zmax=cap, panel_side=GRID_SIDE) if b is not None \
        else ms.empty(no_compare_message(run))
    return grid_a, grid_b


def head_from_click(workspace: Workspace, run, click) -> tuple[int, int]:
    """(layer, head) of the grid map that was clicked (trace l * H + h)."""
    if not click or not click.get("points"):
        return no_update, no_update
    _, n_head = ms.shape_of(workspace, run)
    curve = int(click["points"][0].get("curveNumber", 0))
    return curve // n_head, curve % n_head


def token_from_click(click) -> int:
    """The query position of a clicked cell of the large maps ('12·e' or a pooled '12–15')."""
    if not click or not click.get("points"):
        return no_update
    label = str(click["points"][0].get("y", ""))
    head = label.split("\u00b7", 1)[0].split("\u2013", 1)[0]
    try:
        return int(head)
    except ValueError:
        return no_update


def token_from_text_click(click) -> int:
    """The key position of a clicked token in the text panel (customdata [position, weight])."""
    if not click or not click.get("points"):
        return no_update
    data = click["points"][0].get("customdata")
    if isinstance(data, dict):  # a typed-array row arrives as {"0": position, "1": weight}
        data = [data.get("0")]
    try:
        return int(data[0])
    except (TypeError, ValueError, IndexError, KeyError):
        return no_update


def _select(a, b, layer, head):
    """Maps [T, T] of the selected head in a and b (b None when absent or a different shape)."""
    layer, head = ms.clamp_index(layer, a.n_layer), ms.clamp_index(head, a.n_head)
    map_b = b.weights[layer, head] if b is not None and b.weights.shape == a.weights.shape else None
    return layer, head, a.weights[layer, head], map_b


@ms.model_callback(figures=2, extra=(ms.MESSAGE,))
def update_pair(workspace: Workspace, run, step, compare, prompt, layer, head, token):
    """The selected head large in both models (shared scale), the query row outlined, and the token panel."""
    a, b = probe_pair(workspace, run, step, compare, prompt)
    layer, head, map_a, map_b = _select(a, b, layer, head)
    query = a.T - 1 if token is None else ms.clamp_index(token, a.T)
    tokens_fig, top = token_weights(a, b, layer, head, query)
    if map_b is None:
        text = no_compare_message(run) if b is None else f"{b.run} has a different shape; no head to pair with."
        return ms.empty(text), tokens_fig, top
    fig = fig_attention_pair(map_a, map_b, a.tokens, highlight_query=query, names=(a.run, b.run),
                             zmax=ms.colour_cap(map_a, map_b),
                             title=f"layer {layer}, head {head}; query {query} '{a.tokens[query]}' outlined")
    return fig, tokens_fig, top


def token_weights(a, b, layer, head, query):
    """(figure of the prompt shaded by the query's weights in both models, top keys per model)."""
    rows, top_lines = {}, []
    for view in (a, b):
        if view is None or view.weights.shape != a.weights.shape:
            continue
        weights = view.weights[layer, head, query, : query + 1]  # [query + 1] visible keys
        rows[view.run] = weights
        top = np.argsort(weights)[::-1][:TOP_KEYS]
        top_lines.append(html.Div([html.B(view.run), " top keys: " + ", ".join(
            f"{j}\u00b7{view.tokens[j]} {weights[j]:.3f}" for j in top)]))
    return fig_token_weights(a.tokens, rows, query), top_lines


@ms.model_callback(figures=2)
def update_head_maps(workspace: Workspace, run, step, compare, prompt, layer, head):
    """Difference of the selected head between the models, and the tau map ordered by lambda."""
    a, b = probe_pair(workspace, run, step, compare, prompt)
    layer, head, map_a, map_b = _select(a, b, layer, head)
    diff = (fig_attention_difference(map_a, map_b, a.tokens, zmax=ms.colour_cap(np.abs(map_a - map_b)),
                                     title=f"{a.run} \u2212 {b.run}, layer {layer} head {head}")
            if map_b is not None else ms.empty(no_compare_message(run)))
    tau = a if a.has_lambda else (b if b is not None and b.has_lambda and map_b is not None else None)
    if tau is None:
        return diff, ms.empty("Neither model is a tau model, so there is no lambda to order the keys by.")
    sorted_fig = fig_sorted_attention(tau.weights[layer, head], tau.lambda_q[layer, head], tau.lambda_k[layer, head],
                                      tau.tokens, zmax=ms.colour_cap(tau.weights[layer, head]),
                                      title=f"{tau.run}, layer {layer} head {head}")
    return diff, sorted_fig


@ms.model_callback(figures=2)
def update_summary(workspace: Workspace, run, step, compare, prompt, kind):
    """Entropy per head (fraction of uniform) of both models, and their JS divergence."""
    a, b = probe_pair(workspace, run, step, compare, prompt)
    entropy = {a.run: a.entropy}
    if b is not None and b.entropy.shape == a.entropy.shape:
        entropy[b.run] = b.entropy
    ent = fig_entropy_bars(entropy, kind=kind or "bars")
    if b is None:
        return ent, ms.empty(no_compare_message(run))
    try:
        js = fig_js_divergence(workspace.probes.js_divergence(a, b), names=(a.run, b.run))
    except ms.FRIENDLY_ERRORS as err:
        js = ms.empty(ms.message(err))
    return ent, js


# ------------------------------------------------------------------ cards: keys -> figures
MODEL_KEYS = (ms.RUN, ms.STEP, ms.COMPARE, ms.PROMPT_KEY)
HEAD_KEYS = (Key("layer", "attn-layer", default=0), Key("head", "attn-head", default=0))
GRIDS = recipe("attention", ("attn-grid-a", "attn-grid-b"), update_grids, MODEL_KEYS)
PAIR = recipe("attention", ("attn-pair", "attn-tokens"), update_pair,
              (*MODEL_KEYS, *HEAD_KEYS, Key("token", "attn-token")), extra=[("attn-topkeys", "children")],
              tables={"attn-tokens": table_token_weights})
HEAD_MAPS = recipe("attention", ("attn-difference", "attn-sorted"), update_head_maps, (*MODEL_KEYS, *HEAD_KEYS))
SUMMARY = recipe("attention", ("attn-entropy", "attn-js"), update_summary,
                 (*MODEL_KEYS, Key("entropy_kind", "attn-entropy-kind", default="bars")))


def register_callbacks(app, workspace: Workspace) -> None:
    ms.register_prompt(app, workspace)
    ms.register_head_choices(app, workspace, "attn")
    for made in (GRIDS, PAIR, HEAD_MAPS, SUMMARY):
        register_page_callback(app, workspace, made)

    @app.callback(Output("attn-layer", "value"), Output("attn-head", "value"),
                  Input(figure_id("attn-grid-a"), "clickData"), Input(figure_id("attn-grid-b"), "clickData"),
                  State("run-picker", "value"), prevent_initial_call=True)
    def select_head(click_a, click_b, run):
        click = click_b if ctx.triggered_id == figure_id("attn-grid-b") else click_a
        return head_from_click(workspace, run, click)

    @app.callback(Output("attn-token", "value"), Input(figure_id("attn-pair"), "clickData"),
                  Input(figure_id("attn-tokens"), "clickData"), prevent_initial_call=True)
    def select_token(click_pair, click_tokens):
        if ctx.triggered_id == figure_id("attn-tokens"):
            return token_from_text_click(click_tokens)
        return token_from_click(click_pair)

    register_url_sync(app, "attn-url", [
        ("prompt", ms.PROMPT, "data"), ("layer", "attn-layer", "value"), ("head", "attn-head", "value"),
        ("token", "attn-token", "value"), ("entropy", "attn-entropy-kind", "value"),
    ])


# ------------------------------------------------------------------ bench
def bench_cases(workspace: Workspace) -> list:
    run, step, compare, prompt = ms.export_state(workspace, {})
    return [
        ("attention: grids", lambda: update_grids(workspace, run, step, compare, prompt)),
        ("attention: pick head 2 of layer 3", lambda: update_pair(workspace, run, step, compare, prompt, 3, 2, None)),
        ("attention: pick query token 100", lambda: update_pair(workspace, run, step, compare, prompt, 3, 2, 100)),
        ("attention: difference and sorted map", lambda: update_head_maps(workspace, run, step, compare, prompt, 3, 2)),
        ("attention: entropy and JS", lambda: update_summary(workspace, run, step, compare, prompt, "bars")),
        ("attention: entropy deficit", lambda: update_summary(workspace, run, step, compare, prompt, "deficit")),
    ]


def warm_up(workspace: Workspace) -> None:
    """Load the default pair and probe the default prompt, so the first visit finds them ready."""
    run, compare = workspace.runs.default_pair()
    if run:
        workspace.probes.probe_pair(run, None, compare, workspace.probes.default_prompt(run))

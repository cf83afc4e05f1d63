"""Why this lambda: a token's query and key energy per Laplacian mode, and how that makes lambda."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dash import Input, Output, dcc, html, no_update

from workbench.figures import fig_lambda_strip, fig_spectral_decomposition

from . import model_shared as ms
from .cards import Key, recipe, register_page_callback
from .common import figure_id, register_url_sync
from .domain_notice import notice, register_picker_notice

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="why", requires="runs", path="/why", name="Why this lambda", order=12,
            description="A token's lambda explained: its energy in each eigenvector of the domain memory.")

EXPLAIN = ("lambda is a weighted mean of the Laplacian's eigenvalues: write the head vector in the eigenbasis "
           "(coordinates c_i), weight eigenvalue mu_i by the energy share c_i^2 / sum c^2, and the mean is the "
           "Rayleigh energy E; then lambda = E / (E + tau). Energy in smooth modes of the domain graph (small mu) "
           "gives a small lambda, energy in rough modes a large one.")


def layout(workspace: Workspace, **query):
    return ms.model_page(workspace, query, "Why this lambda", EXPLAIN, lambda run: [
        notice("why"),
        html.Div(className="page-controls", children=[
            *ms.layer_head_pickers(workspace, run, query, "why"),
            ms.token_picker(query, "why-token", "Token", default=0),
            html.Span("Click a cell of the strip to pick a head and token.", className="hint"),
        ]),
        ms.card("why-strip", "lambda_q of the layer (click a token)", figure_fn="fig_lambda_strip"),
        ms.card("why-spectrum", "Energy per Laplacian mode", figure_fn="fig_spectral_decomposition"),
        html.Div(id="why-explanation", className="card why-explanation"),
        dcc.Store(id="why-url"),
    ])


# ------------------------------------------------------------------ callbacks
@ms.model_callback(tau_only="")
def update_strip(workspace: Workspace, run, step, prompt, layer):
    """lambda_q of every head of the layer, one row per head."""
    view = workspace.probes.probe(run, step, ms.prompt_of(workspace, prompt, run))
    layer = ms.clamp_index(layer, view.n_layer)
    return fig_lambda_strip(view.tokens, view.lambda_q[layer], title_prefix="lambda_q", layer=layer, full_range=False)


def select_from_strip(click):
    """(head, token) of a clicked strip cell (y 'head h', x 'pos·token')."""
    if not click or not click.get("points"):
        return no_update, no_update
    point = click["points"][0]
    try:
        head = int(str(point.get("y", "")).split()[-1])
        token = int(str(point.get("x", "")).split("\u00b7", 1)[0].split("\u2013", 1)[0])
    except ValueError:
        return no_update, no_update
    return head, token


@ms.model_callback(tau_only="", extra=(ms.MESSAGE,))
def update_spectral(workspace: Workspace, run, step, prompt, layer, head, token):
    """The spectral decomposition of the token's q and k, and the arithmetic from E to lambda."""
    s = workspace.probes.spectral(run, step, ms.prompt_of(workspace, prompt, run), ms.clamp_index(layer, 10**6),
                                  ms.clamp_index(head, 10**6), ms.clamp_index(token, 10**6))
    fig = fig_spectral_decomposition(s["eigenvalues"], s["weights_q"], s["weights_k"], s["lambda_q"], s["lambda_k"],
                                     token=s["token"],
                                     title=f"token {s['position']} '{s['token']}', layer {s['layer']} head {s['head']}")
    return fig, explanation(s)


def explanation(s: dict) -> list:
    """The arithmetic E -> lambda for q and k, with the model's own value beside the rebuilt one."""
    rows = []
    for name in ("q", "k"):
        e, tau = s[f"energy_{name}"], s[f"tau_{name}"]
        rows.append(html.Tr([
            html.Td(f"{name}"),
            html.Td(f"E = \u03a3 w\u1d62 \u03bc\u1d62 = {e:.4f}"),
            html.Td(f"\u03c4 = {tau:.4f}"),
            html.Td(f"\u03bb = E / (E + \u03c4) = {s[f'lambda_{name}_rebuilt']:.5f}"),
            html.Td(f"model: {s[f'lambda_{name}']:.5f}", className="muted"),
        ]))
    mu = s["eigenvalues"]
    return [html.H3(f"Token {s['position']} '{s['token']}' in layer {s['layer']}, head {s['head']}"),
            html.Table(className="why-table", children=[html.Tbody(rows)]),
            html.P(f"Eigenvalues run from {mu.min():.3g} to {mu.max():.3g}; the dotted lines in the figure mark E "
                   "on that scale. tau is the layer's calibrated tau (or the vector's own statistic in the median, "
                   "mean and percentile modes).", className="muted")]


# ------------------------------------------------------------------ cards: keys -> figures
MODEL_KEYS = (ms.RUN, ms.STEP, ms.PROMPT_KEY, Key("layer", "why-layer", default=0))
STRIP = recipe("why", "why-strip", update_strip, MODEL_KEYS)
SPECTRAL = recipe("why", "why-spectrum", update_spectral,
                  (*MODEL_KEYS, Key("head", "why-head", default=0), Key("token", "why-token", default=0)),
                  extra=[("why-explanation", "children")])


def register_callbacks(app, workspace: Workspace) -> None:
    ms.register_prompt(app, workspace)
    ms.register_head_choices(app, workspace, "why")
    register_page_callback(app, workspace, STRIP)
    app.callback(Output("why-head", "value"), Output("why-token", "value"),
                 Input(figure_id("why-strip"), "clickData"), prevent_initial_call=True)(select_from_strip)
    register_page_callback(app, workspace, SPECTRAL)
    register_picker_notice(app, workspace, "why", note=" Lambda is explained with the model's own Laplacian either way.")
    register_url_sync(app, "why-url", [
        ("prompt", ms.PROMPT, "data"), ("layer", "why-layer", "value"), ("head", "why-head", "value"),
        ("token", "why-token", "value"),
    ])


# ------------------------------------------------------------------ bench
def bench_cases(workspace: Workspace) -> list:
    run, step, _, _ = ms.export_state(workspace, {})
    return [
        ("why: strip of layer 2", lambda: update_strip(workspace, run, step, None, 2)),
        ("why: click a strip cell", lambda: select_from_strip({"points": [{"x": "40\u00b7k", "y": "head 1"}]})),
        ("why: spectrum of token 40", lambda: update_spectral(workspace, run, step, None, 2, 1, 40)),
    ]

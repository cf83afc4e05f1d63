"""Domain graph: the corpus items on a UMAP map with their neighbours, and the feature graph.

Clicking an item marks it and its nearest neighbours on the map (shapes laid over the drawn
map in the browser, so it stays quick with 50,000 items) and lists their texts beside it. The feature graph is the
Laplacian's own graph, its nodes painted with a chosen eigenvector (the Fiedler vector by
default, shared with the Spectrum page through the ``eig`` URL parameter), its nodes sized by
degree and its hubs ringed; beside it the degree distribution, and the header says whether the
graph is hub-and-spoke.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import time

import numpy as np
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from workbench.data import domain_views as dv
from workbench.data import item_layout
from workbench.data.cache import content_key
from workbench.figures import fig_empty, fig_item_map, item_selection_shapes
from workbench.figures._common import truncate

from . import upload
from .cards import Key, recipe, register_page_callback
from .common import as_int, empty_state, figure_card, register_url_sync
from . import domain_parts as dp

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="domain", requires="domain", path="/domain", name="Domain graph", order=20,
            description="The domain corpus on a UMAP map with its nearest neighbours, and the "
                        "feature graph painted with a Laplacian eigenvector.")
POLL_MS = 1500
MAX_LEGEND_CATEGORIES = 16
LAYOUT_LABELS = {"auto": "auto (shell with hubs)", "shell": "shell (hubs outside)"}
EDGE_COLOR = "rgba(120, 120, 120, 0.16)"  # lighter than the figure default: thousands of edges overlap
DRAW_SELECTION = """
function(shapes) {
    // lay the selection over the drawn map; relayout redraws shapes only (milliseconds),
    // where a new figure would make plotly re-process all points
    const gd = document.querySelector('#card-domain-item-map .js-plotly-plot');
    if (!gd || !window.Plotly || !gd._fullLayout) { return window.dash_clientside.no_update; }
    const draw = () => window.Plotly.relayout(gd, {shapes: shapes || []});
    (gd._transitionData && gd._transitionData._frameQueue && gd._transitionData._frameQueue.length)
        ? setTimeout(draw, 50) : draw();
    return (shapes || []).length;
}
"""


def layout(workspace: Workspace, **query):
    """The page; ``color``, ``item``, ``edges``, ``eig`` and ``flayout`` come from the URL query."""
    item = dp.from_query(query, "item", None, int)
    eig = dp.from_query(query, "eig", 1, int)
    color = dp.from_query(query, "color", "lambda")
    method = dp.from_query(query, "flayout", "auto")
    edges = query.get("edges") is None or "edges" in str(query.get("edges"))  # "edges=" means off
    if method not in dv.FEATURE_LAYOUTS:
        method = "auto"
    has_domains = bool(workspace.domains.names())
    domain = dp.initial_domain(workspace, query)
    memory = dp.safe_load(workspace, domain)[0] if domain else None
    colors = dv.color_options(dv.item_data(workspace, domain) if memory is not None else None)
    first = None if has_domains else fig_empty("No domain memory yet: upload one below")
    return html.Div(className="domain-page", children=[
        dcc.Store(id="domain-url-sync"),
        dcc.Store(id="domain-selected", data=item),
        dcc.Store(id="domain-map-meta"),
        dcc.Store(id="domain-selection-shapes"), dcc.Store(id="domain-selection-drawn"),
        dcc.Store(id="domain-layout-status"),
        dcc.Interval(id="domain-layout-poll", interval=POLL_MS, disabled=True),
        html.Div(className="page-head", children=[
            html.H2("Domain graph"),
            html.P(id="domain-summary", className="page-summary"),
        ]),
        None if has_domains else empty_state(dp.NO_DOMAIN, hint=dp.NO_DOMAIN_HINT),
        html.Div(className="domain-items-row", children=[
            figure_card("domain-item-map", "Items of the domain corpus", figure_fn="fig_item_map", figure=first,
                        controls=[
                            html.Label(["Colour by", dcc.Dropdown(
                                id="domain-color", value=color, clearable=False, searchable=False,
                                options=colors, className="control-dropdown")]),
                            dcc.Checklist(id="domain-edges", value=["edges"] if edges else [],
                                          options=[{"label": " kNN edges", "value": "edges"}],
                                          className="inline-check"),
                            html.Span(id="domain-layout-note", className="layout-note"),
                            html.P(dv.ITEM_LAMBDA_NOTE, id="domain-lambda-note", className="control-caption",
                                   title=dv.ITEM_LAMBDA_NOTE),
                        ]),
            html.Aside(className="card neighbours-panel", children=[
                html.H3("Selected item"),
                html.Div(id="domain-neighbours", children=_panel_hint()),
            ]),
        ]),
        html.Div(className="row", children=[
            figure_card("domain-feature-graph", "Feature graph", figure_fn="fig_feature_graph", figure=first,
                        controls=[
                            html.Label(["Eigenvector", dcc.Dropdown(
                                id="domain-eig", value=eig, clearable=False,
                                options=dp.initial_eig_options(workspace, domain, eig),
                                className="control-dropdown eig-dropdown")]),
                            html.Label(["Layout", dcc.Dropdown(
                                id="domain-feature-layout", value=method, clearable=False,
                                searchable=False, className="control-dropdown",
                                options=[{"label": LAYOUT_LABELS.get(m, m), "value": m}
                                         for m in dv.FEATURE_LAYOUTS])]),
                            dcc.Link("Its eigenvalue on the Spectrum page \u2192", href="/spectrum",
                                     id="domain-to-spectrum", className="page-link"),
                        ]),
            figure_card("domain-degrees", "Degree distribution", figure_fn="fig_degree_distribution",
                        figure=first),
        ]),
        html.Div(className="row", children=[upload.upload_card(workspace)]),
    ])


def _panel_hint():
    return html.P("Click an item on the map to see its nearest neighbours here.", className="muted")


# --------------------------------------------------------------- callbacks
def color_choice(workspace: Workspace, domain, color_now):
    """(options, value) of the colour-by dropdown: cluster / label only where the memory has them."""
    domain = dp.require_domain(workspace, domain)
    memory, _ = dp.safe_load(workspace, domain)
    data = dv.item_data(workspace, domain) if memory is not None else None
    options = dv.color_options(data)
    values = [o["value"] for o in options]
    return options, dp.unchanged_if(color_now if color_now in values else "lambda", color_now)


def layout_status(workspace: Workspace, domain, status_now=None):
    """(status, poll disabled?) for the item layout of ``domain``; starts its worker if needed.

    The status string is ``state:domain:key`` with state ready / running / failed / none,
    so the map is redrawn exactly when it changes.
    """
    domain = dp.require_domain(workspace, domain)
    memory, _ = dp.safe_load(workspace, domain)
    if memory is None or dv.item_data(workspace, domain) is None:
        status = f"none:{domain}:"
    else:
        found = item_layout.request(workspace, memory)
        status = f"{found.status}:{domain}:{found.key}"
    running = status.startswith(("running", "queued"))
    return dp.unchanged_if(status, status_now), not running


def item_map(workspace: Workspace, status, color, edges=("edges",)):
    """(figure, map meta, layout note) for a layout status from :func:`layout_status`.

    While UMAP runs, the items are shown on their first two principal components.
    :func:`selection` then draws the selected item as layout shapes on top.
    """
    if not status:
        raise PreventUpdate
    state, domain, _ = status.split(":", 2)
    memory, problem = dp.safe_load(workspace, domain)
    if memory is None:
        return fig_empty(f"Cannot read the domain memory: {problem}"), None, ""
    data = dv.item_data(workspace, domain)
    if data is None:
        fig = fig_empty("This domain memory keeps no items: rebuild it with --keep-items "
                        "(or upload the embedding) to see them")
        return fig, None, ""
    found = item_layout.request(workspace, memory)
    if found.status == "ready":
        xy, kind = found.xy, "umap"
        note = f"UMAP layout of {data['n']:,} items"
    else:
        xy, kind = _pca(workspace, domain, data), "pca"
        if found.status == "running":
            note = ("UMAP layout is being computed" + (f" ({found.elapsed:.0f} s so far)" if found.elapsed else "")
                    + "; showing the first two principal components meanwhile")
        elif found.status == "queued":
            note = f"UMAP layout {found.message}; showing the first two principal components meanwhile"
        else:
            note = f"UMAP layout failed ({found.message}); showing PCA"
    show_edges = "edges" in (edges or [])
    key = content_key("item-map", found.key, kind, color or "lambda", domain, show_edges)
    fig = workspace.cache.get_or_compute(
        "domain-results", key, lambda: _item_map_figure(workspace, domain, data, xy, kind, color or "lambda", show_edges))
    meta = {"domain": domain, "kind": kind, "n": data["n"], "drawn": time.time()}
    return fig, meta, note


def _item_map_figure(workspace: Workspace, domain, data, xy, kind, color, show_edges=True):
    """The item map without a selection (cached per layout, colour and edge setting)."""
    edges = dv.item_edges(workspace, domain) if show_edges else None
    values, label, categorical = dv.item_colors(data, color)
    return fig_item_map(xy, color=values, color_label=label, categorical=categorical, texts=data["texts"],
                        edges=None if edges is None else edges[0], layout_kind=kind, edge_color=EDGE_COLOR,
                        max_legend_categories=MAX_LEGEND_CATEGORIES)


def _pca(workspace: Workspace, domain, data):
    memory = dv.load(workspace, domain)
    key = content_key("item-pca", dv.items_key(memory))
    return workspace.cache.get_or_compute("domain-results", key, lambda: item_layout.pca_layout(data["X"]))


def choose_item(click, neighbour_clicks, domain, selected_now, meta, trigger=None):
    """The selected item after a click on the map or on a listed neighbour.

    A change of domain clears the selection (unless the map was not drawn yet: then the
    item came from the URL).
    """
    if trigger == "domain-picker":
        if meta and meta.get("domain") not in (None, domain):
            return None
        raise PreventUpdate
    if isinstance(trigger, dict) and trigger.get("type") == "domain-neighbour":
        if not any(neighbour_clicks or []):
            raise PreventUpdate
        return int(trigger["index"])
    try:
        return int(click["points"][0]["customdata"])
    except (TypeError, KeyError, IndexError, ValueError):
        raise PreventUpdate from None


def selection(workspace: Workspace, selected, meta):
    """(shapes, neighbour list) marking ``selected`` and its kNN neighbours on the map.

    The shapes go to the browser, which lays them over the drawn map (Plotly.relayout): a
    new figure would make plotly re-process every point, about a second at 50,000 items.
    """
    if not meta:
        raise PreventUpdate
    domain = meta["domain"]
    data = dv.item_data(workspace, domain)
    if data is None:
        raise PreventUpdate
    item = as_int(selected, -1)
    if not 0 <= item < data["n"]:
        item = None
    neighbours = dv.item_neighbours(workspace, domain, item) if item is not None else []
    if meta["kind"] == "umap":
        xy = item_layout.request(workspace, dv.load(workspace, domain)).xy
    else:
        xy = _pca(workspace, domain, data)
    if xy is None:
        raise PreventUpdate
    shapes = item_selection_shapes(xy, item, [i for i, _ in neighbours])
    return shapes, neighbour_panel(data, item, neighbours)


def neighbour_panel(data, item, neighbours):
    """The selected item's text and its neighbours as buttons (click one to move there)."""
    if item is None:
        return _panel_hint()
    texts = data["texts"]
    lam = data["lambdas"]

    def text_of(i, limit):
        return truncate(texts[i], limit) if texts is not None else f"item {i}"

    cluster = data["clusters"][item] if data["clusters"] is not None else None
    facts = f"item {item} \u00b7 item lambda (reference index) {lam[item]:.4f}" + (f" \u00b7 cluster {cluster}" if cluster is not None else "")
    rows = [html.Li(html.Button(className="neighbour", id={"type": "domain-neighbour", "index": i},
                                title="Select this item", children=[
                                    html.Span(f"d = {d:.3f}", className="distance"),
                                    html.Span(text_of(i, 160), className="text")]))
            for i, d in neighbours]
    return [
        html.Div(className="selected-item", id="domain-selected-text", children=[
            html.Div(facts, className="muted"), html.P(text_of(item, 400))]),
        html.H4(f"{len(neighbours)} nearest neighbours (cosine distance)" if neighbours
                else "No neighbours computed yet"),
        html.Ol(rows, className="neighbour-list", id="domain-neighbour-list"),
    ]


# --------------------------------------------------------------- cards: keys -> figures
def ready_status(workspace: Workspace, state: dict) -> str | None:
    """The layout status of the batch export's domain, its item layout computed here if needed."""
    domain = state.get("domain")
    memory = dp.safe_load(workspace, domain)[0] if domain else None
    if memory is None:
        return None
    if dv.item_data(workspace, domain) is not None:
        item_layout.compute_now(workspace, memory)
    return layout_status(workspace, domain)[0]


ITEM_MAP = recipe("domain", "domain-item-map", item_map, (
    Key("status", "domain-layout-status", "data", batch=ready_status),
    Key("color", "domain-color", default="lambda"), Key("edges", "domain-edges", default=["edges"])),
    extra=[("domain-map-meta", "data"), ("domain-layout-note", "children")])
FEATURES = recipe("domain", "domain-feature-graph", dp.feature_graph_figure, (
    Key("domain", "domain-picker"), Key("eig", "domain-eig", default=1),
    Key("flayout", "domain-feature-layout", default="auto")))
DEGREES = recipe("domain", "domain-degrees", dp.degree_figure, (Key("domain", "domain-picker"),))


def register_callbacks(app, workspace: Workspace) -> None:
    app.clientside_callback(  # the item-lambda caption only while the map is coloured by it
        "function(color) { return color === 'lambda' ? {} : {display: 'none'}; }",
        Output("domain-lambda-note", "style"), Input("domain-color", "value"))
    dp.register_summary_and_link(app, workspace, "domain", "spectrum")

    @app.callback(Output("domain-color", "options"), Output("domain-color", "value"),
                  Input("domain-picker", "value"), State("domain-color", "value"))
    def _colors(domain, color_now):
        return color_choice(workspace, domain, color_now)

    @app.callback(Output("domain-layout-status", "data"), Output("domain-layout-poll", "disabled"),
                  Input("domain-picker", "value"), Input("domain-layout-poll", "n_intervals"),
                  State("domain-layout-status", "data"))
    def _status(domain, _n, status_now):
        return layout_status(workspace, domain, status_now)

    register_page_callback(app, workspace, ITEM_MAP)

    @app.callback(Output("domain-selected", "data"),
                  Input({"type": "figure", "id": "domain-item-map"}, "clickData"),
                  Input({"type": "domain-neighbour", "index": ALL}, "n_clicks"),
                  Input("domain-picker", "value"),
                  State("domain-selected", "data"), State("domain-map-meta", "data"),
                  prevent_initial_call=True)
    def _choose(click, neighbour_clicks, domain, selected_now, meta):
        trigger = ctx.triggered_id
        if isinstance(trigger, dict) and trigger.get("type") == "figure":
            trigger = "map"
        return choose_item(click, neighbour_clicks, domain, selected_now, meta, trigger)

    @app.callback(Output("domain-selection-shapes", "data"), Output("domain-neighbours", "children"),
                  Input("domain-selected", "data"), Input("domain-map-meta", "data"),
                  prevent_initial_call=True)
    def _selection(selected, meta):
        return selection(workspace, selected, meta)

    app.clientside_callback(DRAW_SELECTION, Output("domain-selection-drawn", "data"),
                            Input("domain-selection-shapes", "data"))

    @app.callback(Output("domain-eig", "options"), Output("domain-eig", "value"),
                  Input("domain-picker", "value"), State("domain-eig", "value"))
    def _eig(domain, eig_now):
        return dp.eigen_choice(workspace, domain, eig_now)

    register_page_callback(app, workspace, FEATURES)
    register_page_callback(app, workspace, DEGREES)

    register_url_sync(app, "domain-url-sync", [
        ("color", "domain-color", "value"), ("item", "domain-selected", "data"),
        ("edges", "domain-edges", "value"),
        ("eig", "domain-eig", "value"), ("flayout", "domain-feature-layout", "value"),
    ])
    upload.register_callbacks(app, workspace)


def warm_up(workspace: Workspace) -> None:
    """Compute the page's first views (and start the item-layout workers) ahead of a visit."""
    dv.warm_up(workspace)
    names = workspace.domains.names()
    if names:
        status, _ = layout_status(workspace, names[0])
        item_map(workspace, status, "lambda")
        dp.feature_graph_figure(workspace, names[0], 1)
        dp.degree_figure(workspace, names[0])


# ------------------------------------------------------------- bench
def bench_cases(workspace: Workspace) -> dict:
    """Each interaction of the page as a callable, on the workspace's first domain."""
    names = workspace.domains.names()
    if not names:
        return {}
    domain = names[0]
    status, _ = layout_status(workspace, domain)
    cases = {
        "domain: summary": lambda: dp.summary_line(workspace, domain),
        "domain: layout status": lambda: layout_status(workspace, domain),
        "domain: item map (lambda)": lambda: item_map(workspace, status, "lambda"),
        "domain: item map (cluster)": lambda: item_map(workspace, status, "cluster"),
        "domain: eigenvector options": lambda: dp.eigen_choice(workspace, domain, None),
        "domain: feature graph (eig 1)": lambda: dp.feature_graph_figure(workspace, domain, 1),
        "domain: feature graph (eig 5)": lambda: dp.feature_graph_figure(workspace, domain, 5),
        "domain: feature graph (shell)": lambda: dp.feature_graph_figure(workspace, domain, 1, "shell"),
        "domain: degree distribution": lambda: dp.degree_figure(workspace, domain),
    }
    data = dv.item_data(workspace, domain)
    if data is not None:
        meta = item_map(workspace, status, "lambda")[1]
        rng = np.random.default_rng(0)
        cases["domain: click an item"] = lambda: selection(workspace, int(rng.integers(data["n"])), meta)
    return cases

"""Building blocks every page uses: figure cards with export, empty states, URL-synced controls.

A figure card's graph has the id ``{"type": "figure", "id": NAME}``; pages fill it from their
callbacks. Its export menu is served by a callback per card (`register_export`) that rebuilds
the figure on the server from the card's keys (`workbench.views.cards`) and renders it in the
paper theme, so every figure exports the same way and no browser-sent figure is ever rendered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import time
from urllib.parse import parse_qs

import plotly.graph_objects as go
from dash import MATCH, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from workbench.data.errors import TauformerError
from workbench.figures import FigureInputError, describe, fig_empty

from . import cards

if TYPE_CHECKING:
    from workbench.data import Workspace

GRAPH_CONFIG = {"displaylogo": False, "responsive": True,
                "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}
FRIENDLY_ERRORS = (TauformerError, KeyError, FigureInputError, ValueError)
EXPORT_FORMATS = [{"label": "PDF", "value": "pdf"}, {"label": "SVG", "value": "svg"}, {"label": "PNG", "value": "png"},
                  {"label": "CSV", "value": "csv"}, {"label": "HTML", "value": "html"}]
PAPER_FORMATS = ("pdf", "svg", "png")  # the column width applies to these; CSV and HTML are the screen figure


def figure_id(name: str) -> dict:
    return {"type": "figure", "id": name}


def figure_card(name: str, title: str, *, description: str | None = None, figure: go.Figure | None = None,
                controls=None, figure_fn: str | None = None) -> html.Section:
    """A titled card: optional controls, the graph, a one-sentence explanation and an export menu.

    ``figure_fn`` names the figure function whose description is shown when none is given.
    The graph's height is the figure's own ``layout.height`` (every figure function sets one),
    never a style here: a fixed card height and a figure of another height would overlap.
    """
    text = description or (describe(figure_fn) if figure_fn else "")
    return html.Section(className="card", id=f"card-{name}", children=[
        html.Div(className="card-head", children=[
            html.H3(title),
            html.Div(className="export", children=[
                dcc.Dropdown(id={"type": "export-format", "id": name}, options=EXPORT_FORMATS, value="pdf",
                             clearable=False, searchable=False, className="export-format"),
                dcc.Dropdown(id={"type": "export-scale", "id": name}, value=2, clearable=False, searchable=False,
                             options=[{"label": f"PNG x{s}", "value": s} for s in (1, 2, 3, 4)], className="export-scale"),
                dcc.Dropdown(id={"type": "export-columns", "id": name}, value=1, clearable=False, searchable=False,
                             options=[{"label": "1 column", "value": 1}, {"label": "2 columns", "value": 2}],
                             className="export-columns"),
                html.Button("Export", id={"type": "export-button", "id": name}, className="export-button",
                            title="PDF / SVG / PNG: this figure for a paper (paper theme); CSV: its numbers; "
                                  "HTML: an interactive page of it (built on the server)"),
                dcc.Download(id={"type": "export-download", "id": name}),
            ]),
        ]),
        html.P(text, className="card-description") if text else None,
        html.Div(controls, className="card-controls") if controls else None,
        dcc.Loading(type="circle", delay_show=300, children=dcc.Graph(
            id=figure_id(name), figure=figure if figure is not None else fig_empty("Loading..."),
            config=GRAPH_CONFIG, className="card-graph")),
        html.Div(id={"type": "export-message", "id": name}, className="export-message"),
    ])


def register_export(app, workspace: Workspace, pages=None) -> None:
    """One export callback per registered card (:mod:`workbench.views.cards`), for ``pages``.

    The callback reads the card's keys from the page, rebuilds the figure on the server with
    the card's own recipe and renders that; the browser's copy of the figure is never read.
    """
    wanted = None if pages is None else {page["id"] for page in pages}
    for card, made in list(cards.RECIPES.items()):
        if wanted is None or made.page in wanted:
            _register_card_export(app, workspace, card)
    app.clientside_callback(  # the scale is a PNG's pixel density: SVG and PDF keep the paper size
        "function(fmt) { return fmt !== 'png'; }",
        Output({"type": "export-scale", "id": MATCH}, "disabled"),
        Input({"type": "export-format", "id": MATCH}, "value"))
    app.clientside_callback(  # CSV and HTML have no paper width
        f"function(fmt) {{ return !{json.dumps(list(PAPER_FORMATS))}.includes(fmt); }}",
        Output({"type": "export-columns", "id": MATCH}, "disabled"),
        Input({"type": "export-format", "id": MATCH}, "value"))


def _register_card_export(app, workspace: Workspace, card: str) -> None:
    def export_card(n_clicks, fmt, scale, columns, *values):
        made = cards.RECIPES[card]
        return export_download(workspace, card, cards.app_values(made, values), fmt, scale, columns)

    export_card.__name__ = f"export_{card.replace('-', '_')}"
    app.callback(
        Output({"type": "export-download", "id": card}, "data"),
        Output({"type": "export-message", "id": card}, "children"),
        Input({"type": "export-button", "id": card}, "n_clicks"),
        State({"type": "export-format", "id": card}, "value"),
        State({"type": "export-scale", "id": card}, "value"),
        State({"type": "export-columns", "id": card}, "value"),
        *cards.export_states(card),
        prevent_initial_call=True,
    )(export_card)


def export_download(workspace: Workspace, card: str, values: dict, fmt: str, scale, columns):
    """(dcc.Download data, message) for one export of ``card`` with key ``values``.

    The figure is built here, from the keys, by the card's recipe (CSV: the numbers of that
    figure, by the recipe's table for the card or the generic walk); errors and placeholder
    figures become a message, never a traceback.
    """
    from workbench.export import ExportError, figure_to_bytes

    start = time.perf_counter()
    try:
        made = cards.RECIPES[card]
        fig = made.figure(workspace, card, values)
    except PreventUpdate:
        return no_update, "Nothing to export yet."
    except FRIENDLY_ERRORS as err:
        return no_update, f"Export failed: {err.args[0] if isinstance(err, KeyError) and err.args else err}"
    if cards.is_placeholder(fig):
        return no_update, f"Nothing to export: {cards.placeholder_text(fig)}"
    try:
        data = figure_to_bytes(fig, fmt, scale=int(scale or 1), paper=True, columns=int(columns or 1),
                               name=card, title=cards.export_title(card, fig, values), table=made.table(card))
    except ExportError as err:
        return no_update, f"Export failed: {err}"
    seconds = time.perf_counter() - start
    filename = cards.export_file_name(card, values, fmt)
    return dcc.send_bytes(data, filename), f"{filename}: {len(data) / 1024:.0f} KiB in {seconds:.1f} s"


def empty_state(message: str, *, hint: str | None = None) -> html.Div:
    """A friendly placeholder where there is nothing to show yet."""
    return html.Div(className="empty-state", children=[html.P(message), html.P(hint, className="hint") if hint else None])


def query_value(search: str | None, name: str, default=None, cast=str):
    """One parameter of a URL query string, cast, or the default when absent or malformed."""
    values = parse_qs((search or "").lstrip("?")).get(name)
    if not values:
        return default
    try:
        return cast(values[0])
    except (TypeError, ValueError):
        return default


def as_int(value, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def as_float(value, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def register_url_sync(app, store_id: str, params: list[tuple[str, str, str]], omit: tuple = ("",)) -> None:
    """Mirror controls into the URL query (replaceState), so the view can be bookmarked and shared.

    ``params`` lists (query name, component id, property). A parameter whose value is null or
    one of ``omit`` is left out of the query. The page must contain a dcc.Store with
    ``store_id``; nothing is re-rendered when the URL changes this way.
    """
    names = json.dumps([p[0] for p in params])
    omitted = "".join(f" || value === {json.dumps(v)}" for v in omit)
    app.clientside_callback(
        f"""
        function() {{
            const names = {names};
            const params = new URLSearchParams(window.location.search);
            names.forEach((name, i) => {{
                const value = arguments[i];
                if (value === null || value === undefined{omitted}) {{ params.delete(name); }}
                else {{ params.set(name, Array.isArray(value) ? value.join(',') : value); }}
            }});
            const qs = params.toString();
            const target = window.location.pathname + (qs ? '?' + qs : '');
            if (target !== window.location.pathname + window.location.search) {{
                window.history.replaceState(window.history.state, '', target);
            }}
            return window.dash_clientside.no_update;
        }}
        """,
        Output(store_id, "data"),
        [Input(component_id, prop) for _, component_id, prop in params],
    )

"""Spectrum: the domain memory's eigenvalues, their density, gap and components, its eigenvectors
on the feature graph, and the sparsity pattern of L -- optionally against the chain Laplacian
of the same size or another domain memory on the same axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from workbench.data import domain_views as dv
from workbench.figures import fig_eigen_density, fig_empty, fig_sparsity, fig_spectrum

from .cards import Key, recipe, register_page_callback
from .common import empty_state, figure_card, register_url_sync
from .domain_notice import notice, register_picker_notice
from .domain_parts import (
    NO_DOMAIN,
    NO_DOMAIN_HINT,
    domain_figure,
    eig_from_click,
    eigen_choice,
    feature_graph_figure,
    from_query,
    initial_domain,
    initial_eig_options,
    register_summary_and_link,
    require_domain,
    safe_load,
    unchanged_if,
)

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="spectrum", requires="domain", path="/spectrum", name="Spectrum", order=21,
            description="Eigenvalues, spectral gap and components of the domain memory against the "
                        "chain Laplacian; eigenvectors on the feature graph; where L is non-zero.")
NONE = "none"


def layout(workspace: Workspace, **query):
    """The page; ``eig``, ``vs`` (chain, none or a domain name) and ``log`` come from the URL."""
    eig = from_query(query, "eig", 1, int)
    vs = from_query(query, "vs", dv.CHAIN)
    log = from_query(query, "log", "") in ("1", "true", "yes", "log")
    domain = initial_domain(workspace, query)
    first = None if domain else fig_empty(NO_DOMAIN)
    return html.Div(className="spectrum-page", children=[
        dcc.Store(id="spectrum-url-sync"),
        html.Div(className="page-head", children=[
            html.H2("Spectrum"),
            html.P(id="spectrum-summary", className="page-summary"),
        ]),
        None if workspace.domains.names() else empty_state(NO_DOMAIN, hint=NO_DOMAIN_HINT),
        html.Div(className="controls-bar", children=[
            html.Label(["Compare with", dcc.Dropdown(
                id="spectrum-vs", value=vs, clearable=False, className="control-dropdown vs-dropdown",
                options=compare_options(workspace, domain))]),
            dcc.Checklist(id="spectrum-log", options=[{"label": " log eigenvalue axis", "value": "log"}],
                          value=["log"] if log else [], className="inline-check"),
        ]),
        notice("spectrum"),
        html.Div(id="spectrum-facts", className="facts"),
        html.Div(className="row", children=[
            figure_card("spectrum-eigenvalues", "Eigenvalues", figure_fn="fig_spectrum", figure=first,
                        description="Sorted eigenvalues on shared axes; crosses mark zero eigenvalues "
                                    "(one per connected component), dotted lines the spectral gap. "
                                    "Click a point to paint its eigenvector below."),
            figure_card("spectrum-density", "Eigenvalue density", figure_fn="fig_eigen_density", figure=first),
        ]),
        html.Div(className="row", children=[
            figure_card("spectrum-feature-graph", "Feature graph", figure=first,
                        figure_fn="fig_feature_graph", controls=[
                            html.Label(["Eigenvector", dcc.Dropdown(
                                id="spectrum-eig", value=eig, clearable=False,
                                options=initial_eig_options(workspace, domain, eig),
                                className="control-dropdown eig-dropdown")]),
                            dcc.Link("Show on the Domain graph page \u2192", href="/domain",
                                     id="spectrum-to-domain", className="page-link"),
                        ]),
            figure_card("spectrum-sparsity", "Sparsity pattern of L", figure_fn="fig_sparsity", figure=first),
        ]),
    ])


# --------------------------------------------------------------- callbacks
def compare_options(workspace: Workspace, domain) -> list[dict]:
    """What a domain memory can be compared with: the chain, nothing, the other domain memories."""
    others = [n for n in workspace.domains.names() if n != domain]
    options = [{"label": "the chain Laplacian (same size)", "value": dv.CHAIN},
               {"label": "nothing", "value": NONE}]
    return options + [{"label": f"domain memory {n}", "value": n} for n in others]


def compare_choice(workspace: Workspace, domain, vs_now):
    """(options, value) of the compare-with dropdown for ``domain``."""
    domain = require_domain(workspace, domain)
    options = compare_options(workspace, domain)
    value = vs_now if vs_now in [o["value"] for o in options] else dv.CHAIN
    return options, unchanged_if(value, vs_now)


def spectrum_figures(workspace: Workspace, domain, vs, log_values):
    """(eigenvalue figure, density figure, facts table) of ``domain`` against ``vs``."""
    domain = require_domain(workspace, domain)
    memory, problem = safe_load(workspace, domain)
    if memory is None:
        fig = fig_empty(f"Cannot read the domain memory: {problem}")
        return fig, fig, html.P(problem, className="warn")
    facts = dv.spectrum(workspace, domain)
    series, gaps, table = {domain: facts["eigenvalues"]}, {domain: facts["gap"]}, [(domain, facts)]
    other = dv.compared_spectrum(workspace, domain, None if vs == NONE else vs)
    if other is not None:
        label, other_facts = other
        series[label], gaps[label] = other_facts["eigenvalues"], other_facts["gap"]
        table.append((label, other_facts))
    log = "log" in (log_values or [])
    spectrum_fig = fig_spectrum(series, log=log, gap=gaps)
    density_fig = fig_eigen_density(series, bins=min(40, max(8, facts["dim"] // 2)))
    return spectrum_fig, density_fig, facts_table(table)


def facts_table(rows) -> html.Table:
    """The numbers behind the plots, one column per Laplacian."""
    def fmt(value):
        return f"{value:.4g}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)

    lines = [
        ("features D", lambda f: f["dim"]),
        ("edges", lambda f: f["edges"]),
        ("connected components", lambda f: f["components"]),
        ("zero eigenvalues", lambda f: f["zero_eigenvalues"]),
        ("spectral gap (first non-zero)", lambda f: f["gap"]),
        ("largest eigenvalue", lambda f: float(f["eigenvalues"].max())),
        ("weighted degree min / mean / max",
         lambda f: " / ".join(fmt(f["degrees"][k]) for k in ("degree_min", "degree_mean", "degree_max"))),
        ("neighbours per feature (mean)", lambda f: f["degrees"]["neighbours_mean"]),
        ("isolated features", lambda f: f["degrees"]["isolated"]),
    ]
    head = html.Tr([html.Th("")] + [html.Th(name) for name, _ in rows])
    body = [html.Tr([html.Th(label, scope="row")] + [html.Td(fmt(get(facts))) for _, facts in rows])
            for label, get in lines]
    return html.Table([html.Thead(head), html.Tbody(body)], className="facts-table", id="spectrum-facts-table")


@domain_figure
def sparsity_figure(workspace: Workspace, domain):
    """The non-zero pattern of ``domain``'s Laplacian."""
    s = dv.sparsity(workspace, domain)
    return fig_sparsity(s["rows"], s["cols"], s["values"], s["shape"])


# --------------------------------------------------------------- cards: keys -> figures
DOMAIN = Key("domain", "domain-picker")
SPECTRA = recipe("spectrum", ("spectrum-eigenvalues", "spectrum-density"), spectrum_figures, (
    DOMAIN, Key("vs", "spectrum-vs", default=dv.CHAIN), Key("log", "spectrum-log", default=[])),
    extra=[("spectrum-facts", "children")])
FEATURES = recipe("spectrum", "spectrum-feature-graph", feature_graph_figure,
                  (DOMAIN, Key("eig", "spectrum-eig", default=1)), in_batch=False)  # the Domain page's exports it
SPARSITY = recipe("spectrum", "spectrum-sparsity", sparsity_figure, (DOMAIN,))


def register_callbacks(app, workspace: Workspace) -> None:
    register_summary_and_link(app, workspace, "spectrum", "domain")

    @app.callback(Output("spectrum-vs", "options"), Output("spectrum-vs", "value"),
                  Input("domain-picker", "value"), State("spectrum-vs", "value"))
    def _vs(domain, vs_now):
        return compare_choice(workspace, domain, vs_now)

    register_page_callback(app, workspace, SPECTRA)
    register_picker_notice(app, workspace, "spectrum")
    @app.callback(Output("spectrum-eig", "options"), Output("spectrum-eig", "value"),
                  Input("domain-picker", "value"),
                  Input({"type": "figure", "id": "spectrum-eigenvalues"}, "clickData"),
                  State("spectrum-eig", "value"))
    def _eig(domain, click, eig_now):
        clicked = eig_from_click(click) if isinstance(ctx.triggered_id, dict) else None
        if isinstance(ctx.triggered_id, dict) and clicked is None:
            raise PreventUpdate
        return eigen_choice(workspace, domain, eig_now, clicked)

    register_page_callback(app, workspace, FEATURES)
    register_page_callback(app, workspace, SPARSITY)
    register_url_sync(app, "spectrum-url-sync", [
        ("eig", "spectrum-eig", "value"), ("vs", "spectrum-vs", "value"), ("log", "spectrum-log", "value"),
    ])


def warm_up(workspace: Workspace) -> None:
    """Build the page's first figures once ahead of a visit (spectra, chain, sparsity)."""
    names = workspace.domains.names()
    if names:
        spectrum_figures(workspace, names[0], dv.CHAIN, [])
        sparsity_figure(workspace, names[0])


# ------------------------------------------------------------- bench
def bench_cases(workspace: Workspace) -> dict:
    names = workspace.domains.names()
    if not names:
        return {}
    domain = names[0]
    return {
        "spectrum: compare options": lambda: compare_choice(workspace, domain, dv.CHAIN),
        "spectrum: spectrum + density vs chain": lambda: spectrum_figures(workspace, domain, dv.CHAIN, []),
        "spectrum: spectrum + density, log": lambda: spectrum_figures(workspace, domain, dv.CHAIN, ["log"]),
        "spectrum: eigenvector from a click": lambda: eigen_choice(workspace, domain, 1, 4),
        "spectrum: feature graph (eig 4)": lambda: feature_graph_figure(workspace, domain, 4),
        "spectrum: sparsity of L": lambda: sparsity_figure(workspace, domain),
    }

"""Pieces both domain pages use: the eigenvector choice, the feature graph, links between pages.

Functions here are plain (workspace and input values in, Dash values out) so the pages'
callbacks stay one line and tests can call them without a server.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from dash import Input, Output, html, no_update
from dash.exceptions import PreventUpdate

from workbench.data import domain_structure as dstruct
from workbench.data import domain_views as dv
from workbench.figures import fig_degree_distribution, fig_empty, fig_feature_graph

from .common import as_int
from .shell import global_query

if TYPE_CHECKING:
    from workbench.data import Workspace

NO_DOMAIN = "No domain memory loaded"
NO_DOMAIN_HINT = "Start the app with --domain FILE, or upload an embedding or a text corpus on the Domain graph page."


def require_domain(workspace: Workspace, domain) -> str:
    """The domain name, or PreventUpdate while the picker is still empty (it starts as None)."""
    if not domain:
        raise PreventUpdate
    return domain


def safe_load(workspace: Workspace, domain):
    """(memory, None) or (None, message) -- a broken file must not break the page."""
    return workspace.domains.try_load(domain)


def domain_figure(fn):
    """The one opening of a domain figure builder ``fn(workspace, domain, ...)``: skip while the
    picker is empty; a domain memory that cannot be read becomes an empty figure with the reason."""

    @functools.wraps(fn)
    def build(workspace: Workspace, domain, *args, **kwargs):
        domain = require_domain(workspace, domain)
        memory, problem = safe_load(workspace, domain)
        if memory is None:
            return fig_empty(f"Cannot read the domain memory: {problem}")
        return fn(workspace, domain, *args, **kwargs)

    return build


def eigen_choice(workspace: Workspace, domain, eig_now, clicked_index=None):
    """(options, value) of an eigenvector dropdown for ``domain``.

    ``clicked_index`` (a mode picked on the spectrum plot) wins over the current value;
    an invalid value falls back to the Fiedler vector. The value is no_update when it is
    ``eig_now`` already.
    """
    domain = require_domain(workspace, domain)
    memory, problem = safe_load(workspace, domain)
    if memory is None:
        return [], unchanged_if(None, eig_now)
    facts = dv.spectrum(workspace, domain)
    options = dv.eigenvector_options(facts)
    wanted = clicked_index if clicked_index is not None else eig_now
    value = dv.default_eigenvector(facts, wanted)
    return options, unchanged_if(value, eig_now)


@domain_figure
def feature_graph_figure(workspace: Workspace, domain, eig, method: str = "auto"):
    """The feature graph of ``domain`` painted with eigenvector ``eig``, sized by degree, hubs ringed
    (laid out with hubs apart when it has hubs, unless ``method`` says otherwise)."""
    facts = dv.spectrum(workspace, domain)
    graph = dv.feature_graph(workspace, domain, method or "auto")
    shape = dstruct.structure(workspace, domain)
    index = dv.default_eigenvector(facts, eig)
    vector = facts["eigenvectors"][:, index]
    label = f"eigenvector {index}<br>\u03bc = {facts['eigenvalues'][index]:.3g}"
    return fig_feature_graph(graph["pos"], graph["edges"], graph["weights"], color=vector,
                             color_label=label, eigenvector=index, degree=shape["degree"], hubs=shape["hubs"])


@domain_figure
def degree_figure(workspace: Workspace, domain):
    """The degree distribution of ``domain``'s feature graph with its hubs marked."""
    shape = dstruct.structure(workspace, domain)
    return fig_degree_distribution(shape["degree"], shape["hubs"])


def structure_line(shape: dict) -> str:
    """'Structure: 16 hubs (...); every edge touches a hub; ...; edges hub-hub 68 / hub-other 2,944 /
    other-other 0' (then the component sizes when there are several) from
    :func:`workbench.data.domain_structure.structure`."""
    split = (f"; edges hub\u2013hub {shape['hub_hub_edges']:,} / hub\u2013other {shape['hub_spoke_edges']:,}"
             f" / other\u2013other {shape['spoke_spoke_edges']:,}") if shape["n_hubs"] else ""
    parts = ""  # the header's first line counts the components; this one gives their sizes
    if shape["components"] > 1:
        sizes = ", ".join(f"{n:,}" for n in shape["component_sizes"][:6])
        more = ", ..." if len(shape["component_sizes"]) > 6 else ""
        parts = f"; components of {sizes}{more} features"
    isolated = f" ({shape['isolated']} isolated)" if shape["isolated"] else ""
    return f"Structure: {shape['describe']}{split}{parts}{isolated}"


def page_link(path: str, run, step, compare, domain, **extra) -> str:
    """``path`` with the global pickers and ``extra`` page parameters as the query."""
    query = global_query(run, step, compare, domain)
    parts = [f"{k}={v}" for k, v in extra.items() if v not in (None, "")]
    if parts:
        query = (query + "&" if query else "?") + "&".join(parts)
    return path + query


def register_summary_and_link(app, workspace: Workspace, page: str, other: str) -> None:
    """The callbacks of a domain page's summary line (``<page>-summary``) and of its link to the
    ``other`` domain page (``<page>-to-<other>``), which carries the global pickers and the page's
    eigenvector (``<page>-eig``) so both pages show the same one."""

    def summary(domain):
        return summary_line(workspace, domain)

    def link(run, step, compare, domain, eig):
        return page_link(f"/{other}", run, step, compare, domain, eig=eig)

    summary.__name__, link.__name__ = f"{page}_summary", f"{page}_link"
    app.callback(Output(f"{page}-summary", "children"), Input("domain-picker", "value"))(summary)
    app.callback(Output(f"{page}-to-{other}", "href"),
                 Input("run-picker", "value"), Input("step-picker", "value"), Input("compare-picker", "value"),
                 Input("domain-picker", "value"), Input(f"{page}-eig", "value"))(link)


def summary_line(workspace: Workspace, domain) -> list:
    """A one-line description of the domain memory for the page header."""
    if not domain:
        raise PreventUpdate
    memory, problem = safe_load(workspace, domain)
    if memory is None:
        return [html.Span(f"{domain}: {problem}", className="warn")]
    s = dv.domain_summary(workspace, domain)
    items = f"{s['n_items']:,} items" if s["n_items"] else "no items kept"
    plural = "s" if s["components"] != 1 else ""
    parts = [html.B(domain), (f": D = {s['dim']} features, {s['edges']} edges, "
                              f"{s['components']} component{plural}, spectral gap {s['gap']:.3g}; {items}")]
    if s["embedder"]:
        parts.append(f" ({s['embedder']})")
    parts.append(html.Span(f" fingerprint {s['fingerprint'][:12]}", className="muted mono"))
    parts.append(html.Span(structure_line(dstruct.structure(workspace, domain)),
                           className="structure-line"))
    return parts


def from_query(query: dict, name: str, default=None, cast=str):
    """One URL query parameter given to a page's layout, cast, or ``default`` when absent or bad."""
    value = query.get(name)
    if value in (None, ""):
        return default
    try:
        return cast(value)
    except (TypeError, ValueError):
        return default


def initial_domain(workspace: Workspace, query: dict) -> str | None:
    """The domain a page opens on: the URL's, else the first loaded one (what the picker will pick)."""
    names = workspace.domains.names()
    wanted = query.get("domain")
    return wanted if wanted in names else (names[0] if names else None)


def initial_eig_options(workspace: Workspace, domain, eig) -> list[dict]:
    """Eigenvector options for a page's first render, so a dropdown keeps the URL's value
    (a Dash dropdown drops a value that is not among its options)."""
    if domain:
        memory, _ = safe_load(workspace, domain)
        if memory is not None:
            return dv.eigenvector_options(dv.spectrum(workspace, domain))
    return [{"label": str(eig), "value": eig}]


def eig_from_click(click) -> int | None:
    """The mode index of a point clicked on the spectrum plot, if any."""
    try:
        return as_int(click["points"][0]["x"], None)
    except (TypeError, KeyError, IndexError):
        return None


def unchanged_if(value, current):
    """no_update when ``value`` equals ``current`` (saves a round of dependent callbacks)."""
    return no_update if value == current else value

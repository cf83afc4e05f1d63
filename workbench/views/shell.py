"""The frame around every page: navigation, the run / checkpoint / domain pickers, the status bar.

The pickers are global (pages read them as callback inputs) and live in the URL query
(run, step, compare, domain), so any view can be bookmarked. They start empty and are set
once from the URL (or the defaults) when the page loads; pages ignore empty pickers, so each
view is computed once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from urllib.parse import urlencode

import dash
from dash import Input, Output, State, dcc, html

from .common import query_value, register_url_sync

if TYPE_CHECKING:
    from workbench.data import Workspace

GLOBAL_PARAMS = ("run", "step", "compare", "domain")
NONE = "__none__"


def layout(workspace: Workspace, pages) -> html.Div:
    """App shell: header with navigation and pickers, status bar, the page container."""
    return html.Div(className="shell", children=[
        dcc.Location(id="url"),
        dcc.Store(id="shell-url-sync"),
        html.Header(className="topbar", children=[
            html.Div(className="brand", children=[html.Span("τ", className="brand-mark"), "Tauformer Workbench"]),
            html.Nav(className="nav", children=[
                dcc.Link(page["name"], href=page["path"], id=f"nav-{page['id']}", className="nav-link")
                for page in pages
            ]),
        ]),
        html.Div(className="pickers", children=[
            _picker("Run", "run-picker", "The run whose checkpoint the model views show (tau by default)."),
            _picker("Checkpoint", "step-picker", "Training step of the run's checkpoint."),
            _picker("Compare with", "compare-picker", "The run shown beside it (the paired dot-product run by default)."),
            _picker("Domain memory", "domain-picker", "The domain memory shown by the domain pages."),
        ]),
        html.Div(id="status-bar", className="status-bar", role="status"),
        html.Main(dash.page_container, className="page"),
    ])


def _picker(label: str, picker_id: str, title: str) -> html.Label:
    return html.Label(className="picker", title=title, children=[
        html.Span(label), dcc.Dropdown(id=picker_id, clearable=False, className="picker-dropdown"),
    ])


def register_callbacks(app, workspace: Workspace, pages) -> None:
    runs = workspace.runs

    @app.callback(
        Output("run-picker", "options"), Output("run-picker", "value"),
        Output("compare-picker", "options"), Output("compare-picker", "value"),
        Output("domain-picker", "options"), Output("domain-picker", "value"),
        Input("url", "search"),
        State("run-picker", "value"), State("compare-picker", "value"), State("domain-picker", "value"),
    )
    def apply_url(search, run_now, compare_now, domain_now):
        return initial_pickers(workspace, search, run_now, compare_now, domain_now)

    @app.callback(
        Output("step-picker", "options"), Output("step-picker", "value"),
        Input("run-picker", "value"), State("url", "search"), State("step-picker", "value"),
    )
    def run_changed(run, search, step_now):
        if not run or run not in runs.names():
            return [], None
        steps = runs.info(run).steps
        wanted = step_now if step_now in steps else query_value(search, "step", None, int)
        step = runs.nearest_step(run, wanted)
        options = [{"label": f"step {s}" + (" (latest)" if s == steps[-1] else ""), "value": s} for s in steps]
        return options, step

    @app.callback(
        Output("compare-picker", "options", allow_duplicate=True),
        Output("compare-picker", "value", allow_duplicate=True),
        Input("run-picker", "value"), State("compare-picker", "value"),
        prevent_initial_call=True,
    )
    def run_picked(run, compare_now):
        compare = compare_apart(workspace, run, compare_now)
        return compare_options(workspace, run), (dash.no_update if compare == compare_now else compare)

    register_url_sync(app, "shell-url-sync", [(name, f"{name}-picker", "value") for name in GLOBAL_PARAMS],
                      omit=(NONE,))

    @app.callback(
        [Output(f"nav-{page['id']}", "href") for page in pages],
        Input("run-picker", "value"), Input("step-picker", "value"),
        Input("compare-picker", "value"), Input("domain-picker", "value"),
    )
    def nav_links(run, step, compare, domain):
        query = global_query(run, step, compare, domain)
        return [page["path"] + query for page in pages]

    @app.callback(
        Output("status-bar", "children"),
        Input("run-picker", "value"), Input("step-picker", "value"),
        Input("compare-picker", "value"), Input("domain-picker", "value"),
    )
    def status(run, step, compare, domain):
        return status_line(workspace, run, step, compare, domain)


def global_query(run, step, compare, domain) -> str:
    """The query string that carries the pickers from page to page."""
    values = {"run": run, "step": step, "compare": compare, "domain": domain}
    clean = {k: v for k, v in values.items() if v not in (None, "", NONE)}
    return ("?" + urlencode(clean)) if clean else ""


def compare_apart(workspace: Workspace, run, compare):
    """The compared run, never the run itself: a run picked (or clicked) that is the compared one
    swaps with its tau/dot twin -- the run it was compared with, on the demo -- else compares nothing."""
    if not run or compare != run:
        return compare
    twin = workspace.runs.pair_for(run) if run in workspace.runs.names() else None
    return twin if twin and twin != run else NONE


def compare_options(workspace: Workspace, run) -> list[dict]:
    """'nothing' and every run but ``run`` (offered, but disabled, so Compare never equals Run)."""
    runs = workspace.runs
    return [{"label": "nothing", "value": NONE}] + [
        {"label": runs.info(n).label, "value": n, "disabled": n == run} for n in runs.names()]


def initial_pickers(workspace: Workspace, search, run_now=None, compare_now=None, domain_now=None):
    """Picker options and values from the URL query, falling back to the current values and the defaults."""
    runs, domains = workspace.runs, workspace.domains
    run_names = runs.names()
    tau_default, dot_default = runs.default_pair()
    run = query_value(search, "run") or run_now
    if run not in run_names:
        run = tau_default or (run_names[0] if run_names else None)
    compare = query_value(search, "compare") or compare_now
    if compare != NONE and compare not in run_names:
        compare = (runs.pair_for(run) if run else None) or dot_default or NONE
    domain_names = domains.names()
    domain = query_value(search, "domain") or domain_now
    if domain not in domain_names:
        domain = domain_names[0] if domain_names else None
    run_options = [{"label": runs.info(n).label, "value": n} for n in run_names]
    domain_options = [{"label": n, "value": n} for n in domain_names]
    compare = compare_apart(workspace, run, compare)
    return run_options, run, compare_options(workspace, run), compare, domain_options, domain


def status_line(workspace: Workspace, run, step, compare, domain) -> list:
    """The status bar's parts: the loaded run and checkpoint, the compared run, the domain memory."""
    parts = []
    if run:
        info = workspace.runs.info(run)
        parts.append(html.Span([html.B("Run "), f"{run} ({info.attention}) at step {step} of {info.steps[-1]}"]))
    else:
        parts.append(html.Span("No run loaded: start with --runs DIR", className="warn"))
    if compare and compare != NONE:
        parts.append(html.Span([html.B("Compared with "), compare]))
    if domain:
        parts.append(html.Span([html.B("Domain "), domain]))
    else:
        parts.append(html.Span("No domain memory: start with --domain FILE or upload one on the Domain page",
                               className="muted"))
    for problem in workspace.problems:
        parts.append(html.Span(problem, className="warn"))
    return parts

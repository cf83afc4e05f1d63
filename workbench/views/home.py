"""Overview: what is loaded, small live figures of it, where to look first, and what each page answers.

Above the index of pages, up to three compact figures, each linking to its page: the loss curves
of every run (Training), the entropy of every head of the run and its compared run on the run's
default prompt (Attention), and the domain memory's spectrum against the chain Laplacian of its
size (Spectrum). A figure whose data is absent (no runs, no domain memory) is left out. The page
itself computes nothing: the figures arrive from callbacks once it is shown, from the same
cached results their pages use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dash import Input, Output, dcc, html

from workbench.data import domain_views as dv
from workbench.figures import fig_empty, fig_entropy_bars, fig_loss_curves, fig_spectrum

from . import model_shared as ms
from .cards import Key, recipe, register_page_callback
from .common import figure_card, figure_id
from .domain_parts import page_link, require_domain, safe_load
from .training import load_checkpoint

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="home", path="/", name="Overview", order=0,
            description="What is loaded and where to start.")

LEAD = ("Tauformer attention compresses every query and key to one number, lambda, measured against a "
        "graph Laplacian built from a domain's embedding space (the domain memory), and attends by "
        "-|lambda_q - lambda_k| / temperature. These pages show that number, the graph behind it, and "
        "how the resulting attention differs from a dot-product twin trained alike.")
# card id -> (title, page path, page name, description)
GLANCES = {
    "home-loss": ("Loss curves", "/training", "Training",
                  "Validation (solid) and training (dotted) loss of every run; diamonds are checkpoints, "
                  "click one to load it."),
    "home-entropy": ("Entropy per head", "/attention", "Attention",
                     "Attention entropy of each head as a fraction of uniform, the run beside the compared "
                     "run, on the run's default prompt."),
    "home-spectrum": ("Domain spectrum", "/spectrum", "Spectrum",
                      "Eigenvalues of the domain memory's Laplacian against the chain Laplacian of the same "
                      "size; crosses are zero eigenvalues, dotted lines the spectral gaps."),
}
_LOADING = []


def layout(workspace: Workspace, pages=(), **query):
    summary = workspace.describe()
    runs = summary["runs"]
    return html.Div(className="home", children=[
        html.H1("Tauformer Workbench"),
        html.P(LEAD, className="lead"),
        glance_row(workspace),
        html.Div(className="grid", children=[
            html.Div(className="tile", children=[
                dcc.Link(html.H3(page["name"]), href=page["path"], id=f"tile-{page['id']}"),
                html.P(page["description"]),
            ]) for page in pages if page["id"] != "home"
        ]),
        html.H2("Loaded"),
        html.Table(className="runs-table", children=[
            html.Thead(html.Tr([html.Th("run"), html.Th("settings"), html.Th("checkpoints (steps)")])),
            html.Tbody([html.Tr([html.Td(r["name"]), html.Td(r["label"].split("(", 1)[-1].rstrip(")")),
                                 html.Td(", ".join(map(str, r["steps"])))]) for r in runs]),
        ]) if runs else html.P("No runs loaded. Start the app with --runs DIR (a run directory or a folder of runs).",
                               className="muted"),
        html.P(["Domain memories: ", ", ".join(summary["domains"]) or "none"]),
        html.Ul([html.Li(p, className="warn") for p in summary["problems"]]) if summary["problems"] else None,
    ])


def glances_for(workspace: Workspace) -> list[str]:
    """The figure cards the overview shows for what is loaded (runs: loss and entropy; a domain: spectrum)."""
    shown = ["home-loss", "home-entropy"] if workspace.runs.names() else []
    return shown + (["home-spectrum"] if workspace.domains.names() else [])


def glance_row(workspace: Workspace) -> html.Div | None:
    """One row of compact figure cards, each with a link to its page; None when nothing is loaded."""
    if not _LOADING:
        _LOADING.append(fig_empty("Computing...", compact=True))
    cards = []
    for name in glances_for(workspace):
        title, path, page, description = GLANCES[name]
        cards.append(figure_card(name, title, description=description, figure=_LOADING[0], controls=[
            dcc.Link(f"Open the {page} page \u2192", href=path, id=f"{name}-link", className="page-link")]))
    return html.Div(cards, className="row glance-row", id="home-glance") if cards else None


# ------------------------------------------------------------------ figures: keys -> compact figures
@ms.model_callback(compact=True)
def loss_glance(workspace: Workspace, run, step):
    """Every run's loss curves, small, with the loaded checkpoint marked."""
    hs = workspace.runs.histories()
    return fig_loss_curves(hs, selected_step=step, selected_run=run, compact=True,
                           checkpoints={name: h["checkpoints"] for name, h in hs.items()})


@ms.model_callback(compact=True)
def entropy_glance(workspace: Workspace, run, step, compare):
    """Entropy per head of the run and its compared run (the tau/dot twin by default) on the run's default prompt."""
    other = ms.compare_run(workspace, run, compare)
    a, b = workspace.probes.probe_pair(run, step, other, workspace.probes.default_prompt(run))
    entropy = {a.run: a.entropy}
    if b is not None and b.entropy.shape == a.entropy.shape:
        entropy[b.run] = b.entropy
    return fig_entropy_bars(entropy, compact=True)


def spectrum_glance(workspace: Workspace, domain):
    """The domain memory's eigenvalues against the chain Laplacian of its size, small."""
    domain = require_domain(workspace, domain)
    memory, problem = safe_load(workspace, domain)
    if memory is None:
        return fig_empty(f"Cannot read the domain memory: {problem}", compact=True)
    facts = dv.spectrum(workspace, domain)
    series, gaps = {domain: facts["eigenvalues"]}, {domain: facts["gap"]}
    chain = dv.compared_spectrum(workspace, domain, dv.CHAIN)
    if chain is not None:
        label, chain_facts = chain
        series[label], gaps[label] = chain_facts["eigenvalues"], chain_facts["gap"]
    return fig_spectrum(series, gap=gaps, compact=True)


# the full-size figures are exported from their own pages; these previews only from their cards
LOSS = recipe("home", "home-loss", loss_glance, (ms.RUN, ms.STEP), in_batch=False)
ENTROPY = recipe("home", "home-entropy", entropy_glance, (ms.RUN, ms.STEP, ms.COMPARE), in_batch=False)
SPECTRUM = recipe("home", "home-spectrum", spectrum_glance, (Key("domain", "domain-picker"),), in_batch=False)


def register_callbacks(app, workspace: Workspace) -> None:
    """The compact figures, their links (which carry the global pickers), and checkpoint clicks."""
    for made in (LOSS, ENTROPY, SPECTRUM):
        register_page_callback(app, workspace, made)
    for name, (_, path, _, _) in GLANCES.items():
        app.callback(Output(f"{name}-link", "href"), Input("run-picker", "value"), Input("step-picker", "value"),
                     Input("compare-picker", "value"), Input("domain-picker", "value"))(_linker(path))
    app.callback(Output("run-picker", "value", allow_duplicate=True),
                 Output("step-picker", "value", allow_duplicate=True),
                 Input(figure_id("home-loss"), "clickData"),
                 prevent_initial_call=True)(ms.bind(workspace, load_checkpoint))


def _linker(path: str):
    def link(run, step, compare, domain):
        return page_link(path, run, step, compare, domain)

    link.__name__ = f"link_{path.strip('/')}"
    return link


# ------------------------------------------------------------------ bench
def bench_cases(workspace: Workspace) -> list:
    run, step, compare, _ = ms.export_state(workspace, {}) if workspace.runs.names() else (None,) * 4
    domains = workspace.domains.names()
    cases = [("overview: first load (layout)", lambda: layout(workspace))]
    if run:
        cases += [("overview: loss curves", lambda: loss_glance(workspace, run, step)),
                  ("overview: entropy per head", lambda: entropy_glance(workspace, run, step, compare))]
    if domains:
        cases.append(("overview: domain spectrum", lambda: spectrum_glance(workspace, domains[0])))
    return cases

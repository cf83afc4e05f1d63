"""Study: does the domain memory matter? Final bits per byte per variant, curves, paired differences."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dash import dcc, html

from workbench.figures.study import fig_study_curves, fig_study_differences, fig_study_finals, table_study_differences

from . import model_shared as ms
from .cards import Key, recipe, register_page_callback
from .common import empty_state, register_url_sync

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="study", requires="studies", path="/study", name="Study", order=35,
            description="Matched runs that differ only in their Laplacian: final bits per byte with intervals, "
                        "curves with seed bands, paired differences to the domain memory.")
FIGURES = ("study-finals", "study-curves", "study-diffs")


def layout(workspace: Workspace, **query):
    names = workspace.studies.names()
    if not names:
        return html.Div(className="model-page", children=[html.H1("Study"), empty_state(
            "No study is loaded.",
            hint="Make one with `python -m tauformer study --out DIR`, then start the app with --runs DIR.")])
    chosen = query.get("study") if query.get("study") in names else names[0]
    return html.Div(className="model-page", children=[
        html.H1("Study: does the domain memory matter?"),
        html.P("Runs trained alike -- same shape, budget, initial weights and data order for a given seed -- that "
               "differ only in the Laplacian every head measures its vectors against (or use dot-product attention). "
               "Differences are paired by seed with tau-domain; a positive difference means the variant ends worse.",
               className="lead"),
        html.Div(className="card-controls", children=[html.Label(["study ", dcc.Dropdown(
            id="study-picker", options=[{"label": n, "value": n} for n in names], value=chosen, clearable=False,
            className="small-dropdown")])]),
        html.Div(id="study-verdict", className="card drift-note"),
        html.Div(className="row", children=[
            ms.card("study-finals", "Final bits per byte", figure_fn="fig_study_finals"),
            ms.card("study-diffs", "Paired differences to tau-domain", figure_fn="fig_study_differences"),
        ]),
        ms.card("study-curves", "Validation curves (seed bands)", figure_fn="fig_study_curves"),
        html.Div(id="study-table", className="card"),
        dcc.Store(id="study-url"),
    ])


# ------------------------------------------------------------------ text
def verdict(summary: dict) -> list:
    """One sentence per variant: better / worse / not distinguishable from the domain memory."""
    ref = summary.get("reference")
    if not ref:
        return ["No finished tau-domain runs yet, so nothing can be compared with the domain memory."]
    items = []
    for v, e in summary["variants"].items():
        p = e.get("paired")
        if not p or not p.get("n"):
            continue
        st = p["sign_test"]
        ci = p.get("ci95")
        if ci and ci[0] > 0:
            word = f"worse than {ref}"
        elif ci and ci[1] < 0:
            word = f"better than {ref}"
        else:
            word = f"not distinguishable from {ref}" + (" (one seed: no interval)" if not ci else "")
        interval = f", 95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else ""
        pval = "" if st["p"] is None else f", sign test p = {st['p']:.3g}"
        items.append(html.Li([html.B(f"{v}: "), f"{word} -- {p['mean']:+.4f} bits/byte on average over {p['n']} "
                              f"paired seeds{interval}; worse in {st['n_worse']}, better in {st['n_better']}{pval}."]))
    head = f"Final validation bits per byte at step {summary.get('steps')}, paired by seed with {ref}:"
    return [html.P(head), html.Ul(items)] if items else [html.P(head + " no paired runs yet.")]


def table(summary: dict) -> html.Table:
    """Per variant: seeds, mean, std, 95% CI; the paired difference and its sign test."""
    def f(x, fmt=".4f"):
        return "" if x is None else format(x, fmt)

    head = ["variant", "seeds", "mean", "std", "95% CI", "diff to ref", "diff 95% CI", "worse / better", "sign p"]
    rows = []
    for v, e in summary["variants"].items():
        p = e.get("paired") or {}
        st = p.get("sign_test") or {}
        ci, dci = e.get("ci95"), p.get("ci95")
        rows.append(html.Tr([html.Td(v), html.Td(str(e["n"]) + (f" (+{len(e['incomplete'])} running)" if e.get("incomplete") else "")),
                             html.Td(f(e["mean"])), html.Td(f(e["std"])),
                             html.Td(f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""), html.Td(f(p.get("mean"), "+.4f")),
                             html.Td(f"[{dci[0]:+.4f}, {dci[1]:+.4f}]" if dci else ""),
                             html.Td(f"{st['n_worse']} / {st['n_better']}" if st else ""), html.Td(f(st.get("p"), ".3g"))]))
    return html.Table(className="runs-table study-table", children=[html.Thead(html.Tr([html.Th(h) for h in head])),
                                                                  html.Tbody(rows)])


# ------------------------------------------------------------------ callbacks
def update_study(workspace: Workspace, name):
    """The three figures (FIGURES order), the verdict and the table of one study."""
    if name not in workspace.studies.names():
        message = "No study is loaded." if not workspace.studies.names() else f"No study named {name!r}."
        return (ms.empty(message),) * 3 + ([message], "")
    try:
        summary = workspace.studies.summary(name)
    except (*ms.FRIENDLY_ERRORS, OSError) as err:  # a broken file in the study: say so, keep serving
        message = f"{workspace.studies.path(name)}: {err}"
        return (ms.empty(message),) * 3 + ([message], "")
    return (fig_study_finals(summary), fig_study_curves(summary), fig_study_differences(summary),
            verdict(summary), table(summary))


def _batch_study(workspace: Workspace, state: dict):
    """The batch export's study: the one it names, else the first loaded."""
    return state.get("study") or next(iter(workspace.studies.names()), None)


STUDY = recipe("study", FIGURES, update_study, (Key("study", "study-picker", batch=_batch_study),),
               extra=[("study-verdict", "children"), ("study-table", "children")],
               tables={"study-diffs": table_study_differences})


def register_callbacks(app, workspace: Workspace) -> None:
    register_page_callback(app, workspace, STUDY)
    register_url_sync(app, "study-url", [("study", "study-picker", "value")])

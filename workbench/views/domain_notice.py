"""The one-line notice that the domain memory on screen is not the one the model was trained with.

The Why, Spectrum and What-if pages show it near their domain / Laplacian controls, with a
button that selects the model's own: the domain picker's value on Why and Spectrum, the
Laplacian choice "as trained" on What-if. The link is by fingerprint (workbench.data.run_domain).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dash import Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate

from workbench.data.run_domain import domain_link

if TYPE_CHECKING:
    from workbench.data import Workspace

AS_TRAINED = "model"  # the What-if Laplacian choice that keeps the model's own


def mismatch(workspace: Workspace, run, step, shown: str | None) -> str | None:
    """Why domain memory ``shown`` is not the run's own, in one sentence, or None when it is
    (or when the run measures against no Laplacian, or nothing is shown)."""
    if not run or not shown:
        return None
    try:
        link = domain_link(workspace, run, step)
    except KeyError:
        return None
    if link.laplacian == "chain":
        return f"{run} was trained with the chain Laplacian, not a domain memory."
    if link.laplacian != "domain" or link.matches(shown):
        return None
    if link.domain is None:
        fp = f", fingerprint {link.fingerprint[:12]}" if link.fingerprint else ""
        return f"{run} was trained with a domain memory that is not loaded ({link.recorded_name or 'unnamed'}{fp})."
    return f"{run} was trained with the domain memory {link.domain}, not {shown}."


def picker_notice(workspace: Workspace, run, step, shown, *, note: str = "") -> tuple[str, str | None, bool]:
    """(line, own domain or None, button hidden?) for a page that shows the domain picker's memory."""
    text = mismatch(workspace, run, step, shown)
    if text is None:
        return "", None, True
    own = domain_link(workspace, run, step).domain
    return text + note, own, own is None


def choice_notice(workspace: Workspace, run, step, choice) -> tuple[str, bool]:
    """(line, button hidden?) for What-if's Laplacian choice: only a chosen domain memory is checked."""
    if not isinstance(choice, str) or not choice.startswith("domain:"):
        return "", True
    text = mismatch(workspace, run, step, choice.split(":", 1)[1])
    return ("", True) if text is None else (text, False)


def notice(page: str) -> html.Div:
    """The notice's place in a page's layout: a line and the button (both empty until filled)."""
    return html.Div(className="domain-notice", role="status", children=[
        html.Span(id=f"{page}-domain-notice"),
        html.Button(id=f"{page}-domain-own", className="secondary-button", hidden=True, n_clicks=0),
    ])


def register_picker_notice(app, workspace: Workspace, page: str, *, note: str = "") -> None:
    """Fill the notice from the global pickers; the button puts the run's own domain in the picker."""
    @app.callback(Output(f"{page}-domain-notice", "children"), Output(f"{page}-domain-own", "children"),
                  Output(f"{page}-domain-own", "hidden"),
                  Input("run-picker", "value"), Input("step-picker", "value"), Input("domain-picker", "value"))
    def _fill(run, step, shown):
        text, own, hidden = picker_notice(workspace, run, step, shown, note=note)
        return text, (f"Show {own}" if own else ""), hidden

    @app.callback(Output("domain-picker", "value", allow_duplicate=True),
                  Input(f"{page}-domain-own", "n_clicks"), State("run-picker", "value"),
                  State("step-picker", "value"), prevent_initial_call=True)
    def _select(clicks, run, step):
        if not clicks or not run:
            raise PreventUpdate
        own = domain_link(workspace, run, step).domain
        return own if own else no_update


def register_choice_notice(app, workspace: Workspace, page: str, choice_id: str) -> None:
    """Fill the notice from a Laplacian choice; the button sets the choice back to as trained."""
    @app.callback(Output(f"{page}-domain-notice", "children"), Output(f"{page}-domain-own", "children"),
                  Output(f"{page}-domain-own", "hidden"),
                  Input("run-picker", "value"), Input("step-picker", "value"), Input(choice_id, "value"))
    def _fill(run, step, choice):
        text, hidden = choice_notice(workspace, run, step, choice)
        return text, "Use the Laplacian as trained", hidden

    @app.callback(Output(choice_id, "value", allow_duplicate=True), Input(f"{page}-domain-own", "n_clicks"),
                  prevent_initial_call=True)
    def _select(clicks):
        if not clicks:
            raise PreventUpdate
        return AS_TRAINED

"""Overview: what is loaded, where to look first, and what each page answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dash import dcc, html

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="home", path="/", name="Overview", order=0,
            description="What is loaded and where to start.")


def layout(workspace: Workspace, pages=(), **query):
    summary = workspace.describe()
    runs = summary["runs"]
    return html.Div(className="home", children=[
        html.H1("Tauformer Workbench"),
        html.P(
            "Tauformer attention compresses every query and key to one number, lambda, measured against a "
            "graph Laplacian built from a domain's embedding space (the domain memory), and attends by "
            "-|lambda_q - lambda_k| / temperature. These pages show that number, the graph behind it, and "
            "how the resulting attention differs from a dot-product twin trained alike.",
            className="lead",
        ),
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


def register_callbacks(app, workspace: Workspace) -> None:
    """The overview is static."""

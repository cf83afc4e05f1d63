"""Heads: what each tau head's lambda looks like on a prompt, and whether its temperature can use it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dash import dcc, html

from workbench.figures import fig_lambda_distributions, fig_lambda_resolution, fig_lambda_strip

from . import model_shared as ms
from .cards import Key, recipe, register_page_callback
from .common import register_url_sync

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="heads", requires="runs", path="/heads", name="Heads", order=11,
            description="Lambda of every token per head: strips, distributions, and what the temperature resolves.")

SOURCES = [{"label": "on the prompt", "value": "prompt"}, {"label": "on validation text (4 x 256 tokens)", "value": "validation"}]
KINDS = [{"label": "violin", "value": "violin"}, {"label": "ridgeline", "value": "ridgeline"}]
QUANTITIES = [{"label": "lambda_q", "value": "lambda_q"}, {"label": "lambda_k", "value": "lambda_k"}]
LEAD = ("Each tau head turns every query and key into one number, lambda = E / (E + tau), where E is the "
        "vector's Rayleigh energy on the domain memory's Laplacian. Here is that number per token and head.")


def layout(workspace: Workspace, **query):
    colour, source = query.get("range"), query.get("source")
    kind, quantity = query.get("kind"), query.get("quantity")
    return ms.model_page(workspace, query, "Heads", LEAD, lambda run: [
        html.Div(className="page-controls", children=[
            ms.layer_picker(workspace, run, query, "heads"),
            html.Label(["Colour range", dcc.RadioItems(
                id="heads-range", value=colour if colour in ("full", "data") else "data", inline=True,
                options=[{"label": "0 to 1", "value": "full"}, {"label": "data range", "value": "data"}])]),
        ]),
        ms.card("heads-lambda-q", "lambda_q per token", figure_fn="fig_lambda_strip"),
        ms.card("heads-lambda-k", "lambda_k per token", figure_fn="fig_lambda_strip"),
        ms.card("heads-distributions", "Lambda distribution per head", figure_fn="fig_lambda_distributions",
                    controls=[
                        dcc.RadioItems(id="heads-source", options=SOURCES, inline=True,
                                       value=source if source in ("prompt", "validation") else "prompt"),
                        dcc.RadioItems(id="heads-quantity", options=QUANTITIES, inline=True,
                                       value=quantity if quantity in ("lambda_q", "lambda_k") else "lambda_q"),
                        dcc.RadioItems(id="heads-kind", options=KINDS, inline=True,
                                       value=kind if kind in ("violin", "ridgeline") else "violin"),
                    ]),
        ms.card("heads-resolution", "Lambda spread against temperature", figure_fn="fig_lambda_resolution"),
        dcc.Store(id="heads-url"),
    ])


# ------------------------------------------------------------------ callbacks
@ms.model_callback(figures=2, tau_only="")
def update_strips(workspace: Workspace, run, step, prompt, layer, colour_range):
    """lambda_q and lambda_k strips (one row per head) of one layer."""
    view = workspace.probes.probe(run, step, ms.prompt_of(workspace, prompt, run))
    layer = ms.clamp_index(layer, view.n_layer)
    full = colour_range != "data"
    return (fig_lambda_strip(view.tokens, view.lambda_q[layer], title_prefix="lambda_q", full_range=full, layer=layer),
            fig_lambda_strip(view.tokens, view.lambda_k[layer], title_prefix="lambda_k", full_range=full, layer=layer))


@ms.model_callback(tau_only="")
def update_distributions(workspace: Workspace, run, step, prompt, source, quantity, kind):
    """Per-head violins (or ridgelines) of lambda on the prompt or on validation text."""
    sample = workspace.probes.lambda_sample(run, step, source, ms.prompt_of(workspace, prompt, run))
    return fig_lambda_distributions(sample[quantity or "lambda_q"], kind=kind or "violin",
                                    quantity=quantity or "lambda_q")


@ms.model_callback(tau_only="")
def update_resolution(workspace: Workspace, run, step, prompt):
    """Each head's lambda spread on the prompt against the largest weight ratio its temperature allows."""
    spread, temperature = workspace.probes.lambda_resolution(
        workspace.probes.probe(run, step, ms.prompt_of(workspace, prompt, run)))
    return fig_lambda_resolution(spread, temperature)


# ------------------------------------------------------------------ cards: keys -> figures
MODEL_KEYS = (ms.RUN, ms.STEP, ms.PROMPT_KEY)
STRIPS = recipe("heads", ("heads-lambda-q", "heads-lambda-k"), update_strips,
                (*MODEL_KEYS, Key("layer", "heads-layer", default=0), Key("colour_range", "heads-range", default="full")))
DISTRIBUTIONS = recipe("heads", "heads-distributions", update_distributions, (
    *MODEL_KEYS, Key("sample", "heads-source", default="prompt"),
    Key("lambda_quantity", "heads-quantity", default="lambda_q"), Key("plot_kind", "heads-kind", default="violin")))
RESOLUTION = recipe("heads", "heads-resolution", update_resolution, MODEL_KEYS)


def register_callbacks(app, workspace: Workspace) -> None:
    ms.register_prompt(app, workspace)
    ms.register_head_choices(app, workspace, "heads", head=False)
    for made in (STRIPS, DISTRIBUTIONS, RESOLUTION):
        register_page_callback(app, workspace, made)
    register_url_sync(app, "heads-url", [
        ("prompt", ms.PROMPT, "data"), ("layer", "heads-layer", "value"), ("range", "heads-range", "value"),
        ("source", "heads-source", "value"), ("quantity", "heads-quantity", "value"), ("kind", "heads-kind", "value"),
    ])



# ------------------------------------------------------------------ bench
def bench_cases(workspace: Workspace) -> list:
    run, step, _, _ = ms.export_state(workspace, {})
    return [
        ("heads: strips, layer 1", lambda: update_strips(workspace, run, step, None, 1, "full")),
        ("heads: strips, data range", lambda: update_strips(workspace, run, step, None, 2, "data")),
        ("heads: distributions on the prompt", lambda: update_distributions(workspace, run, step, None, "prompt", "lambda_q", "violin")),
        ("heads: distributions on validation text", lambda: update_distributions(workspace, run, step, None, "validation", "lambda_k", "ridgeline")),
        ("heads: resolution", lambda: update_resolution(workspace, run, step, None)),
    ]

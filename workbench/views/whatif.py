"""What if: change the temperature, tau mode or Laplacian of the tau run and see attention and loss move."""

from __future__ import annotations

from typing import TYPE_CHECKING

import math

from dash import Input, Output, ctx, dcc, html, no_update

from workbench.figures import fig_entropy_bars, fig_whatif

from . import model_shared as ms
from .cards import Key, recipe, register_page_callback
from .common import as_float, register_url_sync
from .domain_notice import notice, register_choice_notice

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="whatif", requires="runs", path="/whatif", name="What if", order=13,
            description="Change temperature, tau mode or the Laplacian and watch attention and validation loss.")

TAU_MODES = [
    {"label": "as trained", "value": "model"},
    {"label": "fixed (value below)", "value": "fixed"},
    {"label": "median of the vector", "value": "median"},
    {"label": "mean of the vector", "value": "mean"},
    {"label": "percentile of the vector", "value": "percentile"},
    {"label": "calibrated, re-measured on validation text", "value": "calibrated"},
]
BASE_LAPLACIANS = [
    {"label": "as trained", "value": "model"},
    {"label": "chain (path graph)", "value": "chain"},
    {"label": "identity (no domain memory)", "value": "identity"},
    {"label": "shuffled domain graph (degrees kept)", "value": "shuffle"},
]
TEMPERATURE_MARKS = {-2: "x0.01", -1: "x0.1", 0: "x1", 1: "x10"}
LOG_MIN, LOG_MAX = -2.0, 1.0  # the slider holds log10 of the multiplier
LEAD = ("Recompute the tau run on the prompt with one setting changed, on a copy of the model: the "
        "temperature (every head scaled), how tau is chosen, or the Laplacian lambda is measured against. "
        "The loss is measured on fixed validation batches before and after.")


def layout(workspace: Workspace, **query):
    modes = [o["value"] for o in TAU_MODES]
    lap_opts = laplacian_options(workspace, [{"label": n, "value": n} for n in workspace.domains.names()])
    return ms.model_page(workspace, query, "What if", LEAD, lambda run: [
        html.Div(className="page-controls whatif-controls", children=[
            html.Label(className="wide", children=["Temperature: each head's trained temperature times", dcc.Slider(
                id="whatif-temperature", min=LOG_MIN, max=LOG_MAX, step=0.01, marks=TEMPERATURE_MARKS,
                value=as_float(query.get("temperature"), 0.0), allow_direct_input=False)]),
            html.Label(title="A multiplier of every head's temperature (1 = as trained); applied on Enter",
                       children=["temperature x", dcc.Input(
                           id="whatif-temperature-x", type="number", min=10 ** LOG_MIN, max=10 ** LOG_MAX,
                           step="any", debounce=True, className="num-input",
                           value=multiplier(as_float(query.get("temperature"), 0.0)))]),
            html.Label(["tau", dcc.Dropdown(id="whatif-tau-mode", options=TAU_MODES, clearable=False,
                                            value=query.get("tau") if query.get("tau") in modes else "model")]),
            html.Label(["fixed tau", dcc.Input(id="whatif-tau-value", type="number", min=1e-6, debounce=True,
                                               value=as_float(query.get("tauvalue"), 1.0), className="num-input")]),
            html.Label(["percentile", dcc.Input(id="whatif-percentile", type="number", min=0, max=1, step=0.05,
                                                debounce=True, value=as_float(query.get("percentile"), 0.5),
                                                className="num-input")]),
            html.Label(["Laplacian", dcc.Dropdown(id="whatif-laplacian", options=lap_opts, clearable=False,
                                                  value=query.get("laplacian") or "model")]),
            html.Label(["shuffle seed", dcc.Input(id="whatif-seed", type="number", min=0, step=1, debounce=True,
                                                  value=int(as_float(query.get("seed"), 0)), className="num-input")]),
            *ms.layer_head_pickers(workspace, run, query, "whatif"),
        ]),
        notice("whatif"),
        html.Div(id="whatif-summary", className="whatif-summary", role="status"),
        ms.card("whatif-maps", "Attention before and after", figure_fn="fig_whatif"),
        ms.card("whatif-entropy", "Entropy per head before and after", description=(
            "1 - entropy / uniform entropy per head on a log axis (taller = sharper attention): shows whether the "
            "change pulls heads away from uniform attention or pushes them towards it.")),
        dcc.Store(id="whatif-url"),
    ])


# ------------------------------------------------------------------ callbacks
def multiplier(log_scale) -> float:
    """The temperature multiplier shown in the box for a slider position (log10 of it)."""
    return float(f"{10.0 ** as_float(log_scale, 0.0):.3g}")


def sync_temperature(trigger, log_scale, typed):
    """(slider, box) after one of them changed: the box shows 10**slider; a multiplier typed in the
    box (committed on Enter or when it loses focus) moves the slider to its log10, clipped to the
    slider's range. Anything else typed leaves both as they are."""
    if trigger == "whatif-temperature-x":
        value = as_float(typed, float("nan"))
        if not math.isfinite(value) or value <= 0:
            return no_update, no_update
        log = min(LOG_MAX, max(LOG_MIN, math.log10(value)))
        return round(log, 4), (no_update if 10 ** log == value else multiplier(log))
    return no_update, multiplier(log_scale)


def laplacian_options(workspace: Workspace, domain_options):
    """The fixed Laplacian choices plus one per domain memory in the domain picker's list."""
    domains = [o["value"] for o in (domain_options or []) if isinstance(o, dict)]
    return BASE_LAPLACIANS + [{"label": f"domain memory: {d}", "value": f"domain:{d}"} for d in domains]


@ms.model_callback(figures=2, extra=(ms.MESSAGE,), tau_only=" What-if changes apply to tau runs.")
def update_whatif(workspace: Workspace, run, step, prompt, layer, head, log_scale, tau_mode, tau_value, percentile,
                  laplacian, seed):
    """Attention of the selected head before / after, loss deltas, entropy per head, and a summary line."""
    r = workspace.probes.whatif(run, step, ms.prompt_of(workspace, prompt, run),
                                temperature_scale=10.0 ** as_float(log_scale, 0.0), tau_mode=tau_mode,
                                tau=as_float(tau_value, 1.0), percentile=as_float(percentile, 0.5),
                                laplacian=laplacian, seed=int(as_float(seed, 0)))
    before, after = r["before"], r["after"]
    layer, head = ms.clamp_index(layer, before.n_layer), ms.clamp_index(head, before.n_head)
    fig = fig_whatif(before.weights[layer, head], after.weights[layer, head], before.tokens,
                     losses={"validation": r["val_loss"], "prompt": r["prompt_loss"]},
                     labels=(f"before (layer {layer}, head {head})", "after"), change=r["change"],
                     cmax=ms.colour_cap(before.weights[layer, head], after.weights[layer, head]))
    entropy = fig_entropy_bars({"before": before.entropy, "after": after.entropy}, kind="deficit")
    return fig, entropy, summary(r)


def summary(r: dict) -> list:
    (vb, va), (pb, pa) = r["val_loss"], r["prompt_loss"]
    change = (va - vb) / vb * 100 if vb else 0.0
    ent_b, ent_a = float(r["before"].entropy.mean()), float(r["after"].entropy.mean())
    cls = "good" if va < vb else ("bad" if va > vb else "")
    return [html.B(f"{r['change']}: "),
            html.Span(f"validation loss {vb:.4f} \u2192 {va:.4f} ({change:+.2f}%)", className=cls),
            html.Span(f"; prompt loss {pb:.4f} \u2192 {pa:.4f}; mean entropy / uniform {ent_b:.5f} \u2192 {ent_a:.5f}")]


# ------------------------------------------------------------------ cards: keys -> figures
WHATIF = recipe("whatif", ("whatif-maps", "whatif-entropy"), update_whatif, (
    ms.RUN, ms.STEP, ms.PROMPT_KEY, Key("layer", "whatif-layer", default=0), Key("head", "whatif-head", default=0),
    Key("temperature", "whatif-temperature", default=-1.0), Key("tau_mode", "whatif-tau-mode", default="model"),
    Key("tau_value", "whatif-tau-value", default=1.0), Key("percentile", "whatif-percentile", default=0.5),
    Key("laplacian", "whatif-laplacian", default="model"), Key("seed", "whatif-seed", default=0)),
    extra=[("whatif-summary", "children")])


def register_callbacks(app, workspace: Workspace) -> None:
    ms.register_prompt(app, workspace)
    app.callback(Output("whatif-laplacian", "options"), Input("domain-picker", "options"))(
        ms.bind(workspace, laplacian_options))
    ms.register_head_choices(app, workspace, "whatif")
    register_page_callback(app, workspace, WHATIF)
    register_choice_notice(app, workspace, "whatif", "whatif-laplacian")
    app.callback(Output("whatif-temperature", "value"), Output("whatif-temperature-x", "value"),
                 Input("whatif-temperature", "value"), Input("whatif-temperature-x", "value"),
                 prevent_initial_call=True)(
        lambda log_scale, typed: sync_temperature(ctx.triggered_id, log_scale, typed))
    app.clientside_callback(  # only the inputs the chosen settings read are enabled
        "function(mode, lap) { return [mode !== 'fixed', mode !== 'percentile', lap !== 'shuffle']; }",
        Output("whatif-tau-value", "disabled"), Output("whatif-percentile", "disabled"), Output("whatif-seed", "disabled"),
        Input("whatif-tau-mode", "value"), Input("whatif-laplacian", "value"))
    register_url_sync(app, "whatif-url", [
        ("prompt", ms.PROMPT, "data"), ("layer", "whatif-layer", "value"), ("head", "whatif-head", "value"),
        ("temperature", "whatif-temperature", "value"), ("tau", "whatif-tau-mode", "value"),
        ("tauvalue", "whatif-tau-value", "value"), ("percentile", "whatif-percentile", "value"),
        ("laplacian", "whatif-laplacian", "value"), ("seed", "whatif-seed", "value"),
    ])


# ------------------------------------------------------------------ bench
def bench_cases(workspace: Workspace) -> list:
    run, step, _, _ = ms.export_state(workspace, {})
    args = (workspace, run, step, None, 1, 1)
    return [
        ("what-if: unchanged", lambda: update_whatif(*args, 0.0, "model", 1.0, 0.5, "model", 0)),
        ("what-if: temperature x0.1", lambda: update_whatif(*args, -1.0, "model", 1.0, 0.5, "model", 0)),
        ("what-if: chain Laplacian", lambda: update_whatif(*args, 0.0, "model", 1.0, 0.5, "chain", 0)),
        ("what-if: shuffled graph", lambda: update_whatif(*args, 0.0, "model", 1.0, 0.5, "shuffle", 3)),
        ("what-if: median tau", lambda: update_whatif(*args, 0.0, "median", 1.0, 0.5, "model", 0)),
        ("what-if: recalibrated on the identity", lambda: update_whatif(*args, 0.0, "calibrated", 1.0, 0.5, "identity", 0)),
    ]

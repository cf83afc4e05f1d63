"""Memory & speed: KV-cache bytes of both models against context, and decode latency measured here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from dash import Input, Output, ctx, html

from workbench.figures import fig_decode_latency, fig_kv_cache

from . import model_shared as ms
from .cards import Key, recipe, register_page_callback
from .common import figure_id

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="memory", requires="runs", path="/memory", name="Memory & speed", order=31,
            description="KV-cache bytes against context with the (D+1)/2D line, and decode latency measured here.")

MEASURE_NOTE = ("Press 'Measure' to time decoding on this machine (a few seconds: 8 tokens after contexts of "
                "64, 256 and 1024, 3 repeats, the models interleaved). The result is kept for this session.")
LEAD = ("A dot-product model caches keys and values, 2 x D numbers per head and position; a Tauformer "
        "caches values and one lambda, D + 1 numbers. The ratio (D + 1) / 2D is about one half. Bytes "
        "below are read from the models' real, preallocated caches.")


def layout(workspace: Workspace, **query):
    return ms.model_page(workspace, query, "Memory & speed", LEAD, prompt=False, body=lambda run: [
        ms.card("memory-cache", "KV-cache bytes against context", figure_fn="fig_kv_cache"),
        ms.card("memory-latency", "Decode latency per token", figure_fn="fig_decode_latency", controls=[
            html.Button("Measure", id="memory-measure", className="measure-button", n_clicks=0),
            html.Span(id="memory-latency-note", className="muted"),
        ]),
    ])


# ------------------------------------------------------------------ callbacks
def models_of(workspace: Workspace, run, step, compare) -> list[tuple[str, int]]:
    """[(run, step), (compared run, its nearest step)] -- the compared one only when it exists."""
    runs = [(run, workspace.runs.nearest_step(run, step))]
    other = ms.compare_run(workspace, run, compare)
    if other and other != run:
        runs.append((other, workspace.runs.nearest_step(other, step)))
    return runs


@ms.model_callback()
def update_cache(workspace: Workspace, run, step, compare):
    """KV-cache bytes of the run and the compared run against context length."""
    kv = workspace.probes.kv_cache(models_of(workspace, run, step, compare))
    return fig_kv_cache(kv["context"], kv["bytes"], head_dim=kv["head_dim"])


@ms.model_callback(extra=(ms.MESSAGE,))
def update_latency(workspace: Workspace, measure: bool, run, step, compare):
    """The latency figure: measured when the button was pressed, else the session's earlier measurement."""
    lat = workspace.probes.decode_latency(models_of(workspace, run, step, compare), measure=bool(measure))
    if lat is None:
        return ms.empty("Not measured yet: press Measure."), MEASURE_NOTE
    return fig_decode_latency(lat["context"], lat["ms"]), latency_note(lat)


def latency_note(lat: dict) -> str:
    parts = []
    for name, ms_ in lat["ms"].items():
        med = np.median(ms_, axis=1)
        parts.append(f"{name}: " + ", ".join(f"{m:.2f}" for m in med) + " ms/token")
    ctx = ", ".join(f"{c:g}" for c in lat["context"])
    return (f"Medians at contexts {ctx} -- " + "; ".join(parts)
            + f" ({lat['new_tokens']} tokens x {lat['repeats']} repeats, measured on this machine).")


def latency_view(workspace: Workspace, run, step, compare, measure: bool = False):
    """The latency figure and note; ``measure`` times decoding now (else an earlier measurement)."""
    return update_latency(workspace, bool(measure), run, step, compare)


# ------------------------------------------------------------------ cards: keys -> figures
MODEL_KEYS = (ms.RUN, ms.STEP, ms.COMPARE)
CACHE = recipe("memory", "memory-cache", update_cache, MODEL_KEYS)
LATENCY = recipe("memory", "memory-latency", latency_view,  # the app exports what it shows; a batch measures
                 (*MODEL_KEYS, Key("measure", None, default=False, batch=lambda workspace, state: True)),
                 extra=[("memory-latency-note", "children")])


def register_callbacks(app, workspace: Workspace) -> None:
    register_page_callback(app, workspace, CACHE)
    app.callback(Output(figure_id("memory-latency"), "figure"), Output("memory-latency-note", "children"),
                 Input("memory-measure", "n_clicks"), *ms.WITH_COMPARE)(ms.bind(workspace, _latency_callback))


def _latency_callback(workspace: Workspace, n_clicks, run, step, compare):
    """Measure only when the button fired; a picker change shows an earlier measurement if any."""
    return LATENCY.build(workspace, run, step, compare, ctx.triggered_id == "memory-measure")


# ------------------------------------------------------------------ bench
def bench_cases(workspace: Workspace) -> list:
    run, step, _, _ = ms.export_state(workspace, {})
    return [
        ("memory: KV-cache bytes", lambda: update_cache(workspace, run, step, None)),
        ("memory: show measured latency", lambda: update_latency(workspace, False, run, step, None)),
    ]

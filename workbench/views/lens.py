"""Logit lens: what each depth of both models predicts next on the prompt, and each token's loss.

The per-token loss is a card of this page rather than a page of its own: it is the lens's last
depth (the model's own output) seen along the text, computed in the same cached pass, on the same
prompt and pair of models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from dash import dcc, html

from workbench.figures.lens import fig_first_top1, fig_logit_lens, fig_token_loss

from . import model_shared as ms
from .cards import Key, recipe, register_page_callback
from .common import register_url_sync

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="lens", requires="runs", path="/lens", name="Logit lens", order=14,
            description="What each depth predicts next in both models, where predictions form, per-token loss.")

SCALES = [{"label": "probability of the next token", "value": "prob"},
          {"label": "its rank (log)", "value": "rank"}]
HARDEST = 10
LEAD = ("The residual stream after the embedding and after every block, read through the model's final norm "
        "and lm_head as if the network stopped there: which next token each depth already predicts, for the "
        "run and the compared run (the dot-product twin by default). The last depth is the model's own output.")
LOSS_NOTE = ("Each token shaded by the loss the model had predicting it (darker = harder), and by the "
             "difference run \u2212 compared (red: the run found it harder). Hover a token for both models' top-5.")


def layout(workspace: Workspace, **query):
    scale = query.get("scale") if query.get("scale") in ("prob", "rank") else "prob"
    return ms.model_page(workspace, query, "Logit lens", LEAD, lambda run: [
        html.Div(className="page-controls", children=[
            html.Label(["Colour by", dcc.RadioItems(id="lens-scale", options=SCALES, value=scale, inline=True)]),
            html.Span("Hover a cell for the top predictions at that depth.", className="hint"),
        ]),
        ms.card("lens-heatmap", "The next token at every depth", figure_fn="fig_logit_lens"),
        ms.card("lens-formed", "Where predictions form", figure_fn="fig_first_top1",
                controls=[html.Div(id="lens-summary", className="muted")]),
        ms.card("lens-loss", "Per-token loss", description=LOSS_NOTE,
                controls=[html.Div(id="lens-hardest", className="topkeys")]),
        dcc.Store(id="lens-url"),
    ])


# ------------------------------------------------------------------ helpers
def lens_data():
    """workbench.data.lens, imported on first use (it imports torch, as workspace.probes does)."""
    from workbench.data import lens

    return lens


def lens_pair(workspace: Workspace, run, step, compare, prompt):
    """(lens of run, lens of the compared run or None), on the committed prompt."""
    other = ms.compare_run(workspace, run, compare)
    return lens_data().lens_pair(workspace.probes, run, step, other, ms.prompt_of(workspace, prompt, run))


def lens_input(view) -> dict:
    """The arrays fig_logit_lens reads from one model's lens."""
    return dict(target_prob=view.target_prob, target_rank=view.target_rank, first_top1=view.first_top1,
                top_tokens=view.top_tokens, top_probs=view.top_probs)


def loss_input(view) -> dict:
    """The arrays fig_token_loss reads from one model's predictions."""
    return dict(loss=view.loss, pred_tokens=view.pred_tokens, pred_probs=view.pred_probs)


def name_of(view) -> str:
    return f"{view.run} ({view.kind}, step {view.step})"


def formation_sentence(view) -> str:
    """'tau: predictions form at layer 2 (median first top-1 depth of the 120 of 255 tokens it gets right).'"""
    f = lens_data().formation_depth(view)
    if f["depth"] is None:
        return f"{view.run}: no position of the prompt is predicted top-1 at the last depth."
    return (f"{view.run}: predictions form at {f['label']} (median first top-1 depth of the {f['right']} of "
            f"{f['total']} next tokens the model ranks first).")


# ------------------------------------------------------------------ callbacks
@ms.model_callback(figures=2, extra=(ms.MESSAGE,))
def update_lens(workspace: Workspace, run, step, compare, prompt, scale):
    """The lens heatmaps of both models, the first-top-1 depths, and where predictions form."""
    a, b = lens_pair(workspace, run, step, compare, prompt)
    views = [v for v in (a, b) if v is not None and v.depths == a.depths]
    heat = fig_logit_lens(a.tokens, a.depths, {name_of(v): lens_input(v) for v in views},
                          scale=scale if scale in ("prob", "rank") else "prob")
    formed = fig_first_top1(a.depths, {name_of(v): v.first_top1 for v in views})
    sentences = [formation_sentence(v) for v in (a, b) if v is not None]
    if b is not None and b.depths != a.depths:
        sentences.append(f"{b.run} has {len(b.depths) - 1} layers, {a.run} {len(a.depths) - 1}: "
                         "its lens is not drawn on the same depth rows.")
    elif b is None:
        sentences.append(f"Nothing to compare {run} with: pick a run in 'Compare with'.")
    return heat, formed, " ".join(sentences)


@ms.model_callback(extra=("",))
def update_loss(workspace: Workspace, run, step, compare, prompt):
    """The prompt shaded by each model's loss and by their difference, and the run's hardest tokens."""
    a, b = lens_pair(workspace, run, step, compare, prompt)
    views = [v for v in (a, b) if v is not None]
    losses = np.concatenate([v.loss for v in views])
    cap = float(np.quantile(losses, 0.99)) if losses.size else None
    fig = fig_token_loss(a.tokens, {v.run: loss_input(v) for v in views}, zmax=cap)
    if b is None:
        return fig, (f"Mean loss of {a.run}: {a.mean_loss:.3f} nats. "
                     "Pick a run in 'Compare with' to see which tokens it finds hard.")
    return fig, hardest_list(a, b, lens_data().hardest_tokens(a, b, HARDEST))


def hardest_list(a, b, rows: list[dict]):
    """The tokens a finds hardest relative to b, as a short list."""
    head = html.Div([html.B(f"{a.run} vs {b.run}"), f": mean loss {a.mean_loss:.3f} vs {b.mean_loss:.3f} nats. "
                     + (f"Hardest for {a.run} relative to {b.run}:" if rows else
                        f"{a.run} has no token with a higher loss than {b.run}.")])
    items = [html.Li(f"{r['position']} '{r['token']}' after '{r['context']}': {r['loss_a']:.2f} vs "
                     f"{r['loss_b']:.2f} nats (+{r['diff']:.2f})")
             for r in rows]
    return [head, html.Ol(items, className="lens-hardest-list")] if items else [head]


# ------------------------------------------------------------------ cards: keys -> figures
MODEL_KEYS = (ms.RUN, ms.STEP, ms.COMPARE, ms.PROMPT_KEY)
LENS = recipe("lens", ("lens-heatmap", "lens-formed"), update_lens,
              (*MODEL_KEYS, Key("scale", "lens-scale", default="prob")), extra=[("lens-summary", "children")])
LOSS = recipe("lens", "lens-loss", update_loss, MODEL_KEYS, extra=[("lens-hardest", "children")])


def register_callbacks(app, workspace: Workspace) -> None:
    ms.register_prompt(app, workspace)
    for made in (LENS, LOSS):
        register_page_callback(app, workspace, made)
    register_url_sync(app, "lens-url", [("prompt", ms.PROMPT, "data"), ("scale", "lens-scale", "value")])


# ------------------------------------------------------------------ bench
def bench_cases(workspace: Workspace) -> list:
    run, step, compare, prompt = ms.export_state(workspace, {})
    return [
        ("lens: heatmaps and formation", lambda: update_lens(workspace, run, step, compare, prompt, "prob")),
        ("lens: colour by rank", lambda: update_lens(workspace, run, step, compare, prompt, "rank")),
        ("lens: per-token loss", lambda: update_loss(workspace, run, step, compare, prompt)),
    ]

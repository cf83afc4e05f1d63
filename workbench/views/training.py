"""Training: loss curves of every run, throughput, and how lambda and attention entropy moved over steps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from dash import Input, Output, dcc, html, no_update

from workbench.figures import fig_entropy_over_steps, fig_lambda_over_steps, fig_loss_curves, fig_tokens_per_second

from . import model_shared as ms
from .cards import Key, recipe, register_page_callback
from .common import as_float, figure_id, register_url_sync

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="training", requires="runs", path="/training", name="Training", order=30,
            description="Loss curves, tokens/s, and lambda and entropy over steps; click a checkpoint to load it.")


def layout(workspace: Workspace, **query):
    if (page := ms.no_runs(workspace, 'Training')) is not None:
        return page
    run = ms.default_run(workspace, query)
    n_layer, n_head = ms.shape_of(workspace, run)
    heads = [{"label": "mean of heads", "value": "all"}] + ms.index_options(n_head, "head")
    layers = [{"label": "all layers", "value": "all"}] + ms.index_options(n_layer, "layer")
    return html.Div(className="model-page", children=[
        html.H1("Training"),
        html.P("Every run's history as logged at each evaluation. Diamonds are saved checkpoints: click one "
               "(or any point) to load that run at that checkpoint in the other pages.", className="lead"),
        ms.card("train-loss", "Loss", figure_fn="fig_loss_curves", controls=[
            html.Label(["smoothing", dcc.Slider(id="train-smoothing", min=0, max=0.95, step=0.05,
                                                value=as_float(query.get("smoothing"), 0.0),
                                                marks={0: "0", 0.5: "0.5", 0.9: "0.9"}, className="slider")]),
            dcc.RadioItems(id="train-axis", inline=True,
                           value=query.get("axis") if query.get("axis") in ("log", "bpb") else "linear",
                           options=[{"label": "linear loss axis", "value": "linear"},
                                    {"label": "log loss axis", "value": "log"},
                                    {"label": "bits per byte (any tokenizer)", "value": "bpb"}]),
        ]),
        html.Div(className="row", children=[
            ms.card("train-lambda", "Lambda over steps (run)", figure_fn="fig_lambda_over_steps", controls=[
                dcc.RadioItems(id="train-quantity", inline=True, value="lambda_q" if query.get("quantity") != "lambda_k"
                               else "lambda_k", options=[{"label": "lambda_q", "value": "lambda_q"},
                                                          {"label": "lambda_k", "value": "lambda_k"}]),
                dcc.Dropdown(id="train-head", options=heads, value=_choice(query.get("head"), heads),
                             clearable=False, className="small-dropdown"),
            ]),
            ms.card("train-entropy", "Attention entropy over steps", figure_fn="fig_entropy_over_steps",
                        controls=[dcc.Dropdown(id="train-layer", options=layers, clearable=False,
                                               value=_choice(query.get("entlayer"), layers),
                                               className="small-dropdown")]),
        ]),
        html.Div(id="train-drift", className="card drift-note"),
        ms.card("train-speed", "Throughput", figure_fn="fig_tokens_per_second"),
        dcc.Store(id="train-url"),
    ])


def _choice(value, options):
    values = [str(o["value"]) for o in options]
    return options[values.index(str(value))]["value"] if str(value) in values else "all"


# ------------------------------------------------------------------ data
def histories(workspace: Workspace) -> dict:
    """Each run's history arrays (run name -> dict), cached by the data layer."""
    return workspace.runs.histories()


def drift(h: dict, quantity: str = "lambda_q") -> dict | None:
    """Mean lambda (over layers and heads), the mean tau and the validation loss at the first and last
    evaluation, and the Pearson correlation of mean lambda with validation loss over all evaluations --
    the paper's observation that lambda drifts down as the loss falls."""
    key = f"{quantity}_mean"
    if key not in h or h[key].size == 0:
        return None
    lam = h[key].reshape(h[key].shape[0], -1).mean(1)  # [S]
    val = h["val_loss"]
    ok = np.isfinite(lam) & np.isfinite(val)
    if ok.sum() < 2:
        return None
    r = float(np.corrcoef(lam[ok], val[ok])[0, 1]) if np.std(lam[ok]) > 0 and np.std(val[ok]) > 0 else float("nan")
    first, last = np.flatnonzero(ok)[[0, -1]]
    tau = h["tau"].reshape(h["tau"].shape[0], -1).mean(1) if "tau" in h else None  # [S]
    return {"step": (int(h["step"][first]), int(h["step"][last])), "lambda": (float(lam[first]), float(lam[last])),
            "val_loss": (float(val[first]), float(val[last])), "r": r,
            "tau": (float(tau[first]), float(tau[last])) if tau is not None else None}


# ------------------------------------------------------------------ callbacks
def update_loss(workspace: Workspace, smoothing, axis, run, step):
    """Loss curves of all runs, with the loaded checkpoint marked."""
    hs = histories(workspace)
    if axis == "bpb":
        hs = {name: in_bits_per_byte(h) for name, h in hs.items()}
    return fig_loss_curves(hs, smoothing=min(0.95, as_float(smoothing, 0.0)), log_y=axis == "log",
                           selected_step=step, selected_run=run, unit="bpb" if axis == "bpb" else "nats",
                           checkpoints={name: h["checkpoints"] for name, h in hs.items()})


def in_bits_per_byte(h: dict) -> dict:
    """A history with losses in bits per byte: validation as logged (val_bpb), training converted
    with the same evaluation's factor (1 / (ln 2 * bytes per token)), so BPE and byte runs share an axis."""
    out = dict(h)
    val = np.asarray(h["val_loss"], float)
    bpb = np.asarray(h.get("val_bpb", np.full(val.shape, np.nan)), float)
    factor = np.where(np.isfinite(bpb) & (val > 0), bpb / np.where(val > 0, val, 1.0), 1.0 / np.log(2))
    out["val_loss"], out["train_loss"] = bpb, np.asarray(h["train_loss"], float) * factor
    return out


def update_speed(workspace: Workspace, smoothing):
    return fig_tokens_per_second(histories(workspace), smoothing=min(0.95, as_float(smoothing, 0.0)))


@ms.model_callback(extra=(ms.MESSAGE,), requires=("run",))
def update_lambda(workspace: Workspace, run, quantity, head):
    """Lambda statistics of the run over steps, and the drift note."""
    quantity = quantity or "lambda_q"
    h = histories(workspace).get(run)
    if h is None:
        return ms.empty(f"The history of {run} cannot be read."), ""
    if f"{quantity}_mean" not in h:
        text = ms.no_lambda(run) if h["kind"] != "tau" else f"{run} logged no lambda statistics."
        return ms.empty(text), text
    fig = fig_lambda_over_steps(h["step"], h[f"{quantity}_mean"], h[f"{quantity}_p05"], h[f"{quantity}_p95"],
                                head=None if head in (None, "all") else int(head), quantity=quantity)
    calibrated = workspace.runs.info(run).model.tau_mode == "calibrated"
    return fig, drift_note(run, drift(h, quantity), quantity, calibrated)


def drift_note(run: str, d: dict | None, quantity: str, calibrated: bool = False) -> list:
    """One paragraph on how lambda moved while the loss fell."""
    if d is None:
        return [f"Not enough evaluations of {run} to follow {quantity}."]
    direction = "fell" if d["lambda"][1] < d["lambda"][0] else "rose"
    agrees = d["r"] > 0 and direction == "fell"
    parts = [html.B(f"{run}: "), f"mean {quantity} {direction} from {d['lambda'][0]:.4f} (step {d['step'][0]}) to "
             f"{d['lambda'][1]:.4f} (step {d['step'][1]}) while validation loss went {d['val_loss'][0]:.3f} \u2192 "
             f"{d['val_loss'][1]:.3f}; its correlation with validation loss over all evaluations is "
             f"r = {d['r']:+.2f} ({'in line with' if agrees else 'unlike'} the paper's observation that lambda drifts down as the loss falls). "]
    if calibrated and d["tau"] is not None:
        parts.append(f"This run calibrates tau to the median energy, which keeps lambda near 0.5 by construction; "
                     f"the energy itself moved instead: mean tau {d['tau'][0]:.3f} \u2192 {d['tau'][1]:.3f}.")
    return parts


def update_entropy(workspace: Workspace, layer):
    hs = {name: h for name, h in histories(workspace).items() if "entropy" in h}
    if not hs:
        return ms.empty("No run logged attention entropy.")
    layer = None if layer in (None, "all") else int(layer)
    n_layers = min(h["entropy"].shape[1] for h in hs.values())
    if layer is not None and layer >= n_layers:
        layer = None
    return fig_entropy_over_steps({n: {"step": h["step"], "entropy": h["entropy"]} for n, h in hs.items()},
                                  layer=layer)


def load_checkpoint(workspace: Workspace, click):
    """(run, step) for the run-picker and step-picker from a clicked point's customdata [run, step].

    The run and step come from the point itself, never from its curve or point index. A click on a
    checkpoint diamond often lands on the evaluation drawn under it (step 999 under the diamond at
    1000), so a step that is not a checkpoint loads the checkpoint nearest to it in either direction.
    """
    if not click or not click.get("points"):
        return no_update, no_update
    data = click["points"][0].get("customdata")
    if isinstance(data, dict):  # a typed-array row arrives as {"0": run, "1": step}
        data = [data.get("0"), data.get("1")]
    if not isinstance(data, (list, tuple)) or len(data) < 2 or data[0] not in workspace.runs.names():
        return no_update, no_update
    run = data[0]
    try:
        step = int(data[1])
    except (TypeError, ValueError):
        return no_update, no_update
    return run, nearest_checkpoint(workspace.runs.info(run).steps, step)


def nearest_checkpoint(steps, step: int) -> int:
    """The saved step closest to ``step`` (the later one on a tie)."""
    return min(steps, key=lambda s: (abs(s - step), -s))


# ------------------------------------------------------------------ cards: keys -> figures
SMOOTHING = Key("smoothing", "train-smoothing", default=0.0)
LOSS = recipe("training", "train-loss", update_loss,
              (SMOOTHING, Key("loss_axis", "train-axis", default="linear"), ms.RUN, ms.STEP))
SPEED = recipe("training", "train-speed", update_speed, (SMOOTHING,))
LAMBDA = recipe("training", "train-lambda", update_lambda, (
    ms.RUN, Key("lambda_quantity", "train-quantity", default="lambda_q"),
    Key("lambda_head", "train-head", default="all")), extra=[("train-drift", "children")])
ENTROPY = recipe("training", "train-entropy", update_entropy, (Key("entropy_layer", "train-layer", default="all"),))


def register_callbacks(app, workspace: Workspace) -> None:
    for made in (LOSS, SPEED, LAMBDA, ENTROPY):
        register_page_callback(app, workspace, made)
    app.callback(Output("run-picker", "value", allow_duplicate=True),
                 Output("step-picker", "value", allow_duplicate=True),
                 Input(figure_id("train-loss"), "clickData"),
                 prevent_initial_call=True)(ms.bind(workspace, load_checkpoint))
    register_url_sync(app, "train-url", [
        ("smoothing", "train-smoothing", "value"), ("axis", "train-axis", "value"),
        ("quantity", "train-quantity", "value"), ("head", "train-head", "value"),
        ("entlayer", "train-layer", "value"),
    ])


# ------------------------------------------------------------------ bench
def bench_cases(workspace: Workspace) -> list:
    run, step, _, _ = ms.export_state(workspace, {})
    return [
        ("training: loss curves, smoothing 0.6, log axis", lambda: update_loss(workspace, 0.6, "log", run, step)),
        ("training: throughput", lambda: update_speed(workspace, 0.6)),
        ("training: lambda over steps, head 1", lambda: update_lambda(workspace, run, "lambda_q", 1)),
        ("training: entropy over steps", lambda: update_entropy(workspace, "all")),
        ("training: click a checkpoint", lambda: load_checkpoint(
            workspace, {"points": [{"customdata": [run, step]}]})),
    ]

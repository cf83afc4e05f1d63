"""Training: loss curves of every run, throughput, and how lambda, tau, the Rayleigh energy and attention
entropy moved over steps or wall-clock time; the history scalars of every run as a CSV download."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from dash import Input, Output, dcc, html, no_update

from workbench.data import dynamics
from workbench.figures import (fig_entropy_over_steps, fig_lambda_over_steps, fig_lambda_runs, fig_loss_curves,
                               fig_tau_energy, fig_tokens_per_second)

from . import model_shared as ms
from .cards import Key, recipe, register_page_callback
from .common import as_float, figure_id, register_url_sync

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="training", requires="runs", path="/training", name="Training", order=30,
            description="Loss curves, tokens/s, lambda, tau, energy and entropy over steps or wall-clock time; "
                        "click a checkpoint to load it.")
CSV_NAME = "training-scalars.csv"


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
        html.Div(className="page-controls", children=[
            html.Label(["x axis", dcc.RadioItems(
                id="train-x", inline=True, value=dynamics.TIME_AXIS if query.get("x") == "time" else dynamics.STEP_AXIS,
                options=[{"label": "step", "value": dynamics.STEP_AXIS},
                         {"label": "wall-clock time", "value": dynamics.TIME_AXIS}])]),
            html.Button("Download scalars (CSV)", id="train-csv-button", className="secondary-button",
                        title="Every evaluation of every run: losses, lr, tokens/s, elapsed time, and per layer "
                              "tau, energies, mean lambda and entropy"),
            dcc.Download(id="train-csv-download"),
            html.Span(id="train-csv-message", className="hint"),
        ]),
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
            ms.card("train-lambda", "Lambda over steps", figure_fn="fig_lambda_runs", controls=[
                dcc.RadioItems(id="train-lambda-show", inline=True,
                               value=LAYERS if query.get("lambdashow") == LAYERS else RUNS,
                               options=[{"label": "every tau run", "value": RUNS},
                                        {"label": "layers of the picked run", "value": LAYERS}]),
                dcc.RadioItems(id="train-quantity", inline=True, value="lambda_q" if query.get("quantity") != "lambda_k"
                               else "lambda_k", options=[{"label": "lambda_q", "value": "lambda_q"},
                                                          {"label": "lambda_k", "value": "lambda_k"}]),
                dcc.Dropdown(id="train-lambda-layer", options=layers, value=_choice(query.get("lambdalayer"), layers),
                             clearable=False, className="small-dropdown"),
                dcc.Dropdown(id="train-head", options=heads, value=_choice(query.get("head"), heads),
                             clearable=False, className="small-dropdown"),
            ]),
            ms.card("train-tau", "Tau and Rayleigh energy", figure_fn="fig_tau_energy", controls=[
                dcc.Dropdown(id="train-tau-layer", options=layers, value=_choice(query.get("taulayer"), layers),
                             clearable=False, className="small-dropdown")]),
        ]),
        html.Div(id="train-drift", className="card drift-note"),
        html.Div(className="row", children=[
            ms.card("train-entropy", "Attention entropy over steps", figure_fn="fig_entropy_over_steps",
                    controls=[dcc.Dropdown(id="train-layer", options=layers, clearable=False,
                                           value=_choice(query.get("entlayer"), layers),
                                           className="small-dropdown")]),
            ms.card("train-speed", "Throughput", figure_fn="fig_tokens_per_second"),
        ]),
        dcc.Store(id="train-url"),
    ])


RUNS, LAYERS = "runs", "layers"  # the lambda card: every tau run overlaid, or the layers of one run


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
def update_loss(workspace: Workspace, smoothing, axis, run, step, x_axis=dynamics.STEP_AXIS):
    """Loss curves of all runs, with the loaded checkpoint marked."""
    hs = histories(workspace)
    if axis == "bpb":
        hs = {name: in_bits_per_byte(h) for name, h in hs.items()}
    x_axis, note = dynamics.time_axis(hs, x_axis)
    return fig_loss_curves(hs, smoothing=min(0.95, as_float(smoothing, 0.0)), log_y=axis == "log",
                           selected_step=step, selected_run=run, unit="bpb" if axis == "bpb" else "nats",
                           checkpoints={name: h["checkpoints"] for name, h in hs.items()}, x_axis=x_axis,
                           note=note if x_axis == dynamics.STEP_AXIS else "")


def in_bits_per_byte(h: dict) -> dict:
    """A history with losses in bits per byte: validation as logged (val_bpb), training converted
    with the same evaluation's factor (1 / (ln 2 * bytes per token)), so BPE and byte runs share an axis."""
    out = dict(h)
    val = np.asarray(h["val_loss"], float)
    bpb = np.asarray(h.get("val_bpb", np.full(val.shape, np.nan)), float)
    factor = np.where(np.isfinite(bpb) & (val > 0), bpb / np.where(val > 0, val, 1.0), 1.0 / np.log(2))
    out["val_loss"], out["train_loss"] = bpb, np.asarray(h["train_loss"], float) * factor
    return out


def update_speed(workspace: Workspace, smoothing, x_axis=dynamics.STEP_AXIS):
    hs = {name: h for name, h in histories(workspace).items() if np.isfinite(h["tokens_per_s"]).any()}
    return fig_tokens_per_second(hs, smoothing=min(0.95, as_float(smoothing, 0.0)),
                                 x_axis=dynamics.time_axis(hs, x_axis)[0])


def _index(value) -> int | None:
    """A layer / head dropdown's value as an index (None for "all")."""
    return None if value in (None, "all") else int(value)


def _fitting(hs: dict, layer: int | None, head: int | None, key: str) -> tuple[dict, str]:
    """The runs whose ``key`` array [S, L, H] has the layer and head asked for, and a note on the others."""
    kept = {n: h for n, h in hs.items()
            if (layer is None or layer < h[key].shape[1]) and (head is None or head < h[key].shape[2])}
    left = sorted(set(hs) - set(kept))
    return kept, (f"Left out (no such layer / head): {', '.join(left)}." if left else "")


@ms.model_callback(extra=(ms.MESSAGE,), requires=("run",))
def update_lambda(workspace: Workspace, run, quantity, head, show=RUNS, layer="all", x_axis=dynamics.STEP_AXIS):
    """Lambda statistics over steps -- every tau run overlaid, or the layers of the picked run -- and
    the drift note of the picked run."""
    quantity = quantity or "lambda_q"
    h = histories(workspace).get(run)
    if h is None:
        return ms.empty(f"The history of {run} cannot be read."), ""
    key = f"{quantity}_mean"
    calibrated = workspace.runs.info(run).model.tau_mode == "calibrated"
    note = drift_note(run, drift(h, quantity), quantity, calibrated) if key in h else (
        ms.no_lambda(run) if h["kind"] != "tau" else f"{run} logged no lambda statistics.")
    if show == LAYERS:
        if key not in h:
            return ms.empty(f"{run} has no lambda statistics.<br>Pick a tau run, or show every tau run."), note
        return fig_lambda_over_steps(h["step"], h[key], h[f"{quantity}_p05"], h[f"{quantity}_p95"],
                                     head=_index(head), quantity=quantity), note
    taus, skipped = _fitting(dynamics.tau_runs(histories(workspace)), _index(layer), _index(head), key)
    x_axis, axis_note = dynamics.time_axis(taus, x_axis)
    series = {n: {"step": t["step"], "elapsed_s": t["elapsed_s"], "mean": t[key], "p05": t[f"{quantity}_p05"],
                  "p95": t[f"{quantity}_p95"], "kind": "tau"} for n, t in taus.items()}
    text = " ".join(t for t in (axis_note if x_axis == dynamics.STEP_AXIS else "", skipped) if t)
    return fig_lambda_runs(series, quantity=quantity, layer=_index(layer), head=_index(head), x_axis=x_axis,
                           note=text), note


def update_tau(workspace: Workspace, layer, x_axis=dynamics.STEP_AXIS):
    """tau (logged) and the mean Rayleigh energy of q and k (logged, or computed from the saved
    checkpoints) of every tau run over steps."""
    hs = {n: h for n, h in histories(workspace).items() if h.get("kind") == "tau"}
    if not hs:
        return ms.empty("No tau run is loaded: tau and the Rayleigh energy belong to tau attention.")
    runs, skipped = _fitting({n: h for n, h in hs.items() if "tau" in h}, _index(layer), None, "tau")
    x_axis, axis_note = dynamics.time_axis(runs, x_axis)
    series, computed = {}, []
    for name, h in runs.items():
        energy = dynamics.energy_over_steps(workspace, name, h)
        if energy is not None and energy["source"] == dynamics.FROM_CHECKPOINTS:
            computed.append(name)
        series[name] = {"step": h["step"], "elapsed_s": h["elapsed_s"], "tau": h.get("tau"), "energy": energy,
                        "tau_mode": workspace.runs.info(name).model.tau_mode, "kind": "tau"}
    notes = [axis_note if x_axis == dynamics.STEP_AXIS else "", skipped]
    if computed:
        n, T = dynamics.ENERGY_SAMPLE
        notes.append(f"Energy of {', '.join(computed)}: computed from the saved checkpoints on {n} validation "
                     f"sequences of {T} tokens (not recorded in the history).")
    return fig_tau_energy(series, layer=_index(layer), x_axis=x_axis, note=" ".join(t for t in notes if t))


def download_scalars(workspace: Workspace, n_clicks):
    """(dcc.Download data, message): the history scalars of the runs shown, as CSV built here."""
    if not n_clicks:
        return no_update, no_update
    runs = list(histories(workspace))
    if not runs:
        return no_update, "No run history to download."
    text = dynamics.scalars_csv(workspace, runs)
    return dcc.send_string(text, CSV_NAME), f"{CSV_NAME}: {len(runs)} runs, {text.count(chr(10)) - 1} evaluations"


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


def update_entropy(workspace: Workspace, layer, x_axis=dynamics.STEP_AXIS):
    hs = {name: h for name, h in histories(workspace).items() if "entropy" in h}
    if not hs:
        return ms.empty("No run logged attention entropy.")
    layer = None if layer in (None, "all") else int(layer)
    n_layers = min(h["entropy"].shape[1] for h in hs.values())
    if layer is not None and layer >= n_layers:
        layer = None
    x_axis = dynamics.time_axis(hs, x_axis)[0]
    return fig_entropy_over_steps({n: {"step": h["step"], "entropy": h["entropy"], "elapsed_s": h["elapsed_s"],
                                       "kind": h["kind"]} for n, h in hs.items()}, layer=layer, x_axis=x_axis)


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
X_AXIS = Key("x_axis", "train-x", default=dynamics.STEP_AXIS)
LOSS = recipe("training", "train-loss", update_loss,
              (SMOOTHING, Key("loss_axis", "train-axis", default="linear"), ms.RUN, ms.STEP, X_AXIS))
SPEED = recipe("training", "train-speed", update_speed, (SMOOTHING, X_AXIS))
LAMBDA = recipe("training", "train-lambda", update_lambda, (
    ms.RUN, Key("lambda_quantity", "train-quantity", default="lambda_q"),
    Key("lambda_head", "train-head", default="all"), Key("lambda_show", "train-lambda-show", default=RUNS),
    Key("lambda_layer", "train-lambda-layer", default="all"), X_AXIS), extra=[("train-drift", "children")])
TAU = recipe("training", "train-tau", update_tau, (Key("tau_layer", "train-tau-layer", default="all"), X_AXIS))
ENTROPY = recipe("training", "train-entropy", update_entropy,
                 (Key("entropy_layer", "train-layer", default="all"), X_AXIS))


def register_callbacks(app, workspace: Workspace) -> None:
    for made in (LOSS, SPEED, LAMBDA, TAU, ENTROPY):
        register_page_callback(app, workspace, made)
    app.callback(Output("train-csv-download", "data"), Output("train-csv-message", "children"),
                 Input("train-csv-button", "n_clicks"), prevent_initial_call=True)(ms.bind(workspace, download_scalars))
    app.callback(Output("run-picker", "value", allow_duplicate=True),
                 Output("step-picker", "value", allow_duplicate=True),
                 Input(figure_id("train-loss"), "clickData"),
                 prevent_initial_call=True)(ms.bind(workspace, load_checkpoint))
    register_url_sync(app, "train-url", [
        ("smoothing", "train-smoothing", "value"), ("axis", "train-axis", "value"),
        ("quantity", "train-quantity", "value"), ("head", "train-head", "value"),
        ("entlayer", "train-layer", "value"), ("x", "train-x", "value"), ("lambdashow", "train-lambda-show", "value"),
        ("lambdalayer", "train-lambda-layer", "value"), ("taulayer", "train-tau-layer", "value"),
    ])


def warm_up(workspace: Workspace) -> None:
    """Compute the checkpoint energies of runs whose history lacks them (after the first request)."""
    dynamics.warm_energies(workspace)


# ------------------------------------------------------------------ bench
def bench_cases(workspace: Workspace) -> list:
    run, step, _, _ = ms.export_state(workspace, {})
    return [
        ("training: loss curves, smoothing 0.6, log axis", lambda: update_loss(workspace, 0.6, "log", run, step)),
        ("training: throughput", lambda: update_speed(workspace, 0.6)),
        ("training: lambda over steps, head 1", lambda: update_lambda(workspace, run, "lambda_q", 1, LAYERS)),
        ("training: lambda of every tau run, layer 0, wall clock", lambda: update_lambda(
            workspace, run, "lambda_q", "all", RUNS, 0, dynamics.TIME_AXIS)),
        ("training: tau and energy (energies cached per checkpoint)", lambda: update_tau(workspace, "all")),
        ("training: tau and energy, layer 1, wall clock", lambda: update_tau(workspace, 1, dynamics.TIME_AXIS)),
        ("training: entropy over steps", lambda: update_entropy(workspace, "all")),
        ("training: scalars as CSV", lambda: download_scalars(workspace, 1)),
        ("training: click a checkpoint", lambda: load_checkpoint(
            workspace, {"points": [{"customdata": [run, step]}]})),
    ]

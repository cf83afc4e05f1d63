"""Figures over training: loss curves, lambda and entropy over steps, speed (cache and latency: :mod:`.memory`).

A *history* is a plain dict of 1-D arrays for one run:

- ``step``, ``train_loss`` (required, one value per logged step);
- ``val_loss`` (aligned with ``step``, NaN where not evaluated) or ``val_loss`` with its
  own ``val_step``;
- ``tokens_per_s`` (optional, aligned with ``step``);
- ``kind`` (optional, "tau" or "dot"; otherwise guessed from the run name).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from workbench import theme
from workbench.figures._common import (
    GL_THRESHOLD,
    UI_ONLY,
    FigureInputError,
    as_array,
    described,
    fig_empty,
    history_series,
    make_compact,
    new_figure,
)
from workbench.figures.training_dynamics import add_note, shared_divisor, x_title, x_values


def ema(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard-style); NaNs are carried over.

    ``smoothing`` in [0, 1): 0 returns the values unchanged.
    """
    if not 0.0 <= smoothing < 1.0:
        raise FigureInputError(f"smoothing must be in [0, 1), got {smoothing}")
    if smoothing == 0.0:
        return values.astype(float)
    out = np.empty(values.size)
    last, weight = 0.0, 0.0
    for i, v in enumerate(values):
        if np.isfinite(v):
            last = smoothing * last + (1.0 - smoothing) * v
            weight = smoothing * weight + (1.0 - smoothing)
        out[i] = last / weight if weight > 0 else np.nan
    return out


def _history(run: str, h: Mapping, fn: str) -> dict[str, np.ndarray]:
    """Checked arrays of one run's history (see the module docstring)."""
    if not isinstance(h, Mapping) or "step" not in h:
        raise FigureInputError(f"{fn}: history of run {run!r} must be a dict with a 'step' array")
    step = as_array(h["step"], f"{run}.step", fn, ndim=1)
    out = {"step": step}
    for key in ("train_loss", "tokens_per_s", "elapsed_s"):
        if key in h and h[key] is not None:
            out[key] = as_array(h[key], f"{run}.{key}", fn, shape=(step.size,))
    if h.get("val_loss") is not None:
        val_step = as_array(h.get("val_step", step), f"{run}.val_step", fn, ndim=1)
        val = as_array(h["val_loss"], f"{run}.val_loss", fn, shape=(val_step.size,))
        keep = np.isfinite(val)
        out["val_step"], out["val_loss"] = val_step[keep], val[keep]
    return out


def _elapsed_at(h: dict[str, np.ndarray], steps: np.ndarray) -> np.ndarray | None:
    """Elapsed seconds at ``steps`` (interpolated in the history's elapsed_s), None if unrecorded."""
    t = h.get("elapsed_s")
    if t is None or not np.isfinite(t).any():
        return None
    ok = np.isfinite(t)
    return np.interp(steps, h["step"][ok], t[ok])


def _kinds(histories: Mapping[str, Mapping]) -> dict[str, str | None]:
    return {str(run): (h.get("kind") if isinstance(h, Mapping) else None)
            for run, h in histories.items()}


@described("Training and validation loss of each run (tau in blue, dot in vermillion); "
           "diamonds are saved checkpoints, click one to load it.")
def fig_loss_curves(histories: Mapping[str, Mapping], *, smoothing: float = 0.0,
                    log_y: bool = False, selected_step: int | None = None,
                    selected_run: str | None = None,
                    checkpoints: Mapping[str, list[int]] | None = None, unit: str = "nats",
                    x_axis: str = "step", note: str = "", compact: bool = False) -> go.Figure:
    """Train (dotted) and validation (solid) loss per run, with checkpoint markers.

    Parameters
    ----------
    histories : dict run name -> history (module docstring)
    smoothing : float in [0, 1)
        EMA smoothing of the training loss.
    log_y : bool
        Log-scaled loss axis.
    selected_step, selected_run : optional
        The chosen checkpoint, marked with a vertical line (and a ring on that run).
    checkpoints : dict run -> list of steps, optional
        Steps with a saved checkpoint, drawn as diamonds on the validation curve.
    unit : "nats" (per token) or "bpb" (bits per UTF-8 byte: comparable across tokenizers)
        What the losses are in; only the axis title changes.
    x_axis : "step", or "time" (wall-clock: each history's ``elapsed_s``, required then)
    note : str
        An on-screen line above the plot.
    compact : bool
        Draw it small (:func:`~workbench.figures._common.make_compact`), with one legend entry
        per run (its validation curve) and the selected checkpoint marked but not listed.

    Every point's ``customdata`` is ``[run, step]`` so a click selects a checkpoint.
    """
    fn = "fig_loss_curves"
    runs = {str(r): _history(str(r), h, fn) for r, h in histories.items()}
    runs = {r: h for r, h in runs.items() if h["step"].size}
    if not runs:
        return fig_empty("No training history yet", compact=compact)
    colors = theme.series_colors(list(runs), _kinds(histories))
    total = sum(h["step"].size + h.get("val_step", np.empty(0)).size for h in runs.values())
    cls = go.Scattergl if total >= GL_THRESHOLD else go.Scatter
    divisor, time_unit = shared_divisor([h.get("elapsed_s") for h in runs.values()], x_axis)

    def x_of(h, steps):  # the x of points at these steps of run h
        return x_values(steps, _elapsed_at(h, steps) if x_axis == "time" else None, x_axis, divisor)

    fig = new_figure(hovermode="closest", uirevision="loss-curves")
    for run, h in runs.items():
        color = colors[run]
        if "train_loss" in h:
            y = ema(h["train_loss"], smoothing)
            fig.add_trace(cls(x=x_of(h, h["step"]), y=y, mode="lines", name=f"{run} train",
                              legendgroup=run, line=dict(color=color, width=1.2, dash="dot"),
                              showlegend=not compact or not h.get("val_step", np.empty(0)).size,
                              customdata=[[run, int(s)] for s in h["step"]],
                              hovertemplate=f"{run}<br>step %{{customdata[1]}}<br>train %{{y:.4f}}<extra></extra>"))
        if h.get("val_step") is not None and h["val_step"].size:
            fig.add_trace(cls(x=x_of(h, h["val_step"]), y=h["val_loss"], mode="lines+markers",
                              name=f"{run} val", legendgroup=run,
                              line=dict(color=color, width=2), marker=dict(size=5),
                              customdata=[[run, int(s)] for s in h["val_step"]],
                              hovertemplate=f"{run}<br>step %{{customdata[1]}}<br>val %{{y:.4f}}<extra></extra>"))
    for run, steps in (checkpoints or {}).items():
        h = runs.get(str(run))
        if h is None or not len(steps):
            continue
        steps = np.asarray(sorted(steps), dtype=float)
        fig.add_trace(cls(x=x_of(h, steps), y=_loss_at(h, steps), mode="markers",
                          name=f"{run} checkpoints ({steps.size})", legendgroup=str(run),
                          showlegend=not compact,
                          customdata=[[str(run), int(s)] for s in steps],
                          marker=dict(symbol="diamond", size=10, color=colors[str(run)],
                                      line=dict(color="white", width=1)),
                          hovertemplate=f"{run}<br>checkpoint at step %{{customdata[1]}}<br>loss %{{y:.4f}}"
                                        "<br><i>click to load</i><extra></extra>"))
    h = runs.get(str(selected_run)) if selected_run is not None else None
    if selected_step is not None and (x_axis == "step" or h is not None):  # screen-only: paper export drops UI_ONLY
        at = float(x_of(h, np.array([selected_step], float))[0]) if h is not None else float(selected_step)
        fig.add_shape(type="line", xref="x", yref="paper", x0=at, x1=at,
                      y0=0, y1=1, name=UI_ONLY, line=dict(color="black", dash="dash", width=1))
        fig.add_annotation(xref="x", yref="paper", x=at, y=1.0, yanchor="bottom",
                           showarrow=False, text=f"step {selected_step}", name=UI_ONLY)
        if h is not None:
            fig.add_trace(cls(x=[at], y=_loss_at(h, np.array([selected_step], float)),
                              mode="markers", name=f"selected: {selected_run} @ {selected_step}",
                              showlegend=not compact,
                              customdata=[[str(selected_run), int(selected_step)]], meta=UI_ONLY,
                              marker=dict(symbol="circle-open", size=18, color="black",
                                          line=dict(width=2)),
                              hovertemplate="selected checkpoint<extra></extra>"))
    add_note(fig, note, width=140)
    fig.update_xaxes(title_text=x_title(x_axis, time_unit))
    title = "loss (bits / byte)" if unit == "bpb" else "loss (nats / token)"
    fig.update_yaxes(title_text=title, type="log" if log_y else "linear")
    return make_compact(fig) if compact else fig


def _loss_at(h: dict[str, np.ndarray], steps: np.ndarray) -> np.ndarray:
    """Validation loss at ``steps`` (interpolated), or training loss when never evaluated."""
    if h.get("val_step") is not None and h["val_step"].size:
        return np.interp(steps, h["val_step"], h["val_loss"])
    if "train_loss" in h:
        return np.interp(steps, h["step"], h["train_loss"])
    return np.full(steps.shape, np.nan)


@described("How lambda moved during training, one line per layer with its 5-95 % band; "
           "SPEC expects lambda to drift down as the loss falls.")
def fig_lambda_over_steps(steps, mean, p05=None, p95=None, *, head: int | None = None,
                          quantity: str = "lambda_q") -> go.Figure:
    """Lambda statistics per layer over training steps.

    Parameters
    ----------
    steps : array [S]
    mean : array [S, L, H]
        Mean lambda per step, layer and head.
    p05, p95 : array [S, L, H], optional
        5th / 95th percentiles, drawn as a band.
    head : int, optional
        Show this head; by default heads are averaged (the band is then the mean of
        the heads' percentiles, a summary rather than a pooled percentile).
    """
    fn = "fig_lambda_over_steps"
    steps = as_array(steps, "steps", fn, ndim=1)
    mean = as_array(mean, "mean", fn, ndim=3)
    if mean.shape[0] != steps.size:
        raise FigureInputError(f"{fn}: mean has {mean.shape[0]} steps but steps has {steps.size}")
    if steps.size == 0:
        return fig_empty("No lambda statistics logged yet")
    bands = [as_array(b, name, fn, shape=mean.shape) if b is not None else None
             for b, name in ((p05, "p05"), (p95, "p95"))]
    n_layers, n_heads = mean.shape[1:]
    if head is not None and not 0 <= head < n_heads:
        raise FigureInputError(f"{fn}: head {head} is outside 0..{n_heads - 1}")

    def pick(a):  # [S, L, H] -> [S, L]
        return a[:, :, head] if head is not None else a.mean(axis=2)

    m = pick(mean)
    lo, hi = (pick(b) if b is not None else None for b in bands)
    colors = theme.ordinal_colors(n_layers)
    fig = new_figure(hovermode="x unified")
    for layer in range(n_layers):
        if lo is not None and hi is not None:
            fig.add_trace(go.Scatter(
                x=np.concatenate([steps, steps[::-1]]),
                y=np.concatenate([hi[:, layer], lo[:, layer][::-1]]), fill="toself", mode="none",
                fillcolor=theme.with_alpha(colors[layer], 0.15), line=dict(width=0),
                hoverinfo="skip", legendgroup=f"L{layer}", showlegend=False,
                name=f"layer {layer} 5-95%"))
        fig.add_trace(go.Scatter(x=steps, y=m[:, layer], mode="lines", name=f"layer {layer}",
                                 legendgroup=f"L{layer}", line=dict(color=colors[layer], width=1.8),
                                 hovertemplate=f"layer {layer}: %{{y:.4f}}<extra></extra>"))
    which = f"head {head}" if head is not None else "mean over heads"
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text=f"{quantity} ({which})", range=[0, 1])
    return fig


@described("Attention entropy (fraction of uniform) during training: a run stuck at 1.0 "
           "attends uniformly; the band spans the heads.")
def fig_entropy_over_steps(runs: Mapping[str, Mapping], *, layer: int | None = None,
                           x_axis: str = "step") -> go.Figure:
    """Mean normalised attention entropy per run over steps, with the min-max band over heads.

    Parameters
    ----------
    runs : dict run name -> {"step": [S], "entropy": [S, L, H], "elapsed_s": [S] (for x_axis "time")}
        Entropy as a fraction of the uniform distribution's (1.0 = uniform).
    layer : int, optional
        Restrict to one layer (default: all layers).
    x_axis : "step" or "time"
    """
    fn = "fig_entropy_over_steps"
    colors = theme.series_colors([str(r) for r in runs], _kinds(runs))
    divisor, time_unit = shared_divisor([r.get("elapsed_s") for r in runs.values() if isinstance(r, Mapping)], x_axis)
    fig = new_figure(hovermode="x unified")
    drawn = 0
    for run, r in runs.items():
        run = str(run)
        steps, ent = history_series(fn, run, r, "entropy")
        if steps.size == 0:
            continue
        if layer is not None:
            if not 0 <= layer < ent.shape[1]:
                raise FigureInputError(f"{fn}: layer {layer} is outside 0..{ent.shape[1] - 1}")
            ent = ent[:, layer : layer + 1]
        flat = ent.reshape(ent.shape[0], -1)  # [S, L*H]
        color = colors[run]
        steps = x_values(steps, r.get("elapsed_s"), x_axis, divisor)
        fig.add_trace(go.Scatter(
            x=np.concatenate([steps, steps[::-1]]),
            y=np.concatenate([flat.max(axis=1), flat.min(axis=1)[::-1]]), fill="toself", mode="none",
            fillcolor=theme.with_alpha(color, 0.15), line=dict(width=0), hoverinfo="skip",
            legendgroup=run, showlegend=False, name=f"{run} head range"))
        fig.add_trace(go.Scatter(x=steps, y=flat.mean(axis=1), mode="lines", name=run,
                                 legendgroup=run, line=dict(color=color, width=2),
                                 hovertemplate=f"{run}: %{{y:.5f}}<extra></extra>"))
        drawn += 1
    if not drawn:
        return fig_empty("No entropy logged yet")
    fig.add_hline(y=1.0, line=dict(dash="dash", color="black", width=1),
                  annotation_text="uniform", annotation_position="bottom right")
    fig.update_xaxes(title_text=x_title(x_axis, time_unit))
    scope = f"layer {layer}" if layer is not None else "all layers"
    fig.update_yaxes(title_text=f"entropy / uniform ({scope})")
    return fig


@described("Training throughput of each run in tokens per second (median in the legend).")
def fig_tokens_per_second(histories: Mapping[str, Mapping], *, smoothing: float = 0.0,
                          x_axis: str = "step") -> go.Figure:
    """Tokens/s over steps, from each history's ``tokens_per_s`` array.

    Parameters
    ----------
    histories : dict run name -> history (module docstring)
    smoothing : float in [0, 1)
        EMA smoothing.
    x_axis : "step" or "time" (each history's ``elapsed_s``)
    """
    fn = "fig_tokens_per_second"
    runs = {str(r): _history(str(r), h, fn) for r, h in histories.items()}
    runs = {r: h for r, h in runs.items() if "tokens_per_s" in h and h["step"].size}
    if not runs:
        return fig_empty("No throughput logged yet")
    colors = theme.series_colors(list(runs), _kinds(histories))
    divisor, time_unit = shared_divisor([h.get("elapsed_s") for h in runs.values()], x_axis)
    fig = new_figure(hovermode="x unified")
    for run, h in runs.items():
        tps = h["tokens_per_s"]
        median = float(np.nanmedian(tps))
        x = x_values(h["step"], h.get("elapsed_s"), x_axis, divisor)
        fig.add_trace(go.Scatter(x=x, y=ema(tps, smoothing), mode="lines",
                                 name=f"{run} (median {median:,.0f} tok/s)",
                                 line=dict(color=colors[run], width=1.5),
                                 hovertemplate=f"{run}: %{{y:,.0f}} tok/s<extra></extra>"))
    fig.update_xaxes(title_text=x_title(x_axis, time_unit))
    fig.update_yaxes(title_text="tokens / s", rangemode="tozero")
    return fig

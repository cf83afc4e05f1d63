"""Figures of training dynamics across runs: tau with the mean Rayleigh energy, and lambda of every
tau run overlaid; plus the step / wall-clock x axis the Training page's figures share.

A run's series are plain dicts of arrays (see each function); ``x_axis`` is "step" or "time"
(wall-clock seconds since the run started, from the history's ``elapsed_s``).
"""

from __future__ import annotations

from collections.abc import Mapping

import textwrap

import numpy as np
import plotly.graph_objects as go

from workbench import theme
from workbench.figures._common import (FigureInputError, as_array, described, fig_empty, history_series,
                                       new_figure, ui_note)

X_AXES = ("step", "time")
PER_VECTOR_TAU = ("median", "mean", "percentile")  # tau modes with one tau per vector: no layer tau to draw


def time_unit(max_seconds: float) -> tuple[float, str]:
    """(divisor, unit) that writes wall-clock seconds readably: s below 10 min, min below 5 h, else h."""
    if not np.isfinite(max_seconds) or max_seconds < 600:
        return 1.0, "s"
    return (60.0, "min") if max_seconds < 5 * 3600 else (3600.0, "h")


def x_values(step: np.ndarray, elapsed: np.ndarray | None, x_axis: str, divisor: float = 1.0) -> np.ndarray:
    """The x of each point: its step, or its elapsed time / divisor on the wall-clock axis."""
    if x_axis not in X_AXES:
        raise FigureInputError(f"x_axis must be one of {X_AXES}, got {x_axis!r}")
    if x_axis == "step":
        return np.asarray(step, dtype=float)
    if elapsed is None:
        raise FigureInputError("x_axis 'time' needs the elapsed_s of every point")
    return np.asarray(elapsed, dtype=float) / divisor


def x_title(x_axis: str, unit: str = "s") -> str:
    return "step" if x_axis == "step" else f"wall-clock time ({unit})"


def shared_divisor(series: list, x_axis: str) -> tuple[float, str]:
    """One time unit for all runs of a figure, from the largest elapsed time among ``series``."""
    if x_axis != "time":
        return 1.0, "s"
    peaks = [float(np.nanmax(e)) for e in series if e is not None and np.size(e) and np.isfinite(e).any()]
    return time_unit(max(peaks) if peaks else float("nan"))


NOTE_WIDTH = 90  # characters per line of an on-screen note
LEGEND_BELOW = dict(orientation="h", x=0.0, xanchor="left", y=-0.2, yanchor="top")


def add_note(fig: go.Figure, text: str, *, width: int = NOTE_WIDTH) -> None:
    """An on-screen note (screen only: paper export drops it) above the plot's top-left corner,
    wrapped to ``width`` characters, with the top margin grown to hold it."""
    if not text:
        return
    lines = textwrap.wrap(text, width) or [""]
    fig.add_annotation(**ui_note("<br>".join(lines), x=0.0, xanchor="left", y=1.02, align="left"))
    fig.update_layout(margin=dict(t=30 + 16 * len(lines)))


def _run_colors(runs: Mapping[str, Mapping]) -> dict[str, str]:
    kinds = {str(r): (v.get("kind") if isinstance(v, Mapping) else None) for r, v in runs.items()}
    return theme.series_colors([str(r) for r in runs], kinds)


def _layer_pick(a: np.ndarray, layer: int | None, fn: str, name: str) -> np.ndarray:
    """[S, L, H] or [S, L] -> [S]: one layer (mean over heads) or the mean over layers and heads."""
    if layer is not None:
        if not 0 <= layer < a.shape[1]:
            raise FigureInputError(f"{fn}: layer {layer} is outside 0..{a.shape[1] - 1} of {name}")
        a = a[:, layer : layer + 1]
    return a.reshape(a.shape[0], -1).mean(axis=1)


@described("Calibrated tau (solid) and the mean Rayleigh energy of queries (dashed) and keys (dotted) "
           "over training, one colour per tau run; tau tracks the energies' running median.")
def fig_tau_energy(runs: Mapping[str, Mapping], *, layer: int | None = None, x_axis: str = "step",
                   note: str = "") -> go.Figure:
    """tau and mean energy of each tau run over steps (or wall-clock time).

    Parameters
    ----------
    runs : dict run -> {"step": [S], "elapsed_s": [S] (for x_axis "time"), "tau": [S, L] (optional),
        "tau_mode": str, "energy": {"step": [E], "elapsed_s": [E], "energy_q": [E, L, H],
        "energy_k": [E, L, H], "source": "history" | "checkpoints"} or None}
        Energies from checkpoints are marked as such in the legend (fewer points, on a fixed
        validation sample rather than the run's own evaluations).
    layer : int, optional
        One layer (mean over its heads); by default the mean over layers (and heads).
    x_axis : "step" or "time"
    note : str
        An on-screen line above the plot (e.g. why the axis is in steps).
    """
    fn = "fig_tau_energy"
    colors = _run_colors(runs)
    divisor, unit = shared_divisor([r.get("elapsed_s") for r in runs.values() if isinstance(r, Mapping)], x_axis)
    fig = new_figure(hovermode="closest", uirevision="tau-energy")
    drawn = 0
    for run, r in runs.items():
        run = str(run)
        if not isinstance(r, Mapping) or "step" not in r:
            raise FigureInputError(f"{fn}: runs[{run!r}] needs a 'step' array")
        color = colors[run]
        steps = as_array(r["step"], f"{run}.step", fn, ndim=1)
        if r.get("tau") is not None and r.get("tau_mode") not in PER_VECTOR_TAU and steps.size:
            tau = as_array(r["tau"], f"{run}.tau", fn, ndim=2)
            if tau.shape[0] != steps.size:
                raise FigureInputError(f"{fn}: {run}.tau has {tau.shape[0]} steps, step has {steps.size}")
            x = x_values(steps, r.get("elapsed_s"), x_axis, divisor)
            label = "tau" if r.get("tau_mode") in (None, "calibrated") else f"tau ({r['tau_mode']})"
            fig.add_trace(go.Scatter(x=x, y=_layer_pick(tau, layer, fn, f"{run}.tau"), mode="lines",
                                     name=f"{run}: {label}", legendgroup=run, line=dict(color=color, width=2),
                                     customdata=steps, hovertemplate=f"{run} step %{{customdata}}<br>{label} "
                                                                     "%{y:.4f}<extra></extra>"))
            drawn += 1
        energy = r.get("energy")
        if not energy:
            continue
        e_steps = as_array(energy["step"], f"{run}.energy.step", fn, ndim=1)
        if not e_steps.size:
            continue
        ex = x_values(e_steps, energy.get("elapsed_s"), x_axis, divisor)
        where = " (checkpoints)" if energy.get("source") == "checkpoints" else ""
        for name, dash, symbol in (("energy_q", "dash", "circle"), ("energy_k", "dot", "square")):
            e = as_array(energy[name], f"{run}.{name}", fn, ndim=3)
            if e.shape[0] != e_steps.size:
                raise FigureInputError(f"{fn}: {run}.{name} has {e.shape[0]} steps, step has {e_steps.size}")
            fig.add_trace(go.Scatter(
                x=ex, y=_layer_pick(e, layer, fn, f"{run}.{name}"), mode="lines+markers",
                name=f"{run}: mean E({name[-1]}){where}", legendgroup=run,
                line=dict(color=color, width=1.5, dash=dash), marker=dict(size=6, symbol=symbol, color=color),
                customdata=e_steps, hovertemplate=f"{run} step %{{customdata}}<br>mean E({name[-1]}){where} "
                                                  "%{y:.4f}<extra></extra>"))
            drawn += 1
    if not drawn:
        return fig_empty("No tau run logged tau or energies")
    add_note(fig, note)
    fig.update_layout(height=520, legend=LEGEND_BELOW)
    fig.update_xaxes(title_text=x_title(x_axis, unit))
    scope = f"layer {layer}, mean of heads" if layer is not None else "mean of layers and heads"
    fig.update_yaxes(title_text=f"tau, energy ({scope})", rangemode="tozero")
    return fig


@described("Mean lambda of every tau run over training (one colour per run) with its 5-95 % band; "
           "SPEC expects lambda to drift down as the loss falls.")
def fig_lambda_runs(runs: Mapping[str, Mapping], *, quantity: str = "lambda_q", layer: int | None = None,
                    head: int | None = None, x_axis: str = "step", note: str = "") -> go.Figure:
    """Lambda statistics of several runs overlaid.

    Parameters
    ----------
    runs : dict run -> {"step": [S], "elapsed_s": [S] (for x_axis "time"), "mean": [S, L, H],
        "p05" / "p95": [S, L, H] (optional band)}
    quantity : "lambda_q" or "lambda_k" (axis title only)
    layer, head : int, optional
        Restrict to one layer and / or head; otherwise means are taken (the band is then the mean
        of the percentiles, a summary rather than a pooled percentile).
    x_axis : "step" or "time"
    note : str
        An on-screen line above the plot.
    """
    fn = "fig_lambda_runs"
    colors = _run_colors(runs)
    divisor, unit = shared_divisor([r.get("elapsed_s") for r in runs.values() if isinstance(r, Mapping)], x_axis)
    fig = new_figure(hovermode="x unified", uirevision="lambda-runs")
    drawn = 0
    for run, r in runs.items():
        run = str(run)
        steps, mean = history_series(fn, run, r, "mean")
        if not steps.size:
            continue
        if head is not None and not 0 <= head < mean.shape[2]:
            raise FigureInputError(f"{fn}: head {head} is outside 0..{mean.shape[2] - 1} of {run}")

        def pick(a, name):  # [S, L, H] -> [S]
            a = as_array(a, f"{run}.{name}", fn, shape=mean.shape)
            return _layer_pick(a[:, :, head] if head is not None else a, layer, fn, f"{run}.{name}")

        x = x_values(steps, r.get("elapsed_s"), x_axis, divisor)
        color = colors[run]
        if r.get("p05") is not None and r.get("p95") is not None:
            fig.add_trace(go.Scatter(
                x=np.concatenate([x, x[::-1]]), y=np.concatenate([pick(r["p95"], "p95"), pick(r["p05"], "p05")[::-1]]),
                fill="toself", mode="none", fillcolor=theme.with_alpha(color, 0.15), line=dict(width=0),
                hoverinfo="skip", legendgroup=run, showlegend=False, name=f"{run} 5-95%"))
        fig.add_trace(go.Scatter(x=x, y=pick(mean, "mean"), mode="lines", name=run, legendgroup=run,
                                 line=dict(color=color, width=2), customdata=steps,
                                 hovertemplate=f"{run} (step %{{customdata}}): %{{y:.4f}}<extra></extra>"))
        drawn += 1
    if not drawn:
        return fig_empty("No tau run logged lambda statistics")
    add_note(fig, note)
    fig.update_layout(height=520, legend=LEGEND_BELOW)
    which = ", ".join(p for p in (f"layer {layer}" if layer is not None else "mean of layers",
                                  f"head {head}" if head is not None else "mean of heads"))
    fig.update_xaxes(title_text=x_title(x_axis, unit))
    fig.update_yaxes(title_text=f"{quantity} ({which})", range=[0, 1])
    return fig

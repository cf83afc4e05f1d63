"""Figures of the Memory page: KV-cache size and decode latency against context length,
for the tau and dot models side by side with their ratio."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench import theme
from workbench.figures._common import (
    FigureInputError,
    as_array,
    described,
    fig_empty,
)
from workbench.figures.ticks import byte_ticks, format_bytes


def _per_model(data: Mapping[str, object], n: int, name: str, fn: str,
               allow_repeats: bool = False) -> dict[str, np.ndarray]:
    if not isinstance(data, Mapping) or not data:
        raise FigureInputError(f"{fn}: {name} must be a non-empty dict model -> array")
    out = {}
    for k, v in data.items():
        arr = as_array(v, f"{name}[{k!r}]", fn)
        if arr.shape[:1] != (n,) or arr.ndim > (2 if allow_repeats else 1):
            want = "[N] or [N, R]" if allow_repeats else "[N]"
            raise FigureInputError(f"{fn}: {name}[{k!r}] must have shape {want} with N = {n}, "
                                   f"got {arr.shape}")
        out[str(k)] = arr
    return out


def _tau_dot(names) -> tuple[str | None, str | None]:
    kinds = {theme.model_kind(n): n for n in names}
    return kinds.get("tau"), kinds.get("dot")


@described("KV-cache memory against context length for both models, and the measured tau/dot "
           "ratio beside the theoretical (D + 1) / 2D.")
def fig_kv_cache(context, bytes_by_model: Mapping[str, object], *, head_dim: int | None = None,
                 ratio_line: float | None = None) -> go.Figure:
    """Cache bytes versus context (top) and the tau/dot ratio (bottom).

    Parameters
    ----------
    context : array [N]
        Context lengths (tokens).
    bytes_by_model : dict model name -> array [N]
        Cache size in bytes; names are matched to kinds ("tau", "dot") for colours and
        for the ratio.
    head_dim : int, optional
        D; sets ``ratio_line = (D + 1) / (2 D)`` when ``ratio_line`` is not given.
    ratio_line : float, optional
        Theoretical ratio drawn as a dashed line.
    """
    fn = "fig_kv_cache"
    ctx = as_array(context, "context", fn, ndim=1)
    series = _per_model(bytes_by_model, ctx.size, "bytes", fn)
    if ctx.size == 0:
        return fig_empty("No cache measurements yet")
    if ratio_line is None and head_dim:
        ratio_line = (head_dim + 1) / (2 * head_dim)
    tau, dot = _tau_dot(series)
    with_ratio = tau is not None and dot is not None
    fig = make_subplots(rows=2 if with_ratio else 1, cols=1, shared_xaxes=True,
                        row_heights=[0.65, 0.35] if with_ratio else None, vertical_spacing=0.06)
    colors = theme.series_colors(list(series))
    for name, b in series.items():
        fig.add_trace(go.Scatter(x=ctx, y=b, mode="lines+markers", name=name,
                                 line=dict(color=colors[name]),
                                 customdata=[format_bytes(v) for v in b],
                                 hovertemplate=f"{name}<br>context %{{x}}<br>%{{customdata}}"
                                               "<extra></extra>"), row=1, col=1)
    log_x = ctx.min() > 0 and ctx.max() / ctx.min() >= 10
    all_bytes = np.concatenate([np.ravel(b) for b in series.values()])
    fig.update_yaxes(title_text="KV cache", row=1, col=1, type="log" if log_x else "linear",
                     **byte_ticks(all_bytes, log=log_x))
    if with_ratio:
        ratio = np.divide(series[tau], series[dot], out=np.full(ctx.size, np.nan),
                          where=series[dot] != 0)
        fig.add_trace(go.Scatter(x=ctx, y=ratio, mode="markers", name=f"{tau} / {dot} measured",
                                 marker=dict(color="black", size=7),
                                 hovertemplate="context %{x}<br>ratio %{y:.4f}<extra></extra>"),
                      row=2, col=1)
        if ratio_line is not None:
            fig.add_trace(go.Scatter(x=[ctx.min(), ctx.max()], y=[ratio_line] * 2, mode="lines",
                                     name=f"theory (D+1)/2D = {ratio_line:.3f}",
                                     line=dict(color=theme.NEUTRAL, dash="dash")), row=2, col=1)
        fig.update_yaxes(title_text="ratio", row=2, col=1, range=[0, 1.05])
    fig.update_xaxes(title_text="context (tokens)", row=2 if with_ratio else 1, col=1)
    fig.update_xaxes(type="log" if log_x else "linear")
    if log_x and ctx.size <= 12:
        fig.update_xaxes(tickmode="array", tickvals=ctx, ticktext=[f"{c:g}" for c in ctx])
    return fig


@described("Per-token decode latency against context length for each model (band = spread "
           "over repeats), and the tau/dot ratio.")
def fig_decode_latency(context, latency_ms: Mapping[str, object]) -> go.Figure:
    """Decode latency per token versus context.

    Parameters
    ----------
    context : array [N]
    latency_ms : dict model name -> array [N] or [N, R]
        Milliseconds per token; with R repeats the line is the median and the band
        the 10-90 % range.
    """
    fn = "fig_decode_latency"
    ctx = as_array(context, "context", fn, ndim=1)
    series = _per_model(latency_ms, ctx.size, "latency_ms", fn, allow_repeats=True)
    if ctx.size == 0:
        return fig_empty("No latency measurements yet")
    tau, dot = _tau_dot(series)
    with_ratio = tau is not None and dot is not None
    fig = make_subplots(rows=2 if with_ratio else 1, cols=1, shared_xaxes=True,
                        row_heights=[0.65, 0.35] if with_ratio else None, vertical_spacing=0.06)
    colors = theme.series_colors(list(series))
    medians = {}
    for name, lat in series.items():
        med = np.median(lat, axis=1) if lat.ndim == 2 else lat
        medians[name] = med
        if lat.ndim == 2 and lat.shape[1] > 1:
            p10, p90 = np.percentile(lat, [10, 90], axis=1)
            fig.add_trace(go.Scatter(x=np.concatenate([ctx, ctx[::-1]]),
                                     y=np.concatenate([p90, p10[::-1]]), fill="toself", mode="none",
                                     fillcolor=theme.with_alpha(colors[name], 0.2),
                                     line=dict(width=0), hoverinfo="skip", showlegend=False,
                                     legendgroup=name, name=f"{name} 10-90%"), row=1, col=1)
        fig.add_trace(go.Scatter(x=ctx, y=med, mode="lines+markers", name=name, legendgroup=name,
                                 line=dict(color=colors[name]),
                                 hovertemplate=f"{name}<br>context %{{x}}<br>%{{y:.3f}} ms/token"
                                               "<extra></extra>"), row=1, col=1)
    fig.update_yaxes(title_text="ms / token", rangemode="tozero", row=1, col=1)
    if with_ratio:
        ratio = medians[tau] / medians[dot]
        fig.add_trace(go.Scatter(x=ctx, y=ratio, mode="lines+markers", name=f"{tau} / {dot}",
                                 line=dict(color="black"),
                                 hovertemplate="context %{x}<br>ratio %{y:.3f}<extra></extra>"),
                      row=2, col=1)
        fig.add_hline(y=1.0, line=dict(color=theme.NEUTRAL, dash="dash", width=1), row=2, col=1)
        fig.update_yaxes(title_text=f"{tau} / {dot}", row=2, col=1)
    fig.update_xaxes(title_text="context (tokens)", row=2 if with_ratio else 1, col=1)
    return fig

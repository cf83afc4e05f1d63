"""Figures of attention: every head on a grid, one head of two models, their difference,
entropy, JS divergence and the tau map ordered by lambda.

"tau" is the Tauformer, "dot" the dot-product baseline; their colours come from
:data:`workbench.theme.MODEL_COLORS`. Attention maps are [T, T] with rows = queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench import theme
from workbench.figures._common import (
    MAX_HEATMAP_SIDE,
    FigureInputError,
    as_array,
    block_reduce,
    check_same_shape,
    content_height,
    described,
    downsample_note,
    fig_empty,
    make_compact,
    new_figure,
    subplot_axes,
    subplot_grid_layout,
    symmetric_range,
    token_labels,
    truncate,
)
from workbench.figures.ticks import count_ticks

MAX_GRID_PANELS = 256  # layer x head panels in one attention grid


def position_labels(tokens: Sequence[str], factor: int = 1) -> list[str]:
    """Unique category labels "pos·token" (or "start–end" for pooled blocks).

    Category axes keep the sequence order and show the token on hover without a
    T x T text array; the position prefix keeps repeated tokens apart.
    """
    n = len(tokens)
    if factor == 1:
        return [f"{i}\u00b7{truncate(tok, 16)}" for i, tok in enumerate(tokens)]
    return [f"{s}\u2013{min(s + factor, n) - 1}" for s in range(0, n, factor)]


def attention_heatmap(att: np.ndarray, tokens: list[str], *, zmin: float, zmax: float,
                       colorscale, name: str, value_label: str = "weight",
                       max_side: int = MAX_HEATMAP_SIDE, **extra) -> go.Heatmap:
    """A [T, T] map as a heatmap on token category axes, pooled beyond ``max_side``."""
    small, _, _, factors = block_reduce(att, max_side)
    labels = position_labels(tokens, factors[0])
    note = downsample_note(att.shape, factors)
    return go.Heatmap(z=small, x=labels, y=labels, zmin=zmin, zmax=zmax, colorscale=colorscale,
                      name=name, hovertemplate=(f"{name}<br>query %{{y}}<br>key %{{x}}<br>"
                                                f"{value_label} = %{{z:.4g}}{note}<extra></extra>"),
                      **extra)


def square_map(value, name: str, fn: str) -> np.ndarray:
    arr = as_array(value, name, fn, ndim=2)
    if arr.shape[0] != arr.shape[1]:
        raise FigureInputError(f"{fn}: {name} must be square [T, T], got {arr.shape}")
    return arr




@described("Attention weights of every head in every layer on one colour scale; click a "
           "panel to open that head.")
def fig_attention_grid(maps, *, title: str | None = None, zmax: float | None = None,
                       panel_side: int | None = None) -> go.Figure:
    """A layer x head grid of small attention heatmaps sharing one colour axis.

    Parameters
    ----------
    maps : array [L, H, T, T]
        Attention weights, rows = queries.
    zmax : float, optional
        Top of the shared colour scale (default: the largest weight).
    panel_side : int, optional
        Cells per panel side after pooling (default from the grid size, 8..128).

    Trace ``l * H + h`` is layer ``l``, head ``h``; each trace's ``meta`` holds
    ``{"layer": l, "head": h}`` for click callbacks.
    """
    fn = "fig_attention_grid"
    maps = as_array(maps, "maps", fn, ndim=4)
    n_layers, n_heads, t_q, t_k = maps.shape
    if maps.size == 0:
        return fig_empty("No attention captured yet")
    if n_layers * n_heads > MAX_GRID_PANELS:
        raise FigureInputError(f"{fn}: {n_layers}x{n_heads} panels is more than "
                               f"{MAX_GRID_PANELS}; pass a subset of layers or heads")
    side = panel_side or int(np.clip(512 // max(n_layers, n_heads), 8, 128))
    top = float(zmax) if zmax is not None else float(np.nanmax(maps)) or 1.0
    hidden = dict(showticklabels=False, showgrid=False, ticks="", showline=False)
    layout = subplot_grid_layout(n_layers, n_heads,
                                 horizontal_spacing=min(0.01, 0.5 / max(1, n_heads - 1)),
                                 vertical_spacing=min(0.015, 0.5 / max(1, n_layers - 1)),
                                 column_titles=[f"H{h}" for h in range(n_heads)],
                                 row_titles=[f"L{l}" for l in range(n_layers)],
                                 xaxis=hidden, yaxis=dict(hidden, autorange="reversed"))
    traces = []
    for l in range(n_layers):
        for h in range(n_heads):
            small, rc, cc, factors = block_reduce(maps[l, h], side)
            traces.append(dict(
                type="heatmap", z=small, x=cc, y=rc, coloraxis="coloraxis", meta={"layer": l, "head": h},
                name=f"L{l} H{h}", hovertemplate=(f"layer {l} head {h}<br>query \u2248 %{{y}}"
                                                  "<br>key \u2248 %{x}<br>weight %{z:.4g}"
                                                  + downsample_note((t_q, t_k), factors)
                                                  + "<extra></extra>"),
                **subplot_axes(n_layers, n_heads, l, h)))
    fig = go.Figure(data=traces, layout=layout)  # dicts: much faster than make_subplots + add_trace
    fig.update_layout(title=title, coloraxis=dict(colorscale=theme.SEQUENTIAL, cmin=0, cmax=top,
                                                  colorbar=dict(title=dict(text="weight"))),
                      height=content_height(n_layers, 80, 120, minimum=300),
                      meta=dict(aspect=min(1.6, (n_layers + 0.5) / max(1, n_heads)),
                                panel_side=side))
    return fig


@described("The same head of the Tauformer and of the dot-product baseline side by side, "
           "on one colour scale.")
def fig_attention_pair(tau_map, dot_map, tokens: Sequence[str] | None = None, *,
                       zmax: float | None = None, highlight_query: int | None = None,
                       names: tuple[str, str] = ("tau", "dot"), title: str | None = None) -> go.Figure:
    """Two attention maps with identical ``zmin``/``zmax``, optionally one query outlined.

    Parameters
    ----------
    tau_map, dot_map : array [T, T]
        Attention weights (rows = queries) of the two models.
    tokens : list of T str, optional
    zmax : float, optional
        Shared top of the colour scale (default: the larger maximum of the two maps).
    highlight_query : int, optional
        Query position outlined with a rectangle in both maps.
    names : (str, str)
        Panel titles; their model kinds pick the title colours.
    title : str, optional
        The figure title (e.g. the layer, head and outlined query).
    """
    fn = "fig_attention_pair"
    tau_map, dot_map = square_map(tau_map, "tau_map", fn), square_map(dot_map, "dot_map", fn)
    check_same_shape(fn, tau_map=tau_map, dot_map=dot_map)
    t = tau_map.shape[0]
    if t == 0:
        return fig_empty("No attention captured yet")
    tokens = token_labels(tokens, t, fn)
    top = float(zmax) if zmax is not None else symmetric_range(tau_map, dot_map)
    fig = make_subplots(rows=1, cols=2, subplot_titles=list(names), horizontal_spacing=0.12)
    for col, (att, name) in enumerate(zip((tau_map, dot_map), names), start=1):
        fig.add_trace(attention_heatmap(att, tokens, zmin=0.0, zmax=top, name=name,
                                         colorscale=theme.SEQUENTIAL, showscale=col == 2,
                                         colorbar=dict(title=dict(text="weight"))),
                      row=1, col=col)
    colors = theme.series_colors(list(names))
    for ann, name in zip(fig.layout.annotations, names):
        ann.font.color = colors[name]
    if highlight_query is not None:
        if not 0 <= int(highlight_query) < t:
            raise FigureInputError(f"{fn}: highlight_query {highlight_query} is outside 0..{t - 1}")
        factor = -(-t // MAX_HEATMAP_SIDE)
        row, n_cols = int(highlight_query) // factor, -(-t // factor)
        for col in (1, 2):
            fig.add_shape(type="rect", x0=-0.5, x1=n_cols - 0.5, y0=row - 0.5, y1=row + 0.5,
                          line=dict(color=theme.HIGHLIGHT, width=2), name=theme.UI_ONLY,  # a selection
                          row=1, col=col)
    fig.update_yaxes(autorange="reversed", showgrid=False)
    fig.update_yaxes(title_text="query", row=1, col=1)
    fig.update_yaxes(showticklabels=False, row=1, col=2)
    fig.update_xaxes(showgrid=False, tickangle=-60, title_text="key")
    fig.update_layout(title=title, meta=dict(aspect=0.5))
    return fig


@described("Where the Tauformer attends more (red) or less (blue) than the dot-product "
           "baseline; white means no difference.")
def fig_attention_difference(tau_map, dot_map, tokens: Sequence[str] | None = None, *,
                             zmax: float | None = None, title: str | None = None) -> go.Figure:
    """Diverging heatmap of ``tau_map - dot_map`` centred at 0 (``zmin = -zmax``).

    Parameters
    ----------
    tau_map, dot_map : array [T, T]
    tokens : list of T str, optional
    zmax : float, optional
        Top of the colour scale, ``zmin = -zmax`` (default: the largest |difference|); a cap
        below it keeps small differences visible.
    title : str, optional
    """
    fn = "fig_attention_difference"
    tau_map, dot_map = square_map(tau_map, "tau_map", fn), square_map(dot_map, "dot_map", fn)
    check_same_shape(fn, tau_map=tau_map, dot_map=dot_map)
    if tau_map.size == 0:
        return fig_empty("No attention captured yet")
    diff = tau_map - dot_map
    peak = float(zmax) if zmax is not None else symmetric_range(diff)
    fig = new_figure(title=title)
    fig.add_trace(attention_heatmap(diff, token_labels(tokens, len(diff), fn), zmin=-peak,
                                     zmax=peak, zmid=0.0, colorscale=theme.DIVERGING,
                                     name="tau \u2212 dot", value_label="difference",
                                     colorbar=dict(title=dict(text="tau \u2212 dot"))))
    fig.update_yaxes(autorange="reversed", showgrid=False, title_text="query")
    fig.update_xaxes(showgrid=False, tickangle=-60, title_text="key")
    fig.update_layout(meta=dict(aspect=0.9))
    return fig


def _model_grids(data: Mapping[str, object], fn: str) -> dict[str, np.ndarray]:
    if not isinstance(data, Mapping):
        raise FigureInputError(f"{fn}: expected a dict model name -> array [L, H]")
    grids = {str(k): as_array(v, f"{k!r}", fn, ndim=2) for k, v in data.items()}
    if len({g.shape for g in grids.values()}) > 1:
        raise FigureInputError(f"{fn}: all models need the same [L, H] shape, got "
                               + ", ".join(f"{k} {g.shape}" for k, g in grids.items()))
    return {k: g for k, g in grids.items() if g.size}


@described("Attention entropy of each head as a fraction of the uniform distribution's; "
           "bars reaching the dashed line at 1.0 mean the head attends (almost) uniformly.")
def fig_entropy_bars(entropy: Mapping[str, object], *, kind: str = "bars", compact: bool = False) -> go.Figure:
    """Per-head normalised attention entropy for each model.

    Parameters
    ----------
    entropy : dict model name -> array [L, H]
        Entropy divided by the entropy of uniform attention over the same keys (1.0 = uniform).
    kind : "bars" | "heatmap" | "deficit"
        Grouped bars per head; one heatmap per model; or ``1 - fraction`` on a log axis
        (separates 0.9999 from 0.99, which bars cannot).
    compact : bool
        Draw it small (:func:`~workbench.figures._common.make_compact`).
    """
    fn = "fig_entropy_bars"
    if kind not in ("bars", "heatmap", "deficit"):
        raise FigureInputError(f"{fn}: kind must be 'bars', 'heatmap' or 'deficit', got {kind!r}")
    grids = _model_grids(entropy, fn)
    if not grids:
        return fig_empty("No attention entropy computed yet", compact=compact)
    n_layers, n_heads = next(iter(grids.values())).shape
    colors = theme.series_colors(list(grids))
    if kind == "heatmap":
        fig = make_subplots(rows=1, cols=len(grids), subplot_titles=list(grids),
                            shared_yaxes=True, horizontal_spacing=0.06)
        for i, (name, g) in enumerate(grids.items(), start=1):
            fig.add_trace(go.Heatmap(z=g, x=[f"H{h}" for h in range(n_heads)],
                                     y=[f"L{l}" for l in range(n_layers)], coloraxis="coloraxis",
                                     name=name, texttemplate="%{z:.3f}" if g.size <= 150 else None,
                                     hovertemplate=f"{name}<br>%{{y}} %{{x}}<br>entropy / uniform"
                                                   " = %{z:.5f}<extra></extra>"), row=1, col=i)
        fig.update_yaxes(autorange="reversed")
        fig.update_layout(coloraxis=dict(colorscale=theme.SEQUENTIAL, cmin=0, cmax=1,
                                         colorbar=dict(title=dict(text="H / H_uniform"))))
        return make_compact(fig) if compact else fig
    labels = [f"L{l}\u00b7H{h}" for l in range(n_layers) for h in range(n_heads)]
    fig = new_figure(barmode="group", bargap=0.15)
    for name, g in grids.items():
        frac = g.reshape(-1)  # [L*H], layer-major like labels
        y = np.clip(1.0 - frac, 1e-7, None) if kind == "deficit" else frac
        fig.add_trace(go.Bar(x=labels, y=y, name=name, marker=dict(color=colors[name]),
                             customdata=frac,
                             hovertemplate=f"{name} %{{x}}<br>entropy / uniform = "
                                           "%{customdata:.6f}<extra></extra>"))
    if kind == "bars":
        fig.add_hline(y=1.0, line=dict(dash="dash", color="black", width=1),
                      annotation_text="uniform", annotation_position="top right")
        fig.update_yaxes(title_text="entropy / uniform entropy", range=[0, 1.08])
    else:
        deficits = [np.clip(1.0 - g.reshape(-1), 1e-7, None) for g in grids.values()]
        fig.update_yaxes(title_text="1 \u2212 entropy / uniform (log)", type="log",
                         **count_ticks(np.concatenate(deficits)))
    fig.update_xaxes(title_text="layer \u00b7 head", tickangle=-60)
    return make_compact(fig) if compact else fig


@described("Jensen-Shannon divergence between the two models' attention, head by head: "
           "0 means the heads attend identically.")
def fig_js_divergence(js, *, names: tuple[str, str] = ("tau", "dot"),
                      unit: str = "nats") -> go.Figure:
    """Heatmap of per-head JS divergence (mean over queries) between two models.

    Parameters
    ----------
    js : array [L, H]
        Divergence per layer and head (bounded by ln 2 in nats, 1 in bits).
    """
    fn = "fig_js_divergence"
    js = as_array(js, "js", fn, ndim=2)
    if js.size == 0:
        return fig_empty("No divergence computed yet")
    bound = np.log(2.0) if unit == "nats" else 1.0
    n_layers, n_heads = js.shape
    fig = new_figure(title=f"JS divergence {names[0]} vs {names[1]}")
    fig.add_trace(go.Heatmap(
        z=js, x=[f"H{h}" for h in range(n_heads)], y=[f"L{l}" for l in range(n_layers)],
        zmin=0.0, zmax=max(float(np.nanmax(js)), 1e-12), colorscale=theme.SEQUENTIAL_ALT,
        texttemplate="%{z:.3f}" if js.size <= 150 else None, xgap=1, ygap=1,
        colorbar=dict(title=dict(text=f"JS ({unit})")),
        hovertemplate=(f"%{{y}} %{{x}}<br>JS = %{{z:.4g}} {unit} (max {bound:.3g})"
                       "<extra></extra>")))
    fig.update_yaxes(autorange="reversed", showgrid=False, title_text="layer")
    fig.update_xaxes(showgrid=False, title_text="head")
    return fig


@described("The Tauformer's attention with queries and keys sorted by lambda: weight falls "
           "off with the lambda distance, so the map shows a band along the diagonal.")
def fig_sorted_attention(tau_map, lambda_q, lambda_k, tokens: Sequence[str] | None = None, *,
                         zmax: float | None = None, title: str | None = None) -> go.Figure:
    """The tau map re-ordered by ``lambda_q`` (rows) and ``lambda_k`` (columns).

    Parameters
    ----------
    tau_map : array [T, T]
    lambda_q, lambda_k : array [T]
    tokens : list of T str, optional
    zmax : float, optional
        Top of the colour scale (default: the largest weight).
    title : str, optional

    Side panels show the sorted lambda values; axis categories are "pos·token" of the
    original positions.
    """
    fn = "fig_sorted_attention"
    att = square_map(tau_map, "tau_map", fn)
    t = att.shape[0]
    lq = as_array(lambda_q, "lambda_q", fn, shape=(t,))
    lk = as_array(lambda_k, "lambda_k", fn, shape=(t,))
    if t == 0:
        return fig_empty("No attention captured yet")
    tokens = token_labels(tokens, t, fn)
    oq, ok = np.argsort(lq, kind="stable"), np.argsort(lk, kind="stable")
    sorted_att = att[oq][:, ok]  # [T, T] rows by lambda_q, cols by lambda_k
    small, _, _, factors = block_reduce(sorted_att, MAX_HEATMAP_SIDE)
    if factors == (1, 1):
        ylab = [f"{i}\u00b7{truncate(tokens[i], 16)}" for i in oq]
        xlab = [f"{i}\u00b7{truncate(tokens[i], 16)}" for i in ok]
        sq, sk = lq[oq], lk[ok]
    else:  # pooled: label by rank ranges, lambda averaged per block
        ylab = xlab = position_labels([""] * t, factors[0])
        sq = block_reduce(lq[oq][None, :], MAX_HEATMAP_SIDE)[0][0]
        sk = block_reduce(lk[ok][None, :], MAX_HEATMAP_SIDE)[0][0]
    n_rows, n_cols = len(ylab), len(xlab)
    fig = make_subplots(rows=2, cols=2, column_widths=[0.16, 0.84], row_heights=[0.16, 0.84],
                        horizontal_spacing=0.02, vertical_spacing=0.02,
                        specs=[[None, {}], [{}, {}]])
    line = dict(color=theme.MODEL_COLORS["tau"])
    fig.add_trace(go.Scatter(x=xlab, y=sk, mode="lines", name="lambda_k (sorted)", line=line,
                             showlegend=False,
                             hovertemplate="key %{x}<br>lambda_k %{y:.4f}<extra></extra>"),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=sq, y=ylab, mode="lines", name="lambda_q (sorted)", line=line,
                             showlegend=False,
                             hovertemplate="query %{y}<br>lambda_q %{x:.4f}<extra></extra>"),
                  row=2, col=1)
    fig.add_trace(go.Heatmap(z=small, x=xlab, y=ylab, zmin=0.0,
                             zmax=float(zmax) if zmax is not None else max(float(np.nanmax(att)), 1e-12),
                             colorscale=theme.SEQUENTIAL,
                             name="tau (sorted)", colorbar=dict(title=dict(text="weight")),
                             hovertemplate=("query %{y}<br>key %{x}<br>weight %{z:.4g}"
                                            + downsample_note(att.shape, factors)
                                            + "<extra></extra>")), row=2, col=2)
    # The strips use the heatmap's categories and cell edges so rows and columns line up;
    # the lowest lambda sits top-left.
    keys = dict(type="category", categoryorder="array", categoryarray=xlab,
                range=[-0.5, n_cols - 0.5], showgrid=False)
    queries = dict(type="category", categoryorder="array", categoryarray=ylab,
                   range=[n_rows - 0.5, -0.5], showgrid=False)
    fig.update_xaxes(**keys, showticklabels=False, row=1, col=2)
    fig.update_xaxes(**keys, title_text="keys by lambda_k \u2192", showticklabels=t <= 40,
                     tickangle=-60, row=2, col=2)
    fig.update_yaxes(**queries, title_text="queries by lambda_q \u2192", showticklabels=t <= 40,
                     row=2, col=1)
    fig.update_yaxes(**queries, showticklabels=False, row=2, col=2)
    fig.update_xaxes(title_text="lambda_q", autorange="reversed", nticks=3, row=2, col=1)
    fig.update_yaxes(title_text="lambda_k", nticks=3, row=1, col=2)
    fig.update_layout(title=title, meta=dict(aspect=1.0))
    return fig


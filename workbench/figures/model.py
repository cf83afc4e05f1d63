"""Figures of one model's internals: lambda per token and head, attention maps, entropy.

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
    log_hline,
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


def _attention_heatmap(att: np.ndarray, tokens: list[str], *, zmin: float, zmax: float,
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


def _square_map(value, name: str, fn: str) -> np.ndarray:
    arr = as_array(value, name, fn, ndim=2)
    if arr.shape[0] != arr.shape[1]:
        raise FigureInputError(f"{fn}: {name} must be square [T, T], got {arr.shape}")
    return arr


# ----------------------------------------------------------------------- lambda
@described("Lambda of every token for each head: which tokens a head scores high or low "
           "against the domain memory.")
def fig_lambda_strip(tokens: Sequence[str], lam, *, title_prefix: str = "lambda_q",
                     full_range: bool = True, layer: int | None = None) -> go.Figure:
    """One row per head, tokens along x, colour = lambda.

    Parameters
    ----------
    tokens : list of T str
    lam : array [H, T]
        Lambda per head and position, in [0, 1).
    title_prefix : str
        Quantity name for the title and colour bar (e.g. "lambda_q", "lambda_k").
    full_range : bool
        Colour range [0, 1] (comparable across figures) when True, else the data range
        (shows small differences).
    layer : int, optional
        Layer number, for the title.
    """
    fn = "fig_lambda_strip"
    lam = as_array(lam, "lam", fn, ndim=2)
    n_heads, n_tok = lam.shape
    if lam.size == 0:
        return fig_empty("No tokens probed yet")
    tokens = token_labels(tokens, n_tok, fn)
    small, _, _, factors = block_reduce(lam, MAX_HEATMAP_SIDE)
    if full_range:
        zmin, zmax = 0.0, 1.0
    else:
        zmin, zmax = float(np.nanmin(lam)), float(np.nanmax(lam))
        zmax = zmax if zmax > zmin else zmin + 1e-9
    title = title_prefix + (f" \u00b7 layer {layer}" if layer is not None else "")
    fig = new_figure(title=title)
    fig.add_trace(go.Heatmap(
        z=small, x=position_labels(tokens, factors[1]), y=[f"head {h}" for h in range(n_heads)],
        zmin=zmin, zmax=zmax, colorscale=theme.SEQUENTIAL, xgap=1, ygap=1,
        colorbar=dict(title=dict(text=title_prefix)),
        hovertemplate=("%{y}<br>token %{x}<br>" + title_prefix + " = %{z:.4f}"
                       + downsample_note(lam.shape, factors) + "<extra></extra>")))
    fig.update_yaxes(autorange="reversed", showgrid=False)
    fig.update_xaxes(showgrid=False, tickangle=-60, title_text="token")
    fig.update_layout(height=content_height(n_heads, 40, 160, minimum=220),
                      meta=dict(aspect=min(1.0, 0.15 + 0.08 * n_heads)))
    return fig


def _per_head_values(values, fn: str) -> dict[tuple[int, int], np.ndarray]:
    """{(layer, head): 1-D values} from such a dict or from an array [L, H, N]."""
    if isinstance(values, Mapping):
        out = {}
        for key, v in values.items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise FigureInputError(f"{fn}: keys must be (layer, head) tuples, got {key!r}")
            out[(int(key[0]), int(key[1]))] = as_array(v, f"values[{key}]", fn).ravel()
        return dict(sorted(out.items()))
    arr = as_array(values, "values", fn, ndim=3)
    return {(l, h): arr[l, h] for l in range(arr.shape[0]) for h in range(arr.shape[1])}


@described("How lambda is distributed in each head of each layer: a narrow band means the "
           "head can barely tell tokens apart.")
def fig_lambda_distributions(values, kind: str = "violin", *, max_points: int = 1000,
                             quantity: str = "lambda") -> go.Figure:
    """Per-head distributions of lambda, one colour per layer.

    Parameters
    ----------
    values : dict (layer, head) -> array [N], or array [L, H, N]
    kind : "violin" (heads along x) or "ridgeline" (heads down y, one-sided densities)
    max_points : int
        Values per head kept (seeded subsample) to keep the figure light.
    """
    fn = "fig_lambda_distributions"
    if kind not in ("violin", "ridgeline"):
        raise FigureInputError(f"{fn}: kind must be 'violin' or 'ridgeline', got {kind!r}")
    data = {k: v[np.isfinite(v)] for k, v in _per_head_values(values, fn).items()}
    data = {k: v for k, v in data.items() if v.size}
    if not data:
        return fig_empty("No lambda values yet")
    rng = np.random.default_rng(0)
    layers = sorted({layer for layer, _ in data})
    colors = dict(zip(layers, theme.ordinal_colors(len(layers))))
    fig = new_figure(violingap=0.05, violinmode="overlay")
    for layer in layers:
        xs, labels = [], []
        for (l, h), v in data.items():
            if l != layer:
                continue
            if v.size > max_points:
                v = rng.choice(v, size=max_points, replace=False)
            xs.append(v)
            labels.extend([f"L{l}\u00b7H{h}"] * v.size)
        vals = np.concatenate(xs)
        common = dict(name=f"layer {layer}", line=dict(color=colors[layer], width=1),
                      fillcolor=colors[layer], opacity=0.7, spanmode="hard", points=False,
                      meanline=dict(visible=True), scalegroup=f"layer {layer}")
        if kind == "violin":
            fig.add_trace(go.Violin(x=labels, y=vals, **common))
        else:
            # y runs downwards (reversed), so the "negative" side points up the page
            fig.add_trace(go.Violin(x=vals, y=labels, orientation="h", side="negative",
                                    width=1.8, **common))
    value_axis = dict(title_text=quantity, range=[0, 1])
    if kind == "violin":
        fig.update_yaxes(**value_axis)
        fig.update_xaxes(title_text="layer \u00b7 head", tickangle=-60)
    else:
        fig.update_xaxes(**value_axis)
        fig.update_yaxes(title_text="layer \u00b7 head", autorange="reversed")
        fig.update_layout(height=content_height(len(data), 22, 120, minimum=300))
    return fig


@described("Whether each head's lambda spread is large enough for its temperature: below the "
           "dashed line the attention weights differ by less than the threshold, i.e. are "
           "almost uniform.")
def fig_lambda_resolution(lam_range, temperature, *, uniform_ratio: float = 1.1) -> go.Figure:
    """Lambda spread per head against the largest weight ratio it allows, exp(spread / t).

    With logits ``-|lq - lk| / t`` two keys' weights differ at most by a factor
    ``exp(spread / t)``; near 1 the head cannot prefer any key.

    Parameters
    ----------
    lam_range : array [L, H]
        max - min of lambda per head (over the probed tokens).
    temperature : array [L, H] or float
        Softmax temperature per head.
    uniform_ratio : float
        Ratio below which attention counts as almost uniform (dashed line, shaded band).
    """
    fn = "fig_lambda_resolution"
    spread = as_array(lam_range, "lam_range", fn, ndim=2)
    if np.ndim(temperature) == 0:
        temp = np.broadcast_to(as_array(temperature, "temperature", fn), spread.shape)
    else:
        temp = as_array(temperature, "temperature", fn, shape=spread.shape)
    if np.any(temp <= 0):
        raise FigureInputError(f"{fn}: temperatures must be positive")
    if spread.size == 0:
        return fig_empty("No heads probed yet")
    ratio = np.exp(spread / temp)
    n_layers, n_heads = spread.shape
    colors = theme.ordinal_colors(n_layers)
    fig = new_figure(hovermode="closest")
    top = max(float(ratio.max()) * 1.5, uniform_ratio * 2)
    fig.add_hrect(y0=1.0, y1=uniform_ratio, fillcolor=theme.NEUTRAL, opacity=0.15, line_width=0)
    log_hline(fig, uniform_ratio, log=True, color=theme.NEUTRAL,
              text=f"almost uniform below (max weight ratio {uniform_ratio:g})")
    for layer in range(n_layers):
        custom = np.stack([np.full(n_heads, layer), np.arange(n_heads), temp[layer],
                           spread[layer] / temp[layer]], axis=1)
        fig.add_trace(go.Scatter(
            x=spread[layer], y=ratio[layer], mode="markers", name=f"layer {layer}",
            customdata=custom, marker=dict(size=9, color=colors[layer],
                                           line=dict(color="white", width=0.5)),
            hovertemplate=("layer %{customdata[0]} head %{customdata[1]}<br>spread %{x:.4f}"
                           "<br>temperature %{customdata[2]:.4g}<br>logit range "
                           "%{customdata[3]:.4g}<br>max weight ratio %{y:.4g}<extra></extra>")))
    fig.update_xaxes(title_text="lambda spread (max \u2212 min)", rangemode="tozero")
    fig.update_yaxes(title_text="max weight ratio exp(spread / t)", type="log",
                     range=[0, np.log10(top)], **count_ticks([1.0, top]))
    return fig


# -------------------------------------------------------------------- attention
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
                       names: tuple[str, str] = ("tau", "dot")) -> go.Figure:
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
    """
    fn = "fig_attention_pair"
    tau_map, dot_map = _square_map(tau_map, "tau_map", fn), _square_map(dot_map, "dot_map", fn)
    check_same_shape(fn, tau_map=tau_map, dot_map=dot_map)
    t = tau_map.shape[0]
    if t == 0:
        return fig_empty("No attention captured yet")
    tokens = token_labels(tokens, t, fn)
    top = float(zmax) if zmax is not None else symmetric_range(tau_map, dot_map)
    fig = make_subplots(rows=1, cols=2, subplot_titles=list(names), horizontal_spacing=0.12)
    for col, (att, name) in enumerate(zip((tau_map, dot_map), names), start=1):
        fig.add_trace(_attention_heatmap(att, tokens, zmin=0.0, zmax=top, name=name,
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
    fig.update_layout(meta=dict(aspect=0.5))
    return fig


@described("Where the Tauformer attends more (red) or less (blue) than the dot-product "
           "baseline; white means no difference.")
def fig_attention_difference(tau_map, dot_map, tokens: Sequence[str] | None = None) -> go.Figure:
    """Diverging heatmap of ``tau_map - dot_map`` centred at 0 (``zmin = -zmax``).

    Parameters
    ----------
    tau_map, dot_map : array [T, T]
    tokens : list of T str, optional
    """
    fn = "fig_attention_difference"
    tau_map, dot_map = _square_map(tau_map, "tau_map", fn), _square_map(dot_map, "dot_map", fn)
    check_same_shape(fn, tau_map=tau_map, dot_map=dot_map)
    if tau_map.size == 0:
        return fig_empty("No attention captured yet")
    diff = tau_map - dot_map
    peak = symmetric_range(diff)
    fig = new_figure()
    fig.add_trace(_attention_heatmap(diff, token_labels(tokens, len(diff), fn), zmin=-peak,
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
def fig_entropy_bars(entropy: Mapping[str, object], *, kind: str = "bars") -> go.Figure:
    """Per-head normalised attention entropy for each model.

    Parameters
    ----------
    entropy : dict model name -> array [L, H]
        Entropy divided by the entropy of uniform attention over the same keys (1.0 = uniform).
    kind : "bars" | "heatmap" | "deficit"
        Grouped bars per head; one heatmap per model; or ``1 - fraction`` on a log axis
        (separates 0.9999 from 0.99, which bars cannot).
    """
    fn = "fig_entropy_bars"
    if kind not in ("bars", "heatmap", "deficit"):
        raise FigureInputError(f"{fn}: kind must be 'bars', 'heatmap' or 'deficit', got {kind!r}")
    grids = _model_grids(entropy, fn)
    if not grids:
        return fig_empty("No attention entropy computed yet")
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
        return fig
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
    return fig


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
def fig_sorted_attention(tau_map, lambda_q, lambda_k, tokens: Sequence[str] | None = None
                         ) -> go.Figure:
    """The tau map re-ordered by ``lambda_q`` (rows) and ``lambda_k`` (columns).

    Parameters
    ----------
    tau_map : array [T, T]
    lambda_q, lambda_k : array [T]
    tokens : list of T str, optional

    Side panels show the sorted lambda values; axis categories are "pos·token" of the
    original positions.
    """
    fn = "fig_sorted_attention"
    att = _square_map(tau_map, "tau_map", fn)
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
                             zmax=max(float(np.nanmax(att)), 1e-12), colorscale=theme.SEQUENTIAL,
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
    fig.update_layout(meta=dict(aspect=1.0))
    return fig


@described("Why a token gets its lambda: the share of its query / key energy in each "
           "Laplacian mode; the lines mark the energy-weighted mean eigenvalue.")
def fig_spectral_decomposition(eigenvalues, weights_q, weights_k, lambda_q: float | None = None,
                               lambda_k: float | None = None, *, token: str | None = None
                               ) -> go.Figure:
    """Energy per Laplacian mode for one query and one key vector.

    The Rayleigh energy is the weighted mean of the eigenvalues, ``E = sum_i w_i mu_i``
    (SPEC section 2), and lambda = E / (E + tau); the dotted lines mark E for q and k
    at its place on the mode axis.

    Parameters
    ----------
    eigenvalues : array [D]
        Laplacian eigenvalues mu_i (sorted here, weights reordered with them).
    weights_q, weights_k : array [D]
        Energy fractions c_i^2 / sum c^2 (non-negative, summing to 1).
    lambda_q, lambda_k : float, optional
        The tokens' lambda values, shown in the labels.
    token : str, optional
        The token, for the title.
    """
    fn = "fig_spectral_decomposition"
    mu = as_array(eigenvalues, "eigenvalues", fn, ndim=1)
    d = mu.size
    wq = as_array(weights_q, "weights_q", fn, shape=(d,))
    wk = as_array(weights_k, "weights_k", fn, shape=(d,))
    if d == 0:
        return fig_empty("No spectrum available")
    for name, w in (("weights_q", wq), ("weights_k", wk)):
        if np.any(w < 0) or abs(float(w.sum()) - 1.0) > 1e-3:
            raise FigureInputError(f"{fn}: {name} must be non-negative fractions summing to 1 "
                                   f"(sum is {float(w.sum()):.4g})")
    order = np.argsort(mu, kind="stable")
    mu, wq, wk = mu[order], wq[order], wk[order]
    idx = np.arange(d)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    marks = []  # (position on the mode axis, label, colour)
    for label, w, lam, color in (("q", wq, lambda_q, theme.MODEL_COLORS["tau"]),
                                 ("k", wk, lambda_k, theme.OKABE_ITO[2])):
        energy = float(np.dot(w, mu))  # Rayleigh energy = energy-weighted mean eigenvalue
        summary = f"E = {energy:.3g}" + (f", lambda = {lam:.3f}" if lam is not None else "")
        fig.add_trace(go.Bar(x=idx, y=w, name=f"energy of {label} ({summary})",
                             marker=dict(color=color), opacity=0.8, customdata=mu,
                             hovertemplate=(f"{label}: mode %{{x}} (mu = %{{customdata:.4g}})"
                                            "<br>energy fraction %{y:.4f}<extra></extra>")),
                      secondary_y=False)
        where = float(np.interp(energy, mu, idx)) if d > 1 else 0.0
        marks.append((where, f"E({label})", color))
    for i, (where, text, color) in enumerate(sorted(marks)):  # left mark labelled leftwards
        fig.add_vline(x=where, line=dict(color=color, dash="dot", width=1.5),
                      annotation_text=text, annotation_font_color=color,
                      annotation_position="top left" if i == 0 else "top right")
    fig.add_trace(go.Scatter(x=idx, y=mu, mode="lines", name="eigenvalue mu",
                             line=dict(color=theme.NEUTRAL, width=1),
                             hovertemplate="mode %{x}: mu = %{y:.4g}<extra></extra>"),
                  secondary_y=True)
    fig.update_layout(barmode="group",
                      title=f"spectral decomposition of '{token}'" if token else None)
    fig.update_xaxes(title_text="Laplacian mode (ascending eigenvalue)", range=[-0.5, d - 0.5])
    fig.update_yaxes(title_text="energy fraction", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="eigenvalue", secondary_y=True, showgrid=False,
                     rangemode="tozero")
    return fig


@described("A change and its effect: attention before and after, and how validation loss "
           "moved on each evaluation set (green = better).")
def fig_whatif(before_map, after_map, tokens: Sequence[str] | None = None, *,
               losses: Mapping[str, tuple[float, float]] | None = None,
               labels: tuple[str, str] = ("before", "after"), change: str = "") -> go.Figure:
    """Before / after attention maps (shared scale) and validation-loss deltas.

    Parameters
    ----------
    before_map, after_map : array [T, T]
        Attention of the same head before and after the change.
    tokens : list of T str, optional
    losses : dict eval-set name -> (loss before, loss after), optional
        One bar per set with the delta ``after - before``; hover shows both values
        and the relative change.
    labels : (str, str)
        Panel titles for the two maps.
    change : str
        What was changed (e.g. "temperature 1.0 -> 0.1"), for the title.
    """
    fn = "fig_whatif"
    before = _square_map(before_map, "before_map", fn)
    after = _square_map(after_map, "after_map", fn)
    check_same_shape(fn, before_map=before, after_map=after)
    if before.size == 0:
        return fig_empty("Nothing to compare yet")
    tokens = token_labels(tokens, len(before), fn)
    losses = dict(losses or {})
    cols = 3 if losses else 2
    titles = [*labels, "\u0394 validation loss"][:cols]
    fig = make_subplots(rows=1, cols=cols, subplot_titles=titles,
                        column_widths=[0.38, 0.38, 0.24][:cols], horizontal_spacing=0.08)
    top = symmetric_range(before, after)
    for col, (att, name) in enumerate(zip((before, after), labels), start=1):
        fig.add_trace(_attention_heatmap(att, tokens, zmin=0.0, zmax=top, name=name,
                                         colorscale=theme.SEQUENTIAL, coloraxis="coloraxis"),
                      row=1, col=col)
        fig.update_yaxes(autorange="reversed", showgrid=False, showticklabels=col == 1,
                         row=1, col=col)
        fig.update_xaxes(showgrid=False, showticklabels=len(before) <= 40, tickangle=-60,
                         row=1, col=col)
    fig.update_yaxes(title_text="query", row=1, col=1)
    if losses:
        names = list(losses)
        pairs = np.array([losses[n] for n in names], dtype=float)  # [S, 2] before, after
        delta = pairs[:, 1] - pairs[:, 0]
        rel = np.divide(delta, pairs[:, 0], out=np.zeros_like(delta), where=pairs[:, 0] != 0)
        fig.add_trace(go.Bar(x=names, y=delta, name="\u0394 loss", showlegend=False,
                             marker=dict(color=[theme.GOOD if v <= 0 else theme.BAD
                                                for v in delta]),
                             customdata=np.column_stack([pairs, 100 * rel]),
                             hovertemplate=("%{x}<br>before %{customdata[0]:.4f}<br>after "
                                            "%{customdata[1]:.4f}<br>\u0394 %{y:+.4f} "
                                            "(%{customdata[2]:+.2f}%)<extra></extra>")),
                      row=1, col=3)
        fig.add_hline(y=0, line=dict(color="black", width=1), row=1, col=3)
        fig.update_yaxes(title_text="after \u2212 before", row=1, col=3)
    fig.update_layout(title=f"what if: {change}" if change else None,
                      coloraxis=dict(colorscale=theme.SEQUENTIAL, cmin=0, cmax=top,
                                     colorbar=dict(title=dict(text="weight"), orientation="h",
                                                   x=0.3, xanchor="center", y=-0.3, len=0.5)),
                      meta=dict(aspect=0.4))
    return fig

"""Figures of lambda: per token and head, its distribution per head, its spread against the
temperature, and its spectral decomposition (why a token gets its lambda)."""

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
    content_height,
    described,
    downsample_note,
    fig_empty,
    log_hline,
    new_figure,
    token_labels,
)
from workbench.figures.attention import position_labels
from workbench.figures.ticks import count_ticks


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



@described("Why a token gets its lambda: the share of its query / key energy in each "
           "Laplacian mode; the lines mark the energy-weighted mean eigenvalue.")
def fig_spectral_decomposition(eigenvalues, weights_q, weights_k, lambda_q: float | None = None,
                               lambda_k: float | None = None, *, token: str | None = None,
                               title: str | None = None) -> go.Figure:
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
        The token, for the default title.
    title : str, optional
        The figure title (default "spectral decomposition of '<token>'").
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
    if title is None and token:
        title = f"spectral decomposition of '{token}'"
    fig.update_layout(barmode="group", title=title)
    fig.update_xaxes(title_text="Laplacian mode (ascending eigenvalue)", range=[-0.5, d - 0.5])
    fig.update_yaxes(title_text="energy fraction", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="eigenvalue", secondary_y=True, showgrid=False,
                     rangemode="tozero")
    return fig


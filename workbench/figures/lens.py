"""Logit lens and per-token loss: what each depth predicts, where predictions form, which tokens are hard."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from workbench import theme
from workbench.figures._common import (FigureInputError, as_array, content_height, described, fig_empty,
                                       subplot_axes, subplot_grid_layout, symmetric_range, token_ticks, truncate)
from workbench.figures.ticks import format_count

DEPTH_ROW = 26  # px per depth row of the lens heatmap
TEXT_ROW = 22  # px per line of prompt text
PANEL_GAP = 40  # px between text panels: room for the next panel's title
SCALES = ("prob", "rank")
MONO = dict(family="DejaVu Sans Mono, monospace", size=11, color="#1d2330")


def _label(token: object, limit: int = 12) -> str:
    """A token as plotly text: cut to ``limit`` characters, <, > and & escaped (plotly shows &quot; verbatim)."""
    return html.escape(truncate(token, limit), quote=False)


class _Labels(dict):
    """token -> its escaped label, each distinct token escaped once (hovers repeat the same few)."""

    def __missing__(self, token):
        self[token] = label = _label(token)
        return label


def _top_line(labels: Sequence[str], probs: Sequence[float], names: _Labels) -> str:
    return "  ".join(f"'{names[t]}' {p:.3f}" for t, p in zip(labels, probs))


def _lens_hover(p: dict, depths, seen, targets, names: _Labels) -> np.ndarray:
    """Hover text [N, T-1] of the lens: depth, the token read, the next token, the top-k predictions.

    Built with numpy's vectorised string operations (one template field per label instead made
    ~76,000 small objects that plotly deep-copies twice per figure).
    """
    N, Tm1 = p["prob"].shape
    top = np.array(p["top_tokens"], dtype=object)[:, :Tm1]  # [N, T, k] -> [N, T-1, k]: predictions after t
    labels = np.frompyfunc(names.__getitem__, 1, 1)(top).astype(str)  # [N, T-1, k]
    probs = np.char.mod("%.3f", p["top_probs"][:, :Tm1])  # [N, T-1, k]
    head = np.char.add(np.array([f"{d}<br>" for d in depths])[:, None],
                       np.array([f"after {t} '{seen[t]}': next '{targets[t]}'" for t in range(Tm1)])[None, :])
    line = np.char.add(head, "<br>top:")  # [N, T-1]
    for j in range(labels.shape[-1]):
        line = np.char.add(np.char.add(np.char.add(line, "  '"), labels[..., j]), np.char.add("' ", probs[..., j]))
    return line


def _stacked_layout(titles: Sequence[str], gap: float, *, xaxis: dict, yaxis: dict) -> dict:
    """Layout (plain dicts) of panels stacked in one column, each titled above; x axes matched.

    ``subplot_grid_layout`` with per-panel titles: ~4x faster than make_subplots + add_trace.
    """
    n = len(titles)
    layout = subplot_grid_layout(n, 1, horizontal_spacing=0.0, vertical_spacing=gap, xaxis=xaxis, yaxis=yaxis)
    for r in range(1, n):
        layout[f"xaxis{r + 1}"]["matches"] = "x"
    layout["annotations"] = [dict(text=html.escape(str(t)), x=0.5, xref="paper", xanchor="center", showarrow=False,
                                  y=layout["yaxis" + ("" if r == 0 else str(r + 1))]["domain"][1], yref="paper",
                                  yanchor="bottom", font=dict(size=14)) for r, t in enumerate(titles)]
    return layout


def _check_lens(fn: str, name: str, m: Mapping, n_depth: int, T: int) -> dict:
    prob = as_array(m["target_prob"], f"{name}.target_prob", fn, shape=(n_depth, T - 1))
    rank = as_array(m["target_rank"], f"{name}.target_rank", fn, shape=(n_depth, T - 1))
    first = as_array(m["first_top1"], f"{name}.first_top1", fn, shape=(T - 1,))
    top_probs = as_array(m["top_probs"], f"{name}.top_probs", fn, ndim=3)
    if top_probs.shape[:2] != (n_depth, T) or len(m["top_tokens"]) != n_depth:
        raise FigureInputError(f"{fn}: {name}.top_probs / top_tokens must be [{n_depth}, {T}, k], "
                               f"got {top_probs.shape}")
    return dict(prob=prob, rank=rank, first=first, top_probs=top_probs, top_tokens=m["top_tokens"])


@described("Each depth's reading of the residual stream through the final norm and lm_head: the probability "
           "(or rank) of the actual next token, one row per depth and column per predicted token, per model; "
           "a dot marks the first depth at which that token is the most likely. Hover for the top predictions.")
def fig_logit_lens(tokens: Sequence[str], depths: Sequence[str], models: Mapping[str, Mapping], *,
                   scale: str = "prob", title: str | None = None) -> go.Figure:
    """Depth x next-token heatmaps of the logit lens, one panel per model (same tokens).

    Parameters
    ----------
    tokens : list of str
        Token labels of the prompt, T of them; column t is the prediction of token t + 1.
    depths : list of str
        Names of the N depths ("embedding", "layer 0", ...).
    models : dict name -> dict
        target_prob, target_rank [N, T-1]; first_top1 [T-1] (-1: never); top_tokens [N][T][k]
        labels and top_probs [N, T, k] (the hover's top predictions).
    scale : "prob" or "rank"
        Colour by the probability of the actual next token, or by its rank (log scale, 1 = top-1).
    """
    fn = "fig_logit_lens"
    if scale not in SCALES:
        raise FigureInputError(f"{fn}: scale must be one of {SCALES}, got {scale!r}")
    T, N = len(tokens), len(depths)
    if not models or T < 2:
        return fig_empty("The prompt needs at least 2 tokens")
    panels = {str(k): _check_lens(fn, str(k), v, N, T) for k, v in models.items()}
    colors = theme.series_colors(list(panels))
    names = _Labels()
    targets = [names[t] for t in tokens[1:]]
    seen = [names[t] for t in tokens[:-1]]
    ranks_max = max(float(p["rank"].max()) for p in panels.values())
    zmax = 1 if scale == "prob" else max(float(np.log10(ranks_max + 1)), 1e-3)
    depth_axis = dict(tickmode="array", tickvals=list(range(N)), ticktext=list(depths), range=[-0.5, N - 0.5])
    x_axis = dict(range=[-0.5, T - 1.5], **token_ticks(tokens[1:], T - 1))
    layout = _stacked_layout(list(panels), 0.16 / len(panels), xaxis=x_axis, yaxis=depth_axis)
    traces = []
    for i, (name, p) in enumerate(panels.items()):
        hover = _lens_hover(p, depths, seen, targets, names)  # [N, T-1]
        custom = np.stack([p["prob"], p["rank"] + 1.0], axis=-1)  # [N, T-1, 2]: numbers the template formats
        template = (f"{names[name]}, %{{text}}<br>p(next) %{{customdata[0]:.3f}}, rank %{{customdata[1]}}"
                    "<extra></extra>")
        z = p["prob"] if scale == "prob" else np.log10(p["rank"] + 1.0)
        axes = subplot_axes(len(panels), 1, i, 0)
        traces.append(dict(type="heatmap", z=z, x=np.arange(T - 1), y=np.arange(N), customdata=custom,
                           text=hover, hovertemplate=template, name=name, ygap=1,
                           colorscale=theme.SEQUENTIAL, reversescale=scale == "rank", zmin=0, zmax=zmax,
                           colorbar=_colour_bar(scale, ranks_max), showscale=i == 0, **axes))
        hit = np.flatnonzero(p["first"] >= 0)
        traces.append(dict(type="scatter", x=hit, y=p["first"][hit], mode="markers", hoverinfo="skip",
                           showlegend=False, name=f"{name}: first top-1", **axes,
                           marker=dict(size=5, color="#ffffff", line=dict(color=colors[name], width=1.5))))
    last = "xaxis" + ("" if len(panels) == 1 else str(len(panels)))
    for r in range(len(panels) - 1):  # token labels under the bottom panel only
        layout["xaxis" + ("" if r == 0 else str(r + 1))]["showticklabels"] = False
    layout[last]["title"] = dict(text="next token")
    fig = go.Figure(data=traces, layout=layout)
    fig.update_layout(height=content_height(len(panels) * N, DEPTH_ROW, 90 + 50 * len(panels)),
                      title=title, margin=dict(l=80, r=20, t=60 if title else 30, b=60))
    return fig


def _colour_bar(scale: str, ranks_max: float) -> dict:
    """Colour bar of the lens: probability 0..1, or rank + 1 on a log10 axis with count ticks."""
    if scale == "prob":
        return dict(title="p(next)", thickness=12)
    top = int(np.ceil(np.log10(ranks_max + 1))) if ranks_max > 0 else 1
    vals = list(range(0, top + 1))
    return dict(title="rank", thickness=12, tickmode="array", tickvals=vals,
                ticktext=[format_count(10 ** v) for v in vals])


@described("How many predicted tokens first become the most likely one at each depth (never: no depth ranks "
           "the actual next token first), per model, as a share of the prompt's positions.")
def fig_first_top1(depths: Sequence[str], firsts: Mapping[str, object], *, title: str | None = None) -> go.Figure:
    """Grouped bars: share of positions whose actual next token is first top-1 at each depth, per model.

    ``firsts``: model name -> first_top1 [T-1] (depth index, -1 for never).
    """
    fn = "fig_first_top1"
    rows = {str(k): as_array(v, f"firsts[{k!r}]", fn, ndim=1) for k, v in firsts.items()}
    if not rows or not any(r.size for r in rows.values()):
        return fig_empty("No predicted tokens")
    N = len(depths)
    categories = list(depths) + ["never"]
    colors = theme.series_colors(list(rows))
    traces = []
    for name, first in rows.items():
        if first.size and (first.max() >= N or first.min() < -1):
            raise FigureInputError(f"{fn}: firsts[{name!r}] holds depths outside -1..{N - 1}")
        counts = np.bincount(np.where(first < 0, N, first).astype(int), minlength=N + 1)  # [N + 1]: never last
        traces.append(dict(type="bar", x=categories, y=counts / max(1, first.size), name=name, customdata=counts,
                           marker=dict(color=colors[name]),
                           hovertemplate=(f"{html.escape(name)}<br>%{{x}}: %{{customdata}} tokens "
                                          "(%{y:.1%})<extra></extra>")))
    fig = go.Figure(data=traces, layout=dict(  # dicts: no per-property validation round trips
        barmode="group", height=320, title=title, margin=dict(l=70, r=20, t=60 if title else 30, b=60),
        legend=dict(orientation="h", x=0.0, xanchor="left", y=1.02, yanchor="bottom"),
        yaxis=dict(title=dict(text="share of positions"), tickformat=".0%", rangemode="tozero"),
        xaxis=dict(title=dict(text="first depth where the next token is top-1"), type="category")))
    return fig


def _prediction_hover(tokens: Sequence[str], models: Mapping[str, Mapping]) -> list[str]:
    """Hover of each token i: per model its loss and the top-5 predictions made for it (at i - 1)."""
    names = _Labels()
    out = [f"0 '{names[tokens[0]]}': the first token has no prediction"]
    for i in range(1, len(tokens)):
        lines = [f"{i} '{names[tokens[i]]}'"]
        for name, m in models.items():
            lines.append(f"<b>{names[name]}</b> loss {m['loss'][i - 1]:.2f} nats; top: "
                         + _top_line(m["pred_tokens"][i - 1], m["pred_probs"][i - 1], names))
        out.append("<br>".join(lines))
    return out


@described("The prompt as text, each token shaded by the loss (nats) each model had predicting it, and by "
           "the difference of the first model minus the second (red: the first found it harder). Hover for "
           "both models' top-5 predictions.")
def fig_token_loss(tokens: Sequence[str], models: Mapping[str, Mapping], *, zmax: float | None = None,
                   per_row: int = 64) -> go.Figure:
    """Text panels shaded by per-token loss: one per model, then the difference (first - second).

    ``models``: name -> dict(loss [T-1], pred_tokens [T][k], pred_probs [T, k]); token i is shaded
    by loss[i - 1] (the first token has none). ``zmax`` caps the loss colour scale (default: the
    largest loss); the difference scale is symmetric around 0.
    """
    fn = "fig_token_loss"
    T = len(tokens)
    if not models or T < 2:
        return fig_empty("The prompt needs at least 2 tokens")
    losses = {str(k): as_array(v["loss"], f"{k}.loss", fn, shape=(T - 1,)) for k, v in models.items()}
    panels = dict(losses)
    names = list(losses)
    if len(names) >= 2:
        panels[f"{names[0]} \u2212 {names[1]}"] = losses[names[0]] - losses[names[1]]
    n_lines = -(-T // per_row)
    pad = n_lines * per_row - T

    def grid(values, fill=""):  # [T] -> [lines, per_row]
        return np.array(list(values) + [fill] * pad, dtype=object).reshape(n_lines, per_row)

    text = grid([_label(t, 6) for t in tokens])
    hover = grid(_prediction_hover(tokens, models))
    cap = float(zmax) if zmax else float(max(np.nanmax(v) for v in losses.values()) or 1.0)
    diff_cap = symmetric_range(*[v for k, v in panels.items() if k not in losses])
    colors = theme.series_colors(names)
    panel_px, top, bottom = n_lines * TEXT_ROW, 30, 10
    height = content_height(len(panels), panel_px + PANEL_GAP, top + bottom - PANEL_GAP)
    per_panel = (height - top - bottom - PANEL_GAP * (len(panels) - 1)) / len(panels)  # px, after clipping
    lines = max(n_lines, per_panel / TEXT_ROW)  # a short prompt keeps its line height: blank lines below
    layout = _stacked_layout(list(panels), PANEL_GAP / (height - top - bottom) if len(panels) > 1 else 0.0,
                             xaxis=dict(visible=False, range=[-0.5, per_row - 0.5]),
                             yaxis=dict(visible=False, range=[lines - 0.5, -0.5]))
    traces = []
    for i, (name, values) in enumerate(panels.items()):
        z = np.concatenate([[np.nan], values, np.full(pad, np.nan)]).reshape(n_lines, per_row)  # token i: loss[i-1]
        is_diff = name not in losses
        scale = theme.DIVERGING if is_diff else [[0, "#ffffff"], [1, theme.with_alpha(colors[name], 0.85)]]
        bar = dict(title="\u0394 nats", thickness=12, lenmode="pixels", len=max(120, panel_px), yanchor="bottom",
                   y=0, nticks=5)
        traces.append(dict(
            type="heatmap", z=z, text=text, texttemplate="%{text}", hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>", zmin=-diff_cap if is_diff else 0,
            zmax=diff_cap if is_diff else cap, colorscale=scale, xgap=1, ygap=2, showscale=is_diff, colorbar=bar,
            textfont=MONO, name=name, **subplot_axes(len(panels), 1, i, 0)))
    fig = go.Figure(data=traces, layout=layout)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=top, b=bottom))
    return fig

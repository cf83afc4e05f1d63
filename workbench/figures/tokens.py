"""The prompt as text, each token shaded by the attention one query gives it, for one or more models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench import theme
from workbench.figures._common import FigureInputError, as_array, content_height, described, fig_empty, truncate

ROW_HEIGHT = 22  # pixels per line of text


@described("The prompt as text, each key shaded by the weight the selected query gives it (darkest = the "
           "row's largest) in each model; the query is boxed. Click a token to make it the query.")
def fig_token_weights(tokens: Sequence[str], weights: Mapping[str, object], query: int, *,
                      per_row: int = 64) -> go.Figure:
    """Tokens laid out in lines of ``per_row``, one panel per model, coloured by attention weight.

    Parameters
    ----------
    tokens : list of str
        Token labels of the prompt (at least ``query + 1``).
    weights : dict model name -> array [query + 1]
        The query's weights on keys 0..query (a causal row).
    query : int
        The query position (boxed); later tokens are not shown (the query cannot see them).
    per_row : int
        Tokens per line.

    Each cell's ``customdata`` is ``[position, weight]`` so a click can select a token.
    """
    fn = "fig_token_weights"
    rows = {str(k): as_array(v, f"weights[{k!r}]", fn, ndim=1) for k, v in weights.items()}
    n = int(query) + 1
    if not rows or n <= 0:
        return fig_empty("No query selected")
    if len(tokens) < n:
        raise FigureInputError(f"{fn}: {len(tokens)} tokens but the query is at position {query}")
    for name, w in rows.items():
        if w.size != n:
            raise FigureInputError(f"{fn}: weights[{name!r}] has {w.size} values, expected query + 1 = {n}")
    n_lines = -(-n // per_row)
    pad = n_lines * per_row - n
    pos = np.arange(n_lines * per_row, dtype=float)
    pos[n:] = np.nan
    labels = [truncate(t, 6) for t in tokens[:n]] + [""] * pad
    text = np.array(labels, dtype=object).reshape(n_lines, per_row)  # [lines, per_row]
    pieces = np.array([str(t) for t in tokens[:n]] + [""] * pad, dtype=object).reshape(n_lines, per_row)  # for hover
    colors = theme.series_colors(list(rows))
    fig = make_subplots(rows=len(rows), cols=1, subplot_titles=list(rows), vertical_spacing=0.12 / len(rows))
    for i, (name, w) in enumerate(rows.items(), start=1):
        peak = float(np.nanmax(w)) or 1.0
        share = np.concatenate([w / peak, np.full(pad, np.nan)]).reshape(n_lines, per_row)
        raw = np.concatenate([w, np.full(pad, np.nan)]).reshape(n_lines, per_row)
        custom = np.stack([pos.reshape(n_lines, per_row), raw], axis=-1)  # [lines, per_row, 2]
        fig.add_trace(go.Heatmap(
            z=share, text=text, texttemplate="%{text}", hovertext=pieces, customdata=custom, zmin=0, zmax=1,
            showscale=False,
            colorscale=[[0, "#ffffff"], [1, theme.with_alpha(colors[name], 0.75)]], xgap=1, ygap=2,
            textfont=dict(family="DejaVu Sans Mono, monospace", size=11, color="#1d2330"), name=name,
            hovertemplate=(f"{name}<br>key %{{customdata[0]}} '%{{hovertext}}'<br>weight %{{customdata[1]:.4f}}"
                           "<extra></extra>")), row=i, col=1)
        line, col = divmod(int(query), per_row)
        fig.add_shape(type="rect", x0=col - 0.5, x1=col + 0.5, y0=line - 0.5, y1=line + 0.5,
                      line=dict(color="#1d2330", width=2), row=i, col=1)
    fig.update_xaxes(visible=False, range=[-0.5, per_row - 0.5])
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(height=content_height(len(rows), n_lines * ROW_HEIGHT + 40, 30),
                      margin=dict(l=10, r=10, t=30, b=10), meta=dict(aspect=0.3))
    return fig


def table_token_weights(fig: go.Figure) -> dict[str, list]:
    """The CSV table of a :func:`fig_token_weights` figure: one row per model and key.

    The heatmap's x and y are places in the wrapped lines of text, not data, so the generic
    CSV walk would write them; this table gives the key position, its token and its weight.
    """
    table: dict[str, list] = {"model": [], "key": [], "token": [], "weight": [], "weight / row maximum": []}
    for trace in fig.data:
        if trace.type != "heatmap" or trace.customdata is None:
            continue
        custom = np.asarray(trace.customdata, dtype=float).reshape(-1, 2)  # [lines * per_row, (position, weight)]
        pieces = np.asarray(trace.hovertext, dtype=object).reshape(-1)
        share = np.asarray(trace.z, dtype=float).reshape(-1)
        for (position, weight), token, value in zip(custom, pieces, share):
            if np.isnan(position):  # padding after the query
                continue
            table["model"].append(str(trace.name))
            table["key"].append(int(position))
            table["token"].append(str(token))
            table["weight"].append(float(weight))
            table["weight / row maximum"].append(float(value))
    return table

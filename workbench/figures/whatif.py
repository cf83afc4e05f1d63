"""The What-if figure: attention of one head before and after a change, and the loss deltas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench import theme
from workbench.figures._common import (
    check_same_shape,
    described,
    fig_empty,
    symmetric_range,
    token_labels,
)
from workbench.figures.attention import attention_heatmap, square_map


@described("A change and its effect: attention before and after, and how validation loss "
           "moved on each evaluation set (green = better).")
def fig_whatif(before_map, after_map, tokens: Sequence[str] | None = None, *,
               losses: Mapping[str, tuple[float, float]] | None = None,
               labels: tuple[str, str] = ("before", "after"), change: str = "",
               cmax: float | None = None) -> go.Figure:
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
    cmax : float, optional
        Top of the shared colour scale (default: the largest weight of the two maps).
    """
    fn = "fig_whatif"
    before = square_map(before_map, "before_map", fn)
    after = square_map(after_map, "after_map", fn)
    check_same_shape(fn, before_map=before, after_map=after)
    if before.size == 0:
        return fig_empty("Nothing to compare yet")
    tokens = token_labels(tokens, len(before), fn)
    losses = dict(losses or {})
    cols = 3 if losses else 2
    titles = [*labels, "\u0394 validation loss"][:cols]
    fig = make_subplots(rows=1, cols=cols, subplot_titles=titles,
                        column_widths=[0.38, 0.38, 0.24][:cols], horizontal_spacing=0.08)
    top = float(cmax) if cmax is not None else symmetric_range(before, after)
    for col, (att, name) in enumerate(zip((before, after), labels), start=1):
        fig.add_trace(attention_heatmap(att, tokens, zmin=0.0, zmax=top, name=name,
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

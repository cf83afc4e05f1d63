"""Figures of a feature graph's structure: how many neighbours each feature has, hubs marked."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from workbench import theme
from workbench.figures._common import (
    LEGEND_ON_TOP,
    FigureInputError,
    as_array,
    described,
    fig_empty,
    new_figure,
)
from workbench.figures.ticks import count_ticks

DEGREE_HEIGHT = 400  # px: a bar chart beside the feature graph
LOG_FROM_RATIO = 20  # counts spanning more than this ratio get a log axis (368 spokes beside 1 hub)
OTHER_COLOR = theme.OKABE_ITO[0]


@described("How many features have each degree (neighbours in the feature graph); hub degrees "
           "in vermillion, split from the rest by the dotted line.")
def fig_degree_distribution(degree, hubs=None, *, title: str | None = None) -> go.Figure:
    """One bar per distinct degree: its height is the number of features with that degree.

    Parameters
    ----------
    degree : int array [D]
        Neighbours of each feature (isolated features have degree 0 and are counted too).
    hubs : int array, optional
        Hub feature indices; bars of hub degrees (counting hubs only) are vermillion and carry a
        marker, and a dotted line sits midway between the largest other degree and the least
        hub degree. ``layout.meta`` keeps ``hubs`` (their number) and ``split`` (the line's x).
    title : str, optional

    The count axis turns logarithmic when the counts span more than :data:`LOG_FROM_RATIO`.
    """
    fn = "fig_degree_distribution"
    degree = as_array(degree, "degree", fn, ndim=1).astype(np.int64)
    d = len(degree)
    if d == 0:
        return fig_empty("The domain memory has no features", height=DEGREE_HEIGHT)
    is_hub = np.zeros(d, dtype=bool)
    idx = np.asarray([] if hubs is None else hubs, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= d):
        raise FigureInputError(f"{fn}: hubs must be feature indices in 0..{d - 1}")
    is_hub[idx] = True
    fig = new_figure(title=title, height=DEGREE_HEIGHT, hovermode="closest", bargap=0.0)
    counts_all = []
    for hub_side, name, color in ((False, "other features", OTHER_COLOR), (True, "hubs", theme.HIGHLIGHT)):
        values, counts = np.unique(degree[is_hub == hub_side], return_counts=True)
        if values.size == 0:
            continue
        counts_all.extend(counts.tolist())
        fig.add_trace(go.Bar(x=values.tolist(), y=counts.tolist(), width=1.0, name=f"{name} ({int(counts.sum())})",
                             marker=dict(color=color, line=dict(color=color, width=1.5)),
                             hovertemplate=f"degree %{{x}}: %{{y}} {name}<extra></extra>"))
        if hub_side:  # hub bars are one feature each and thin: a marker on top finds them
            fig.add_trace(go.Scatter(x=values.tolist(), y=counts.tolist(), mode="markers", showlegend=False,
                                     marker=dict(symbol="triangle-down", size=9, color=color),
                                     hoverinfo="skip", cliponaxis=False))
    meta = dict(hubs=int(idx.size))
    if idx.size and (~is_hub).any():
        split = (float(degree[~is_hub].max()) + float(degree[is_hub].min())) / 2
        meta["split"] = split
        fig.add_vline(x=split, line=dict(color="black", width=1, dash="dot"))
        ratio = degree[is_hub].min() / max(int(degree[~is_hub].max()), 1)
        fig.add_annotation(x=split, y=1.0, yref="paper", xanchor="left", yanchor="top", showarrow=False,
                           text=f" {idx.size} hub{'s' if idx.size != 1 else ''}: degree \u2265 "
                                f"{int(degree[is_hub].min())} ({ratio:.3g}\u00d7 the rest)")
    elif not idx.size:
        fig.add_annotation(x=1.0, y=1.0, xref="paper", yref="paper", xanchor="right", yanchor="top",
                           showarrow=False, text="no hubs")
    log = max(counts_all) / min(counts_all) > LOG_FROM_RATIO
    lo, hi = int(degree.min()), int(degree.max())
    pad = max(1.0, 0.03 * (hi - lo))
    fig.update_xaxes(title_text="degree (neighbours of a feature)", range=[lo - pad, hi + pad])
    top = max(counts_all)
    axis = dict(type="log", range=[np.log10(0.7), np.log10(top * 1.6)], **count_ticks([1, top], log=True)) \
        if log else dict(type="linear")
    fig.update_yaxes(title_text="features", **axis)
    fig.update_layout(legend=LEGEND_ON_TOP, meta=meta)
    return fig

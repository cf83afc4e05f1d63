"""Figures of the domain memory: item map and feature graph (spectrum and sparsity of L: :mod:`.spectrum`)."""

from __future__ import annotations

from collections.abc import Sequence

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
    scatter_class,
    symmetric_range,
    truncate,
    ui_note,
)

MAX_EDGES = 20_000  # kNN edges drawn on the item map; more are subsampled (seeded)
ITEM_MAP_HEIGHT = 620  # px: the item map is the Domain page's main figure
GRAPH_HEIGHT = 480  # px: the feature graph (a square plot)
LAYOUT_KINDS = {  # layout kind -> (axis titles, on-screen note)
    "umap": (("UMAP 1", "UMAP 2"), None),
    "pca": (("PC 1", "PC 2"), "PCA stand-in while UMAP runs"),
}


def _ids(values) -> list[int]:
    """Point ids for ``customdata`` as a plain list: a numpy array would travel base64-encoded,
    and dcc.Graph reads click ids from the undecoded figure, so clicks would lose them."""
    return np.asarray(values, dtype=np.int64).tolist()


def _segments(xy: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y arrays of line segments separated by NaN gaps (one trace for all edges)."""
    seg = np.full((len(edges), 3, 2), np.nan)  # [E, (start, end, gap), xy]
    seg[:, 0] = xy[edges[:, 0]]
    seg[:, 1] = xy[edges[:, 1]]
    flat = seg.reshape(-1, 2)  # [3E, 2]
    return flat[:, 0], flat[:, 1]


def _check_edges(edges, n_nodes: int, fn: str) -> np.ndarray:
    edges = as_array(edges, "edges", fn, dtype=np.int64).reshape(-1, 2) if np.size(edges) else \
        np.zeros((0, 2), dtype=np.int64)
    if edges.size and (edges.min() < 0 or edges.max() >= n_nodes):
        raise FigureInputError(f"{fn}: edges refer to node {edges.max()} but there are only "
                               f"{n_nodes} nodes")
    return edges


@described("Domain items laid out by UMAP, joined to their nearest neighbours; "
           "click an item to see its neighbourhood.")
def fig_item_map(xy, *, color=None, color_label: str = "lambda", texts: Sequence[str] | None = None,
                 edges=None, highlight: int | None = None, neighbours: Sequence[int] | None = None,
                 categorical: bool = False, max_edges: int = MAX_EDGES,
                 title: str | None = None, layout_kind: str = "umap", edge_color: str = theme.EDGE_COLOR,
                 max_legend_categories: int | None = None) -> go.Figure:
    """Items of a domain corpus on a 2-D layout, with kNN edges and a highlighted item.

    Parameters
    ----------
    xy : array [N, 2]
        Layout coordinates (e.g. UMAP).
    color : array [N], optional
        Per-item value (lambda, a sequential scale) or cluster id (``categorical=True``,
        one legend entry per cluster, Okabe-Ito colours).
    color_label : str
        Colour-bar / legend title.
    texts : list of N str, optional
        Item texts, shown truncated on hover.
    edges : int array [E, 2], optional
        kNN edges as index pairs; drawn as one line trace, subsampled (seeded) to
        ``max_edges`` with the shown / total count in the legend.
    highlight : int, optional
        The clicked item, drawn on top in vermillion.
    neighbours : list of int, optional
        Items drawn as rings around them and linked to ``highlight``.
    layout_kind : "umap" or "pca"
        What ``xy`` is: the axis titles, and for "pca" an on-screen note that it stands in
        for a UMAP layout still being computed.
    edge_color : str
        Colour of the kNN edges (lighter where thousands of them overlap).
    max_legend_categories : int, optional
        With ``categorical``, more categories than this hide the legend (it would be taller
        than the map) and a note says to hover an item instead.

    Every item trace carries ``customdata`` = item index, so a click callback reads
    ``clickData["points"][0]["customdata"]``. From 5,000 items the traces use WebGL.
    """
    fn = "fig_item_map"
    if layout_kind not in LAYOUT_KINDS:
        raise FigureInputError(f"{fn}: layout_kind must be one of {sorted(LAYOUT_KINDS)}, got {layout_kind!r}")
    xy = as_array(xy, "xy", fn, shape=(None, 2))
    n = len(xy)
    if n == 0:
        return fig_empty("No items to show yet")
    cls = scatter_class(n)
    fig = new_figure(title=title, uirevision="item-map", hovermode="closest", height=ITEM_MAP_HEIGHT)
    texts_short = None
    if texts is not None:
        if len(texts) != n:
            raise FigureInputError(f"{fn}: got {len(texts)} texts for {n} items")
        limit = 80 if n < 20_000 else 48  # hover texts dominate the payload of big maps
        texts_short = np.array([truncate(t, limit) for t in texts], dtype=object)

    if edges is not None:
        edges = _check_edges(edges, n, fn)
        total = len(edges)
        if total > max_edges:
            keep = np.sort(np.random.default_rng(0).choice(total, size=max_edges, replace=False))
            edges = edges[keep]
        label = f"kNN edges ({len(edges):,} of {total:,} shown)" if total > len(edges) \
            else f"kNN edges ({total:,})"
        ex, ey = _segments(xy, edges)
        fig.add_trace(cls(x=ex, y=ey, mode="lines", name=label, hoverinfo="skip",
                          line=dict(color=edge_color, width=0.6)))

    index = np.arange(n)
    marker_size = 6 if n < 2000 else 4 if n < 20000 else 3
    hover_text = "%{hovertext}<br>" if texts_short is not None else ""
    if color is None:
        fig.add_trace(cls(x=xy[:, 0], y=xy[:, 1], mode="markers", name="items",
                          customdata=_ids(index), hovertext=texts_short,
                          marker=dict(size=marker_size, color=theme.OKABE_ITO[0]),
                          hovertemplate=f"item %{{customdata}}<br>{hover_text}<extra></extra>"))
    elif categorical:
        labels = np.asarray(color)
        if labels.shape != (n,):
            raise FigureInputError(f"{fn}: color must have shape ({n},), got {labels.shape}")
        categories = np.unique(labels)
        legend = max_legend_categories is None or len(categories) <= max_legend_categories
        for i, value in enumerate(categories):
            mask = labels == value
            col, symbol = theme.category_style(i)
            fig.add_trace(cls(
                x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=f"{color_label} {value}",
                customdata=_ids(index[mask]), legendgroup=str(value), showlegend=None if legend else False,
                hovertext=None if texts_short is None else texts_short[mask],
                marker=dict(size=marker_size, color=col, symbol=symbol),
                hovertemplate=(f"item %{{customdata}} \u00b7 {color_label} {value}<br>"
                               f"{hover_text}<extra></extra>")))
        if not legend:
            fig.add_annotation(**ui_note(f"{len(categories)} {color_label}s: hover an item for its {color_label}",
                                         y=1.06))
    else:
        values = as_array(color, "color", fn, shape=(n,))
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        fig.add_trace(cls(
            x=xy[:, 0], y=xy[:, 1], mode="markers", name="items", customdata=_ids(index),
            hovertext=texts_short, showlegend=False,
            marker=dict(size=marker_size, color=values, colorscale=theme.SEQUENTIAL,
                        cmin=lo, cmax=hi if hi > lo else lo + 1e-9,
                        colorbar=dict(title=dict(text=color_label))),
            hovertemplate=(f"item %{{customdata}}<br>{hover_text}{color_label} = "
                           "%{marker.color:.4f}<extra></extra>")))

    _add_selection(fig, cls, xy, highlight, neighbours, texts_short, fn)
    (x_title, y_title), note = LAYOUT_KINDS[layout_kind]
    fig.update_xaxes(showticklabels=False, showgrid=False, ticks="", title_text=x_title)
    fig.update_yaxes(showticklabels=False, showgrid=False, ticks="", title_text=y_title,
                     scaleanchor="x", scaleratio=1)
    if note:
        fig.add_annotation(**ui_note(note))
    fig.update_layout(meta=dict(aspect=1.0, n_items=n), legend=LEGEND_ON_TOP)
    return fig


def _add_selection(fig, cls, xy, highlight, neighbours, texts_short, fn) -> None:
    """Traces for the clicked item, its neighbours and the links between them (on top); on-screen
    selection marks, so they carry ``meta=theme.UI_ONLY`` and paper export leaves them out."""
    n = len(xy)
    if highlight is None:
        return
    if not 0 <= int(highlight) < n:
        raise FigureInputError(f"{fn}: highlight {highlight} is not an item index (0..{n - 1})")
    h = int(highlight)
    nb = np.asarray([] if neighbours is None else neighbours, dtype=np.int64)
    if nb.size and (nb.min() < 0 or nb.max() >= n):
        raise FigureInputError(f"{fn}: neighbours must be item indices in 0..{n - 1}")
    texts = (lambda idx: None) if texts_short is None else (lambda idx: texts_short[idx])
    if nb.size:
        lx, ly = _segments(xy, np.stack([np.full_like(nb, h), nb], axis=1))
        fig.add_trace(cls(x=lx, y=ly, mode="lines", name="neighbour links", hoverinfo="skip", meta=theme.UI_ONLY,
                          line=dict(color=theme.HIGHLIGHT, width=1.2)))
        fig.add_trace(cls(x=xy[nb, 0], y=xy[nb, 1], mode="markers", name=f"neighbours ({nb.size})",
                          customdata=_ids(nb), hovertext=texts(nb), meta=theme.UI_ONLY,
                          marker=dict(size=11, color=theme.HIGHLIGHT, symbol="circle-open",
                                      line=dict(width=2)),
                          hovertemplate="neighbour %{customdata}<br>%{hovertext}<extra></extra>"))
    fig.add_trace(cls(x=xy[[h], 0], y=xy[[h], 1], mode="markers", name=f"selected item {h}",
                      customdata=[h], hovertext=texts([h]), meta=theme.UI_ONLY,
                      marker=dict(size=16, color=theme.HIGHLIGHT, symbol="star",
                                  line=dict(color="black", width=1.5)),
                      hovertemplate="selected %{customdata}<br>%{hovertext}<extra></extra>"))


def item_selection_shapes(xy, highlight: int | None = None,
                          neighbours: Sequence[int] | None = None) -> list[dict]:
    """Layout shapes marking a selected item and its neighbours on a :func:`fig_item_map`:
    links to each neighbour, a ring around each neighbour and a filled dot on the item.

    Shapes, unlike traces, can be replaced without plotly recomputing the points, so an app
    can move the selection on a 50,000-item WebGL map by patching ``layout.shapes`` alone.
    Marks keep their pixel size when zooming; like other on-screen selections they are named
    ``theme.UI_ONLY`` and left out of paper exports. Empty when nothing is selected.

    Parameters
    ----------
    xy : array [N, 2], the map's layout
    highlight : int, optional, the selected item
    neighbours : list of int, optional
    """
    fn = "item_selection_shapes"
    xy = as_array(xy, "xy", fn, shape=(None, 2))
    n = len(xy)
    if highlight is None:
        return []
    h = int(highlight)
    if not 0 <= h < n:
        raise FigureInputError(f"{fn}: highlight {highlight} is not an item index (0..{n - 1})")
    nb = [int(i) for i in (neighbours or [])]
    if any(not 0 <= i < n for i in nb):
        raise FigureInputError(f"{fn}: neighbours must be item indices in 0..{n - 1}")
    hx, hy = (float(v) for v in xy[h])

    def dot(i, size, **style):
        x, y = (float(v) for v in xy[i])
        return dict(type="circle", xref="x", yref="y", xsizemode="pixel", ysizemode="pixel",
                    xanchor=x, yanchor=y, x0=-size, x1=size, y0=-size, y1=size,
                    layer="above", name=theme.UI_ONLY, **style)

    shapes = [dict(type="line", xref="x", yref="y", x0=hx, y0=hy, x1=float(xy[i, 0]), y1=float(xy[i, 1]),
                   line=dict(color=theme.HIGHLIGHT, width=1.2), layer="above", name=theme.UI_ONLY)
              for i in nb]
    shapes += [dot(i, 6, line=dict(color=theme.HIGHLIGHT, width=2)) for i in nb]
    shapes.append(dot(h, 8, fillcolor=theme.HIGHLIGHT, line=dict(color="black", width=1.5)))
    return shapes


def _width_bins(weights: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Edge index groups by weight quantile (fewer groups when weights repeat)."""
    if weights.size == 0:
        return []
    edges = np.unique(np.quantile(weights, np.linspace(0, 1, n_bins + 1)))
    if edges.size < 2:
        return [np.arange(weights.size)]
    which = np.clip(np.searchsorted(edges, weights, side="right") - 1, 0, edges.size - 2)
    return [np.flatnonzero(which == b) for b in range(edges.size - 1) if np.any(which == b)]


HUB_EDGE_RGB = "0,114,178"  # Okabe-Ito blue: edges with a hub end; the others stay grey
OTHER_EDGE_RGB = "90,90,90"
MAX_HUB_LABELS = 32  # hubs named on the graph up to this many (hover names them all)


def node_sizes(degree, d: int, fn: str):
    """Marker sizes [D] in px growing with the square root of the degree (area ~ degree), or 10 for all."""
    if degree is None:
        return 10
    degree = as_array(degree, "degree", fn, shape=(d,))
    top = max(float(degree.max()), 1.0) if d else 1.0
    return (5.0 + 15.0 * np.sqrt(np.clip(degree, 0, None) / top)).tolist()


def _hub_mask(hubs, d: int, fn: str) -> np.ndarray:
    is_hub = np.zeros(d, dtype=bool)
    idx = np.asarray([] if hubs is None else hubs, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= d):
        raise FigureInputError(f"{fn}: hubs must be node indices in 0..{d - 1}")
    is_hub[idx] = True
    return is_hub


@described("The domain memory as a graph over head-vector features: edge width is the "
           "weight, node colour the chosen Laplacian eigenvector (0 = white), node size the "
           "degree; hubs are ringed and their edges drawn in blue.")
def fig_feature_graph(pos, edges, weights, *, color=None, color_label: str = "eigenvector",
                      node_labels: Sequence[str] | None = None, n_width_bins: int = 4,
                      eigenvector: int | None = None, degree=None, hubs=None) -> go.Figure:
    """Nodes = features of the Laplacian, edges = its non-zero off-diagonal weights.

    Parameters
    ----------
    pos : array [D, 2]
        Node layout (e.g. spring layout or the first two non-trivial eigenvectors).
    edges : int array [E, 2]
        Node index pairs (each undirected edge once).
    weights : array [E]
        Edge weights; widths come from ``n_width_bins`` quantile bins, one trace per bin (and
        per kind: edges touching a hub are blue, the others grey).
    color : array [D], optional
        An eigenvector; diverging scale with ``cmin = -cmax`` so 0 sits at the centre.
    node_labels : list of D str, optional
        Hover names of the features (default "feature i").
    eigenvector : int, optional
        Index of the eigenvector ``color`` is, kept as ``layout.meta["eigenvector"]`` so the
        export and the links between pages name it.
    degree : int array [D], optional
        Neighbours per node: marker area grows with it (:func:`node_sizes`), hover shows it.
    hubs : int array, optional
        Hub node indices: ringed in vermillion in a "hubs" trace, named up to
        :data:`MAX_HUB_LABELS` of them; ``layout.meta["hubs"]`` is their number.

    Node points carry ``customdata`` = feature index.
    """
    fn = "fig_feature_graph"
    pos = as_array(pos, "pos", fn, shape=(None, 2))
    d = len(pos)
    if d == 0:
        return fig_empty("The domain memory has no features")
    edges = _check_edges(edges, d, fn)
    weights = as_array(weights, "weights", fn, shape=(len(edges),))
    is_hub = _hub_mask(hubs, d, fn)
    sizes = node_sizes(degree, d, fn)
    cls = scatter_class(max(d, 3 * len(edges)))
    fig = new_figure(hovermode="closest", uirevision="feature-graph", height=GRAPH_HEIGHT)
    touches = is_hub[edges[:, 0]] | is_hub[edges[:, 1]] if len(edges) else np.zeros(0, dtype=bool)
    alpha = float(np.clip(0.55 * np.sqrt(200 / max(len(edges), 1)), 0.1, 0.55))  # thousands overlap
    bins = _width_bins(weights, n_width_bins)
    for hub_kind, rgb, prefix in ((False, OTHER_EDGE_RGB, ""), (True, HUB_EDGE_RGB, "hub edges, ")):
        for b, in_bin in enumerate(bins):
            idx = in_bin[touches[in_bin] == hub_kind]
            if idx.size == 0:
                continue
            lo, hi = weights[idx].min(), weights[idx].max()
            ex, ey = _segments(pos, edges[idx])
            width = 0.6 + 3.0 * b / max(1, len(bins) - 1)
            fig.add_trace(cls(x=ex, y=ey, mode="lines", hoverinfo="skip", legendgroup=f"edges-{hub_kind}",
                              name=f"{prefix}w {lo:.3g}\u2013{hi:.3g} ({idx.size})",
                              line=dict(color=f"rgba({rgb},{alpha:.2f})", width=width)))
    labels = [f"feature {i}" for i in range(d)] if node_labels is None else \
        [truncate(s, 40) for s in node_labels]
    if len(labels) != d:
        raise FigureInputError(f"{fn}: got {len(labels)} node labels for {d} nodes")
    if degree is not None:
        labels = [f"{text}{' (hub)' if is_hub[i] else ''}<br>degree {int(k)}"
                  for i, (text, k) in enumerate(zip(labels, np.asarray(degree).tolist()))]
    marker = dict(size=sizes, line=dict(color="#333333", width=0.5))
    hover = "%{hovertext}"
    if color is not None:
        values = as_array(color, "color", fn, shape=(d,))
        peak = symmetric_range(values)
        marker.update(color=values, colorscale=theme.DIVERGING, cmin=-peak, cmax=peak, cmid=0.0,
                      colorbar=dict(title=dict(text=color_label)))
        hover += f"<br>{color_label} = %{{marker.color:.4f}}"
    else:
        marker.update(color=theme.OKABE_ITO[0])
    fig.add_trace(cls(x=pos[:, 0], y=pos[:, 1], mode="markers", name="features",
                      customdata=_ids(np.arange(d)), hovertext=labels, marker=marker,
                      hovertemplate=hover + "<extra></extra>", showlegend=False))
    _add_hubs(fig, cls, pos, np.flatnonzero(is_hub), sizes, labels)
    if len(edges) == 0:
        fig.add_annotation(**ui_note("No edges: every feature is isolated (L is all zeros)"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    meta = dict(aspect=1.0, hubs=int(is_hub.sum()))
    if eigenvector is not None:
        meta["eigenvector"] = int(eigenvector)
    fig.update_layout(legend=dict(title=dict(text="edge weight"), **LEGEND_ON_TOP), meta=meta)
    return fig


def _add_hubs(fig, cls, pos, hub_idx, sizes, labels) -> None:
    """Vermillion rings around the hub nodes (on top, so of the edges' trace class: WebGL traces
    cover SVG ones), named when there are few."""
    if hub_idx.size == 0:
        return
    ring = (np.asarray(sizes, dtype=float)[hub_idx] if not np.isscalar(sizes) else np.full(hub_idx.size, sizes)) + 8
    named = hub_idx.size <= MAX_HUB_LABELS
    fig.add_trace(cls(
        x=pos[hub_idx, 0], y=pos[hub_idx, 1], mode="markers+text" if named else "markers",
        name=f"hubs ({hub_idx.size})", customdata=_ids(hub_idx), hovertext=[labels[i] for i in hub_idx],
        text=[str(int(i)) for i in hub_idx] if named else None,
        textposition=np.where(pos[hub_idx, 1] >= pos[:, 1].mean(), "top center", "bottom center").tolist(),
        textfont=dict(size=10, color=theme.HIGHLIGHT),
        marker=dict(size=ring.tolist(), symbol="circle-open", color=theme.HIGHLIGHT, line=dict(width=2.5)),
        hovertemplate="%{hovertext}<extra>hub</extra>"))

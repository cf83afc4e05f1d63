"""Figures of the domain memory: item map, feature graph, spectrum, sparsity of L."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from workbench import theme
from workbench.figures._common import (
    LEGEND_ON_TOP,
    FigureInputError,
    as_array,
    block_centres,
    count_ticks,
    described,
    downsample_note,
    fig_empty,
    log_hline,
    new_figure,
    scatter_class,
    symmetric_range,
    truncate,
    ui_note,
)

MAX_EDGES = 20_000  # kNN edges drawn on the item map; more are subsampled (seeded)
ITEM_MAP_HEIGHT = 620  # px: the item map is the Domain page's main figure
GRAPH_HEIGHT = 480  # px: feature graph and sparsity pattern (square plots)
SPECTRUM_HEIGHT = 420  # px: eigenvalues and their density
GAP_LABEL_SEPARATION = 0.08  # gap labels closer than this share of the y range are staggered
LEGEND_ABOVE = dict(orientation="h", x=0.0, xanchor="left", y=1.02, yanchor="bottom")


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
                 title: str | None = None) -> go.Figure:
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

    Every item trace carries ``customdata`` = item index, so a click callback reads
    ``clickData["points"][0]["customdata"]``. From 5,000 items the traces use WebGL.
    """
    fn = "fig_item_map"
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
                          line=dict(color=theme.EDGE_COLOR, width=0.6)))

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
        for i, value in enumerate(np.unique(labels)):
            mask = labels == value
            col, symbol = theme.category_style(i)
            fig.add_trace(cls(
                x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=f"{color_label} {value}",
                customdata=_ids(index[mask]), legendgroup=str(value),
                hovertext=None if texts_short is None else texts_short[mask],
                marker=dict(size=marker_size, color=col, symbol=symbol),
                hovertemplate=(f"item %{{customdata}} \u00b7 {color_label} {value}<br>"
                               f"{hover_text}<extra></extra>")))
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
    fig.update_xaxes(showticklabels=False, showgrid=False, ticks="", title_text="UMAP 1")
    fig.update_yaxes(showticklabels=False, showgrid=False, ticks="", title_text="UMAP 2",
                     scaleanchor="x", scaleratio=1)
    fig.update_layout(meta=dict(aspect=1.0, n_items=n), legend=LEGEND_ON_TOP)
    return fig


def _add_selection(fig, cls, xy, highlight, neighbours, texts_short, fn) -> None:
    """Traces for the clicked item, its neighbours and the links between them (on top)."""
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
        fig.add_trace(cls(x=lx, y=ly, mode="lines", name="neighbour links", hoverinfo="skip",
                          line=dict(color=theme.HIGHLIGHT, width=1.2)))
        fig.add_trace(cls(x=xy[nb, 0], y=xy[nb, 1], mode="markers", name=f"neighbours ({nb.size})",
                          customdata=_ids(nb), hovertext=texts(nb),
                          marker=dict(size=11, color=theme.HIGHLIGHT, symbol="circle-open",
                                      line=dict(width=2)),
                          hovertemplate="neighbour %{customdata}<br>%{hovertext}<extra></extra>"))
    fig.add_trace(cls(x=xy[[h], 0], y=xy[[h], 1], mode="markers", name=f"selected item {h}",
                      customdata=[h], hovertext=texts([h]),
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


@described("The domain memory as a graph over head-vector features: edge width is the "
           "weight, node colour the chosen Laplacian eigenvector (0 = white).")
def fig_feature_graph(pos, edges, weights, *, color=None, color_label: str = "eigenvector",
                      node_labels: Sequence[str] | None = None, n_width_bins: int = 4) -> go.Figure:
    """Nodes = features of the Laplacian, edges = its non-zero off-diagonal weights.

    Parameters
    ----------
    pos : array [D, 2]
        Node layout (e.g. spring layout or the first two non-trivial eigenvectors).
    edges : int array [E, 2]
        Node index pairs (each undirected edge once).
    weights : array [E]
        Edge weights; widths come from ``n_width_bins`` quantile bins, one trace per bin.
    color : array [D], optional
        An eigenvector; diverging scale with ``cmin = -cmax`` so 0 sits at the centre.
    node_labels : list of D str, optional
        Hover names of the features (default "feature i").

    Node points carry ``customdata`` = feature index.
    """
    fn = "fig_feature_graph"
    pos = as_array(pos, "pos", fn, shape=(None, 2))
    d = len(pos)
    if d == 0:
        return fig_empty("The domain memory has no features")
    edges = _check_edges(edges, d, fn)
    weights = as_array(weights, "weights", fn, shape=(len(edges),))
    cls = scatter_class(max(d, 3 * len(edges)))
    fig = new_figure(hovermode="closest", uirevision="feature-graph", height=GRAPH_HEIGHT)
    bins = _width_bins(weights, n_width_bins)
    for b, idx in enumerate(bins):
        lo, hi = weights[idx].min(), weights[idx].max()
        ex, ey = _segments(pos, edges[idx])
        width = 0.6 + 3.0 * b / max(1, len(bins) - 1)
        fig.add_trace(cls(x=ex, y=ey, mode="lines", hoverinfo="skip", legendgroup="edges",
                          name=f"w {lo:.3g}\u2013{hi:.3g} ({idx.size})",
                          line=dict(color="rgba(90,90,90,0.55)", width=width)))
    labels = [f"feature {i}" for i in range(d)] if node_labels is None else \
        [truncate(s, 40) for s in node_labels]
    if len(labels) != d:
        raise FigureInputError(f"{fn}: got {len(labels)} node labels for {d} nodes")
    marker = dict(size=10, line=dict(color="#333333", width=0.5))
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
    if len(edges) == 0:
        fig.add_annotation(**ui_note("No edges: every feature is isolated (L is all zeros)"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    fig.update_layout(legend=dict(title=dict(text="edge weight"), **LEGEND_ON_TOP),
                      meta=dict(aspect=1.0))
    return fig


def _series(series: Mapping[str, object], fn: str) -> dict[str, np.ndarray]:
    if not isinstance(series, Mapping):
        raise FigureInputError(f"{fn}: series must be a dict name -> 1-D array")
    out = {str(k): np.sort(as_array(v, f"series[{k!r}]", fn, ndim=1)) for k, v in series.items()}
    return {k: v for k, v in out.items() if v.size}


@described("Sorted eigenvalues of one or more Laplacians on shared axes; crosses mark zero "
           "eigenvalues (one per connected component), dotted lines the spectral gap.")
def fig_spectrum(series: Mapping[str, object], *, log: bool = False,
                 gap: Mapping[str, float] | None = None, zero_tol: float = 1e-8) -> go.Figure:
    """Index versus eigenvalue for each Laplacian (e.g. the domain memory and a chain).

    Parameters
    ----------
    series : dict name -> array [D]
        Eigenvalues (any order; sorted here).
    log : bool
        Log y axis; zero eigenvalues are then drawn at a floor below the smallest
        positive value (the hover says so).
    gap : dict name -> float, optional
        Spectral gap per series, drawn as a dotted horizontal line with a label.
    zero_tol : float
        Eigenvalues with ``|mu| <= zero_tol * max(1, max|mu|)`` count as zero.
    """
    fn = "fig_spectrum"
    data = _series(series, fn)
    if not data:
        return fig_empty("No spectrum computed yet")
    colors = theme.series_colors(list(data))
    positives = [v[v > 0] for v in data.values()]
    smallest = min((p.min() for p in positives if p.size), default=1.0)
    floor = smallest / 10.0
    fig = new_figure(hovermode="closest", clickmode="event", legend=LEGEND_ABOVE, height=SPECTRUM_HEIGHT)
    for name, values in data.items():
        is_zero = np.abs(values) <= zero_tol * max(1.0, float(np.abs(values).max()))
        shown = np.where(is_zero, floor, values) if log else values
        idx = np.arange(values.size)
        fig.add_trace(go.Scatter(
            x=idx, y=shown, mode="lines+markers" if values.size <= 200 else "lines", name=name,
            line=dict(color=colors[name], width=1.5), marker=dict(size=4),
            customdata=values,
            hovertemplate=f"{name}<br>mode %{{x}}: %{{customdata:.5g}}<extra></extra>"))
        if is_zero.any():
            fig.add_trace(go.Scatter(
                x=idx[is_zero], y=shown[is_zero], mode="markers", legendgroup=name,
                name=f"{name}: {int(is_zero.sum())} zero eigenvalue(s)",
                marker=dict(symbol="x", size=9, color=colors[name], line=dict(width=1)),
                hovertemplate=(f"{name}<br>mode %{{x}}: 0"
                               + (" (drawn at the floor)" if log else "") + "<extra></extra>")))
    shown_values = np.concatenate([np.where(v > 0, v, floor) if log else v for v in data.values()])
    for name, value, x_text in gap_label_positions(gap or {}, shown_values, log=log):
        log_hline(fig, value, log=log, text=f"gap({name}) = {value:.3g}", x_text=x_text,
                  color=colors.get(str(name), theme.NEUTRAL), dash="dot")
    fig.update_xaxes(title_text="mode index (ascending eigenvalue)")
    fig.update_yaxes(title_text="eigenvalue", type="log" if log else "linear",
                     exponentformat="power", **(count_ticks(shown_values) if log else {}))
    return fig


def gap_label_positions(gap: Mapping[str, float | None], shown: np.ndarray, *, log: bool,
                        separation: float = GAP_LABEL_SEPARATION) -> list[tuple[str, float, float]]:
    """(name, gap, label x in paper units) for each drawable gap, labels staggered when close.

    Gaps are taken in ascending order; one whose line lies within ``separation`` of the y range
    (log10 units on a log axis) of the previous label's line moves its right-aligned label one
    slot to the left (0.99, 0.62, 0.25, then round again), so two labels never print on top of
    each other.
    """
    items = sorted(((str(k), float(v)) for k, v in gap.items()
                    if v is not None and np.isfinite(v) and not (log and v <= 0)), key=lambda kv: kv[1])
    if not items:
        return []
    ys = np.log10(np.array([v for _, v in items])) if log else np.array([v for _, v in items])
    values = np.log10(shown[shown > 0]) if log else shown
    values = np.concatenate([values[np.isfinite(values)], ys])
    span = float(values.max() - values.min()) or 1.0
    slots, out, slot, last_y = (0.99, 0.62, 0.25), [], 0, None
    for (name, value), y in zip(items, ys):
        close = last_y is not None and abs(y - last_y) < separation * span
        slot = (slot + 1) % len(slots) if close else 0
        out.append((name, value, slots[slot]))
        last_y = y
    return out


@described("Distribution of Laplacian eigenvalues, on shared bins so spectra can be compared.")
def fig_eigen_density(series: Mapping[str, object], bins: int = 40, *,
                      density: bool = True) -> go.Figure:
    """Histograms of eigenvalues on shared bin edges, overlaid.

    Parameters
    ----------
    series : dict name -> array [D]
    bins : int
        Number of shared bins over the joint range.
    density : bool
        Normalise each histogram to unit area (else counts).
    """
    fn = "fig_eigen_density"
    data = _series(series, fn)
    if not data:
        return fig_empty("No spectrum computed yet")
    joined = np.concatenate(list(data.values()))
    lo, hi = float(joined.min()), float(joined.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, int(bins) + 1)
    centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    colors = theme.series_colors(list(data))
    fig = new_figure(barmode="overlay", bargap=0, height=SPECTRUM_HEIGHT)
    for name, values in data.items():
        counts, _ = np.histogram(values, bins=edges, density=density)
        fig.add_trace(go.Bar(x=centres, y=counts, width=widths, name=name, opacity=0.55,
                             marker=dict(color=colors[name]),
                             hovertemplate=f"{name}<br>eigenvalue \u2248 %{{x:.4g}}<br>"
                                           "%{y:.4g}<extra></extra>"))
    fig.update_xaxes(title_text="eigenvalue")
    fig.update_yaxes(title_text="density" if density else "count")
    return fig


@described("Where the Laplacian's non-zero entries are (|value| as colour); the diagonal "
           "holds the degrees.")
def fig_sparsity(rows, cols, values, shape: tuple[int, int], *,
                 max_side: int = 512) -> go.Figure:
    """Sparsity pattern of a COO matrix as a heatmap of ``|value|`` (structural zeros blank).

    Parameters
    ----------
    rows, cols : int arrays [nnz]
    values : array [nnz]
    shape : (n_rows, n_cols)
    max_side : int
        Larger matrices are pooled into blocks (colour = max |value| in the block).
    """
    fn = "fig_sparsity"
    rows = as_array(rows, "rows", fn, ndim=1, dtype=np.int64)
    cols = as_array(cols, "cols", fn, ndim=1, dtype=np.int64)
    values = as_array(values, "values", fn, ndim=1)
    if not (rows.shape == cols.shape == values.shape):
        raise FigureInputError(f"{fn}: rows {rows.shape}, cols {cols.shape} and values "
                               f"{values.shape} must have one length")
    n_rows, n_cols = (int(s) for s in shape)
    if not np.any(values != 0):  # an empty pattern would be a blank, unreadable square
        return fig_empty(f"No edges: L ({n_rows}\u00d7{n_cols}) is all zeros", height=GRAPH_HEIGHT)
    outside = rows.size and (rows.min() < 0 or rows.max() >= n_rows
                             or cols.min() < 0 or cols.max() >= n_cols)
    if outside:
        raise FigureInputError(f"{fn}: an index lies outside the shape {shape}")
    fr = max(1, -(-n_rows // max_side))
    fc = max(1, -(-n_cols // max_side))
    grid = np.full((-(-n_rows // fr), -(-n_cols // fc)), np.nan)  # pooled [R', C']
    if rows.size:
        flat = np.zeros(grid.size)
        np.maximum.at(flat, (rows // fr) * grid.shape[1] + cols // fc, np.abs(values))
        touched = np.zeros(grid.size, dtype=bool)
        touched[(rows // fr) * grid.shape[1] + cols // fc] = True
        grid.reshape(-1)[touched] = flat[touched]
    row_c, col_c = block_centres(n_rows, fr), block_centres(n_cols, fc)
    note = downsample_note((n_rows, n_cols), (fr, fc), "max |value|")
    fig = new_figure(height=GRAPH_HEIGHT)
    fig.add_trace(go.Heatmap(z=grid, x=col_c, y=row_c, colorscale=theme.SEQUENTIAL_ALT,
                             zmin=0, colorbar=dict(title=dict(text="|value|")),
                             hovertemplate="row %{y}, col %{x}<br>|value| = %{z:.4g}"
                                           + note + "<extra></extra>"))
    density = rows.size / max(1, n_rows * n_cols)
    fig.add_annotation(**ui_note(f"{n_rows}\u00d7{n_cols}, {rows.size:,} non-zeros "
                                 f"({100 * density:.2f}% dense)"))
    fig.update_xaxes(title_text="column", showgrid=False, constrain="domain")
    fig.update_yaxes(title_text="row", showgrid=False, autorange="reversed",
                     scaleanchor="x", scaleratio=1, constrain="domain")
    fig.update_layout(meta=dict(aspect=1.0, downsample=[fr, fc]))
    return fig

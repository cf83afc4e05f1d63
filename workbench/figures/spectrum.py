"""Figures of a domain memory's Laplacian: sorted eigenvalues, their density, the sparsity of L."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from workbench import theme
from workbench.figures._common import (
    FigureInputError,
    as_array,
    block_centres,
    described,
    downsample_note,
    fig_empty,
    log_hline,
    make_compact,
    new_figure,
    ui_note,
)
from workbench.figures.ticks import count_ticks

SPECTRUM_HEIGHT = 420  # px: eigenvalues and their density
SPARSITY_HEIGHT = 480  # px: the sparsity pattern (a square plot)
GAP_LABEL_SEPARATION = 0.08  # gap labels closer than this share of the y range are staggered
LEGEND_ABOVE = dict(orientation="h", x=0.0, xanchor="left", y=1.02, yanchor="bottom")


def _series(series: Mapping[str, object], fn: str) -> dict[str, np.ndarray]:
    if not isinstance(series, Mapping):
        raise FigureInputError(f"{fn}: series must be a dict name -> 1-D array")
    out = {str(k): np.sort(as_array(v, f"series[{k!r}]", fn, ndim=1)) for k, v in series.items()}
    return {k: v for k, v in out.items() if v.size}


@described("Sorted eigenvalues of one or more Laplacians on shared axes; crosses mark zero "
           "eigenvalues (one per connected component), dotted lines the spectral gap.")
def fig_spectrum(series: Mapping[str, object], *, log: bool = False,
                 gap: Mapping[str, float] | None = None, zero_tol: float = 1e-8,
                 compact: bool = False) -> go.Figure:
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
    compact : bool
        Draw it small (:func:`~workbench.figures._common.make_compact`); the zero eigenvalues
        keep their crosses but leave the legend.
    """
    fn = "fig_spectrum"
    data = _series(series, fn)
    if not data:
        return fig_empty("No spectrum computed yet", compact=compact)
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
                name=f"{name}: {int(is_zero.sum())} zero eigenvalue(s)", showlegend=not compact,
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
    return make_compact(fig) if compact else fig


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
        return fig_empty(f"No edges: L ({n_rows}\u00d7{n_cols}) is all zeros", height=SPARSITY_HEIGHT)
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
    fig = new_figure(height=SPARSITY_HEIGHT)
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

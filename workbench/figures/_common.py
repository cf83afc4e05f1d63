"""Helpers shared by the figure modules: input checks, descriptions, downsampling."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from workbench import theme

GL_THRESHOLD = 5000  # points in one figure from which traces switch to WebGL
MAX_HEATMAP_SIDE = 512  # heatmaps larger than this are block-averaged down to it
HOVER_TEXT_LIMIT = 80  # characters of item text shown on hover
SCREEN_HEIGHT = 450  # px: a figure that does not size itself to its content
COMPACT_HEIGHT = 240  # px: a figure drawn small (``compact=True``: the overview's previews)
MIN_HEIGHT, MAX_HEIGHT = 160, 2400  # px: no figure is drawn shorter or taller than this
UI_ONLY = theme.UI_ONLY

DESCRIPTIONS: dict[str, str] = {}
"""One sentence per figure function, shown by the app beside the figure."""


class FigureInputError(ValueError):
    """An input to a figure function has the wrong shape, type or values."""


def described(description: str) -> Callable:
    """Register ``description`` for a figure function and stamp it on each figure.

    The wrapped function's figure gets ``layout.meta["figure"]`` (the function
    name) and ``layout.meta["description"]``; other meta keys it set are kept.
    """

    def decorate(fn: Callable[..., go.Figure]) -> Callable[..., go.Figure]:
        DESCRIPTIONS[fn.__name__] = description

        @functools.wraps(fn)
        def wrapper(*args, **kwargs) -> go.Figure:
            fig = fn(*args, **kwargs)
            meta = dict(fig.layout.meta or {})
            meta.setdefault("figure", fn.__name__)
            meta.setdefault("description", description)
            fig.update_layout(meta=meta)
            apply_screen_template(fig)
            settle_height(fig)
            return fig

        wrapper.description = description
        return wrapper

    return decorate


def new_figure(**layout) -> go.Figure:
    """An empty figure on the screen template."""
    fig = go.Figure()
    apply_screen_template(fig)
    fig.update_layout(**layout)
    return fig


def apply_screen_template(fig: go.Figure) -> None:
    """Put the registered screen template on ``fig`` without validating it again.

    The template was validated once when it was registered; assigning it by name re-validates
    (deep-copies) it on every figure, which cost ~20 ms a time. Plotly assigns its own default
    template the same way.
    """
    layout = fig.layout
    was = layout._validate
    layout._validate = False
    try:
        layout.template = pio.templates[theme.SCREEN_TEMPLATE]
    finally:
        layout._validate = was


# ------------------------------------------------------------------ heights
def content_height(n_rows: float, row_px: float, chrome_px: float = 120, *,
                   minimum: int = MIN_HEIGHT, maximum: int = MAX_HEIGHT) -> int:
    """Pixel height of a figure whose content is ``n_rows`` rows of ``row_px`` each.

    ``chrome_px`` is the title, axes, legend and margins around them. The one rule for figures
    that grow with their content (heads, tokens, layers), clipped to [minimum, maximum].
    """
    return int(np.clip(round(n_rows * row_px + chrome_px), minimum, maximum))


def settle_height(fig: go.Figure) -> None:
    """Give ``fig`` a definite pixel height: its own (clipped to [MIN_HEIGHT, MAX_HEIGHT]) or
    :data:`SCREEN_HEIGHT`.

    A figure without ``layout.height`` makes a responsive Dash graph take 100% of its card's
    auto height -- 0 px -- while plotly still draws 450 px, painting over the next card. Every
    figure function's result passes through here (``described``), so no graph can collapse.
    """
    height = fig.layout.height
    fig.layout.height = SCREEN_HEIGHT if height is None else int(np.clip(height, MIN_HEIGHT, MAX_HEIGHT))


def make_compact(fig: go.Figure) -> go.Figure:
    """Shrink a finished figure to a preview, from inside its figure function (``compact=True``).

    :data:`COMPACT_HEIGHT`, narrow margins, a smaller font and the legend (shown even for one
    series, to name it) in one row above the plot, so three previews fit side by side on the
    overview page; the data are unchanged.
    """
    fig.update_layout(height=COMPACT_HEIGHT, margin=dict(l=48, r=10, t=30, b=36), font=dict(size=11),
                      showlegend=True,  # even for one run: the legend names it
                      legend=dict(orientation="h", x=0.0, xanchor="left", y=1.0, yanchor="bottom",
                                  traceorder="normal", font=dict(size=10), bgcolor="rgba(0,0,0,0)"))
    fig.update_xaxes(title_font=dict(size=11), tickfont=dict(size=10), title_standoff=2)
    fig.update_yaxes(title_font=dict(size=11), tickfont=dict(size=10), title_standoff=2)
    return fig


# ---------------------------------------------------------------- input checking
def as_array(value, name: str, fn: str, *, ndim: int | None = None,
             shape: Sequence[int | None] | None = None, dtype=float) -> np.ndarray:
    """``np.asarray(value, dtype)`` with a clear error naming ``fn`` and ``name``.

    ``shape`` entries that are None match any length.
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise FigureInputError(f"{fn}: {name} is not a numeric array ({exc})") from None
    if ndim is not None and arr.ndim != ndim:
        raise FigureInputError(f"{fn}: {name} must have {ndim} dimensions, got shape {arr.shape}")
    if shape is not None:
        want = tuple("*" if s is None else s for s in shape)
        mismatch = any(s is not None and s != a for s, a in zip(shape, arr.shape))
        if arr.ndim != len(shape) or mismatch:
            raise FigureInputError(f"{fn}: {name} must have shape {want}, got {arr.shape}")
    return arr


def history_series(fn: str, run: str, record, key: str, *, ndim: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(steps [S], values [S, ...]) of one run's history mapping, checked to fit together."""
    if not isinstance(record, Mapping) or "step" not in record or key not in record:
        raise FigureInputError(f"{fn}: runs[{run!r}] needs 'step' and '{key}' arrays")
    steps = as_array(record["step"], f"{run}.step", fn, ndim=1)
    values = as_array(record[key], f"{run}.{key}", fn, ndim=ndim)
    if values.shape[0] != steps.size:
        raise FigureInputError(f"{fn}: {run}.{key} has {values.shape[0]} steps, step has {steps.size}")
    return steps, values


def check_same_shape(fn: str, **arrays: np.ndarray) -> None:
    """Raise unless all named arrays have one shape."""
    shapes = {name: arr.shape for name, arr in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise FigureInputError(f"{fn}: shapes must match, got {listed}")


def truncate(text: object, limit: int = HOVER_TEXT_LIMIT) -> str:
    """One-line text cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def scatter_class(n_points: int) -> type:
    """``go.Scattergl`` from :data:`GL_THRESHOLD` points on, else ``go.Scatter``."""
    return go.Scattergl if n_points >= GL_THRESHOLD else go.Scatter


def ui_note(text: str, **position) -> dict:
    """An on-screen note above the plot's top-right corner (annotation named "ui-note";
    paper export drops these)."""
    layout = dict(xref="paper", yref="paper", x=1.0, y=1.01, xanchor="right",
                  yanchor="bottom", showarrow=False, font=dict(color=theme.NEUTRAL))
    layout.update(position)
    return dict(text=text, name=UI_ONLY, **layout)


LEGEND_ON_TOP = dict(orientation="h", x=0.0, xanchor="left", y=1.02, yanchor="bottom")
"""Legend placement for figures that also have a colour bar on the right."""


def log_hline(fig: go.Figure, y: float, *, log: bool, text: str = "", color: str = "black",
              dash: str = "dash", x_text: float = 0.99) -> None:
    """A horizontal line across the plot with a right-aligned label above it.

    Shapes take data values on log axes but annotations take log10 values, which
    ``add_hline`` does not account for; this places both correctly.
    """
    fig.add_shape(type="line", xref="paper", x0=0, x1=1, y0=y, y1=y,
                  line=dict(color=color, dash=dash, width=1))
    if text:
        fig.add_annotation(xref="paper", x=x_text, y=float(np.log10(y)) if log else y,
                           xanchor="right", yanchor="bottom", showarrow=False, text=text,
                           font=dict(color=color))


# ------------------------------------------------------------- subplot grids
def subplot_grid_layout(rows: int, cols: int, *, horizontal_spacing: float, vertical_spacing: float,
                        column_titles: Sequence[str] | None = None, row_titles: Sequence[str] | None = None,
                        xaxis: dict | None = None, yaxis: dict | None = None) -> dict:
    """The layout dict ``make_subplots(rows, cols, ...)`` builds for a plain grid, as plain dicts.

    Same axis names, domains, anchors and title annotations (the numbers computed the same way),
    for figures with many panels: building them from dicts is ~4x faster than ``make_subplots``
    plus one ``add_trace(row=, col=)`` per panel. ``xaxis`` / ``yaxis`` are merged into every axis.
    Panel (r, c), counted from the top left, is axis number ``r * cols + c + 1``.
    """
    max_width = 0.98 if row_titles else 1.0
    widths = [(max_width - horizontal_spacing * (cols - 1)) / cols] * cols
    heights = [(1.0 - vertical_spacing * (rows - 1)) / rows] * rows
    layout: dict = {}
    domains = [[None] * cols for _ in range(rows)]
    for r in range(rows):
        y_s = sum(heights[: rows - 1 - r]) + (rows - 1 - r) * vertical_spacing
        y_e = y_s + heights[-1 - r]
        y_s = 0.0 if -0.01 < y_s < 0.0 else (1.0 if 1.0 < y_s < 1.01 else y_s)
        y_e = 0.0 if -0.01 < y_e < 0.0 else (1.0 if 1.0 < y_e < 1.01 else y_e)
        for c in range(cols):
            x_s = sum(widths[:c]) + c * horizontal_spacing
            x_domain, y_domain = [x_s, x_s + widths[c]], [y_s, y_e]
            domains[r][c] = (x_domain, y_domain)
            n = r * cols + c + 1
            suffix = "" if n == 1 else str(n)
            layout[f"xaxis{suffix}"] = {"anchor": f"y{suffix}", "domain": x_domain, **(xaxis or {})}
            layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}", "domain": y_domain, **(yaxis or {})}
    font = {"size": 16}
    annotations = []
    for c, text in enumerate(column_titles or []):
        if text and c < cols:
            x_domain, y_domain = domains[0][c]
            annotations.append({"y": y_domain[1], "xref": "paper", "x": sum(x_domain) / 2.0, "yref": "paper",
                                "text": text, "showarrow": False, "font": font, "xanchor": "center",
                                "yanchor": "bottom"})
    for r, text in enumerate(row_titles or []):
        if text and r < rows:
            x_domain, y_domain = domains[r][-1]
            annotations.append({"y": sum(y_domain) / 2.0, "xref": "paper", "x": x_domain[1], "yref": "paper",
                                "text": text, "showarrow": False, "font": font, "xanchor": "left",
                                "yanchor": "middle", "textangle": 90})
    layout["annotations"] = annotations
    return layout


def subplot_axes(rows: int, cols: int, r: int, c: int) -> dict:
    """{"xaxis": "x5", "yaxis": "y5"} for panel (r, c) of a `subplot_grid_layout` grid."""
    n = r * cols + c + 1
    suffix = "" if n == 1 else str(n)
    return {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


# ------------------------------------------------------------------ heatmaps
def block_reduce(z: np.ndarray, max_side: int = MAX_HEATMAP_SIDE, how: str = "mean"):
    """Shrink a 2-D array to at most ``max_side`` cells per side by block pooling.

    Returns
    -------
    small : ndarray, the pooled array (NaN cells are ignored inside a block)
    row_centres, col_centres : ndarray, each block's centre in original indices
    factors : (int, int), block height and width (1 when that side was small)
    """
    n_rows, n_cols = z.shape
    fr, fc = max(1, math.ceil(n_rows / max_side)), max(1, math.ceil(n_cols / max_side))
    rows_pad, cols_pad = -n_rows % fr, -n_cols % fc
    if fr == 1 and fc == 1:
        small = z
    else:
        values = z.astype(float)
        if rows_pad == 0 and cols_pad == 0 and not np.isnan(values).any():
            # exact blocks and no NaN: plain mean / max, the same numbers ~10x faster
            blocks = values.reshape(n_rows // fr, fr, n_cols // fc, fc)
            small = blocks.max(axis=(1, 3)) if how == "max" else blocks.mean(axis=(1, 3))
        else:
            padded = np.pad(values, ((0, rows_pad), (0, cols_pad)), constant_values=np.nan)
            # [R', fr, C', fc]: block row, row inside the block, block column, column inside
            blocks = padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc)
            with warnings.catch_warnings():  # all-NaN blocks (e.g. empty sparsity cells) are fine
                warnings.simplefilter("ignore", category=RuntimeWarning)
                pool = np.nanmax if how == "max" else np.nanmean
                small = pool(blocks, axis=(1, 3))
    row_centres = block_centres(n_rows, fr)
    col_centres = block_centres(n_cols, fc)
    return small, row_centres, col_centres, (fr, fc)


def block_centres(n: int, factor: int) -> np.ndarray:
    """Centre (in original indices) of each block of ``factor`` along a side of ``n``."""
    starts = np.arange(0, n, factor)
    ends = np.minimum(starts + factor, n) - 1
    return (starts + ends) / 2.0


def downsample_note(shape: tuple[int, int], factors: tuple[int, int], how: str = "mean") -> str:
    """Hover line explaining a pooled heatmap ('' when nothing was pooled)."""
    if factors == (1, 1):
        return ""
    return (f"<br><i>downsampled from {shape[0]}\u00d7{shape[1]}: each cell is the {how} "
            f"of a {factors[0]}\u00d7{factors[1]} block</i>")


def token_ticks(tokens: Sequence[str] | None, n: int, max_ticks: int = 48) -> dict:
    """Axis settings labelling positions ``0..n-1`` with tokens (thinned to ``max_ticks``).

    Positions stay numeric so repeated tokens do not merge into one category.
    """
    step = max(1, math.ceil(n / max_ticks))
    positions = list(range(0, n, step))
    if tokens is None:
        return dict(tickmode="array", tickvals=positions, ticktext=[str(p) for p in positions])
    labels = [truncate(tokens[p], 12) for p in positions]
    return dict(tickmode="array", tickvals=positions, ticktext=labels)


def token_labels(tokens: Sequence[str] | None, n: int, fn: str) -> list[str]:
    """Tokens as display strings, checked against the sequence length ``n``."""
    if tokens is None:
        return [str(i) for i in range(n)]
    tokens = [str(t) for t in tokens]
    if len(tokens) != n:
        raise FigureInputError(f"{fn}: got {len(tokens)} tokens for a sequence of length {n}")
    return tokens


def symmetric_range(*arrays: np.ndarray) -> float:
    """Largest finite absolute value over the arrays (1.0 when all are zero or empty)."""
    values = [np.nanmax(np.abs(a)) for a in arrays if a.size and np.isfinite(a).any()]
    peak = float(max(values)) if values else 0.0
    return peak if peak > 0 else 1.0


# --------------------------------------------------------------- empty state
@described("A placeholder shown while there is nothing to plot yet.")
def fig_empty(message: str = "No data yet", *, height: int | None = None, compact: bool = False) -> go.Figure:
    """A clean empty-state figure: no axes, ``message`` centred.

    Parameters
    ----------
    message : str
        What to tell the user (e.g. "Pick a checkpoint to see its attention").
    height : int, optional
        Figure height in pixels (the app's default when None).
    compact : bool
        The height of a compact figure (:data:`COMPACT_HEIGHT`) when ``height`` is None.
    """
    fig = new_figure(height=height if height is not None or not compact else COMPACT_HEIGHT)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.add_annotation(text=str(message), x=0.5, y=0.5, xref="paper", yref="paper",
                       showarrow=False, font=dict(size=16, color=theme.NEUTRAL))
    fig.update_layout(meta=dict(empty=True))
    return fig

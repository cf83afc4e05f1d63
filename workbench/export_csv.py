"""The numbers behind a figure as CSV, read from the server-built plotly figure (no Dash, no torch).

A generic walk over the traces covers most figures: one row per plotted point or heatmap cell,
columns named by the axis titles where set (else by the hover template's labels, else "x" /
"y" / "value"). Scatter, lines and bars give x, y, their error-bar ends and the per-point
values the hover shows (text, hover text, referenced customdata, colour values); heatmaps come
in long form (row label, column label, value); a filled band drawn as one closed polygon gives
x with its low and high edge; lines broken by gaps get a ``segment`` number; subplots get a
``panel`` column (the subplot title where there is one). Screen-only traces (``meta`` =
``theme.UI_ONLY``), shapes and annotations are not data. Figures whose numbers this walk would
mislabel give their own table (``{column: values}``) through their card's recipe
(``views.cards.recipe(..., tables=...)``), written by :func:`table_to_csv`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from workbench import theme
from workbench.export_csv_values import all_colours, array, cells, missing, shown

Table = Mapping[str, Sequence]
"""A figure's own table: column name -> values, every column of one length."""

PANEL, SERIES, SEGMENT = "panel", "series", "segment"
_PLACEHOLDER = re.compile(r"%\{([^}:|]+)(?:[:|][^}]*)?\}")
_TAG = re.compile(r"<[^>]+>")
_HEATMAP_TYPES = ("heatmap", "heatmapgl", "contour", "histogram2d", "histogram2dcontour")
_MAX_LABEL = 40


class CsvError(ValueError):
    """A figure (or a figure's own table) has no numbers to write, or a malformed table."""


# ------------------------------------------------------------------ public
def figure_table(fig: go.Figure) -> tuple[list[str], list[list[str]]]:
    """(header, rows of cells) of ``fig`` by the generic walk; raises :class:`CsvError` when empty."""
    data = fig.data if isinstance(fig, go.Figure) else go.Figure(fig).data
    layout = fig.layout
    traces = [(i, t) for i, t in enumerate(data) if _is_data(t)]
    panels = _panel_labels(layout, [t for _, t in traces])
    blocks = []
    for (i, trace), panel in zip(traces, panels):
        block = _trace_block(layout, trace)
        if block is None:
            continue
        n = len(next(iter(block.values())))
        if n == 0:
            continue
        head = {PANEL: np.full(n, panel)} if panel is not None else {}
        name = "" if trace.name is None else str(trace.name)
        blocks.append({**head, SERIES: np.full(n, name), **block})
    if not blocks:
        raise CsvError("the figure has no data to write as CSV")
    if all(not str(v) for b in blocks for v in b[SERIES][:1]):
        for b in blocks:
            del b[SERIES]
    return _merge(blocks)


def figure_to_csv(fig: go.Figure, table: Callable[[go.Figure], Table] | None = None) -> bytes:
    """CSV bytes of ``fig``: ``table(fig)`` when the figure has its own table, else the generic walk."""
    if table is not None:
        return table_to_csv(table(fig))
    header, rows = figure_table(fig)
    return _write(header, rows)


def table_to_csv(table: Table) -> bytes:
    """CSV bytes of a ``{column: values}`` table (columns of one length, at least one row)."""
    if not isinstance(table, Mapping) or not table:
        raise CsvError("a figure's table must be a non-empty {column: values} mapping")
    columns = {str(k): cells(array(v).ravel()) for k, v in table.items()}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise CsvError(f"a figure's table has columns of different lengths {sorted(lengths)}")
    if lengths == {0}:
        raise CsvError("the figure's table has no rows")
    return _write(list(columns), list(zip(*columns.values())))


# ---------------------------------------------------------------- traces
def _is_data(trace) -> bool:
    return trace.meta != theme.UI_ONLY and trace.visible is not False


def _trace_block(layout, trace) -> dict[str, np.ndarray] | None:
    """Columns (name -> 1-D array, one length) of one trace, or None if it carries no numbers."""
    labels = _hover_labels(getattr(trace, "hovertemplate", None), trace.name)
    kind = trace.type
    if kind in _HEATMAP_TYPES and trace.z is not None and array(trace.z).ndim == 2:
        return _heatmap_block(layout, trace, labels)
    if kind in ("pie", "funnelarea", "treemap", "sunburst") and getattr(trace, "values", None) is not None:
        return {"label": array(trace.labels), "value": array(trace.values)}
    if kind == "table" and trace.cells.values is not None:  # a table trace: its own columns
        names = [_title(h) or f"column {i}" for i, h in enumerate(array(trace.header.values).ravel())]
        columns = [array(c).ravel() for c in trace.cells.values]
        names += [f"column {i}" for i in range(len(names), len(columns))]
        return dict(zip(names, columns)) if columns and len({c.size for c in columns}) == 1 else None
    if kind in ("scatterpolar", "scatterpolargl", "barpolar") and trace.r is not None:
        return {"theta": array(trace.theta), "r": array(trace.r)} if trace.theta is not None else {"r": array(trace.r)}
    return _points_block(layout, trace, labels)


def _points_block(layout, trace, labels) -> dict[str, np.ndarray] | None:
    x = array(getattr(trace, "x", None))
    y = array(getattr(trace, "y", None))
    if x.size == 0 and y.size == 0:
        return None
    n = max(x.size, y.size)
    grid = trace.type in ("scatter", "scattergl", "bar")
    if x.size == 0 and grid:
        x = _steps(trace, "x", n)
    if y.size == 0 and grid:
        y = _steps(trace, "y", n)
    cols = _Columns()
    x_name = _axis_name(layout, getattr(trace, "xaxis", None) or "x", labels.get("x"), "x")
    y_name = _axis_name(layout, getattr(trace, "yaxis", None) or "y", labels.get("y"), "y")
    if _is_band(trace, x, y):
        half = x.size // 2
        lo = np.minimum(y[:half].astype(float), y[half:][::-1].astype(float))
        hi = np.maximum(y[:half].astype(float), y[half:][::-1].astype(float))
        cols.add(x_name, x[:half])
        cols.add(f"{y_name} low", lo)
        cols.add(f"{y_name} high", hi)
        return cols.data
    if x.size:
        cols.add(x_name, x)
    if y.size:
        cols.add(y_name, y)
    for axis, name, values in (("y", y_name, y), ("x", x_name, x)):
        low_high = _error_ends(getattr(trace, f"error_{axis}", None), values)
        if low_high is not None:
            cols.add(f"{name} error low", low_high[0])
            cols.add(f"{name} error high", low_high[1])
    _add_point_extras(cols, trace, labels, n)
    data = cols.data
    keep = shown(x if x.size else None, y if y.size else None, n)
    if not keep.all():
        mode = str(getattr(trace, "mode", "") or "")
        segment = np.cumsum(~keep)[keep]  # a new segment after every gap
        data = {k: v[keep] for k, v in data.items()}
        if "lines" in mode or trace.type in ("scatter", "scattergl") and not mode:
            _, data[SEGMENT] = np.unique(segment, return_inverse=True)
    return data


def _add_point_extras(cols: _Columns, trace, labels: dict, n: int) -> None:
    """Per-point values the figure shows beside x and y: colour values, text, hover text, customdata."""
    marker = getattr(trace, "marker", None)
    colour = array(getattr(marker, "color", None)) if marker is not None else array(None)
    if colour.size == n and colour.ndim == 1 and not all_colours(colour):
        scale_title = _title(getattr(getattr(marker, "colorbar", None), "title", None))
        cols.add(scale_title or labels.get("marker.color") or "colour value", colour)
    size = array(getattr(marker, "size", None)) if marker is not None else array(None)
    if size.size == n and size.ndim == 1 and size.dtype.kind in "iuf" and n > 1:
        cols.add(labels.get("marker.size") or "marker size", size)
    for prop, default in (("text", "text"), ("hovertext", "hover text")):
        values = array(getattr(trace, prop, None))
        if values.ndim == 1 and values.size == n:
            cols.add(labels.get(prop) or default, values)
    custom = array(getattr(trace, "customdata", None))
    if custom.size and custom.shape[0] == n:
        table = custom.reshape(n, -1)
        for k in range(table.shape[1]):
            label = labels.get(f"customdata[{k}]", labels.get("customdata") if table.shape[1] == 1 else None)
            key = f"customdata[{k}]" in labels or (table.shape[1] == 1 and "customdata" in labels)
            if key:
                cols.add(label or "customdata" + ("" if table.shape[1] == 1 else f" {k}"), table[:, k])


def _heatmap_block(layout, trace, labels) -> dict[str, np.ndarray]:
    """Long form: row label, column label, value (and per-cell text / customdata), NaN cells left out."""
    z = array(trace.z)
    transpose = bool(getattr(trace, "transpose", False))
    if transpose:
        z = z.T
    n_rows, n_cols = z.shape
    row = _cell_coords(array(trace.y), n_rows, trace, "y")
    col = _cell_coords(array(trace.x), n_cols, trace, "x")
    cols = _Columns()
    cols.add(_axis_name(layout, trace.yaxis or "y", labels.get("y"), "row"), np.repeat(row, n_cols))
    cols.add(_axis_name(layout, trace.xaxis or "x", labels.get("x"), "column"), np.tile(col, n_rows))
    colorbar = _title(getattr(getattr(trace, "colorbar", None), "title", None))
    axis = getattr(trace, "coloraxis", None)
    if axis and not colorbar:
        colorbar = _title(getattr(getattr(layout[axis], "colorbar", None), "title", None))
    cols.add(colorbar or labels.get("z") or "value", z.reshape(-1))
    for prop, default in (("text", "text"), ("hovertext", "hover text")):
        values = array(getattr(trace, prop, None))
        if values.ndim == 2:
            values = values.T if transpose else values
            if values.shape == (n_rows, n_cols):
                cols.add(labels.get(prop) or default, values.reshape(-1))
    custom = array(getattr(trace, "customdata", None))
    if custom.ndim >= 2:
        custom = np.swapaxes(custom, 0, 1) if transpose else custom
        if custom.shape[:2] == (n_rows, n_cols):
            table = custom.reshape(n_rows * n_cols, -1)
            for k in range(table.shape[1]):
                if f"customdata[{k}]" in labels or (table.shape[1] == 1 and "customdata" in labels):
                    name = labels.get(f"customdata[{k}]") or labels.get("customdata")
                    cols.add(name or f"customdata {k}", table[:, k])
    data = cols.data
    keep = ~missing(z.reshape(-1))
    return data if keep.all() else {k: v[keep] for k, v in data.items()}


def _cell_coords(given: np.ndarray, n: int, trace, axis: str) -> np.ndarray:
    if given.size == n:
        return given
    if given.size == n + 1 and given.dtype.kind in "iuf":  # bin edges: the cell centres
        return (given[:-1] + given[1:]) / 2.0
    return _steps(trace, axis, n)


def _steps(trace, axis: str, n: int) -> np.ndarray:
    """Plotly's implicit coordinates ``axis0 + i * d<axis>`` of a trace without that array."""
    start = getattr(trace, f"{axis}0", None)
    step = getattr(trace, f"d{axis}", None)
    start = 0 if start is None else start
    step = 1 if step is None else step
    if isinstance(start, (int, float)) and isinstance(step, (int, float)):
        return start + step * np.arange(n)
    return np.arange(n)


def _is_band(trace, x: np.ndarray, y: np.ndarray) -> bool:
    """A closed polygon drawn forth then back over the same x: a filled band between two edges."""
    if getattr(trace, "fill", None) != "toself" or x.size != y.size or x.size < 4 or x.size % 2:
        return False
    half = x.size // 2
    return y.dtype.kind in "iuf" and list(x[:half]) == list(x[half:][::-1])


def _error_ends(error, values: np.ndarray):
    """(low, high) ends of a trace's error bars, or None when it has none the figure draws."""
    if error is None or error.visible is False or values.size == 0 or values.dtype.kind not in "iuf":
        return None
    kind = error.type or ("data" if error.array is not None else None)
    v = values.astype(float)
    if kind == "data":
        plus = array(error.array).astype(float)
        if plus.size != v.size:
            return None
        minus = plus if error.symmetric is not False or error.arrayminus is None else array(error.arrayminus).astype(float)
    elif kind in ("constant", "percent"):
        size = float(error.value or 0.0)
        plus = np.full(v.size, size) if kind == "constant" else np.abs(v) * size / 100
        minus_size = size if error.symmetric is not False or error.valueminus is None else float(error.valueminus)
        minus = np.full(v.size, minus_size) if kind == "constant" else np.abs(v) * minus_size / 100
    else:
        return None
    return v - minus, v + plus


# ----------------------------------------------------------------- naming
class _Columns:
    """Ordered columns of one trace; a name taken by another role gets that role appended."""

    def __init__(self):
        self.data: dict[str, np.ndarray] = {}

    def add(self, name: str, values) -> None:
        name = name or "value"
        while name in self.data:
            name = f"{name} (2)" if not name.endswith(")") else f"{name}'"
        self.data[name] = np.asarray(values)


def _title(title) -> str:
    text = getattr(title, "text", title) if title is not None else None
    if not isinstance(text, str):
        return ""
    text = _TAG.sub("", text).replace("\u2192", "").replace("\u2190", "")
    return " ".join(text.split())


def _axis_name(layout, axis_id: str, hover_label: str | None, default: str) -> str:
    """An axis's title (or, if unset, that of the axis it matches), else the hover label, else ``default``."""
    seen = set()
    while axis_id and axis_id not in seen:
        seen.add(axis_id)
        key = f"{axis_id[0]}axis{axis_id[1:]}"
        try:
            axis = layout[key]
        except (KeyError, ValueError):
            break
        title = _title(axis.title)
        if title:
            return title
        axis_id = axis.matches
    return hover_label or default


def _hover_labels(template, trace_name) -> dict[str, str]:
    """{placeholder: the words before it on its hover line} ("query %{y}" -> {"y": "query"});
    a placeholder without words (or only the series name before it) maps to ""."""
    if not isinstance(template, str):
        return {}
    text = re.sub(r"<extra>.*?</extra>", "", template, flags=re.S)
    found: dict[str, str] = {}
    for line in re.split(r"<br\s*/?>", text, flags=re.I):
        line = _TAG.sub("", line)
        start = 0
        for match in _PLACEHOLDER.finditer(line):
            key = match.group(1).strip()
            label = line[start:match.start()]
            start = match.end()
            label = re.split(r"[:;,]", label)[-1].strip(" \t'\"=\u2248~(")
            if not label or label == str(trace_name) or len(label) > _MAX_LABEL:
                label = ""
            if not found.get(key):
                found[key] = label
    return found


# ----------------------------------------------------------------- panels
def _panel_labels(layout, traces) -> list[str | None]:
    """Each trace's panel name, or None for all when the data fills one panel."""
    keys = [(_base_axis(layout, getattr(t, "xaxis", None) or "x"),
             _base_axis(layout, getattr(t, "yaxis", None) or "y")) for t in traces]
    if len(set(keys)) <= 1:
        return [None] * len(traces)
    names = {key: _panel_title(layout, *key) for key in set(keys)}
    return [names[key] for key in keys]


def _base_axis(layout, axis_id: str) -> str:
    """The axis a secondary axis overlays (``y2`` over ``y``: one panel), else the axis itself."""
    try:
        over = layout[f"{axis_id[0]}axis{axis_id[1:]}"].overlaying
    except (KeyError, ValueError):
        return axis_id
    return over if isinstance(over, str) and over[:1] == axis_id[:1] else axis_id


def _domain(layout, axis_id: str) -> tuple[float, float]:
    try:
        domain = layout[f"{axis_id[0]}axis{axis_id[1:]}"].domain
    except (KeyError, ValueError):
        domain = None
    return tuple(domain) if domain else (0.0, 1.0)


def _panel_title(layout, x_id: str, y_id: str) -> str:
    """The subplot title over this panel (or its column title and row title), else its axes."""
    (x0, x1), (y0, y1) = _domain(layout, x_id), _domain(layout, y_id)
    centre_x, middle_y = (x0 + x1) / 2, (y0 + y1) / 2
    over, column, row = None, None, None
    for ann in layout.annotations:
        if ann.xref != "paper" or ann.yref != "paper" or ann.name == theme.UI_ONLY or not ann.text:
            continue
        if ann.textangle == 90 and ann.x is not None and ann.x >= x1 - 1e-6 and _near(ann.y, middle_y):
            row = ann.text
        elif ann.yanchor == "bottom" and _near(ann.x, centre_x):
            if _near(ann.y, y1):
                over = ann.text
            elif ann.y is not None and ann.y > y1:
                column = column or ann.text
    title = _title(", ".join(t for t in (over or column, row) if t))
    return title or _axis_name(layout, y_id, None, "") or _axis_name(layout, x_id, None, "") or f"{x_id} {y_id}"


def _near(a, b) -> bool:
    return a is not None and abs(float(a) - float(b)) < 1e-6


# ----------------------------------------------------------------- output
def _merge(blocks: list[dict[str, np.ndarray]]) -> tuple[list[str], list[list[str]]]:
    """One header (columns in order of first appearance) and every block's rows under it."""
    header: list[str] = []
    for block in blocks:
        header += [name for name in block if name not in header]
    rows: list = []
    for block in blocks:
        n = len(next(iter(block.values())))
        empty = [""] * n
        columns = [cells(block[name]) if name in block else empty for name in header]
        rows.extend(zip(*columns))
    return header, rows


def _write(header: list[str], rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")

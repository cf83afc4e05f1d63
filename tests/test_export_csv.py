"""CSV and HTML export: a figure's CSV parses back to the arrays the figure draws (scatter, bars,
heatmaps, subplot grids, bands, broken lines), tables of their own, and the HTML page carries the
figure's data with plotly.js inline and nothing to fetch."""

from __future__ import annotations

import base64
import csv
import io
import json
import re

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from plotly.subplots import make_subplots

import workbench.figures as F
from workbench import export, theme
from workbench.export_csv import CsvError, figure_table, figure_to_csv, table_to_csv
from workbench.export_html import figure_to_html
from workbench.figures._common import subplot_axes, subplot_grid_layout
from workbench.figures.tokens import fig_token_weights, table_token_weights


def rows_of(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def floats(rows, column) -> np.ndarray:
    return np.array([float(r[column]) if r[column] != "" else np.nan for r in rows])


def series(rows, name) -> list[dict]:
    return [r for r in rows if r["series"] == name]


# ------------------------------------------------------------------ generic walk
def test_scatter_and_lines_round_trip_with_axis_titles_and_hover_values():
    rng = np.random.default_rng(0)
    x = np.arange(7) * 37.0
    a, b = rng.normal(size=7), rng.normal(size=7).astype(np.float32)
    fig = go.Figure([go.Scatter(x=x, y=a, name="tau", mode="lines"),
                     go.Scatter(x=x, y=b, name="dot", customdata=np.stack([x * 2, x * 3], axis=1),
                                hovertemplate="dot<br>tokens %{customdata[1]:.0f}<extra></extra>"),
                     go.Scatter(x=[0, 1], y=[0, 1], name="selection", meta=theme.UI_ONLY)])
    fig.update_layout(xaxis_title="step", yaxis_title="loss (nats / token)")
    rows = rows_of(figure_to_csv(fig))
    assert list(rows[0]) == ["series", "step", "loss (nats / token)", "tokens"]
    assert {r["series"] for r in rows} == {"tau", "dot"}  # the screen-only trace is not data
    np.testing.assert_array_equal(floats(series(rows, "tau"), "step"), x)
    np.testing.assert_array_equal(floats(series(rows, "tau"), "loss (nats / token)"), a)
    np.testing.assert_array_equal(floats(series(rows, "dot"), "loss (nats / token)").astype(np.float32), b)
    np.testing.assert_array_equal(floats(series(rows, "dot"), "tokens"), x * 3)  # the hovered column only
    assert all(r["tokens"] == "" for r in series(rows, "tau"))


def test_bars_with_asymmetric_error_bars_give_the_bar_ends():
    fig = go.Figure(go.Bar(x=["dot", "tau"], y=[2.0, 3.0], name="final",
                           error_y=dict(type="data", symmetric=False, array=[0.5, 0.25], arrayminus=[0.1, 0.2])))
    fig.update_layout(yaxis_title="bits per byte")
    rows = rows_of(figure_to_csv(fig))
    assert [r["x"] for r in rows] == ["dot", "tau"]
    np.testing.assert_allclose(floats(rows, "bits per byte"), [2.0, 3.0])
    np.testing.assert_allclose(floats(rows, "bits per byte error low"), [1.9, 2.8])
    np.testing.assert_allclose(floats(rows, "bits per byte error high"), [2.5, 3.25])


def test_a_heatmap_is_long_form_row_column_value_without_empty_cells():
    z = np.arange(12, dtype=float).reshape(3, 4) / 7
    z[0, 3] = np.nan  # e.g. a causal mask: no cell drawn, no row written
    fig = go.Figure(go.Heatmap(z=z, x=["a", "b", "c", "d"], y=["q0", "q1", "q2"], colorbar=dict(title="weight")))
    fig.update_layout(xaxis_title="key", yaxis_title="query")
    rows = rows_of(figure_to_csv(fig))
    assert list(rows[0]) == ["query", "key", "weight"]  # row label, column label, value
    assert len(rows) == 11
    for r in rows:
        i, j = ["q0", "q1", "q2"].index(r["query"]), "abcd".index(r["key"])
        assert float(r["weight"]) == z[i, j]
    # without axis titles the hover template names the columns
    bare = go.Figure(go.Heatmap(z=z, hovertemplate="query %{y}<br>key ≈ %{x}<br>weight = %{z:.3f}<extra></extra>"))
    header, body = figure_table(bare)
    assert header == ["query", "key", "weight"]
    assert [float(v) for v in body[4]] == [1.0, 1.0, z[1, 1]]  # implicit coordinates; (0, 3) left out


def test_subplots_get_a_panel_column_named_by_their_titles():
    rng = np.random.default_rng(1)
    tau, dot = rng.random((4, 4)), rng.random((4, 4))
    fig = make_subplots(rows=1, cols=3, subplot_titles=["tau", "dot", "loss"])
    fig.add_trace(go.Heatmap(z=tau, name="tau"), row=1, col=1)
    fig.add_trace(go.Heatmap(z=dot, name="dot"), row=1, col=2)
    fig.add_trace(go.Bar(x=["prompt"], y=[0.5], name="Δ loss"), row=1, col=3)
    rows = rows_of(figure_to_csv(fig))
    assert rows[0]["panel"] == "tau" and {r["panel"] for r in rows} == {"tau", "dot", "loss"}
    for name, z in (("tau", tau), ("dot", dot)):
        cells = [r for r in rows if r["panel"] == name]
        got = np.full((4, 4), np.nan)
        for r in cells:
            got[int(r["row"]), int(r["column"])] = float(r["value"])
        np.testing.assert_array_equal(got, z)
    assert [r["y"] for r in rows if r["panel"] == "loss"] == ["0.5"]


def test_a_grid_of_panels_is_named_by_its_column_and_row_titles():
    rng = np.random.default_rng(2)
    maps = rng.random((2, 3, 2, 2))  # [layer, head, query, key]
    layout = subplot_grid_layout(2, 3, horizontal_spacing=0.01, vertical_spacing=0.02,
                                 column_titles=["H0", "H1", "H2"], row_titles=["L0", "L1"])
    traces = [dict(type="heatmap", z=maps[l, h], name=f"L{l} H{h}", **subplot_axes(2, 3, l, h))
              for l in range(2) for h in range(3)]
    rows = rows_of(figure_to_csv(go.Figure(data=traces, layout=layout)))
    assert len(rows) == maps.size
    for r in rows:
        l, h = int(r["series"][1]), int(r["series"][-1])
        assert r["panel"] == f"H{h}, L{l}"
        assert float(r["value"]) == maps[l, h, int(r["row"]), int(r["column"])]


def test_a_secondary_axis_is_the_same_panel_and_a_column_of_its_own():
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=[0, 1, 2], y=[0.2, 0.3, 0.5], name="energy"), secondary_y=False)
    fig.add_trace(go.Scatter(x=[0, 1, 2], y=[0.0, 1.5, 3.0], name="eigenvalue"), secondary_y=True)
    fig.update_yaxes(title_text="energy fraction", secondary_y=False)
    fig.update_yaxes(title_text="eigenvalue mu", secondary_y=True)
    header, _ = figure_table(fig)
    assert header == ["series", "x", "energy fraction", "eigenvalue mu"]


def test_a_filled_band_gives_low_and_high_edges_and_broken_lines_give_segments():
    x = np.array([1.0, 2.0, 3.0])
    lo, hi = np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.7, 0.9])
    band = go.Scatter(x=np.r_[x, x[::-1]], y=np.r_[hi, lo[::-1]], fill="toself", mode="none", name="5-95%")
    edges = go.Scatter(x=[0, 1, None, 2, 3, None], y=[0, 1, None, 1, 0, None], mode="lines", name="edges")
    rows = rows_of(figure_to_csv(go.Figure([band, edges]).update_layout(yaxis_title="lambda")))
    b = series(rows, "5-95%")
    np.testing.assert_array_equal(floats(b, "x"), x)
    np.testing.assert_array_equal(floats(b, "lambda low"), lo)
    np.testing.assert_array_equal(floats(b, "lambda high"), hi)
    e = series(rows, "edges")
    assert [(r["segment"], r["x"], r["lambda"]) for r in e] == [("0", "0", "0"), ("0", "1", "1"),
                                                                 ("1", "2", "1"), ("1", "3", "0")]


def test_a_table_trace_gives_its_own_columns():
    fig = go.Figure(go.Table(header=dict(values=["<b>head</b>", "importance"]),
                             cells=dict(values=[["L0 H0", "L0 H1"], [0.25, 0.75]])))
    assert figure_to_csv(fig) == b"head,importance\nL0 H0,0.25\nL0 H1,0.75\n"


def test_figures_sent_as_json_give_the_same_csv():
    """plotly's base64 typed arrays (a figure read back from JSON) decode to the same numbers."""
    rng = np.random.default_rng(3)
    fig = F.fig_attention_pair(rng.random((5, 5)), rng.random((5, 5)), list("abcde"))
    assert figure_to_csv(pio.from_json(fig.to_json())) == figure_to_csv(fig)


def test_a_figure_without_data_is_an_error():
    with pytest.raises(CsvError, match="no data"):
        figure_to_csv(go.Figure())
    with pytest.raises(export.ExportError, match="writing csv failed: the figure has no data"):
        export.figure_to_bytes(go.Figure(), "csv")


# ------------------------------------------------------------------ own tables
def test_a_figures_own_table_is_written_as_given_and_checked():
    assert table_to_csv({"key": [0, 1], "weight": [0.25, np.float32(0.5)]}) == b"key,weight\n0,0.25\n1,0.5\n"
    with pytest.raises(CsvError, match="different lengths"):
        table_to_csv({"a": [1, 2], "b": [1]})
    with pytest.raises(CsvError, match="no rows"):
        table_to_csv({"a": []})


def test_the_token_weights_table_gives_key_token_and_weight():
    tokens = [f"t{i}" for i in range(70)]
    w = {"tau": np.linspace(0.0, 1.0, 67), "dot": np.linspace(1.0, 0.0, 67)}
    fig = fig_token_weights(tokens, w, query=66)  # two lines of text, padding after the query
    rows = rows_of(export.figure_to_bytes(fig, "csv", table=table_token_weights))
    assert list(rows[0]) == ["model", "key", "token", "weight", "weight / row maximum"]
    for model in ("tau", "dot"):
        mine = [r for r in rows if r["model"] == model]
        assert [int(r["key"]) for r in mine] == list(range(67))
        assert [r["token"] for r in mine] == tokens[:67]
        np.testing.assert_array_equal(floats(mine, "weight"), w[model])


# ------------------------------------------------------------------ HTML
def _embedded_figure(page: str) -> tuple[list, dict]:
    """The data and layout that the page hands to Plotly.newPlot(id, data, layout, config)."""
    decoder = json.JSONDecoder()
    pos = page.index("Plotly.newPlot(") + len("Plotly.newPlot(")
    values = []
    for _ in range(3):  # the div id, the data, the layout
        while page[pos] in " \n\t,":
            pos += 1
        value, pos = decoder.raw_decode(page, pos)
        values.append(value)
    return values[1], values[2]


def test_the_html_page_holds_the_figure_data_and_fetches_nothing():
    rng = np.random.default_rng(4)
    z = rng.random((6, 6))
    fig = F.fig_attention_difference(z, z / 2, title="tau − dot <b>L0 H0</b>")
    fig.add_layout_image(source="https://example.com/x.png", x=0, y=1, sizex=1, sizey=1)
    page = figure_to_html(fig, export.figure_title(fig)).decode("utf-8")
    assert "<title>tau − dot L0 H0</title>" in page
    assert not re.search(r"<script[^>]*\bsrc=", page, flags=re.I)  # plotly.js is inline
    assert "example.com" not in page  # a layout image that would be fetched is dropped
    data, layout = _embedded_figure(page)
    z = data[0]["z"]  # plotly's typed array: base64 of the numbers
    shape = [int(n) for n in z["shape"].split(",")]
    drawn = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    np.testing.assert_array_equal(drawn, fig.data[0].z)
    assert figure_to_csv(go.Figure(data=data, layout=layout)) == figure_to_csv(fig)
    assert layout["template"]["layout"]["font"]["family"] == theme.SCREEN_FONT  # the screen theme
    assert len(page) > 1_000_000  # plotly.js itself is in the file


def test_csv_and_html_need_no_browser(monkeypatch):
    monkeypatch.setattr(export, "_RENDERER", None)  # any use of Chromium would fail
    fig = F.fig_spectrum({"demo": np.linspace(0, 2, 8)})
    assert export.figure_to_bytes(fig, "csv").startswith(b"series,")
    assert export.figure_to_bytes(fig, "html", title="x").startswith(b"<!doctype html>")
    with pytest.raises(export.ExportError, match="unknown export format 'xlsx'"):
        export.figure_to_bytes(fig, "xlsx")

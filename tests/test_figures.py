"""Figure functions built from known inputs: trace types, counts, axes, colour ranges."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

import workbench.figures as F
from workbench import theme
from workbench.figures import FigureInputError

RNG = np.random.default_rng(0)


def causal_softmax(logits: np.ndarray) -> np.ndarray:
    t = logits.shape[-1]
    masked = np.where(np.tril(np.ones((t, t), dtype=bool)), logits, -np.inf)
    e = np.exp(masked - masked.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def traces_of(fig: go.Figure, cls: type) -> list:
    return [t for t in fig.data if isinstance(t, cls)]


# ---------------------------------------------------------------- descriptions
def test_every_figure_function_has_a_description_stamped_on_its_figures():
    names = [n for n in F.__all__ if n.startswith("fig_")]
    assert len(names) == 26
    for name in names:
        text = F.DESCRIPTIONS[name]
        assert text.endswith(".") and len(text.split()) >= 6, name
        assert F.describe(name) == text
    fig = F.fig_js_divergence(np.ones((2, 3)) * 0.1)
    assert fig.layout.meta["figure"] == "fig_js_divergence"
    assert fig.layout.meta["description"] == F.DESCRIPTIONS["fig_js_divergence"]
    assert fig.layout.template.layout.font.family == theme.SCREEN_FONT


def test_empty_figure_has_no_axes_and_shows_the_message():
    fig = F.fig_empty("Pick a checkpoint")
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False
    assert [a.text for a in fig.layout.annotations] == ["Pick a checkpoint"]
    assert len(fig.data) == 0


def test_empty_inputs_give_the_empty_state_not_an_error():
    for fig in (F.fig_item_map(np.zeros((0, 2))), F.fig_loss_curves({}),
                F.fig_spectrum({"domain": []}), F.fig_entropy_bars({})):
        assert fig.layout.meta.get("empty") is True


# ------------------------------------------------------------------- domain
def test_item_map_small_uses_svg_scatter_with_item_ids():
    xy = RNG.normal(size=(100, 2))
    fig = F.fig_item_map(xy, color=RNG.random(100))
    (items,) = fig.data
    assert isinstance(items, go.Scatter)
    np.testing.assert_array_equal(items.customdata, np.arange(100))
    viridis = go.Scatter(marker=dict(colorscale=theme.SEQUENTIAL)).marker.colorscale
    assert items.marker.colorscale == viridis
    assert (items.marker.cmin, items.marker.cmax) == (items.marker.color.min(),
                                                        items.marker.color.max())
    assert fig.layout.yaxis.scaleanchor == "x"


def test_item_map_switches_to_webgl_and_subsamples_edges_at_scale():
    n = 50_000
    xy = RNG.normal(size=(n, 2))
    edges = RNG.integers(0, n, size=(n * 5, 2))
    fig = F.fig_item_map(xy, color=RNG.random(n), edges=edges, highlight=7, neighbours=[1, 2, 3],
                         texts=["x" * 200] * n)
    assert all(isinstance(t, go.Scattergl) for t in fig.data)
    edge_trace = fig.data[0]
    assert edge_trace.name == f"kNN edges ({F.domain.MAX_EDGES:,} of {n * 5:,} shown)"
    assert len(edge_trace.x) == 3 * F.domain.MAX_EDGES  # start, end, gap per edge
    assert np.isnan(np.asarray(edge_trace.x[2::3], dtype=float)).all()
    items = fig.data[1]
    assert max(len(t) for t in items.hovertext) <= 80


def test_item_map_highlight_and_neighbours_are_drawn_on_top():
    xy = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [2, 2]], dtype=float)
    fig = F.fig_item_map(xy, texts=list("abcde"), edges=[[0, 1], [1, 2]], highlight=0,
                         neighbours=[1, 3])
    names = [t.name for t in fig.data]
    assert names[0] == "kNN edges (2)"
    assert names[-3:] == ["neighbour links", "neighbours (2)", "selected item 0"]
    assert list(fig.data[-1].customdata) == [0]
    assert list(fig.data[-2].customdata) == [1, 3]
    np.testing.assert_array_equal(fig.data[-3].x[:2], [0, 1])  # link 0 -> 1


def test_item_map_categorical_has_one_trace_per_category():
    xy = RNG.normal(size=(60, 2))
    labels = np.repeat([3, 1, 2], 20)
    fig = F.fig_item_map(xy, color=labels, categorical=True, color_label="cluster")
    assert [t.name for t in fig.data] == ["cluster 1", "cluster 2", "cluster 3"]
    assert [t.marker.color for t in fig.data] == list(theme.OKABE_ITO[:3])
    np.testing.assert_array_equal(np.sort(np.concatenate([t.customdata for t in fig.data])),
                                  np.arange(60))


def test_item_map_rejects_bad_shapes_and_indices():
    with pytest.raises(FigureInputError, match=r"fig_item_map: xy must have shape"):
        F.fig_item_map(np.zeros((5, 3)))
    with pytest.raises(FigureInputError, match="highlight 9"):
        F.fig_item_map(np.zeros((5, 2)), highlight=9)
    with pytest.raises(FigureInputError, match="edges refer to node 5"):
        F.fig_item_map(np.zeros((5, 2)), edges=[[0, 5]])


def test_feature_graph_bins_edge_widths_and_centres_the_eigenvector():
    d = 12
    edges = np.array([[i, (i + 1) % d] for i in range(d)])
    weights = np.linspace(0.1, 1.0, d)
    vec = np.linspace(-0.2, 0.7, d)
    fig = F.fig_feature_graph(RNG.normal(size=(d, 2)), edges, weights, color=vec)
    edge_traces, nodes = fig.data[:-1], fig.data[-1]
    assert 2 <= len(edge_traces) <= 4
    widths = [t.line.width for t in edge_traces]
    assert widths == sorted(widths) and widths[0] < widths[-1]
    assert sum(len(t.x) for t in edge_traces) == 3 * d
    assert nodes.marker.cmin == -0.7 and nodes.marker.cmax == 0.7
    assert nodes.marker.colorscale == go.Scatter(marker=dict(colorscale=theme.DIVERGING)).marker.colorscale


def test_spectrum_marks_zeros_gap_and_log_axis():
    chain = 2 - 2 * np.cos(np.pi * np.arange(8) / 8)
    domain = np.array([0.0, 0.0, 0.3, 0.5, 1.0, 1.2, 2.0, 3.0])
    fig = F.fig_spectrum({"domain": domain, "chain": chain}, log=True, gap={"domain": 0.3})
    assert fig.layout.yaxis.type == "log"
    zeros = {t.name: t for t in fig.data if "zero" in (t.name or "")}
    assert set(zeros) == {"domain: 2 zero eigenvalue(s)", "chain: 1 zero eigenvalue(s)"}
    floor = 0.1 * chain[1]  # a tenth of the smallest positive eigenvalue
    assert np.allclose(zeros["domain: 2 zero eigenvalue(s)"].y, floor)
    (shape,) = fig.layout.shapes
    assert shape.y0 == 0.3  # shapes take data values on log axes
    (ann,) = fig.layout.annotations
    assert math.isclose(ann.y, math.log10(0.3)) and "gap(domain)" in ann.text
    linear = F.fig_spectrum({"domain": domain})
    assert linear.layout.yaxis.type == "linear"
    np.testing.assert_array_equal(linear.data[0].y, domain)


def test_eigen_density_uses_shared_bins():
    fig = F.fig_eigen_density({"a": [0, 0.5, 1, 2], "b": [1, 1, 3, 4]}, bins=8)
    assert len(fig.data) == 2
    np.testing.assert_allclose(fig.data[0].x, fig.data[1].x)
    assert len(fig.data[0].x) == 8
    for t in fig.data:  # densities integrate to one over the shared bins
        assert math.isclose(float(np.sum(np.asarray(t.y) * np.asarray(t.width))), 1.0)


def test_sparsity_small_is_exact_with_visible_diagonal():
    rows = np.array([0, 0, 1, 1, 2, 2, 1])
    cols = np.array([0, 1, 0, 1, 2, 1, 2])
    vals = np.array([1.0, -1.0, -1.0, 2.0, 1.0, -1.0, -1.0])
    fig = F.fig_sparsity(rows, cols, vals, (3, 3))
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (3, 3)
    np.testing.assert_allclose(np.diag(z), [1.0, 2.0, 1.0])
    assert np.isnan(z[0, 2]) and np.isnan(z[2, 0])  # structural zeros stay blank
    assert fig.layout.yaxis.autorange == "reversed"


def test_sparsity_downsamples_large_matrices_with_a_hover_note():
    n = 2000
    idx = np.arange(n)
    fig = F.fig_sparsity(idx, idx, np.full(n, 3.0), (n, n))
    z = np.asarray(fig.data[0].z, dtype=float)
    assert max(z.shape) <= 512
    assert np.all(np.diag(z) == 3.0)
    assert "downsampled from 2000\u00d72000" in fig.data[0].hovertemplate


# -------------------------------------------------------------------- model
def test_lambda_strip_rows_per_head_and_colour_range():
    tokens = ["the", "cat", "the", "mat"]
    lam = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.6, 0.7]])
    fig = F.fig_lambda_strip(tokens, lam)
    (hm,) = fig.data
    assert (hm.zmin, hm.zmax) == (0.0, 1.0)
    assert list(hm.y) == ["head 0", "head 1"]
    assert len(set(hm.x)) == 4  # repeated tokens stay separate columns
    data_range = F.fig_lambda_strip(tokens, lam, full_range=False).data[0]
    assert (data_range.zmin, data_range.zmax) == (0.1, 0.7)
    with pytest.raises(FigureInputError, match="got 3 tokens"):
        F.fig_lambda_strip(tokens[:3], lam)


def test_lambda_distributions_violin_and_ridgeline():
    values = RNG.random((2, 3, 50))
    fig = F.fig_lambda_distributions(values)
    assert [type(t) for t in fig.data] == [go.Violin, go.Violin]
    assert len(set(fig.data[0].x)) == 3
    ridge = F.fig_lambda_distributions({(0, 0): RNG.random(30), (1, 2): RNG.random(30)},
                                       kind="ridgeline")
    assert all(t.orientation == "h" for t in ridge.data)
    with pytest.raises(FigureInputError, match="kind must be"):
        F.fig_lambda_distributions(values, kind="box")


def test_lambda_resolution_plots_the_weight_ratio_against_a_uniform_line():
    spread = np.array([[0.01, 0.3], [0.05, 0.9]])
    temp = np.array([[1.0, 1.0], [0.1, 0.5]])
    fig = F.fig_lambda_resolution(spread, temp, uniform_ratio=1.1)
    ys = np.concatenate([t.y for t in fig.data])
    np.testing.assert_allclose(ys, np.exp(spread / temp).ravel())
    assert fig.layout.yaxis.type == "log"
    line = [s for s in fig.layout.shapes if s.type == "line"]
    assert line and line[0].y0 == 1.1
    scalar = F.fig_lambda_resolution(spread, 1.0)
    np.testing.assert_allclose(scalar.data[1].y, np.exp(spread[1]))


def test_attention_grid_shares_one_colour_axis():
    maps = causal_softmax(RNG.normal(size=(2, 3, 10, 10)))
    fig = F.fig_attention_grid(maps)
    heat = traces_of(fig, go.Heatmap)
    assert len(heat) == 6
    assert {t.coloraxis for t in heat} == {"coloraxis"}
    assert fig.layout.coloraxis.cmin == 0
    assert math.isclose(fig.layout.coloraxis.cmax, float(maps.max()))
    assert heat[4].meta == {"layer": 1, "head": 1}
    big = F.fig_attention_grid(np.zeros((1, 2, 300, 300)), panel_side=64)
    assert np.asarray(big.data[0].z).shape == (60, 60)
    with pytest.raises(FigureInputError, match="panels"):
        F.fig_attention_grid(np.zeros((20, 20, 2, 2)))


def test_attention_pair_shares_zmin_zmax_and_highlights_the_query():
    tau = np.full((6, 6), 1 / 6)  # flat: its own maximum is far below dot's
    dot = causal_softmax(RNG.normal(size=(6, 6)) * 3)
    fig = F.fig_attention_pair(tau, dot, list("abcdef"), highlight_query=3)
    a, b = fig.data
    assert (a.zmin, a.zmax) == (b.zmin, b.zmax) == (0.0, float(max(tau.max(), dot.max())))
    assert len(fig.layout.shapes) == 2
    assert all(s.y0 == 2.5 and s.y1 == 3.5 for s in fig.layout.shapes)
    assert {s.xref for s in fig.layout.shapes} == {"x", "x2"}
    np.testing.assert_allclose(a.z, tau)


def test_attention_pair_downsamples_long_sequences():
    t = 1024
    tau = causal_softmax(np.zeros((t, t)))
    fig = F.fig_attention_pair(tau, tau, None, highlight_query=1000)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (512, 512)
    np.testing.assert_allclose(z[0, 0], tau[:2, :2].mean())
    assert all(s.y0 == 499.5 for s in fig.layout.shapes)  # query 1000 lies in block 500
    assert "each cell is the mean of a 2\u00d72 block" in fig.data[0].hovertemplate


def test_attention_difference_is_diverging_and_centred():
    tau = causal_softmax(np.zeros((5, 5)))
    dot = causal_softmax(RNG.normal(size=(5, 5)))
    (hm,) = F.fig_attention_difference(tau, dot).data
    np.testing.assert_allclose(hm.z, tau - dot)
    assert hm.zmin == -hm.zmax and hm.zmid == 0
    assert math.isclose(hm.zmax, float(np.abs(tau - dot).max()))
    with pytest.raises(FigureInputError, match="shapes must match"):
        F.fig_attention_difference(tau, dot[:4, :4])


def test_entropy_bars_use_model_colours_and_a_uniform_line():
    ent = {"tau": np.full((2, 2), 0.9999), "dot": np.array([[0.5, 0.6], [0.7, 0.8]])}
    fig = F.fig_entropy_bars(ent)
    assert [t.marker.color for t in fig.data] == [theme.MODEL_COLORS["tau"],
                                                   theme.MODEL_COLORS["dot"]]
    assert list(fig.data[1].x) == ["L0\u00b7H0", "L0\u00b7H1", "L1\u00b7H0", "L1\u00b7H1"]
    np.testing.assert_allclose(fig.data[1].y, [0.5, 0.6, 0.7, 0.8])
    assert [s.y0 for s in fig.layout.shapes] == [1.0]
    deficit = F.fig_entropy_bars(ent, kind="deficit")
    assert deficit.layout.yaxis.type == "log"
    np.testing.assert_allclose(deficit.data[0].y, 1e-4, rtol=1e-6)
    heat = F.fig_entropy_bars(ent, kind="heatmap")
    assert len(traces_of(heat, go.Heatmap)) == 2 and heat.layout.coloraxis.cmax == 1


def test_js_divergence_heatmap_starts_at_zero():
    js = np.array([[0.0, 0.2], [0.4, 0.1]])
    (hm,) = F.fig_js_divergence(js).data
    assert hm.zmin == 0 and hm.zmax == 0.4
    assert list(hm.y) == ["L0", "L1"]


def test_sorted_attention_reorders_rows_and_columns_by_lambda():
    att = causal_softmax(RNG.normal(size=(5, 5)))
    lq = np.array([0.5, 0.1, 0.9, 0.3, 0.7])
    lk = np.array([0.2, 0.8, 0.4, 0.6, 0.0])
    fig = F.fig_sorted_attention(att, lq, lk, list("abcde"))
    (hm,) = traces_of(fig, go.Heatmap)
    oq, ok = np.argsort(lq), np.argsort(lk)
    np.testing.assert_allclose(hm.z, att[oq][:, ok])
    assert list(hm.y) == [f"{i}\u00b7{'abcde'[i]}" for i in oq]
    strips = traces_of(fig, go.Scatter)
    np.testing.assert_allclose(strips[0].y, np.sort(lk))
    np.testing.assert_allclose(strips[1].x, np.sort(lq))


def test_spectral_decomposition_marks_the_weighted_mean_eigenvalue():
    mu = np.array([2.0, 0.0, 1.0, 3.0])
    wq = np.array([0.0, 0.5, 0.5, 0.0])  # E = 0.5 -> halfway between modes 0 and 1 (sorted)
    wk = np.array([0.5, 0.0, 0.0, 0.5])  # E = 2.5 -> halfway between modes 2 and 3
    fig = F.fig_spectral_decomposition(mu, wq, wk, lambda_q=0.33, lambda_k=0.71)
    bars = traces_of(fig, go.Bar)
    np.testing.assert_allclose(bars[0].y, [0.5, 0.5, 0.0, 0.0])  # reordered by eigenvalue
    xs = sorted(s.x0 for s in fig.layout.shapes)
    np.testing.assert_allclose(xs, [0.5, 2.5])
    assert sorted(a.text for a in fig.layout.annotations) == ["E(k)", "E(q)"]
    assert bars[0].name == "energy of q (E = 0.5, lambda = 0.330)"
    assert bars[1].name == "energy of k (E = 2.5, lambda = 0.710)"
    with pytest.raises(FigureInputError, match="summing to 1"):
        F.fig_spectral_decomposition(mu, wq * 2, wk)


def test_whatif_shares_the_scale_and_colours_loss_deltas():
    before = causal_softmax(np.zeros((4, 4)))
    after = causal_softmax(RNG.normal(size=(4, 4)) * 4)
    fig = F.fig_whatif(before, after, list("abcd"), losses={"val": (2.5, 2.4), "domain": (3.0, 3.2)},
                       change="temperature 1 -> 0.1")
    heat = traces_of(fig, go.Heatmap)
    assert {t.coloraxis for t in heat} == {"coloraxis"}
    assert fig.layout.coloraxis.cmax == float(max(before.max(), after.max()))
    (bar,) = traces_of(fig, go.Bar)
    np.testing.assert_allclose(bar.y, [-0.1, 0.2])
    assert list(bar.marker.color) == [theme.GOOD, theme.BAD]
    assert "temperature" in fig.layout.title.text
    assert len(F.fig_whatif(before, after).data) == 2


# ----------------------------------------------------------------- training
def _history(n: int, offset: float = 0.0) -> dict:
    step = np.arange(n) * 10
    val = np.full(n, np.nan)
    val[::10] = 3.0 + offset
    return dict(step=step, train_loss=np.linspace(5, 2, n) + offset, val_loss=val,
                tokens_per_s=np.full(n, 1000.0 + offset))


def test_loss_curves_colours_by_kind_and_clickable_points():
    fig = F.fig_loss_curves({"tau-a": _history(50), "dot-b": _history(50, 0.1)},
                            checkpoints={"tau-a": [100, 300]}, selected_step=300,
                            selected_run="tau-a")
    by_name = {t.name: t for t in fig.data}
    assert by_name["tau-a train"].line.color == theme.MODEL_COLORS["tau"]
    assert by_name["dot-b val"].line.color == theme.MODEL_COLORS["dot"]
    assert len(by_name["tau-a val"].x) == 5  # NaN validation entries dropped
    assert list(by_name["tau-a train"].customdata[3]) == ["tau-a", 30]
    ckpt = by_name["tau-a checkpoints (2)"]
    assert [list(c) for c in ckpt.customdata] == [["tau-a", 100], ["tau-a", 300]]
    np.testing.assert_allclose(ckpt.y, 3.0)
    assert any(s.x0 == 300 for s in fig.layout.shapes)
    assert isinstance(fig.data[0], go.Scatter)


def test_loss_curves_log_axis_smoothing_and_webgl():
    h = _history(6000)
    fig = F.fig_loss_curves({"run": h}, log_y=True, smoothing=0.9)
    assert fig.layout.yaxis.type == "log"
    assert isinstance(fig.data[0], go.Scattergl)
    y = np.asarray(fig.data[0].y)
    assert y[0] == pytest.approx(5.0)  # debiased EMA starts at the first value
    assert np.all(np.diff(y) < 0)


def test_ema_keeps_constants_and_rejects_bad_smoothing():
    np.testing.assert_allclose(F.training.ema(np.full(10, 2.0), 0.95), 2.0)
    with pytest.raises(FigureInputError):
        F.training.ema(np.ones(3), 1.0)


def test_lambda_over_steps_one_line_and_band_per_layer():
    s, n_layers, n_heads = 4, 3, 2
    mean = RNG.random((s, n_layers, n_heads))
    fig = F.fig_lambda_over_steps(np.arange(s), mean, mean - 0.1, mean + 0.1)
    lines = [t for t in fig.data if t.mode == "lines"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(lines) == len(bands) == n_layers
    np.testing.assert_allclose(lines[1].y, mean[:, 1].mean(axis=1))
    head = F.fig_lambda_over_steps(np.arange(s), mean, head=1)
    np.testing.assert_allclose(head.data[2].y, mean[:, 2, 1])
    assert "head 1" in head.layout.yaxis.title.text


def test_entropy_over_steps_mean_with_uniform_line():
    ent = np.stack([np.full((2, 2), 0.5), np.full((2, 2), 0.9)])  # [S=2, L=2, H=2]
    fig = F.fig_entropy_over_steps({"tau": {"step": [0, 10], "entropy": ent}})
    line = [t for t in fig.data if t.mode == "lines"][0]
    np.testing.assert_allclose(line.y, [0.5, 0.9])
    assert line.line.color == theme.MODEL_COLORS["tau"]
    assert [s.y0 for s in fig.layout.shapes] == [1.0]


def test_tokens_per_second_reports_the_median():
    fig = F.fig_tokens_per_second({"tau": _history(20), "no-tps": {"step": [1], "train_loss": [1]}})
    assert [t.name for t in fig.data] == ["tau (median 1,000 tok/s)"]


def test_kv_cache_ratio_and_theory_line():
    ctx = np.array([128, 256, 512, 1024, 2048])  # spans >= 10x: log x axis
    d = 64
    fig = F.fig_kv_cache(ctx, {"tau": ctx * (d + 1), "dot": ctx * 2 * d}, head_dim=d)
    by_name = {t.name: t for t in fig.data}
    np.testing.assert_allclose(by_name["tau / dot measured"].y, (d + 1) / (2 * d))
    theory = [t for n, t in by_name.items() if n.startswith("theory")][0]
    np.testing.assert_allclose(theory.y, 65 / 128)
    assert fig.layout.xaxis2.type == "log"


def test_decode_latency_median_band_and_ratio():
    ctx = np.array([128, 256])
    tau = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]])
    fig = F.fig_decode_latency(ctx, {"tau": tau, "dot": np.array([1.0, 2.0])})
    by_name = {t.name: t for t in fig.data}
    np.testing.assert_allclose(by_name["tau"].y, [2.0, 4.0])
    np.testing.assert_allclose(by_name["tau / dot"].y, [2.0, 2.0])
    assert "tau 10-90%" in by_name
    with pytest.raises(FigureInputError, match=r"latency_ms\['dot'\] must have shape"):
        F.fig_decode_latency(ctx, {"dot": [1.0]})

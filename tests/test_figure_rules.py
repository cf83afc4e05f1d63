"""Rules every figure follows: a definite height, one tick format for bytes and counts, one
colour per run, readable gap labels and an explicit message for an empty Laplacian; and a
figure finishes itself: no view edits it after its figure function returned it."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from workbench import figures as F
from workbench import theme
from workbench.figures import _common as C
from workbench.figures import ticks as T
from workbench.figures.spectrum import gap_label_positions


def test_every_figure_leaves_with_a_pixel_height_inside_the_bounds():
    small = F.fig_attention_grid(np.ones((1, 1, 2, 2)) / 2)  # a 2-token prompt
    assert C.MIN_HEIGHT <= small.layout.height <= C.MAX_HEIGHT
    assert F.fig_empty("nothing").layout.height == C.SCREEN_HEIGHT
    steps = np.arange(0, 100, 10)
    curves = F.fig_loss_curves({"tau": dict(step=steps, train_loss=np.linspace(4, 2, 10))})
    assert curves.layout.height == C.SCREEN_HEIGHT


def test_content_height_grows_with_rows_and_is_clipped():
    assert C.content_height(2, 40, 160, minimum=220) == 240
    assert C.content_height(0, 40, 0) == C.MIN_HEIGHT
    assert C.content_height(10_000, 40) == C.MAX_HEIGHT


def test_byte_ticks_always_carry_a_unit_and_counts_never_use_si_letters():
    kv = F.fig_kv_cache([128, 1024, 8192], {"tau": [2e5, 1.6e6, 1.3e7], "dot": [4e5, 3.2e6, 2.5e7]}, head_dim=32)
    labels = list(kv.layout.yaxis.ticktext)
    assert labels and all(re.fullmatch(r"[\d.]+ (B|kB|MB|GB)", t) for t in labels), labels
    assert "10 MB" in labels and "20 MB" in labels
    ticks = T.count_ticks([1.0, 1e24])["ticktext"]
    assert not any(re.search(r"\d[kMBGT]$", t) for t in ticks), ticks
    assert "10<sup>16</sup>" in ticks and ticks[0] == "1"
    assert T.format_count(1000) == "1000" and T.format_count(1e4) == "10<sup>4</sup>"
    assert T.format_bytes(396) == "396 B" and T.format_bytes(1.5e6) == "1.5 MB"


def test_the_resolution_figure_labels_its_ratio_axis_as_counts():
    fig = F.fig_lambda_resolution(np.full((2, 3), 0.3), np.full((2, 3), 0.01))  # ratios up to e^30
    text = list(fig.layout.yaxis.ticktext)
    assert any("<sup>" in t for t in text) and not any(t.endswith(("T", "B", "M")) for t in text)


def test_runs_of_the_same_kind_get_distinct_hues():
    colors = theme.series_colors(["tau", "dot", "tau-reference"])
    assert colors["tau"] == theme.MODEL_COLORS["tau"] and colors["dot"] == theme.MODEL_COLORS["dot"]
    assert colors["tau-reference"] in theme.OKABE_ITO  # a palette hue, not a shade of tau's blue
    assert len(set(colors.values())) == 3
    many = theme.series_colors([f"tau-{i}" for i in range(10)])
    assert len(set(many.values())) == 10


def test_close_spectral_gaps_get_staggered_labels():
    shown = np.linspace(0, 4, 32)
    placed = gap_label_positions({"a": 0.962, "b": 0.95, "c": 3.0}, shown, log=False)
    xs = {name: x for name, _, x in placed}
    assert xs["a"] != xs["b"]  # 0.95 and 0.962 are 0.3 % of the range apart
    assert xs["c"] == 0.99  # far from the others: back to the right edge
    assert [n for n, _, _ in gap_label_positions({"a": None, "b": float("nan")}, shown, log=False)] == []


def test_spectrum_figure_staggers_overlapping_gap_labels():
    fig = F.fig_spectrum({"a": np.linspace(0, 4, 32), "b": np.linspace(0, 4, 32) + 0.001},
                         gap={"a": 0.5, "b": 0.501})
    xs = [a.x for a in fig.layout.annotations if str(a.text).startswith("gap(")]
    assert len(xs) == 2 and len(set(xs)) == 2


@pytest.mark.parametrize("values", [[], [0.0, 0.0]])
def test_an_empty_laplacian_says_no_edges(values):
    n = len(values)
    fig = F.fig_sparsity(list(range(n)), list(range(n)), values, (4, 4))
    assert fig.layout.meta["empty"] is True
    assert "No edges" in fig.layout.annotations[0].text


def test_an_axis_reaching_below_a_thousandth_writes_every_tick_as_a_power():
    text = T.count_ticks([1e-6, 5.0])["ticktext"]
    assert all("<sup>" in t for t in text) and "10<sup>-2</sup>" in text and "0.01" not in text
    spectrum = F.fig_spectrum({"a": np.linspace(0, 5, 32)}, log=True)
    assert list(spectrum.layout.yaxis.ticktext) == ["0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5"]


# ------------------------------------------------------------- figures finish themselves
EDITS = {"update_layout", "update_traces", "update_xaxes", "update_yaxes", "update_coloraxes",
         "update_annotations", "update_shapes", "add_annotation", "add_shape", "add_trace", "add_traces",
         "add_hline", "add_vline", "add_hrect", "add_vrect", "for_each_trace", "for_each_xaxis",
         "for_each_yaxis", "for_each_annotation", "set_subplots"}
FIGURE_PARTS = {"layout", "data"}  # assigning through fig.layout.* or fig.data[i].* edits the figure
WORKBENCH = Path(__file__).resolve().parent.parent / "workbench"
CALLERS = [*sorted((WORKBENCH / "views").rglob("*.py")), *sorted((WORKBENCH / "data").rglob("*.py")),
           WORKBENCH / "batch_export.py"]


def _through_figure(target) -> bool:
    """Whether an assignment target reaches into a figure (``x.layout.title = ...``, ``x.data[0].y = ...``)."""
    while isinstance(target, (ast.Attribute, ast.Subscript)):
        if isinstance(target, ast.Attribute) and target.attr in FIGURE_PARTS:
            return True
        if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant) \
                and target.slice.value in FIGURE_PARTS:
            return True
        target = target.value
    return False


def post_hoc_edits(source: str, name: str) -> list[str]:
    """'file:line what' for every call of a figure-editing method and every assignment into a figure."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in EDITS:
            found.append(f"{name}:{node.lineno} .{node.func.attr}()")
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        found += [f"{name}:{node.lineno} assignment into a figure" for t in targets
                  if isinstance(t, (ast.Attribute, ast.Subscript)) and _through_figure(t.value)]
    return sorted(found, key=lambda hit: int(hit.split()[0].rsplit(":", 1)[1]))


def test_the_scan_flags_planted_edits_and_passes_clean_code():
    planted = (
        "def view(fig, other):\n"
        "    fig.update_layout(title='x')\n"
        "    other.figure.update_traces(zmax=1, selector=dict(type='heatmap'))\n"
        "    fig.layout.title.text = 'y'\n"
        "    fig.data[0].zmax = 2\n"
        "    fig['layout']['height'] = 3\n"
        "    fig.for_each_trace(lambda t: t.update(showlegend=False))\n"
    )
    assert [line.split()[0] for line in post_hoc_edits(planted, "v.py")] == [f"v.py:{i}" for i in range(2, 8)]
    clean = (
        "def view(fig_fn, options):\n"
        "    options.update(a=1)\n"
        "    layout = dict(title='x')\n"
        "    text = fig.layout.annotations[0].text\n"
        "    return fig_fn(title='x', zmax=options['z'])\n"
    )
    assert post_hoc_edits(clean, "v.py") == []


def test_no_view_edits_a_figure_after_its_figure_function_returned_it():
    assert len(CALLERS) > 10 and all(p.is_file() for p in CALLERS)
    found = [hit for p in CALLERS for hit in post_hoc_edits(p.read_text(), p.relative_to(WORKBENCH).as_posix())]
    assert found == [], "views must pass these as figure arguments:\n" + "\n".join(found)


def test_the_arguments_views_used_to_set_afterwards_reach_the_figure():
    att = np.full((1, 1, 4, 4), 0.25)
    pair = F.fig_attention_pair(att[0, 0], att[0, 0], list("abcd"), title="L0 H0", zmax=0.5)
    assert pair.layout.title.text == "L0 H0"
    diff = F.fig_attention_difference(att[0, 0], att[0, 0] * 0.5, zmax=0.01, title="a - b")
    heat = [t for t in diff.data if t.type == "heatmap"][0]
    assert (heat.zmin, heat.zmax, diff.layout.title.text) == (-0.01, 0.01, "a - b")
    lam = np.linspace(0.1, 0.9, 4)
    ordered = F.fig_sorted_attention(att[0, 0], lam, lam, zmax=0.3, title="tau L0 H0")
    assert [t.zmax for t in ordered.data if t.type == "heatmap"] == [0.3]
    assert ordered.layout.title.text == "tau L0 H0"
    whatif = F.fig_whatif(att[0, 0], att[0, 0], cmax=0.125)
    assert whatif.layout.coloraxis.cmax == 0.125
    w = np.full(3, 1 / 3)
    spectral = F.fig_spectral_decomposition([0.0, 1.0, 2.0], w, w, token="x", title="token 3 'x'")
    assert spectral.layout.title.text == "token 3 'x'"
    graph = F.fig_feature_graph(np.eye(3)[:, :2], [[0, 1]], [1.0], color=[1.0, 0.0, -1.0], eigenvector=2)
    assert graph.layout.meta["eigenvector"] == 2 and graph.layout.meta["figure"] == "fig_feature_graph"


def test_the_item_map_draws_its_layout_kind_and_its_legend_rule():
    xy = np.random.default_rng(0).normal(size=(40, 2))
    labels = np.arange(40) % 20  # 20 clusters
    umap = F.fig_item_map(xy, color=labels, categorical=True, color_label="cluster", max_legend_categories=25)
    assert umap.layout.xaxis.title.text == "UMAP 1" and not umap.layout.annotations
    assert all(t.showlegend is not False for t in umap.data)
    pca = F.fig_item_map(xy, color=labels, categorical=True, color_label="cluster", max_legend_categories=16,
                         layout_kind="pca", edges=[[0, 1], [1, 2]], edge_color="rgba(1, 2, 3, 0.5)")
    assert (pca.layout.xaxis.title.text, pca.layout.yaxis.title.text) == ("PC 1", "PC 2")
    notes = [a.text for a in pca.layout.annotations if a.name == theme.UI_ONLY]
    assert notes == ["20 clusters: hover an item for its cluster", "PCA stand-in while UMAP runs"]
    assert all(t.showlegend is False for t in pca.data if t.legendgroup)
    assert [t.line.color for t in pca.data if t.mode == "lines"] == ["rgba(1, 2, 3, 0.5)"]
    with pytest.raises(F.FigureInputError, match="layout_kind"):
        F.fig_item_map(xy, layout_kind="tsne")

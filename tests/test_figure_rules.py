"""Rules every figure follows: a definite height, one tick format for bytes and counts, one
colour per run, readable gap labels and an explicit message for an empty Laplacian."""

import re

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

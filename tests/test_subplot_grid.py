"""The dict-built subplot grid equals make_subplots' layout (it replaces it where speed matters)."""

import json

import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from workbench.figures._common import subplot_axes, subplot_grid_layout


def as_json(layout) -> dict:
    """The layout as JSON, without the template make_subplots adds (the figures set their own)."""
    out = json.loads(json.dumps(go.Layout(layout).to_plotly_json(), sort_keys=True))
    out.pop("template", None)
    return out


@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 3), (4, 3), (12, 6), (3, 1)])
@pytest.mark.parametrize("titles", [True, False])
def test_grid_layout_matches_make_subplots(rows, cols, titles):
    hs, vs = min(0.01, 0.5 / max(1, cols - 1)), min(0.015, 0.5 / max(1, rows - 1))
    kwargs = dict(column_titles=[f"H{c}" for c in range(cols)], row_titles=[f"L{r}" for r in range(rows)]) \
        if titles else {}
    expected = make_subplots(rows=rows, cols=cols, horizontal_spacing=hs, vertical_spacing=vs, **kwargs)
    ours = subplot_grid_layout(rows, cols, horizontal_spacing=hs, vertical_spacing=vs, **kwargs)
    assert as_json(ours) == as_json(expected.layout)


def test_panel_axes_follow_make_subplots_numbering():
    fig = make_subplots(rows=2, cols=3)
    fig.add_trace(go.Scatter(x=[0], y=[0]), row=2, col=2)
    fig.add_trace(go.Scatter(x=[0], y=[0]), row=1, col=1)
    assert subplot_axes(2, 3, 1, 1) == {"xaxis": fig.data[0].xaxis, "yaxis": fig.data[0].yaxis}
    assert subplot_axes(2, 3, 0, 0) == {"xaxis": fig.data[1].xaxis, "yaxis": fig.data[1].yaxis}


@pytest.mark.parametrize("how", ["mean", "max"])
def test_block_reduce_fast_path_gives_the_same_numbers(how):
    import numpy as np

    from workbench.figures._common import block_reduce

    z = np.random.default_rng(0).random((1024, 512)).astype(np.float32)
    fast, rows, cols, factors = block_reduce(z, 128, how=how)
    blocks = z.astype(float).reshape(128, 8, 128, 4)
    slow = np.nanmax(blocks, axis=(1, 3)) if how == "max" else np.nanmean(blocks, axis=(1, 3))
    assert factors == (8, 4) and np.array_equal(fast, slow)
    with_nan = z.copy()
    with_nan[0, 0] = np.nan  # NaN cells are still ignored inside their block
    assert np.isfinite(block_reduce(with_nan, 128, how=how)[0]).all()

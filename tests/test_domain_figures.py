"""Figure helpers the domain pages added: the selection drawn as shapes, click-safe ids."""

import json

import numpy as np
import pytest
from dash._utils import to_json

import workbench.figures as F
from workbench import theme
from workbench.figures import FigureInputError


def test_selection_shapes_mark_the_item_and_its_neighbours_at_a_fixed_pixel_size():
    xy = np.array([[0, 0], [1, 0], [0, 1], [5, 5]], dtype=float)
    shapes = F.item_selection_shapes(xy, 0, [1, 2])
    lines = [s for s in shapes if s["type"] == "line"]
    dots = [s for s in shapes if s["type"] == "circle"]
    assert [(s["x1"], s["y1"]) for s in lines] == [(1.0, 0.0), (0.0, 1.0)]
    assert all((s["x0"], s["y0"]) == (0.0, 0.0) for s in lines)
    assert [(d["xanchor"], d["yanchor"]) for d in dots] == [(1.0, 0.0), (0.0, 1.0), (0.0, 0.0)]
    assert all(d["xsizemode"] == d["ysizemode"] == "pixel" for d in dots)
    assert dots[-1]["fillcolor"] == theme.HIGHLIGHT and "fillcolor" not in dots[0]
    assert shapes[-1] is dots[-1]  # the item is drawn last, on top
    assert all(s["name"] == theme.UI_ONLY for s in shapes)
    assert F.item_selection_shapes(xy, None, [1]) == []


def test_selection_shapes_reject_indices_outside_the_map():
    xy = np.zeros((3, 2))
    with pytest.raises(FigureInputError, match="highlight 3 is not an item index"):
        F.item_selection_shapes(xy, 3)
    with pytest.raises(FigureInputError, match="neighbours must be item indices"):
        F.item_selection_shapes(xy, 0, [-1])


def test_click_ids_travel_as_plain_lists():
    # numpy customdata would be sent base64-encoded, and dcc.Graph reads click ids from the
    # undecoded figure: a click would then carry no item id
    fig = F.fig_item_map(np.random.default_rng(0).normal(size=(30, 2)), color=np.arange(30.0))
    assert json.loads(to_json(fig))["data"][0]["customdata"] == list(range(30))
    graph = F.fig_feature_graph(np.zeros((3, 2)), [[0, 1]], [1.0])
    assert json.loads(to_json(graph))["data"][-1]["customdata"] == [0, 1, 2]

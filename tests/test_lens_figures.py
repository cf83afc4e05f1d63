"""Figures of the logit lens page: what they plot is what they were given, hovers name the predictions."""

import numpy as np
import pytest

from workbench.figures import FigureInputError
from workbench.figures.lens import fig_first_top1, fig_logit_lens, fig_token_loss

TOKENS = ["a", "b", "<c>", "d", "e"]
DEPTHS = ["embedding", "layer 0", "layer 1"]


def lens_model(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    N, T, k = len(DEPTHS), len(TOKENS), 3
    top_probs = np.sort(rng.random((N, T, k)), -1)[..., ::-1] / 3
    return dict(target_prob=rng.random((N, T - 1)), target_rank=rng.integers(0, 300, (N, T - 1)),
                first_top1=np.array([0, -1, 2, 1]), top_probs=top_probs,
                top_tokens=[[[f"p{d}{t}{j}" for j in range(k)] for t in range(T)] for d in range(N)])


def test_the_lens_heatmap_plots_each_models_probabilities_and_marks_the_first_top1():
    models = {"tau": lens_model(0), "dot": lens_model(1)}
    fig = fig_logit_lens(TOKENS, DEPTHS, models)
    heat = [t for t in fig.data if t.type == "heatmap"]
    marks = [t for t in fig.data if t.type == "scatter"]
    assert [t.name for t in heat] == ["tau", "dot"]
    assert np.allclose(np.asarray(heat[1].z, dtype=float), models["dot"]["target_prob"])
    assert (heat[0].zmin, heat[0].zmax) == (0, 1)
    assert list(marks[0].x) == [0, 2, 3] and list(marks[0].y) == [0, 2, 1]  # position 1: never top-1
    hover = np.asarray(heat[0].text, dtype=object)  # [N, T-1]
    assert hover[1, 2].startswith("layer 0<br>after 2 '&lt;c&gt;': next 'd'")  # a token is text, not markup
    assert hover[1, 2].endswith("top:  'p120' %.3f  'p121' %.3f  'p122' %.3f" % tuple(models["tau"]["top_probs"][1, 2]))
    custom = np.asarray(heat[0].customdata, dtype=float)  # [N, T-1, 2]: p(next), rank + 1
    assert np.allclose(custom[..., 0], models["tau"]["target_prob"])
    assert np.array_equal(custom[..., 1], models["tau"]["target_rank"] + 1)
    assert "%{text}" in heat[0].hovertemplate and "customdata[1]" in heat[0].hovertemplate
    assert list(fig.layout.yaxis.ticktext) == DEPTHS
    assert fig.layout.height > 0


def test_the_rank_scale_is_log_rank_plus_one_with_count_ticks():
    model = lens_model(0)
    fig = fig_logit_lens(TOKENS, DEPTHS, {"tau": model}, scale="rank")
    heat = fig.data[0]
    assert np.allclose(np.asarray(heat.z, dtype=float), np.log10(model["target_rank"] + 1))
    assert heat.reversescale and list(heat.colorbar.ticktext)[:3] == ["1", "10", "100"]


def test_lens_inputs_are_checked():
    with pytest.raises(FigureInputError, match="target_prob"):
        fig_logit_lens(TOKENS[:4], DEPTHS, {"tau": lens_model(0)})
    with pytest.raises(FigureInputError, match="scale"):
        fig_logit_lens(TOKENS, DEPTHS, {"tau": lens_model(0)}, scale="logit")
    assert fig_logit_lens(["a"], DEPTHS, {}).layout.meta["empty"]


def test_first_top1_bars_are_shares_of_positions_with_never_last():
    fig = fig_first_top1(DEPTHS, {"tau": [0, 0, 2, -1], "dot": [1, 1, 1, 1]})
    tau, dot = fig.data
    assert list(tau.x) == DEPTHS + ["never"]
    assert np.allclose(tau.y, [0.5, 0, 0.25, 0.25]) and list(tau.customdata) == [2, 0, 1, 1]
    assert np.allclose(dot.y, [0, 1, 0, 0])
    with pytest.raises(FigureInputError, match="outside"):
        fig_first_top1(DEPTHS, {"tau": [3]})


def loss_model(loss) -> dict:
    T = len(loss) + 1
    return dict(loss=np.asarray(loss, dtype=float), pred_tokens=[[f"q{t}", "z"] for t in range(T)],
                pred_probs=np.tile([0.6, 0.1], (T, 1)))


def test_token_loss_panels_shade_each_token_by_its_loss_and_the_difference():
    tau, dot = loss_model([1.0, 2.0, 0.5, 3.0]), loss_model([0.5, 2.5, 0.5, 1.0])
    fig = fig_token_loss(TOKENS, {"tau": tau, "dot": dot}, per_row=3)
    assert [t.name for t in fig.data] == ["tau", "dot", "tau \u2212 dot"]
    z_tau = np.asarray(fig.data[0].z, dtype=float)  # [2 lines, 3]
    assert z_tau.shape == (2, 3) and np.isnan(z_tau[0, 0])  # the first token has no prediction
    assert np.allclose(z_tau.ravel()[1:5], tau["loss"])
    diff = np.asarray(fig.data[2].z, dtype=float).ravel()[1:5]
    assert np.allclose(diff, tau["loss"] - dot["loss"])
    assert fig.data[2].zmin == -fig.data[2].zmax == -2.0
    hover = np.asarray(fig.data[0].hovertext).ravel()
    assert "tau</b> loss 2.00" in hover[2] and "dot</b> loss 2.50" in hover[2] and "'q1' 0.600" in hover[2]
    single = fig_token_loss(TOKENS, {"tau": tau})
    assert len(single.data) == 1
    with pytest.raises(FigureInputError, match="loss"):
        fig_token_loss(TOKENS, {"tau": loss_model([1.0])})

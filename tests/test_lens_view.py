"""The Logit lens page's callbacks as plain functions on the demo: figures, summaries, empty states, export."""

import pytest
from dash.exceptions import PreventUpdate

from workbench.data import demo_workspace
from workbench.views import cards, lens, model_shared, page_modules
from workbench.views.shell import NONE

PROMPT = "The quick brown fox jumps over the lazy dog, and the dog sleeps on the mat."


@pytest.fixture(scope="module")
def ws():
    return demo_workspace()


@pytest.fixture(scope="module")
def step(ws):
    return ws.runs.info("tau").steps[-1]


def drawn(fig) -> bool:
    return not (fig.layout.meta or {}).get("empty") and len(fig.data) > 0


def test_the_page_is_registered_with_its_recipes():
    assert lens in page_modules()
    assert {c for r in cards.page_recipes("lens") for c in r.cards} == {"lens-heatmap", "lens-formed", "lens-loss"}


def test_both_models_are_drawn_with_a_formation_sentence_each(ws, step):
    heat, formed, summary = lens.update_lens(ws, "tau", step, None, PROMPT, "prob")
    assert drawn(heat) and drawn(formed)
    assert [t.name for t in heat.data if t.type == "heatmap"] == [f"tau (tau, step {step})", f"dot (dot, step {step})"]
    assert summary.count("predictions form at") + summary.count("no position") == 2
    fig, hardest = lens.update_loss(ws, "tau", step, None, PROMPT)
    assert [t.name for t in fig.data] == ["tau", "dot", "tau \u2212 dot"]
    assert "tau vs dot" in str(hardest)


def test_a_dot_run_is_paired_with_its_tau_twin_and_nothing_compared_shows_one_model(ws, step):
    heat, _, _ = lens.update_lens(ws, "dot", step, None, PROMPT, "rank")
    assert [t.name.split(" ")[0] for t in heat.data if t.type == "heatmap"] == ["dot", "tau"]
    heat, _, summary = lens.update_lens(ws, "tau", step, NONE, PROMPT, "prob")
    assert len([t for t in heat.data if t.type == "heatmap"]) == 1 and "Nothing to compare" in summary
    fig, note = lens.update_loss(ws, "tau", step, NONE, PROMPT)
    assert len(fig.data) == 1 and "Mean loss of tau" in note


def test_a_one_token_prompt_says_so_and_an_undecided_one_waits(ws, step):
    heat, formed, summary = lens.update_lens(ws, "tau", step, None, "x", "prob")
    assert heat.layout.meta["empty"] and "at least 2 tokens" in summary
    with pytest.raises(PreventUpdate):
        lens.update_lens(ws, "tau", step, None, model_shared.PENDING, "prob")
    with pytest.raises(PreventUpdate):
        lens.update_loss(ws, None, None, None, PROMPT)


def test_the_batch_export_rebuilds_every_card(ws, step):
    built = cards.build_for_state(ws, "lens", {"run": "tau", "step": step, "prompt": PROMPT, "scale": "rank"})
    assert set(built) == {"lens-heatmap", "lens-formed", "lens-loss"}
    assert all(drawn(fig) for fig, _ in built.values())
    assert built["lens-heatmap"][1]["scale"] == "rank"

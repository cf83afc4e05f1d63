"""Heads that matter: the workspace's ablation sweeps, their figure and the page's callbacks, on the demo."""

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tauformer.ablation import ABLATION_MODES, SWEEP_BATCHES, ablation_sweep
from tauformer.errors import ConfigError
from workbench.data import demo_workspace
from workbench.data.ablation import MODES, VALIDATION_SEED, HeadAblation, ablation_pair, head_ablation, top_heads
from workbench.figures import FigureInputError
from workbench.figures.ablation import fig_ablation_heatmaps
from workbench.views import ablation as page
from workbench.views.shell import NONE


@pytest.fixture(scope="module")
def ws():
    return demo_workspace()


def hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_the_workspace_sweep_equals_tauformers_sweep_and_is_cached(ws):
    got = head_ablation(ws, "tau", None, mode="zero")
    model, _ = ws.runs.load("tau", None)
    batches = ws.probes.validation_batches("tau", *SWEEP_BATCHES, seed=VALIDATION_SEED)
    want = ablation_sweep(model, batches, mode="zero")
    assert got.step == ws.runs.nearest_step("tau", None) and got.kind == "tau"
    assert got.head_delta.shape == (4, 3) and got.layer_delta.shape == (4,)
    assert np.allclose(got.head_delta, want.head_delta.numpy(), atol=1e-6)
    assert np.allclose(got.layer_delta, want.layer_delta.numpy(), atol=1e-6)
    assert got.base_loss == pytest.approx(want.base_loss) and got.n_tokens == want.n_tokens == 2 * 4 * 256
    assert head_ablation(ws, "tau", None, mode="zero", prompt="any text") is got  # validation ignores the prompt
    assert hook_count(model) == 0


def test_ablating_nothing_is_the_plain_loss_of_the_workspace(ws):
    sweep = head_ablation(ws, "dot", None, mode="mean")
    model, _ = ws.runs.load("dot", None)
    batches = ws.probes.validation_batches("dot", *SWEEP_BATCHES, seed=VALIDATION_SEED)
    with torch.no_grad():
        total = sum(float(F.cross_entropy(model(x)[0].transpose(1, 2), y, ignore_index=-1, reduction="sum"))
                    for x, y in batches)
    assert sweep.base_loss == pytest.approx(total / sweep.n_tokens, rel=1e-5)
    prompt = "The heads of a model do not all matter equally, and some matter not at all."
    on_prompt = head_ablation(ws, "dot", None, mode="mean", source="prompt", prompt=prompt)
    probe = ws.probes.probe("dot", None, prompt)  # a probe after the sweeps sees the unablated model
    assert on_prompt.base_loss == pytest.approx(probe.mean_loss, rel=1e-5)
    assert on_prompt.n_tokens == len(prompt.encode()) - 1
    assert not np.allclose(on_prompt.head_delta, sweep.head_delta)  # another text, other changes
    assert hook_count(model) == 0


def test_the_sweep_runs_on_a_copy_and_leaves_the_model_lock_free_for_other_pages(monkeypatch):
    import tauformer.ablation

    ws = demo_workspace()
    cached, _ = ws.runs.load("tau", None)
    real, seen = tauformer.ablation.ablation_sweep, {}

    def lock_is_free() -> bool:
        if ws.probes.model_lock.acquire(blocking=False):
            ws.probes.model_lock.release()
            return True
        return False

    def spy(model, batches, **kwargs):
        seen["copy"] = model is not cached and torch.equal(model.lm_head.weight, cached.lm_head.weight)
        other = []
        probe_thread = threading.Thread(target=lambda: other.append(lock_is_free()))
        probe_thread.start()
        probe_thread.join()
        seen["lock free"] = other == [True]
        return real(model, batches, **kwargs)

    monkeypatch.setattr(tauformer.ablation, "ablation_sweep", spy)
    head_ablation(ws, "tau", None, source="prompt", prompt="a prompt to sweep on a copy")
    assert seen == {"copy": True, "lock free": True}


def test_prompt_sweeps_are_keyed_by_prompt_and_mode(ws):
    a = head_ablation(ws, "tau", None, source="prompt", prompt="first prompt text")
    assert head_ablation(ws, "tau", None, source="prompt", prompt="first prompt text") is a
    b = head_ablation(ws, "tau", None, source="prompt", prompt="second, other prompt")
    c = head_ablation(ws, "tau", None, mode="mean", source="prompt", prompt="first prompt text")
    assert b is not a and c is not a
    assert not np.allclose(a.head_delta, c.head_delta)


def test_bad_choices_and_short_prompts_are_refused_in_one_line(ws):
    assert MODES == ABLATION_MODES
    with pytest.raises(ConfigError, match="mode"):
        head_ablation(ws, "tau", None, mode="noise")
    with pytest.raises(ConfigError, match="source"):
        head_ablation(ws, "tau", None, source="training")
    with pytest.raises(ConfigError, match="at least 2 tokens"):
        head_ablation(ws, "tau", None, source="prompt", prompt="a")


def test_the_pair_sweeps_the_compared_run_at_its_nearest_step(ws):
    a, b = ablation_pair(ws, "tau", None, "dot")
    assert b.run == "dot" and b.step == ws.runs.nearest_step("dot", a.step)
    assert ablation_pair(ws, "tau", None, None)[1] is None


def test_top_heads_rank_by_loss_rise_and_break_ties_by_position():
    delta = np.array([[0.1, 0.5, -0.2], [0.5, 0.0, 0.3]])
    sweep = HeadAblation("r", 1, "tau", "zero", "validation", 2.0, delta, np.array([0.6, 0.9]), 10)
    assert [(t["layer"], t["head"]) for t in top_heads(sweep, 4)] == [(0, 1), (1, 0), (1, 2), (0, 0)]
    assert top_heads(sweep, 1)[0]["delta"] == pytest.approx(0.5)


# ------------------------------------------------------------------ figure
def models_of(*shapes):
    rng = np.random.default_rng(0)
    return {f"m{i}": {"head_delta": rng.normal(size=s), "layer_delta": rng.normal(size=s[0]) * 3, "base_loss": 1.5}
            for i, s in enumerate(shapes)}


def test_both_models_share_one_symmetric_scale_and_the_selected_head_is_outlined():
    models = models_of((4, 3), (4, 3))
    fig = fig_ablation_heatmaps(models, highlight=(2, 1), title="t")
    assert len(fig.data) == 4 and {t.coloraxis for t in fig.data} == {"coloraxis"}
    peak = max(np.abs(np.concatenate([m[k].ravel() for m in models.values() for k in ("head_delta", "layer_delta")])))
    assert fig.layout.coloraxis.cmin == pytest.approx(-peak) and fig.layout.coloraxis.cmax == pytest.approx(peak)
    heads, layers = fig.data[0], fig.data[1]
    assert np.asarray(heads.customdata).shape == (4, 3, 3)
    assert list(np.asarray(heads.customdata)[2, 1][:2]) == [2, 1]
    assert np.asarray(heads.customdata)[2, 1, 2] == pytest.approx(1.5 + models["m0"]["head_delta"][2, 1])
    assert set(np.asarray(layers.customdata)[:, 0, 1]) == {-1}  # the whole-layer column
    boxes = [(s.xref, s.x0, s.y0) for s in fig.layout.shapes]
    assert boxes == [("x", 0.5, 1.5), ("x3", 0.5, 1.5)]
    assert "nats/token" in heads.hovertemplate and fig.layout.height >= 300
    assert fig_ablation_heatmaps(models, zmax=0.25).layout.coloraxis.cmax == 0.25


def test_panels_do_not_overlap_and_models_of_other_shapes_fit():
    fig = fig_ablation_heatmaps(models_of((2, 5), (6, 2)), highlight=(5, 1))
    domains = [fig.layout[f"xaxis{'' if i == 1 else i}"].domain for i in range(1, 5)]
    assert all(a[1] < b[0] for a, b in zip(domains, domains[1:]))
    assert len(fig.layout.shapes) == 1  # (5, 1) exists only in the second model
    tall = fig_ablation_heatmaps(models_of((12, 12)))
    assert tall.layout.height > fig.layout.height
    assert tall.layout.xaxis2.domain[1] < 0.5  # a model alone keeps the width it has beside another


def test_bad_figure_input_names_the_problem():
    with pytest.raises(FigureInputError, match="layer_delta"):
        fig_ablation_heatmaps({"a": {"head_delta": np.zeros((2, 3)), "layer_delta": np.zeros(3), "base_loss": 1}})
    with pytest.raises(FigureInputError, match="base_loss"):
        fig_ablation_heatmaps({"a": {"head_delta": np.zeros((2, 3))}})
    assert fig_ablation_heatmaps({}).layout.meta["empty"]


# ------------------------------------------------------------------ page callbacks
def test_the_page_draws_both_models_or_the_run_alone(ws):
    step = ws.runs.nearest_step("tau", None)
    fig, ranked = page.update_ablation(ws, "tau", step, None, None, "zero", "validation", 9, 9)
    assert len(fig.data) == 4 and [t.name for t in fig.data][::2] == [f"tau (tau, step {step})", f"dot (dot, step {step})"]
    assert len(ranked) == 2 and fig.layout.shapes[0].x0 == 1.5  # indices past the shape are clamped
    alone, ranked = page.update_ablation(ws, "tau", step, NONE, None, "zero", "validation", 0, 0)
    assert len(alone.data) == 2 and "nothing compared" in alone.layout.title.text and len(ranked) == 1
    dot_first, _ = page.update_ablation(ws, "dot", ws.runs.nearest_step("dot", None), None, None, "zero", "validation", 0, 0)
    assert dot_first.data[0].name.startswith("dot (dot")
    short, ranked = page.update_ablation(ws, "tau", step, None, "a", "zero", "prompt", 0, 0)
    assert short.layout.meta["empty"] and ranked is None
    one, _ = page.update_ablation(ws, "tau", step, None, "ab", "mean", "prompt", 0, 0)
    assert "1 target token (the mean over one position" in one.layout.title.text
    assert np.allclose(one.data[0].z, 0)  # mean-ablating a single position changes nothing


def test_a_click_picks_the_head_and_the_links_carry_the_state(ws):
    assert page.cell_from_click({"points": [{"customdata": [3, 1, 2.0]}]}) == (3, 1)
    layer, head = page.cell_from_click({"points": [{"customdata": [2, -1, 2.0]}]})
    assert layer == 2 and head is page.no_update  # a whole-layer cell sets the layer only
    assert page.cell_from_click({"points": [{"customdata": {"0": 1, "1": 2, "2": 2.0}}]}) == (1, 2)
    assert page.cell_from_click(None) == (page.no_update, page.no_update)
    links = page.head_links(ws, "tau", 1500, "dot", "a b", 2, 1)
    assert links[0].href == "/attention?run=tau&step=1500&compare=dot&prompt=a+b&layer=2&head=1"
    assert links[1].href == "/why?run=tau&step=1500&compare=dot&prompt=a+b&layer=2&head=1"
    assert "prompt" not in page.head_links(ws, "tau", 1500, "dot", None, 0, 0)[0].href
    from_dot = page.head_links(ws, "dot", 1500, None, None, 1, 2)  # Why opens the tau twin
    assert from_dot[0].href.startswith("/attention?run=dot&") and from_dot[1].href.startswith("/why?run=tau&")
    alone = page.head_links(ws, "dot", 1500, NONE, None, 1, 2)
    assert len(alone) == 3 and "needs a tau run" in alone[1].children
    assert page.head_links(ws, "no-such-run", 1, None, None, 0, 0) == []


def test_the_page_module_does_not_import_torch():
    code = "import sys, workbench.views.ablation; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

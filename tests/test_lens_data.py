"""The workspace's logit lens: its last depth is the model's output, its loss the probe's, cached;
byte and BPE runs labelled with their own tokens, never paired across tokenizers."""

import numpy as np
import pytest
import torch

from tauformer.checkpoint import checkpoint_dir, save_checkpoint
from tauformer.tokenizer import train_bpe
from workbench.data import DEMO_DIR, Workspace, demo_workspace
from workbench.data.errors import ConfigError
from workbench.data.lens import LensView, formation_depth, hardest_tokens, lens_pair, lens_view

from conftest import tiny_model

PROMPT = "The quick brown fox jumps over the lazy dog, and the dog sleeps on."


@pytest.fixture(scope="module")
def ws():
    return demo_workspace()


def test_the_last_depth_is_the_models_own_output(ws):
    view = lens_view(ws.probes, "tau", None, PROMPT)
    model, _ = ws.runs.load("tau", view.step)
    with torch.no_grad():
        logits, _ = model.eval()(torch.as_tensor(view.ids)[None])  # [1, T, V]
    probs = torch.softmax(logits[0], -1).numpy()  # [T, V]
    T = view.T
    assert view.target_prob.shape == (len(view.depths), T - 1) == (model.config.n_layer + 1, T - 1)
    expected = probs[np.arange(T - 1), view.ids[1:]]
    assert np.allclose(view.target_prob[-1], expected, rtol=1e-5, atol=1e-7)
    assert np.allclose(view.top_probs[-1], np.sort(probs, -1)[:, ::-1][:, :5], atol=1e-6)
    assert np.allclose(view.pred_probs, view.top_probs[-1], atol=1e-6)
    ranks = (probs[:-1] > expected[:, None]).sum(-1)
    assert np.array_equal(view.target_rank[-1], ranks)
    assert not np.allclose(view.target_prob[0], view.target_prob[-1])  # the embedding reads something else


@pytest.mark.parametrize("run", ["tau", "dot"])
def test_per_token_loss_is_the_probes_loss(ws, run):
    view = lens_view(ws.probes, run, None, PROMPT)
    probe = ws.probes.probe(run, None, PROMPT)
    assert view.ids.tolist() == probe.ids.tolist() and view.tokens == probe.tokens
    assert np.allclose(view.loss, probe.token_loss, atol=1e-5)
    assert view.mean_loss == pytest.approx(probe.mean_loss, rel=1e-5)
    assert np.allclose(np.exp(-view.loss), view.target_prob[-1], rtol=1e-4, atol=1e-7)


def test_the_lens_is_cached_per_checkpoint_and_prompt(ws):
    a = lens_view(ws.probes, "tau", None, PROMPT)
    assert lens_view(ws.probes, "tau", None, PROMPT) is a
    assert lens_view(ws.probes, "tau", None, PROMPT + " More.") is not a
    early = ws.runs.info("tau").steps[0]
    assert lens_view(ws.probes, "tau", early, PROMPT).step == early


def test_pairs_and_their_refusals(ws):
    a, b = lens_pair(ws.probes, "tau", None, "dot", PROMPT)
    assert (a.run, b.run, b.kind) == ("tau", "dot", "dot")
    assert lens_pair(ws.probes, "tau", None, None, PROMPT)[1] is None
    with pytest.raises(ConfigError, match="at least 2 tokens"):
        lens_view(ws.probes, "tau", None, "x")


def _view(loss, first, final_rank, depths=("embedding", "layer 0", "layer 1")) -> LensView:
    T = len(loss) + 1
    N = len(depths)
    rank = np.ones((N, T - 1), dtype=np.int64)
    rank[-1] = final_rank
    return LensView(run="m", step=0, kind="tau", ids=np.arange(T), tokens=[chr(97 + i) for i in range(T)],
                    depths=list(depths), target_prob=np.zeros((N, T - 1)), target_rank=rank,
                    first_top1=np.asarray(first), top_tokens=[], top_probs=np.zeros((N, T, 1)),
                    loss=np.asarray(loss, dtype=float), pred_tokens=[], pred_probs=np.zeros((T, 1)))


def test_formation_depth_is_the_median_first_depth_of_the_tokens_the_model_gets_right():
    view = _view([1, 1, 1, 1], first=[0, 2, 2, 1], final_rank=[0, 0, 0, 3])  # the last one is wrong
    assert formation_depth(view) == {"depth": 2, "label": "layer 1", "right": 3, "total": 4}
    none = _view([1, 1], first=[-1, -1], final_rank=[2, 5])
    assert formation_depth(none)["depth"] is None and formation_depth(none)["right"] == 0


def test_hardest_tokens_are_the_largest_positive_loss_differences():
    a = _view([3.0, 0.5, 2.0, 4.0], [0] * 4, [0] * 4)
    b = _view([1.0, 1.5, 1.9, 0.0], [0] * 4, [0] * 4)
    rows = hardest_tokens(a, b, n=3)
    assert [r["position"] for r in rows] == [4, 1, 3]  # diffs 4.0, 2.0, 0.1; position 2 is easier for a
    assert rows[0]["token"] == "e" and rows[0]["context"] == "abcd" and rows[0]["diff"] == pytest.approx(4.0)
    assert hardest_tokens(b, b) == []


@pytest.fixture(scope="module")
def bpe_workspace(tmp_path_factory):
    """A BPE tau run (untrained, its tokenizer in the checkpoint) beside the demo's byte runs."""
    root = tmp_path_factory.mktemp("lens-runs")
    tok = train_bpe([PROMPT + "\n\n", "the lazy dog and the quick fox\n"] * 30, 300, min_frequency=1)
    model = tiny_model("tau", vocab_size=tok.vocab_size)
    save_checkpoint(checkpoint_dir(root / "tau-bpe", 1), model, step=1, tokenizer=tok)
    return Workspace(runs=[root / "tau-bpe", DEMO_DIR]), tok


def test_a_bpe_run_is_labelled_with_its_pieces_and_not_paired_with_a_byte_run(bpe_workspace):
    ws, tok = bpe_workspace
    view = lens_view(ws.probes, "tau-bpe", None, PROMPT)
    ids = tok.encode(PROMPT)
    assert view.ids.tolist() == ids and view.T < len(PROMPT.encode())
    assert view.tokens == [tok.token_label(i) for i in ids]
    assert any(len(t) > 1 for t in view.tokens)  # merged pieces
    model, _ = ws.runs.load("tau-bpe", None)
    with torch.no_grad():
        logits, _ = model.eval()(torch.as_tensor(view.ids)[None])  # [1, T, V]
    top = logits[0].topk(5, -1).indices  # [T, 5]
    assert view.top_tokens[-1] == [[tok.token_label(int(i)) for i in row] for row in top]
    assert view.pred_tokens == view.top_tokens[-1]
    with pytest.raises(ConfigError, match="different tokens"):
        lens_pair(ws.probes, "tau-bpe", None, "tau", PROMPT)


def test_the_page_says_why_runs_with_different_tokenizers_are_not_compared(bpe_workspace):
    from workbench.views import lens as page

    ws, _ = bpe_workspace
    heat, formed, note = page.update_lens(ws, "tau-bpe", 1, "tau", PROMPT, "prob")
    assert heat.layout.meta["empty"] and formed.layout.meta["empty"] and "different tokens" in note
    loss, listed = page.update_loss(ws, "tau-bpe", 1, "tau", PROMPT)
    assert loss.layout.meta["empty"] and "different tokens" in loss.layout.annotations[0].text and listed == ""
    heat, _, _ = page.update_lens(ws, "tau-bpe", 1, "__none__", PROMPT, "rank")
    assert [t.name for t in heat.data if t.type == "heatmap"] == ["tau-bpe (tau, step 1)"]

"""Logit lens and per-token predictions: checked against the model's own output."""

import pytest
import torch
import torch.nn.functional as F

from tauformer.errors import ShapeError
from tauformer.lens import (capture_streams, depth_labels, first_depth, lens_logits, logit_lens,
                            token_predictions)

from conftest import tiny_model

KINDS = ["tau", "dot"]


def hook_count(model) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


@pytest.mark.parametrize("attention", KINDS)
@pytest.mark.parametrize("softcap", [15.0, None])
def test_lens_at_the_last_layer_equals_the_models_logits(attention, softcap, tokens):
    model = tiny_model(attention, softcap=softcap)
    plain, _ = model(tokens)
    logits = lens_logits(model, tokens)
    assert logits.shape == (3, *plain.shape)  # embedding + 2 layers
    assert torch.equal(logits[-1], plain)
    assert not torch.allclose(logits[1], plain, atol=1e-3)  # an earlier depth reads something else
    assert hook_count(model) == 0


def test_lens_depth_zero_reads_the_token_embedding(tokens):
    model = tiny_model("dot")
    logits = lens_logits(model, tokens)
    by_hand = model.lm_head(F.rms_norm(model.transformer.wte(tokens), (32,), eps=1e-6))
    cap = model.config.softcap
    by_hand = cap * torch.tanh(by_hand / cap) if cap else by_hand
    assert torch.allclose(logits[0], by_hand, atol=1e-5)
    assert depth_labels(2) == ["embedding", "layer 0", "layer 1"]


@pytest.mark.parametrize("attention", KINDS)
def test_lens_top_k_targets_and_first_top1_agree_with_the_probabilities(attention, tokens):
    model = tiny_model(attention)
    lens = logit_lens(model, tokens, k=3)
    probs = torch.softmax(lens_logits(model, tokens), dim=-1)  # [N, B, T, V]
    N, B, T = 3, *tokens.shape
    assert lens.top_ids.shape == lens.top_probs.shape == (N, B, T, 3)
    assert torch.allclose(lens.top_probs, probs.gather(-1, lens.top_ids))
    assert (lens.top_probs[..., :-1] >= lens.top_probs[..., 1:]).all()
    assert torch.allclose(lens.top_probs[..., 0], probs.amax(-1))
    for d in range(N):
        for b in range(B):
            for t in range(T - 1):
                p = probs[d, b, t]
                target = tokens[b, t + 1]
                assert float(lens.target_prob[d, b, t]) == pytest.approx(float(p[target]), rel=1e-6)
                assert int(lens.target_rank[d, b, t]) == int((p > p[target]).sum())
    for b in range(B):
        for t in range(T - 1):
            winners = [d for d in range(N) if int(lens.target_rank[d, b, t]) == 0]
            assert int(lens.first_top1[b, t]) == (winners[0] if winners else -1)


def test_first_depth_finds_the_first_hit_or_minus_one():
    hit = torch.tensor([[False, True, False], [False, True, True], [False, False, True]])  # [N=3, 3]
    assert first_depth(hit).tolist() == [-1, 0, 1]


def test_first_top1_is_the_embedding_when_every_depth_predicts_the_next_token():
    """Blocks that add nothing and a head that maps token i to i + 1: every depth is right."""
    model = tiny_model("dot", n_layer=1)
    with torch.no_grad():
        model.transformer.h[0].attn.c_proj.weight.zero_()
        model.transformer.h[0].mlp.c_proj.weight.zero_()
        model.transformer.wte.weight[:32].copy_(torch.eye(32))  # token i < 32: the unit vector e_i
        model.lm_head.weight.zero_()
        for i in range(20):
            model.lm_head.weight[i + 1, i] = 1.0  # e_i -> logit of token i + 1
    idx = torch.arange(0, 20).unsqueeze(0)
    lens = logit_lens(model, idx)
    assert (lens.first_top1 == 0).all()
    assert (lens.top_ids[:, 0, :, 0] == idx[0] + 1).all()
    assert (lens.target_rank == 0).all()


@pytest.mark.parametrize("attention", KINDS)
def test_token_predictions_are_the_models_loss_and_top_k(attention, tokens):
    model = tiny_model(attention).train()
    pred = token_predictions(model, tokens)
    assert model.training and hook_count(model) == 0
    with torch.no_grad():
        logits, _ = model.eval()(tokens)
    expected = F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
    assert pred.loss.shape == (2, tokens.shape[1] - 1)
    assert torch.allclose(pred.loss, expected, atol=1e-5)
    assert torch.allclose(pred.target_prob, (-expected).exp(), atol=1e-6)
    probs = torch.softmax(logits, dim=-1)
    assert pred.top_ids.shape == (2, tokens.shape[1], 5)
    assert torch.allclose(pred.top_probs, probs.gather(-1, pred.top_ids), atol=1e-6)
    assert torch.allclose(pred.top_probs[..., 0], probs.amax(-1), atol=1e-6)
    assert pred.mean_loss() == pytest.approx(float(expected.mean()), rel=1e-5)


def test_a_single_sequence_and_a_single_token_work():
    model = tiny_model("tau")
    lens = logit_lens(model, torch.tensor([5, 6, 7]))
    assert lens.top_ids.shape == (3, 1, 3, 5) and lens.first_top1.shape == (1, 2)
    one = token_predictions(model, torch.tensor([5]))
    assert one.loss.shape == (1, 0) and one.top_ids.shape == (1, 1, 5)
    with pytest.raises(ShapeError):
        logit_lens(model, torch.zeros(1, 2, 3, dtype=torch.long))


def test_stream_hooks_are_removed_after_an_exception(tokens):
    model = tiny_model("tau")
    with pytest.raises(RuntimeError, match="boom"):
        with capture_streams(model) as streams:
            model(tokens)
            model(tokens)
            assert len(streams) == 3  # the last pass wins
            raise RuntimeError("boom")
    assert hook_count(model) == 0

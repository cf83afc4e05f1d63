"""Head ablation: hooks only, always removed; results checked against a hand-made forward pass."""

import pytest
import torch
import torch.nn.functional as F

from tauformer.ablation import (Ablation, ablate, ablation_losses, ablation_sweep, branch_ablations,
                                sweep_ablations)
from tauformer.attention import rms_norm
from tauformer.errors import ConfigError
from tauformer.probe import run_probe

from conftest import tiny_model

KINDS = ["tau", "dot"]


def hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def hand_forward(model, idx, layer, head, mode):
    """GPT.forward written out, with head `head` of layer `layer` replaced in the c_proj input."""
    B, T = idx.shape
    cos, sin = model.rotary(0, T, idx.device)
    laplacian = model.laplacian_operator()
    x = model.transformer.wte(idx)
    for i, block in enumerate(model.transformer.h):
        attn = block.attn
        q, k, v = attn.project(rms_norm(x), cos, sin)
        y = attn.attend(q, k, v, None, laplacian).clone()  # [B, H, T, D]
        if i == layer:
            heads = range(attn.n_head) if head is None else [head]
            for h in heads:
                y[:, h] = 0.0 if mode == "zero" else y[:, h].mean(dim=(0, 1), keepdim=True)
        x = x + attn.c_proj(y.transpose(1, 2).reshape(B, T, -1))
        x = x + block.mlp(rms_norm(x))
    logits = model.lm_head(rms_norm(x)).float()
    cap = model.config.softcap
    return cap * torch.tanh(logits / cap) if cap else logits


@pytest.mark.parametrize("attention", KINDS)
def test_ablating_nothing_is_bit_identical_to_the_plain_forward(attention, tokens):
    model = tiny_model(attention)
    plain, _ = model(tokens)
    with ablate(model, []):
        same, _ = model(tokens)
    assert torch.equal(plain, same)
    assert hook_count(model) == 0


@pytest.mark.parametrize("attention", KINDS)
@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_one_head_of_a_one_layer_model_matches_the_hand_computed_ablation(attention, mode, tokens):
    model = tiny_model(attention, n_layer=1, softcap=15.0)
    plain, _ = model(tokens)
    with ablate(model, Ablation(0, 2, mode)):
        ablated, _ = model(tokens)
    expected = hand_forward(model, tokens, 0, 2, mode)
    assert torch.allclose(ablated, expected, atol=1e-5)
    assert (ablated - plain).abs().max() > 1e-3  # the head mattered, so the check has teeth
    assert torch.allclose(hand_forward(model, tokens, None, None, mode), plain, atol=1e-5)


@pytest.mark.parametrize("attention", KINDS)
def test_whole_layer_ablation_of_a_deeper_model_matches_the_hand_computed_one(attention, tokens):
    model = tiny_model(attention)
    for mode in ("zero", "mean"):
        with ablate(model, Ablation(1, None, mode)):
            ablated, _ = model(tokens)
        assert torch.allclose(ablated, hand_forward(model, tokens, 1, None, mode), atol=1e-5)


@pytest.mark.parametrize("attention", KINDS)
def test_hooks_are_removed_after_an_exception(attention, tokens):
    model = tiny_model(attention)
    with pytest.raises(RuntimeError, match="boom"):
        with ablate(model, [Ablation(0, 1), Ablation(1, None, "mean")]):
            assert hook_count(model) == 2
            model(tokens)
            raise RuntimeError("boom")
    assert hook_count(model) == 0
    with pytest.raises(IndexError):
        with ablate(model, Ablation(0, 0)):
            model(torch.tensor([[1, 2, 300]]))  # a token beyond the vocabulary fails inside forward
    assert hook_count(model) == 0


@pytest.mark.parametrize("attention", KINDS)
def test_probe_with_an_ablation_sees_the_ablated_pass(attention, tokens):
    model = tiny_model(attention)
    plain = run_probe(model, tokens)
    ablation = Ablation(0, 1, "mean")
    probed = run_probe(model, tokens, ablations=[ablation])
    with torch.no_grad(), ablate(model, ablation):
        ablated, _ = model(tokens)
    assert torch.equal(probed.logits, ablated)
    assert torch.equal(probed.q[0], plain.q[0])  # layer 0's head outputs are ablated after its q
    assert not torch.allclose(probed.q[1], plain.q[1])  # layer 1 reads the ablated stream
    assert hook_count(model) == 0


def test_out_of_range_ablations_are_refused_without_leaving_hooks():
    model = tiny_model("tau")
    for bad in (Ablation(2, 0), Ablation(0, 4), Ablation(-1, 0)):
        with pytest.raises(ConfigError, match="out of range"):
            with ablate(model, [Ablation(0, 0), bad]):
                pass
        assert hook_count(model) == 0
    with pytest.raises(ConfigError, match="mode"):
        Ablation(0, 0, "noise")


def batches_of(tokens):
    x, y = tokens[:, :-1], tokens[:, 1:].clone()
    y[0, :3] = -1  # ignored targets stay ignored
    return [(x, y), (x.flip(0), y.flip(0))]


@pytest.mark.parametrize("attention", KINDS)
def test_batched_sweep_equals_one_ablation_at_a_time(attention, tokens):
    model = tiny_model(attention).train()
    batches = batches_of(tokens)
    sweep = ablation_sweep(model, batches, mode="mean")
    assert model.training and hook_count(model) == 0
    assert sweep.head_delta.shape == (2, 4) and sweep.layer_delta.shape == (2,)
    n_targets = sum(int((y != -1).sum()) for _, y in batches)
    assert sweep.n_tokens == n_targets

    def loss_with(ablations):
        total = 0.0
        with torch.no_grad(), ablate(model.eval(), ablations):
            for x, y in batches:
                logits, _ = model(x)
                total += float(F.cross_entropy(logits.transpose(1, 2), y, ignore_index=-1, reduction="sum"))
        return total / n_targets

    base = loss_with([])
    assert sweep.base_loss == pytest.approx(base, rel=1e-5)
    for a in sweep_ablations(model, "mean"):
        got = sweep.head_delta[a.layer, a.head] if a.head is not None else sweep.layer_delta[a.layer]
        assert float(got) == pytest.approx(loss_with([a]) - base, abs=1e-5)
    assert sweep.layer_delta.abs().max() > 1e-3


@pytest.mark.parametrize("attention", KINDS)
def test_branched_pass_holds_each_ablated_pass_as_a_row_group(attention, tokens):
    model = tiny_model(attention)
    ablations = [Ablation(0, 3, "mean"), Ablation(1, None), Ablation(1, 0, "mean")]
    with torch.no_grad():
        with branch_ablations(model, 2, ablations):
            assert hook_count(model) == 4  # two blocks branch, two c_proj hooks silence
            logits, _ = model(tokens)
        assert hook_count(model) == 0
        assert logits.shape == (8, tokens.shape[1], 256)  # base + 3 groups of the 2 rows
        assert torch.allclose(logits[:2], model(tokens)[0], atol=1e-5)
        for g, ablation in enumerate(ablations, start=1):
            with ablate(model, ablation):
                alone, _ = model(tokens)
            assert torch.allclose(logits[2 * g : 2 * g + 2], alone, atol=1e-5)
    with pytest.raises(ConfigError, match="ordered by layer"):
        with branch_ablations(model, 2, ablations[::-1]):
            pass
    assert hook_count(model) == 0


def test_stacking_limit_does_not_change_the_losses(tokens):
    model = tiny_model("tau")
    batches = batches_of(tokens)
    ablations = sweep_ablations(model)
    one_per_pass, base_1, _ = ablation_losses(model, batches, ablations, max_logits=1)
    all_at_once, base_all, _ = ablation_losses(model, batches, ablations)
    assert torch.allclose(one_per_pass, all_at_once, atol=1e-5)
    assert base_1 == pytest.approx(base_all, rel=1e-6)


def test_a_sweep_needs_batches_with_targets(tokens):
    model = tiny_model("dot")
    with pytest.raises(ConfigError):
        ablation_sweep(model, [])
    with pytest.raises(ConfigError, match="target"):
        ablation_sweep(model, [(tokens, torch.full_like(tokens, -1))])

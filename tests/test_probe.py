"""The probe reads attention without changing it: invariants of run_probe and capture."""

import pytest
import torch

from tauformer.attention import repeat_kv
from tauformer.kernels import tau_attention
from tauformer.probe import attention_weights, capture, run_probe
from tauformer.taumode import taumode_lambdas

from conftest import tiny_model

KINDS = ["tau", "dot"]


def hook_count(model) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


@pytest.mark.parametrize("attention", KINDS)
def test_weights_are_causal_distributions(attention, tokens):
    result = run_probe(tiny_model(attention), tokens)
    L, B, H, T = 2, 2, 4, tokens.shape[1]
    assert result.weights.shape == (L, B, H, T, T)
    assert torch.allclose(result.weights.sum(-1), torch.ones(L, B, H, T), atol=1e-5)
    upper = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    assert (result.weights[..., upper] == 0).all()
    assert (result.weights >= 0).all()


@pytest.mark.parametrize("attention", KINDS)
def test_logits_are_identical_with_and_without_the_probe(attention, tokens):
    model = tiny_model(attention)
    plain, _ = model(tokens)
    result = run_probe(model, tokens)
    assert torch.equal(plain, result.logits)
    assert torch.equal(plain, model(tokens)[0])
    assert hook_count(model) == 0


@pytest.mark.parametrize("attention", KINDS)
def test_hooks_are_removed_after_an_exception_inside_the_capture_block(attention, tokens):
    model = tiny_model(attention)
    with pytest.raises(RuntimeError, match="boom"):
        with capture(model) as cap:
            assert hook_count(model) > 0
            model(tokens)
            raise RuntimeError("boom")
    assert cap.layers[0].q is not None  # it did capture before failing
    assert hook_count(model) == 0


def test_probe_keeps_train_mode_and_removes_hooks_when_forward_fails():
    model = tiny_model("tau").train()
    with pytest.raises(Exception):
        run_probe(model, torch.tensor([[1, 2, 300]]))  # token id beyond the vocabulary
    assert model.training and hook_count(model) == 0


def test_token_loss_matches_the_models_loss(tokens):
    model = tiny_model("tau")
    result = run_probe(model, tokens)
    targets = torch.cat([tokens[:, 1:], torch.full((tokens.shape[0], 1), -1)], dim=1)
    _, loss = model(tokens, targets)
    assert result.token_loss.shape == (2, tokens.shape[1] - 1)
    assert result.mean_loss() == pytest.approx(float(loss.detach()), rel=1e-5)


def test_tau_probe_lambdas_and_taus_are_what_the_layer_computes(tokens):
    model = tiny_model("tau")
    result = run_probe(model, tokens)
    for i, block in enumerate(model.transformer.h):
        tau = float(block.attn.taumode.tau_running)
        lam = taumode_lambdas(result.q[i], model.laplacian, tau=tau)
        assert torch.allclose(lam, result.lambda_q[i], atol=1e-6)
        assert torch.allclose(result.tau_q[i], torch.full_like(result.tau_q[i], tau))
        assert result.lambda_k[i].shape == (2, 2, tokens.shape[1])  # H_kv = 2
    assert result.temperature.shape == (2, 4)


def test_dot_probe_has_no_lambda(tokens):
    result = run_probe(tiny_model("dot"), tokens)
    assert result.lambda_q is None and result.tau_q is None and result.temperature is None
    assert result.kind == "dot"


@pytest.mark.parametrize("attention", KINDS)
def test_probe_weights_reproduce_the_attention_output(attention, tokens):
    """weights @ v equals the kernel's output: the probe shows the attention the model used."""
    model = tiny_model(attention)
    with capture(model) as cap:
        model(tokens)
    layer = cap.layers[1]
    attn = model.transformer.h[1].attn
    weights = attention_weights(model, layer, 1)
    v = repeat_kv(layer.v, 2)
    if attention == "tau":
        expected = tau_attention(layer.lambda_q, repeat_kv(layer.lambda_k, 2), v,
                                 temperature=attn.temperature(), kernel="dense")
    else:
        expected = torch.nn.functional.scaled_dot_product_attention(layer.q, repeat_kv(layer.k, 2), v, is_causal=True)
    assert torch.allclose(weights @ v, expected, atol=1e-5)


def test_entropy_is_one_for_uniform_attention():
    model = tiny_model(laplacian=torch.eye(8))  # identity: every lambda equal
    result = run_probe(model, torch.arange(20)[None])
    assert torch.allclose(result.entropy(), torch.ones(2, 1, 4), atol=1e-5)


def test_a_one_dimensional_prompt_is_one_batch_row():
    result = run_probe(tiny_model("dot"), torch.arange(10))
    assert result.idx.shape == (1, 10) and result.token_loss.shape == (1, 9)

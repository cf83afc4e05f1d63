"""The GPT: tau and dot differ only in scoring; gradients, causality, Laplacian checks."""

import pytest
import torch

from tauformer.config import ModelConfig
from tauformer.errors import ConfigError, ShapeError
from tauformer.laplacian import chain_laplacian
from tauformer.model import GPT

from conftest import tiny_config, tiny_model


def test_tau_and_dot_share_every_parameter_but_the_temperature():
    tau, dot = tiny_model("tau", seed=7), tiny_model("dot", seed=7)
    tau_params = dict(tau.named_parameters())
    dot_params = dict(dot.named_parameters())
    extra = set(tau_params) - set(dot_params)
    assert extra == {f"transformer.h.{i}.attn.log_temperature" for i in range(2)}
    assert set(dot_params) <= set(tau_params)
    for name, p in dot_params.items():
        assert p.shape == tau_params[name].shape
        assert torch.equal(p, tau_params[name]), f"{name}: same seed must give the same init"
    assert tau.num_parameters() - dot.num_parameters() == 2 * 4  # one temperature per head and layer


def test_fixed_temperature_model_has_exactly_the_dot_parameters():
    tau = tiny_model("tau", learn_temperature=False)
    dot = tiny_model("dot")
    assert [n for n, _ in tau.named_parameters()] == [n for n, _ in dot.named_parameters()]


@pytest.mark.parametrize("attention", ["tau", "dot"])
def test_forward_shapes_and_loss(attention, tokens):
    model = tiny_model(attention)
    logits, loss = model(tokens)
    assert logits.shape == (2, 24, 256) and loss is None
    logits, loss = model(tokens, tokens)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert logits.abs().max() <= 15.0  # soft-cap


def test_gradients_reach_query_and_key_projections_of_the_tau_model(tokens):
    model = tiny_model("tau").train()
    _, loss = model(tokens, tokens)
    loss.backward()
    for i, block in enumerate(model.transformer.h):
        for name in ("c_q", "c_k", "c_v"):
            grad = getattr(block.attn, name).weight.grad
            assert grad is not None and grad.abs().sum() > 0, f"layer {i} {name} gets no gradient"
        assert block.attn.log_temperature.grad.abs().sum() > 0


def test_sparse_laplacian_layout_matches_dense(tokens):
    dense = tiny_model("tau", seed=3)
    sparse = tiny_model("tau", seed=3, laplacian_layout="sparse")
    sparse.load_state_dict(dense.state_dict())
    assert torch.allclose(dense(tokens)[0], sparse(tokens)[0], atol=1e-5)


@pytest.mark.parametrize("attention", ["tau", "dot"])
def test_changing_a_future_token_leaves_past_logits_unchanged(attention, tokens):
    model = tiny_model(attention)
    changed = tokens.clone()
    changed[:, 15] = (changed[:, 15] + 1) % 256
    a, _ = model(tokens)
    b, _ = model(changed)
    assert torch.equal(a[:, :15], b[:, :15])
    assert not torch.allclose(a[:, 15:], b[:, 15:])


def test_laplacian_of_the_wrong_size_is_refused_with_both_sizes():
    cfg = tiny_config("tau")  # head_dim = 32 / 4 = 8
    with pytest.raises(ShapeError, match=r"10 x 10.*head_dim is 8"):
        GPT(cfg, laplacian=chain_laplacian(10))


def test_laplacian_can_be_given_as_sparse_tensor_or_array(tokens):
    L = chain_laplacian(8) * 2.0
    a = GPT(tiny_config("tau"), laplacian=L.to_sparse_coo())
    b = GPT(tiny_config("tau"), laplacian=L.numpy())
    assert torch.equal(a.laplacian, L) and torch.equal(b.laplacian, L)
    with pytest.raises(ShapeError, match="not symmetric"):
        GPT(tiny_config("tau"), laplacian=torch.triu(L))


def test_dot_model_refuses_a_laplacian():
    with pytest.raises(ConfigError):
        GPT(tiny_config("dot"), laplacian=chain_laplacian(8))


def test_chain_laplacian_is_the_default():
    model = tiny_model("tau")
    assert torch.equal(model.laplacian, chain_laplacian(8))


@pytest.mark.parametrize("bad", [
    dict(n_embd=30, n_head=4), dict(n_head=4, n_kv_head=3), dict(attention="cosine"), dict(tau_mode="max"),
    dict(tau_mode="percentile"), dict(temperature=0.0),
])
def test_inconsistent_configs_are_refused(bad):
    with pytest.raises(ConfigError):
        tiny_config(**bad)


def test_config_round_trip_patches_old_keys_and_refuses_unknown_ones():
    cfg = tiny_config("tau")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    old = cfg.to_dict()
    old["n_kv_heads"] = old.pop("n_kv_head")
    assert ModelConfig.from_dict(old) == cfg
    with pytest.raises(ConfigError, match="unknown keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "flash": True})


def test_sparse_layout_reuses_its_csr_copy_until_the_laplacian_changes():
    model = tiny_model("tau", laplacian_layout="sparse")
    first = model.laplacian_operator()
    assert first.layout == torch.sparse_csr
    assert model.laplacian_operator() is first  # not converted again per forward / decode step
    state = model.state_dict()
    state["laplacian"] = 2 * state["laplacian"]
    model.load_state_dict(state)  # copies into the buffer in place
    second = model.laplacian_operator()
    assert second is not first and torch.equal(second.to_dense(), model.laplacian)

"""What-if changes: unchanged settings reproduce the model, changes never touch the original."""

import numpy as np
import pytest
import torch

from tauformer.errors import ConfigError
from tauformer.laplacian import chain_laplacian
from tauformer.taumode import rayleigh_energy
from tauformer.whatif import Change, apply_change, calibrate, degree_preserving_shuffle, laplacian_variant, what_if

from conftest import random_laplacian, tiny_model


@pytest.fixture
def batches():
    g = torch.Generator().manual_seed(5)
    rows = torch.randint(0, 256, (2, 3, 17), generator=g)
    return [(r[:, :-1], r[:, 1:]) for r in rows]


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_unchanged_settings_reproduce_attention_and_loss(tokens, batches):
    model = tiny_model(laplacian=random_laplacian(8))
    result = what_if(model, tokens, Change(), batches)
    assert torch.equal(result.before.weights, result.after.weights)
    assert torch.equal(result.before.logits, result.after.logits)
    assert result.val_loss_before == result.val_loss_after


@pytest.mark.parametrize("change", [
    Change(temperature_scale=0.1), Change(temperature=0.05), Change(tau_mode="median"),
    Change(tau_mode="fixed", tau=0.3), Change(laplacian=chain_laplacian(8), laplacian_name="chain"),
    Change(tau_mode="calibrated", laplacian=torch.eye(8), laplacian_name="identity"),
])
def test_a_change_moves_attention_but_never_the_original_model(change, tokens, batches):
    model = tiny_model(laplacian=random_laplacian(8))
    before = state(model)
    result = what_if(model, tokens, change, batches)
    assert not torch.allclose(result.before.weights, result.after.weights)
    assert result.val_loss_before != result.val_loss_after
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), f"{name} was modified"
    assert model.transformer.h[0].attn.taumode.tau_mode == "calibrated"


def test_lower_temperature_sharpens_attention(tokens, batches):
    model = tiny_model(laplacian=random_laplacian(8))
    result = what_if(model, tokens, Change(temperature_scale=0.01), batches)
    assert (result.after.entropy() < result.before.entropy()).all()


def test_fixed_temperature_models_scale_their_fixed_value():
    model = tiny_model("tau", learn_temperature=False, temperature=2.0)
    changed = apply_change(model, Change(temperature_scale=0.5))
    assert torch.allclose(changed.transformer.h[0].attn.temperature(), torch.ones(4))
    assert model.transformer.h[0].attn.fixed_temperature == 2.0


def test_calibration_sets_tau_to_the_median_energy(batches):
    model = tiny_model(laplacian=random_laplacian(8))
    from tauformer.probe import capture

    taus = calibrate(model, batches)
    with capture(model) as cap:
        energies = []
        for x, _ in batches:
            model(x)
            energies += [rayleigh_energy(cap.layers[1].q, model.laplacian).flatten(),
                         rayleigh_energy(cap.layers[1].k, model.laplacian).flatten()]
    assert taus[1] == pytest.approx(float(torch.cat(energies).median()), rel=1e-6)
    assert float(model.transformer.h[1].attn.taumode.tau_running) == pytest.approx(taus[1])


def test_identity_laplacian_makes_attention_uniform(tokens, batches):
    model = tiny_model("tau")
    change = Change(laplacian=laplacian_variant(model, "identity"), laplacian_name="identity")
    result = what_if(model, tokens, change, batches)
    assert torch.allclose(result.after.entropy(), torch.ones_like(result.after.entropy()), atol=1e-5)


def degrees(L: torch.Tensor) -> np.ndarray:
    A = (-L).numpy().copy()
    np.fill_diagonal(A, 0)
    return (A != 0).sum(1)


def test_degree_preserving_shuffle_keeps_degrees_and_weights_but_rewires():
    L = random_laplacian(32, seed=4)
    S = degree_preserving_shuffle(L, seed=0)
    assert np.array_equal(degrees(L), degrees(S))
    off = lambda M: np.sort(-np.triu(M.numpy(), 1)[np.triu(M.numpy(), 1) != 0])  # noqa: E731
    assert np.allclose(off(L), off(S))
    assert torch.allclose(S, S.T) and torch.allclose(S.sum(1), torch.zeros(32), atol=1e-5)
    assert not torch.equal((L != 0), (S != 0)), "no edge moved"
    assert torch.equal(S, degree_preserving_shuffle(L, seed=0))
    assert not torch.equal(S, degree_preserving_shuffle(L, seed=1))


def test_bad_changes_are_refused(tokens, batches):
    with pytest.raises(ConfigError, match="dot-product"):
        apply_change(tiny_model("dot"), Change(temperature_scale=2.0))
    with pytest.raises(ConfigError, match="temperatures"):
        Change(temperature_scale=0.0)
    with pytest.raises(ConfigError, match="tau_mode"):
        Change(tau_mode="nope")
    with pytest.raises(Exception, match="head_dim"):
        apply_change(tiny_model("tau"), Change(laplacian=chain_laplacian(16)))


def test_layer_qk_stops_at_the_layer_and_matches_a_full_capture(tokens):
    from tauformer.probe import capture
    from tauformer.whatif import layer_qk

    model = tiny_model(laplacian=random_laplacian(8))
    with capture(model) as cap:
        model(tokens)
    q, k = layer_qk(model, tokens, 1)
    assert torch.equal(q, cap.layers[1].q) and torch.equal(k, cap.layers[1].k)
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0

"""lambda as an energy-weighted mean eigenvalue: the decomposition rebuilds it exactly."""

import pytest
import torch

from tauformer.laplacian import chain_laplacian
from tauformer.probe import run_probe
from tauformer.spectral import laplacian_spectrum, spectral_decomposition
from tauformer.taumode import rayleigh_energy, select_tau, taumode_lambdas

from conftest import random_laplacian, tiny_model


@pytest.mark.parametrize("name", ["chain", "random"])
@pytest.mark.parametrize("tau_mode", ["fixed", "median"])
def test_decomposition_rebuilds_energy_and_lambda(name, tau_mode):
    D = 32
    L = chain_laplacian(D) if name == "chain" else random_laplacian(D)
    x = torch.randn(50, D, generator=torch.Generator().manual_seed(1))
    dec = spectral_decomposition(x, L)
    assert dec.weights.shape == (50, D)
    assert torch.allclose(dec.weights.sum(-1), torch.ones(50, dtype=torch.float64))
    assert (dec.weights >= 0).all()
    assert torch.all(dec.eigenvalues[1:] >= dec.eigenvalues[:-1])
    # the energy-weighted mean eigenvalue is the Rayleigh energy
    weighted_mean = (dec.weights * dec.eigenvalues).sum(-1)
    assert torch.allclose(weighted_mean.float(), rayleigh_energy(x, L), rtol=1e-5, atol=1e-6)
    tau = select_tau(x, tau_mode, tau=1.5)
    expected = taumode_lambdas(x, L, tau_mode=tau_mode, tau=1.5)
    assert torch.allclose(dec.lambdas(tau.double()).float(), expected, atol=1e-5)


def test_an_eigenvector_puts_all_its_energy_in_one_mode():
    L = chain_laplacian(16)
    spec = laplacian_spectrum(L)
    x = torch.from_numpy(spec.eigenvectors[:, 5]).float() * 3.0
    dec = spectral_decomposition(x, spectrum=spec)
    assert dec.weights.argmax() == 5 and float(dec.weights[5]) == pytest.approx(1.0, abs=1e-6)
    assert float(dec.energy) == pytest.approx(float(spec.eigenvalues[5]), rel=1e-5)


def test_zero_vector_has_zero_energy():
    dec = spectral_decomposition(torch.zeros(8), chain_laplacian(8))
    assert float(dec.energy) == 0.0 and torch.isfinite(dec.weights).all()


@pytest.mark.parametrize("tau_mode", ["calibrated", "median"])
def test_rebuilds_the_probed_lambdas_of_a_model(tau_mode, tokens):
    model = tiny_model(tau_mode=tau_mode, laplacian=random_laplacian(8, seed=3))
    result = run_probe(model, tokens)
    spec = laplacian_spectrum(model.laplacian)
    for name, tau in (("q", result.tau_q), ("k", result.tau_k)):
        dec = spectral_decomposition(getattr(result, name), spectrum=spec)
        rebuilt = dec.lambdas(tau.double()).float()
        assert torch.allclose(rebuilt, getattr(result, f"lambda_{name}"), atol=1e-5)


def test_mismatched_sizes_are_refused():
    from tauformer.errors import ShapeError

    with pytest.raises(ShapeError, match="D=8"):
        spectral_decomposition(torch.zeros(8), chain_laplacian(16))

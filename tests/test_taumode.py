"""lambda (SPEC section 2) against a slow explicit formula, for every tau mode and layout."""


import numpy as np
import pytest
import torch

from tauformer.errors import ShapeError
from tauformer.laplacian import chain_laplacian
from tauformer.taumode import Taumode, taumode_lambdas


def random_laplacian(D, seed=0, density=0.3):
    rng = np.random.default_rng(seed)
    W = rng.random((D, D)) * (rng.random((D, D)) < density)
    W = np.triu(W, 1)
    W = W + W.T
    return torch.tensor(np.diag(W.sum(1)) - W, dtype=torch.float32)


def slow_lambda(x, L, mode, tau=1.0, eps=1e-6, p=None):
    """One vector at a time, in float64 Python arithmetic."""
    x = [float(v) for v in x]
    D = len(x)
    xLx = sum(x[i] * float(L[i, j]) * x[j] for i in range(D) for j in range(D))
    E = max(0.0, xLx / (sum(v * v for v in x) + eps))
    if mode in ("fixed", "calibrated"):
        t = tau
    else:
        if mode == "median":
            t = float(np.median(x))
        elif mode == "mean":
            t = sum(x) / D
        else:
            t = float(np.quantile(x, p))
        t = max(max(t, 1e-10), eps)
    return E / (E + t)


@pytest.mark.parametrize("mode,kwargs", [
    ("fixed", {"tau": 1.0}), ("fixed", {"tau": 0.3}), ("calibrated", {"tau": 2.5}),
    ("median", {}), ("mean", {}), ("percentile", {"percentile": 0.9}), ("percentile", {"percentile": 0.25}),
])
def test_lambda_matches_explicit_formula(mode, kwargs):
    D = 12
    L = random_laplacian(D, seed=1)
    x = torch.randn(3, 5, D, generator=torch.Generator().manual_seed(2))
    lam = taumode_lambdas(x, L, tau_mode=mode, **kwargs)
    assert lam.shape == (3, 5)
    expected = [[slow_lambda(x[i, j], L, mode, kwargs.get("tau", 1.0), p=kwargs.get("percentile"))
                 for j in range(5)] for i in range(3)]
    assert torch.allclose(lam, torch.tensor(expected, dtype=torch.float32), atol=1e-6, rtol=1e-5)
    assert ((lam >= 0) & (lam < 1)).all()


@pytest.mark.parametrize("layout", ["csr", "coo"])
@pytest.mark.parametrize("mode", ["fixed", "median", "percentile"])
def test_sparse_laplacian_gives_dense_results_and_gradients(layout, mode):
    D = 16
    L = random_laplacian(D, seed=3)
    Ls = L.to_sparse_csr() if layout == "csr" else L.to_sparse_coo()
    x = torch.randn(4, 7, D, generator=torch.Generator().manual_seed(4), requires_grad=True)
    kw = {"percentile": 0.75} if mode == "percentile" else {}
    dense = taumode_lambdas(x, L, tau_mode=mode, **kw)
    (g_dense,) = torch.autograd.grad(dense.square().sum(), x)
    sparse = taumode_lambdas(x, Ls, tau_mode=mode, **kw)
    (g_sparse,) = torch.autograd.grad(sparse.square().sum(), x)
    assert torch.allclose(dense, sparse, atol=1e-6)
    assert torch.allclose(g_dense, g_sparse, atol=1e-6)
    assert g_dense.abs().sum() > 0


@pytest.mark.parametrize("mode", ["fixed", "median", "mean", "percentile", "calibrated"])
def test_zero_vector_gives_zero_not_nan(mode):
    x = torch.zeros(2, 8)
    lam = taumode_lambdas(x, chain_laplacian(8), tau_mode=mode, percentile=0.5)
    assert torch.equal(lam, torch.zeros(2))


def test_lambda_is_energy_weighted_mean_of_eigenvalues_bounded():
    # E is the mean of L's eigenvalues weighted by the squared eigen-coordinates (SPEC section 2)
    D = 10
    L = random_laplacian(D, seed=5).double()
    mu, U = torch.linalg.eigh(L)
    x = torch.randn(D, dtype=torch.float64)
    c2 = (U.T @ x) ** 2
    E = float((c2 * mu).sum() / c2.sum())
    lam = float(taumode_lambdas(x.float(), L.float(), tau=0.7, eps=0.0))
    assert lam == pytest.approx(E / (E + 0.7), rel=1e-5)


def test_laplacian_size_mismatch_names_both_sizes():
    with pytest.raises(ShapeError, match=r"\(6, 6\).*D=8"):
        taumode_lambdas(torch.randn(3, 8), chain_laplacian(6))


def test_calibrated_tau_tracks_median_energy():
    D = 8
    L = chain_laplacian(D)
    mode = Taumode("calibrated", 1.0, momentum=0.5).train()
    q = torch.randn(2, 2, 16, D)
    k = torch.randn(2, 1, 16, D)
    lq, lk = mode(q, k, L)
    from tauformer.taumode import rayleigh_energy

    median = torch.cat([rayleigh_energy(q, L).flatten(), rayleigh_energy(k, L).flatten()]).median()
    assert float(mode.tau_running) == pytest.approx(float(median), rel=1e-6)
    # at tau = median energy, about half the lambdas are above 0.5
    frac = float((torch.cat([lq.flatten(), lk.flatten()]) > 0.5).float().mean())
    assert 0.4 <= frac <= 0.6
    mode(2 * q, 2 * k, L)  # energies are scale-free: the running median barely moves
    assert int(mode.tau_updates) == 2
    before = float(mode.tau_running)
    mode.eval()
    mode(q * 3, k, L)
    assert float(mode.tau_running) == before  # no update outside training


def test_median_mode_collapses_half_of_rms_normalised_vectors():
    # the reference's per-vector median tau sits at the eps floor for vectors with a negative median
    x = torch.randn(2000, 32, generator=torch.Generator().manual_seed(0))
    x = x / x.pow(2).mean(-1, keepdim=True).sqrt()
    lam = taumode_lambdas(x, chain_laplacian(32), tau_mode="median")
    near_one = float((lam > 0.999).float().mean())
    assert 0.4 < near_one < 0.6


def test_fixed_tau_is_a_device_buffer_and_lambda_stays_bit_identical(monkeypatch, tokens):
    from conftest import tiny_model

    from tauformer import taumode as taumode_module
    from tauformer.errors import ConfigError
    from tauformer.taumode import bound_energy, rayleigh_energy

    model = tiny_model("tau", tau_mode="fixed", tau=0.3)
    layers = [block.attn.taumode for block in model.transformer.h]
    assert not any("tau_fixed" in key for key in model.state_dict())  # checkpoints unchanged
    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(2, 4, 6, 8, generator=g), torch.randn(2, 2, 6, 8, generator=g)
    L = random_laplacian(8)
    tm = layers[0]
    lq, lk = tm(q, k, L)
    tau = torch.as_tensor(0.3, dtype=torch.float32)  # what select_tau built on every call before
    assert torch.equal(lq, bound_energy(rayleigh_energy(q, L), tau))
    assert torch.equal(lk, bound_energy(rayleigh_energy(k, L), tau))
    assert tm.taus(q, k)[0] is tm.tau_fixed

    with torch.no_grad():
        for layer in layers:  # the host-built tensor path, as before
            layer._tau_in_buffer = False
        before = model(tokens)[0]
        for layer in layers:
            layer.tau = 0.3
        monkeypatch.setattr(taumode_module, "select_tau", lambda *a, **kw: pytest.fail("tau built on the host"))
        after = model(tokens)[0]
    assert torch.equal(before, after)

    tm.tau = 0.7  # what-if changes reach the buffer
    assert tm.tau_fixed.item() == torch.tensor(0.7, dtype=torch.float32).item()
    monkeypatch.undo()
    tm.tau = -1.0
    with pytest.raises(ConfigError, match="tau must be > 0"):
        tm(q, k, L)

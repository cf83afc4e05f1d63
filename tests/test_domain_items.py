"""Per-item lambda against explicit loops, tau modes, the item kNN graph, the spectrum."""

import numpy as np
import pytest
import scipy.sparse as sp

from tauformer.domain import (
    item_knn_graph,
    item_lambdas,
    laplacian_spectrum,
    select_tau,
    spectral_gap,
    spectrum_summary,
)
from tauformer.errors import ConfigError


def ring_laplacian(D, rng):
    W = np.zeros((D, D))
    for i in range(D):
        j = (i + 1) % D
        W[i, j] = W[j, i] = rng.uniform(0.2, 1.0)
    W[0, D // 2] = W[D // 2, 0] = 0.7
    return sp.csr_matrix(np.diag(W.sum(axis=1)) - W)


def explicit_lambda(x, L, tau):
    """The reference's per-item formula with plain loops over ordered pairs (i, j), i != j."""
    D = len(x)
    num = sum(x[i] * L[i, j] * x[j] for i in range(D) for j in range(D))
    den = sum(v * v for v in x)
    E = num / den if den > 1e-12 else 0.0
    contrib = [max(-L[i, j], 0.0) * (x[i] - x[j]) ** 2 for i in range(D) for j in range(D) if i != j]
    S = sum(contrib)
    G = sum((c / S) ** 2 for c in contrib) if S > 0 else 0.0
    return tau * E / (E + tau) + (1 - tau) * min(max(G, 0.0), 1.0), E, G


@pytest.mark.parametrize("mode,kwargs", [("fixed", {"tau": 0.7}), ("median", {}), ("mean", {}), ("percentile", {"percentile": 0.9})])
def test_item_lambda_matches_explicit_loops(mode, kwargs):
    rng = np.random.default_rng(0)
    D = 9
    L = ring_laplacian(D, rng)
    X = rng.standard_normal((7, D)) + 0.4
    X[3] = 0.0  # a zero item: E = 0, G = 0
    out = item_lambdas(X, L, tau_mode=mode, **kwargs)
    dense = L.toarray()
    for n, x in enumerate(X):
        if mode == "fixed":
            tau = 0.7
        elif mode == "median":
            tau = float(np.median(x))
        elif mode == "mean":
            tau = float(np.mean(x))
        else:
            tau = float(sorted(x)[round((D - 1) * 0.9)])
        tau = max(tau, 1e-10)
        lam, E, G = explicit_lambda(x, dense, tau)
        assert out.tau[n] == pytest.approx(tau, rel=1e-12)
        assert out.energy[n] == pytest.approx(E, rel=1e-9, abs=1e-12)
        assert out.dispersion[n] == pytest.approx(G, rel=1e-9, abs=1e-12)
        assert out.lambdas[n] == pytest.approx(lam, rel=1e-9, abs=1e-12)
    assert out.energy[3] == 0.0 and out.dispersion[3] == 0.0


def test_dispersion_is_high_when_energy_sits_on_one_edge():
    rng = np.random.default_rng(1)
    L = ring_laplacian(8, rng)
    spike = np.zeros(8)
    spike[4] = 1.0  # energy on the two edges at node 4
    smooth_noise = rng.standard_normal(8)
    g = item_lambdas(np.stack([spike, smooth_noise]), L, tau_mode="fixed").dispersion
    assert g[0] > g[1] and g[0] <= 0.5


def test_select_tau_floors_and_rejects():
    X = np.array([[-3.0, -2.0, -1.0]])
    assert select_tau(X, "median")[0] == 1e-10
    assert select_tau(X, "fixed", tau=-1.0)[0] == 1e-10
    with pytest.raises(ConfigError):
        select_tau(X, "mode")
    with pytest.raises(ConfigError):
        select_tau(X, "percentile", percentile=1.5)


def test_item_lambda_rejects_wrong_width():
    with pytest.raises(ConfigError, match=r"\[N, 8\]"):
        item_lambdas(np.ones((3, 5)), ring_laplacian(8, np.random.default_rng(0)))


def brute_knn_edges(X, k):
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    d = 1.0 - U @ U.T
    np.fill_diagonal(d, np.inf)
    pairs = set()
    for i in range(len(X)):
        for j in np.argsort(d[i], kind="stable")[:k]:
            pairs.add((min(i, j), max(i, j)))
    return pairs, d


def test_exact_item_knn_graph():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    edges, dist = item_knn_graph(X, k=5)
    expected, d = brute_knn_edges(X.astype(np.float64), 5)
    assert {tuple(e) for e in edges.tolist()} == expected
    assert np.all(edges[:, 0] < edges[:, 1])
    np.testing.assert_allclose(dist, d[edges[:, 0], edges[:, 1]], atol=1e-5)


@pytest.mark.slow
def test_approximate_item_knn_graph_agrees_with_exact():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2500, 8)).astype(np.float32)
    exact = {tuple(e) for e in item_knn_graph(X, k=8)[0].tolist()}
    approx = {tuple(e) for e in item_knn_graph(X, k=8, exact_max=100)[0].tolist()}
    assert len(exact & approx) / len(exact) > 0.9


def test_spectrum_dense_and_sparse_paths_agree():
    rng = np.random.default_rng(4)
    L = ring_laplacian(60, rng)
    full = laplacian_spectrum(L)
    assert full.complete and full.eigenvectors.shape == (60, 60)
    np.testing.assert_allclose(L @ full.eigenvectors, full.eigenvectors * full.eigenvalues, atol=1e-10)
    import tauformer.spectral as spectral

    old = spectral.DENSE_MAX
    spectral.DENSE_MAX = 10
    try:
        ends = laplacian_spectrum(L, k=5)
    finally:
        spectral.DENSE_MAX = old
    assert not ends.complete
    np.testing.assert_allclose(ends.eigenvalues[:5], full.eigenvalues[:5], atol=1e-8)
    np.testing.assert_allclose(ends.eigenvalues[5:], full.eigenvalues[-5:], atol=1e-8)
    assert spectral_gap(full.eigenvalues) == pytest.approx(full.eigenvalues[1])
    s = spectrum_summary(L)
    assert s["components"] == 1 and s["zero_eigenvalues"] == 1 and s["neighbours_max"] == 3

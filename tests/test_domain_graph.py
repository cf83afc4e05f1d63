"""Feature-graph Laplacian against a slow explicit builder (plain loops), and its invariants."""

import math

import numpy as np
import pytest

from tauformer.domain import build_domain_memory, connected_components, laplacian_spectrum
from tauformer.domain.graph import build_feature_graph, laplacian_from_adjacency
from tauformer.domain.spectrum import zero_tolerance


def explicit_laplacian(centroids, *, eps, k, topk, p, sigma, sparsify=True, normalised=False):
    """SPEC section 7 steps 3-6 written out with loops, as a reference for the fast builder."""
    K, D = len(centroids), len(centroids[0])
    feats = [[float(centroids[c][f]) for c in range(K)] for f in range(D)]

    def cosine(a, b):
        na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
        if na <= 1e-15 or nb <= 1e-15:
            return 0.0
        return max(-1.0, min(1.0, sum(x * y for x, y in zip(a, b)) / (na * nb)))

    lists = []
    for i in range(D):
        cands = sorted((1.0 - cosine(feats[i], feats[j]), j) for j in range(D) if j != i)
        chosen = [(j, d) for d, j in cands[: min(topk, k)] if d <= eps]
        lists.append([(j, 1.0 / (1.0 + (max(d, 0.0) / sigma) ** p)) for j, d in chosen])
    mean_degree = sum(len(x) for x in lists) / D
    if sparsify and mean_degree > 10:
        deg = [len(x) for x in lists]
        pruned = []
        for i, nbrs in enumerate(lists):
            if len(nbrs) > 2:
                scored = sorted(range(len(nbrs)), key=lambda t: (-nbrs[t][1] * math.sqrt(deg[i] * deg[nbrs[t][0]]), t))
                nbrs = [nbrs[t] for t in sorted(scored[: max(1, len(nbrs) // 2)])]
            pruned.append(nbrs)
        lists = pruned
    W = [[0.0] * D for _ in range(D)]
    for i, nbrs in enumerate(lists):
        for j, w in nbrs:
            W[i][j] = W[j][i] = w
    degree = [sum(row) for row in W]
    L = [[0.0] * D for _ in range(D)]
    for i in range(D):
        for j in range(D):
            if normalised:
                if i == j:
                    L[i][j] = 1.0 if degree[i] > 0 else 0.0
                elif W[i][j]:
                    L[i][j] = -W[i][j] / math.sqrt(degree[i] * degree[j])
            else:
                L[i][j] = degree[i] if i == j else -W[i][j]
    return np.array(L)


def count_components(A):
    """Connected components of a dense adjacency by depth-first search."""
    D, seen, n = len(A), set(), 0
    for s in range(D):
        if s in seen:
            continue
        n += 1
        stack = [s]
        while stack:
            u = stack.pop()
            if u in seen:
                continue
            seen.add(u)
            stack.extend(v for v in range(D) if A[u][v] != 0 and v not in seen)
    return n


def fast_laplacian(centroids, *, normalised=False, sparsify=True, **graph):
    W, info = build_feature_graph(centroids, sparsify_dense=sparsify, **graph)
    return laplacian_from_adjacency(W, normalised=normalised), info


def check_invariants(L, normalised):
    dense = L.toarray()
    assert np.allclose(dense, dense.T, atol=0, rtol=0)
    if not normalised:
        assert np.abs(dense.sum(axis=1)).max() < 1e-12
    vals = laplacian_spectrum(L, vectors=False).eigenvalues
    assert vals.min() >= -1e-8
    n_zero = int((np.abs(vals) <= zero_tolerance(vals)).sum())
    adjacency = (dense != 0) & ~np.eye(len(dense), dtype=bool)
    assert n_zero == count_components(adjacency) == connected_components(L)[0]


CASES = [
    # (eps, topk, k, p, sigma): dense connected, sparse with several components, sparsifying
    (2.0, 3, 6, 2.0, 1.0),
    (0.55, 2, 6, 1.8, 0.535),
    (2.0, 14, 25, 1.0, 0.3),
    (1.0, 5, 4, 3.0, 2.0),
]


@pytest.mark.parametrize("normalised", [False, True])
@pytest.mark.parametrize("eps,topk,k,p,sigma", CASES)
def test_matches_explicit_builder_and_invariants(normalised, eps, topk, k, p, sigma):
    rng = np.random.default_rng(7)
    centroids = rng.standard_normal((9, 30)) + 0.3 * rng.standard_normal(30)
    graph = dict(eps=eps, k=k, topk=topk, p=p, sigma=sigma)
    L, info = fast_laplacian(centroids, normalised=normalised, **graph)
    expected = explicit_laplacian(centroids, normalised=normalised, **graph)
    np.testing.assert_allclose(L.toarray(), expected, rtol=1e-12, atol=1e-12)
    assert info["sparsified"] == (min(topk, k) > 10)
    check_invariants(L, normalised)


def test_several_components_counted_by_zero_eigenvalues():
    rng = np.random.default_rng(1)
    block = rng.standard_normal((6, 4))
    # three groups of features, each a scaled copy of one column pattern: groups are orthogonal
    centroids = np.zeros((12, 9))
    for g in range(3):
        centroids[4 * g : 4 * g + 4, 3 * g : 3 * g + 3] = np.abs(block[:4, :3]) + 1.0
    L, _ = fast_laplacian(centroids, eps=0.5, k=6, topk=2, p=2.0, sigma=1.0)
    assert connected_components(L)[0] == 3
    check_invariants(L, normalised=False)


def test_builder_laplacian_is_the_explicit_graph_of_its_centroids():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 24)).astype(np.float32) + np.repeat(rng.standard_normal((4, 24)), 100, axis=0)
    params = dict(eps=1.2, k=6, topk=4, p=2.0, sigma=0.8)
    memory = build_domain_memory(X, dim=16, reduction="random", n_clusters=12, seed=5, **params)
    assert memory.laplacian.shape == (16, 16)
    expected = explicit_laplacian(memory.centroids.astype(np.float64), **params)
    np.testing.assert_allclose(memory.laplacian.toarray(), expected, rtol=1e-5, atol=1e-6)
    for key, value in {**params, "dim": 16, "reduction": "random", "n_clusters": 12, "seed": 5}.items():
        assert memory.params[key] == value
    assert set(memory.timings) >= {"reduce", "cluster", "graph", "laplacian"}


def test_build_is_deterministic_with_a_seed():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 32)).astype(np.float32)
    a = build_domain_memory(X, dim=24, reduction="pca", eps=1.5, topk=4, seed=11)
    b = build_domain_memory(X, dim=24, reduction="pca", eps=1.5, topk=4, seed=11)
    c = build_domain_memory(X, dim=24, reduction="pca", eps=1.5, topk=4, seed=12)
    assert a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert not np.array_equal(a.centroids, c.centroids)
    assert a.params["n_clusters"] == math.ceil(math.sqrt(3000 / 10))


def test_progress_reports_every_phase():
    seen = []
    X = np.random.default_rng(2).standard_normal((200, 8)).astype(np.float32)
    build_domain_memory(X, dim=6, eps=2.0, progress=lambda phase, done, total: seen.append((phase, done, total)))
    phases = list(dict.fromkeys(p for p, _, _ in seen))
    assert phases == ["reduce", "cluster", "graph", "laplacian"]
    for phase in phases:
        last = [(d, t) for p, d, t in seen if p == phase][-1]
        assert last[0] == last[1]


def test_scipy_chain_laplacian_equals_the_models_default():
    import torch

    from tauformer.domain.graph import chain_laplacian_csr
    from tauformer.laplacian import chain_laplacian

    for D in (1, 2, 7, 32):
        assert torch.equal(torch.from_numpy(chain_laplacian_csr(D).toarray()).float(), chain_laplacian(D))

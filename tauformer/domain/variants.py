"""Control Laplacians for the study: what a domain memory is compared against.

Each function takes or returns a scipy CSR Laplacian (float64, D x D), the form a DomainMemory
holds, so a control can be saved as a domain-memory file and trained with like the real one.

- ``chain``: the path graph 0-1-...-(D-1), unit weights -- the model's default when no domain
  memory is given (tauformer.laplacian.chain_laplacian, graph.chain_laplacian_csr).
- ``identity``: L = I, the What-if page's "identity" (tauformer.laplacian.identity_laplacian):
  every vector has Rayleigh energy 1, so lambda = 1 / (1 + tau) is the same for every query and
  key, and tau attention cannot tell keys apart by lambda -- the "no domain memory" ablation.
- ``rewired``: the domain graph after seeded double-edge swaps; every node keeps its number of
  neighbours and every edge weight travels with its edge, so degrees and total weight stay while
  which features are neighbours is scrambled.
- ``random``: an Erdos-Renyi-like graph with the same number of edges, placed uniformly at random,
  carrying a random permutation of the domain graph's edge weights (same density and weights).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .graph import canonical_csr, chain_laplacian_csr


def edge_list(L: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """(edges [E, 2] with a < b, weights [E]) of a Laplacian's graph: W = -offdiag(L)."""
    U = sp.triu(sp.csr_matrix(L, dtype=np.float64), k=1).tocoo()
    keep = U.data != 0
    edges = np.stack([U.row[keep], U.col[keep]], axis=1).astype(np.int64)  # [E, 2]
    return edges, -U.data[keep]


def laplacian_from_edges(edges: np.ndarray, weights: np.ndarray, D: int) -> sp.csr_matrix:
    """Unnormalised Laplacian diag(W 1) - W of an undirected weighted graph on D nodes."""
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    W = sp.csr_matrix((np.concatenate([weights, weights]), (rows, cols)), shape=(D, D))
    return canonical_csr(sp.diags(np.asarray(W.sum(axis=1)).ravel()) - W)


def chain(D: int) -> sp.csr_matrix:
    return chain_laplacian_csr(D)


def identity(D: int) -> sp.csr_matrix:
    return canonical_csr(sp.identity(D, format="csr"))


def swap_edges(edges: list[list[int]], *, seed: int, swaps_per_edge: int = 10) -> list[list[int]]:
    """Seeded double-edge swaps (a-b, c-d) -> (a-d, c-b) on an undirected edge list, in place.

    A swap is skipped when it would make a self-loop or a duplicate edge, so every node keeps its
    number of neighbours; edge i stays at position i, so a weight list indexed like ``edges`` is
    carried along. Returns ``edges``.
    """
    present = {frozenset(e) for e in edges}
    rng = np.random.default_rng(seed)
    n = len(edges)
    for _ in range(swaps_per_edge * n if n >= 2 else 0):
        i, j = rng.choice(n, size=2, replace=False)
        a, b = edges[i]
        c, d = edges[j] if rng.random() < 0.5 else edges[j][::-1]
        if len({a, b, c, d}) < 4 or frozenset((a, d)) in present or frozenset((c, b)) in present:
            continue
        present -= {frozenset((a, b)), frozenset((c, d))}
        present |= {frozenset((a, d)), frozenset((c, b))}
        edges[i], edges[j] = [a, d], [c, b]
    return edges


def rewired(L: sp.spmatrix, *, seed: int, swaps_per_edge: int = 10) -> sp.csr_matrix:
    """Degree-preserving rewiring by double-edge swaps (a-b, c-d) -> (a-d, c-b), seeded.

    A swap is skipped when it would make a self-loop or a duplicate edge; each new edge keeps the
    weight of the edge it replaced, so per-node neighbour counts and the total weight are kept.
    """
    edges, weights = edge_list(L)
    D = L.shape[0]
    edges = swap_edges([list(map(int, e)) for e in edges], seed=seed, swaps_per_edge=swaps_per_edge)
    return laplacian_from_edges(np.asarray(edges, dtype=np.int64).reshape(-1, 2), weights, D)


def random_like(L: sp.spmatrix, *, seed: int) -> sp.csr_matrix:
    """A uniformly random graph with L's edge count, carrying L's edge weights in random order."""
    edges, weights = edge_list(L)
    D = L.shape[0]
    rng = np.random.default_rng(seed)
    iu, ju = np.triu_indices(D, k=1)
    pick = rng.choice(iu.size, size=len(weights), replace=False)
    new_edges = np.stack([iu[pick], ju[pick]], axis=1)  # [E, 2]
    return laplacian_from_edges(new_edges, rng.permutation(weights), D)
